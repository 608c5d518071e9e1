/**
 * The generation loop: prefill the prompt (in chunks), then decode one token per step, yielding
 * events as an async iterator. Between steps it yields to the event loop (setImmediate) so a
 * server stays responsive and an AbortSignal is seen promptly.
 *
 *   for await (const event of generate(model, tokenizer, { messages, maxTokens: 256 })) ...
 */
import type { CausalLM, KvCache } from '../models/model.js';
import type { DoneEvent, GenerationEvent, GenerationTokenizer } from './events.js';
import { chatPromptTokens, type ChatMessage } from './chat-prompt.js';
import { Sequence, type SequenceOptions } from './sequence.js';

export type { ChatMessage } from './chat-prompt.js';

/** Exactly one of prompt, text or messages. */
export interface PromptSource {
  /** Prompt token ids, used as they are. */
  prompt?: ArrayLike<number>;
  /** Raw prompt text: encoded with the tokenizer's BOS and with special tokens parsed. */
  text?: string;
  /** Chat messages, rendered with the chat template plus the generation prompt. */
  messages?: readonly ChatMessage[];
  /** Jinja chat template (e.g. the GGUF's); default: the DeepSeek-R1 template. */
  chatTemplate?: string;
}

/** A KV cache kept across requests, with the tokens it holds; generate() reuses the common prefix. */
export interface CacheSlot {
  cache: KvCache;
  /** The tokens whose keys/values the cache holds, in order (generate() updates it). */
  tokens: number[];
}

export interface GenerationRequest extends PromptSource, SequenceOptions {
  /** Aborting ends generation at the next step with finishReason 'abort'. */
  signal?: AbortSignal;
  /** Prompt tokens per prefill forward call. Default 512. */
  prefillChunkSize?: number;
  /** Reuse (and update) this cache instead of allocating one. */
  cacheSlot?: CacheSlot;
}

/** Turns the request's prompt into token ids. Throws a clear Error on a malformed request. */
export function preparePrompt(tokenizer: GenerationTokenizer, source: PromptSource): Int32Array {
  const given = [source.prompt !== undefined, source.text !== undefined, source.messages !== undefined].filter(Boolean).length;
  if (given !== 1) throw new Error('a generation request needs exactly one of prompt (token ids), text or messages');
  if (source.prompt !== undefined) {
    const ids = Int32Array.from(source.prompt);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 0 || ids[i] !== source.prompt[i]) throw new Error(`prompt token ${i} is not a token id: ${String(source.prompt[i])}`);
    }
    return ids;
  }
  if (source.text !== undefined) return Int32Array.from(tokenizer.encode(source.text, { addSpecialTokens: true, parseSpecial: true }));
  const options = source.chatTemplate !== undefined ? { template: source.chatTemplate } : {};
  return Int32Array.from(chatPromptTokens(tokenizer, source.messages!, options));
}

/** Throws when a prompt of this length cannot run in the model's context. */
export function checkPromptFits(model: CausalLM, promptTokens: number, capacity = model.info.contextLength): void {
  if (promptTokens === 0) throw new Error('the prompt is empty (0 tokens)');
  if (promptTokens >= capacity) {
    throw new Error(
      `the prompt is ${promptTokens} tokens but the context holds ${capacity} ` +
        `(the prompt must leave room for at least one generated token)`,
    );
  }
}

/**
 * The request's prompt tokens and prefill chunk size, checked before any model work: the prompt
 * fits the context (or the cache slot), every id is inside the vocabulary, the chunk size is valid.
 */
export function checkedPrompt(model: CausalLM, tokenizer: GenerationTokenizer, request: GenerationRequest): { prompt: Int32Array; chunkSize: number } {
  const prompt = preparePrompt(tokenizer, request);
  const slot = request.cacheSlot;
  checkPromptFits(model, prompt.length, slot ? Math.min(slot.cache.capacity, model.info.contextLength) : model.info.contextLength);
  for (let i = 0; i < prompt.length; i++) {
    if (prompt[i]! >= model.info.vocabSize) throw new Error(`prompt token ${i} is ${prompt[i]}, outside the model's vocabulary of ${model.info.vocabSize}`);
  }
  const chunkSize = request.prefillChunkSize ?? 512;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`prefillChunkSize must be an integer >= 1, got ${chunkSize}`);
  return { prompt, chunkSize };
}

/** Yields to the event loop (between prefill chunks and decode steps, so other requests progress). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The final event of a generation: usage, timings (prefill from `start` to `prefillEnd`, decode
 * after it) and the stop that ended it. Shared by plain and speculative decoding.
 */
export function doneEvent(seq: Sequence, promptTokens: number, cachedTokens: number, start: number, prefillEnd: number): DoneEvent {
  const end = performance.now();
  const prefillMs = prefillEnd - start;
  const decodeMs = seq.completionTokens > 0 ? end - prefillEnd : 0;
  const event: DoneEvent = {
    type: 'done',
    finishReason: seq.finishReason ?? 'abort',
    usage: { promptTokens, cachedTokens, completionTokens: seq.completionTokens, reasoningTokens: seq.reasoningTokens },
    timings: {
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? ((promptTokens - cachedTokens) * 1000) / prefillMs : 0,
      tokensPerSecond: decodeMs > 0 ? (seq.completionTokens * 1000) / decodeMs : 0,
    },
    seed: seq.sampler.seed,
  };
  if (seq.stopToken !== undefined) event.stopToken = seq.stopToken;
  if (seq.stopString !== undefined) event.stopString = seq.stopString;
  return event;
}

/**
 * Feeds prompt[from..] to the model in chunks of `chunkSize`, yielding to the event loop between
 * chunks; returns the last position's logits, or null when `signal` aborted between chunks.
 */
export async function prefillChunks(
  prompt: Int32Array, from: number, chunkSize: number, feed: (tokens: Int32Array) => Float32Array, signal: AbortSignal | undefined,
): Promise<Float32Array | null> {
  if (from >= prompt.length) throw new Error('internal: prompt fully cached'); // checkPromptFits and the prefix limit prevent this
  let logits: Float32Array | undefined;
  for (let pos = from; pos < prompt.length; pos += chunkSize) {
    logits = feed(prompt.subarray(pos, Math.min(prompt.length, pos + chunkSize)));
    if (pos + chunkSize < prompt.length) {
      await tick();
      if (signal?.aborted) return null;
    }
  }
  return logits!;
}

export async function* generate(
  model: CausalLM,
  tokenizer: GenerationTokenizer,
  request: GenerationRequest,
): AsyncGenerator<GenerationEvent, void, undefined> {
  const { prompt, chunkSize } = checkedPrompt(model, tokenizer, request);
  const slot = request.cacheSlot;
  const seq = new Sequence(tokenizer, prompt, request, model.info.vocabSize);
  const signal = request.signal;

  let cache: KvCache;
  let cached = 0;
  if (slot) {
    cache = slot.cache;
    const limit = Math.min(slot.tokens.length, cache.length, prompt.length - 1);
    while (cached < limit && slot.tokens[cached] === prompt[cached]) cached++;
    cache.truncate(cached);
    slot.tokens.length = cached;
  } else {
    const wanted = prompt.length + (request.maxTokens ?? model.info.contextLength);
    cache = model.newCache(Math.min(model.info.contextLength, wanted));
  }

  const start = performance.now();
  let prefillEnd = start;
  const done = (): DoneEvent => doneEvent(seq, prompt.length, cached, start, prefillEnd);

  const feedModel = (tokens: Int32Array): Float32Array => {
    try {
      const logits = model.forward(tokens, cache);
      if (slot) for (const t of tokens) slot.tokens.push(t);
      return logits;
    } catch (error) {
      if (slot) {
        cache.truncate(0);
        slot.tokens.length = 0;
      }
      throw error;
    }
  };

  if (signal?.aborted) {
    yield* seq.finish('abort');
    yield done();
    return;
  }
  let logits = await prefillChunks(prompt, cached, chunkSize, feedModel, signal);
  prefillEnd = performance.now();
  if (logits === null) {
    yield* seq.finish('abort');
    yield done();
    return;
  }

  for (;;) {
    const { events, feed } = seq.step(logits);
    yield* events;
    if (seq.finished) break;
    if (cache.length + feed.length > cache.capacity) {
      yield* seq.finish('length');
      break;
    }
    await tick();
    if (signal?.aborted) {
      yield* seq.finish('abort');
      break;
    }
    logits = feedModel(feed);
  }
  yield done();
}

/** Collected result of a whole generation (convenience for tests, the CLI and non-streaming APIs). */
export interface GenerationResult {
  reasoning: string;
  content: string;
  tokens: number[];
  done: DoneEvent;
}

export async function collect(events: AsyncIterable<GenerationEvent>): Promise<GenerationResult> {
  let reasoning = '';
  let content = '';
  const tokens: number[] = [];
  for await (const event of events) {
    if (event.type === 'done') return { reasoning, content, tokens, done: event };
    if (event.type === 'token') tokens.push(event.id);
    if (event.channel === 'reasoning') reasoning += event.text;
    else content += event.text;
  }
  throw new Error('generation ended without a done event');
}
