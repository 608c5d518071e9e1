/**
 * Per-sequence generation state, independent of how the model is run: given the next-token
 * logits it picks a token (or forces the end of the thought), turns it into text events, applies
 * stops and says which tokens to feed the model next. The engine loop (engine.ts) drives one
 * Sequence; a batching server can drive many with one batched forward per step.
 */
import type { FinishReason, GenerationEvent, GenerationTokenizer, TokenEvent } from './events.js';
import { ReasoningParser, promptOpensThought, type ChannelText } from './reasoning.js';
import { Sampler, tokenLogprobs, type SamplingOptions } from './sampling.js';
import { StopStringMatcher } from './stops.js';

/** How to find the thought in the output. */
export type ThinkingMode =
  /** 'prefilled' when the prompt ends with an open `<think>`, else 'detect'. */
  | 'auto'
  /** The prompt opened the thought: the output starts as reasoning until `</think>`. */
  | 'prefilled'
  /** Reasoning only if the output starts with `<think>`. */
  | 'detect'
  /** No parsing: all output is content. */
  | 'off';

export interface SequenceOptions {
  sampling?: SamplingOptions;
  /** Most output tokens (forced ones included); default: until the context is full. */
  maxTokens?: number;
  /** Stop strings (never part of the output). */
  stop?: readonly string[];
  /**
   * Where stop strings are looked for: 'all' output text, the thought included (llama.cpp's
   * behaviour; default), or only the 'content' after the thought.
   */
  stopScope?: 'all' | 'content';
  /** Token ids that end generation; default: the tokenizer's EOS and end-of-turn tokens. */
  stopTokenIds?: readonly number[];
  thinking?: ThinkingMode;
  /** After this many reasoning tokens the thought is closed by force (reasoningCloseText). */
  reasoningBudget?: number;
  /** Text injected to close the thought when the budget runs out. Default "\n</think>\n\n". */
  reasoningCloseText?: string;
  /** Report the sampled tokens' log-probabilities. */
  logprobs?: boolean;
  /** With logprobs: how many top alternatives to report per token (0..20). */
  topLogprobs?: number;
}

/**
 * End-of-sequence / end-of-turn markers a chat model may emit (Llama 3.1 ends a tool-calling
 * message with <|eom_id|>, listed in its generation_config.json eos_token_id beside <|eot_id|>).
 */
const END_MARKERS = ['<｜end▁of▁sentence｜>', '<|EOT|>', '<|eot_id|>', '<|eom_id|>', '<|end_of_text|>', '<|im_end|>', '<|endoftext|>'];

/** The tokenizer's EOS plus any end-of-turn special tokens its vocabulary has. */
export function defaultStopTokenIds(tokenizer: GenerationTokenizer): number[] {
  const ids = new Set<number>();
  if (tokenizer.eosId !== undefined && tokenizer.eosId >= 0) ids.add(tokenizer.eosId);
  for (const marker of END_MARKERS) {
    const id = tokenizer.tokenId(marker);
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}

export class Sequence {
  readonly promptTokens: Int32Array;
  readonly outputTokens: number[] = [];
  readonly sampler: Sampler;
  reasoningTokens = 0;
  finishReason: FinishReason | undefined;
  stopToken: number | undefined;
  stopString: string | undefined;

  private readonly decoder: { push(id: number): string; flush(): string };
  private readonly stops: StopStringMatcher;
  private readonly parser: ReasoningParser | null;
  private readonly stopIds: Set<number>;
  private readonly stopScope: 'all' | 'content';
  private readonly maxTokens: number;
  private readonly budget: number;
  private readonly closeTokens: Int32Array;
  private readonly logprobs: boolean;
  private readonly topLogprobs: number;

  constructor(tokenizer: GenerationTokenizer, promptTokens: ArrayLike<number>, options: SequenceOptions = {}, vocabSize?: number) {
    this.promptTokens = Int32Array.from(promptTokens);
    this.sampler = new Sampler(options.sampling, vocabSize);
    this.sampler.observeContext(this.promptTokens);
    if (tokenizer.vocabSize !== undefined && (vocabSize === undefined || tokenizer.vocabSize < vocabSize)) this.sampler.limitVocabulary(tokenizer.vocabSize);
    this.decoder = tokenizer.streamDecoder();
    this.stops = new StopStringMatcher(options.stop ?? []);
    this.stopIds = new Set(options.stopTokenIds ?? defaultStopTokenIds(tokenizer));
    this.stopScope = options.stopScope ?? 'all';
    if (this.stopScope !== 'all' && this.stopScope !== 'content') throw new Error(`stopScope must be 'all' or 'content', got '${String(this.stopScope)}'`);
    this.maxTokens = checkCount('maxTokens', options.maxTokens, Infinity, 1);
    this.budget = checkCount('reasoningBudget', options.reasoningBudget, Infinity, 0);
    this.logprobs = options.logprobs ?? false;
    this.topLogprobs = checkCount('topLogprobs', options.topLogprobs, 0, 0);
    if (this.topLogprobs > 20) throw new Error(`topLogprobs must be at most 20, got ${this.topLogprobs}`);
    const thinking = options.thinking ?? 'auto';
    if (!['auto', 'prefilled', 'detect', 'off'].includes(thinking)) throw new Error(`unknown thinking mode '${thinking}'`);
    const startInReasoning = thinking === 'prefilled' || (thinking === 'auto' && promptEndsInThought(tokenizer, this.promptTokens));
    this.parser = thinking === 'off' ? null : new ReasoningParser({ startInReasoning });
    this.closeTokens =
      this.budget === Infinity || this.parser === null
        ? new Int32Array(0)
        : Int32Array.from(tokenizer.encode(options.reasoningCloseText ?? '\n</think>\n\n', { addSpecialTokens: false, parseSpecial: true }));
    if (this.budget !== Infinity && this.parser !== null && this.closeTokens.length === 0) {
      throw new Error('reasoningCloseText encodes to no tokens');
    }
  }

  get finished(): boolean {
    return this.finishReason !== undefined;
  }

  /** Output tokens so far (sampled and forced). */
  get completionTokens(): number {
    return this.outputTokens.length;
  }

  /** Tokens injected when the budget forces the thought closed (counted in maxTokens). */
  get reservedTokens(): number {
    return this.closeTokens.length;
  }

  /**
   * Consumes the next-token logits (of the prompt's last position, then of each fed token).
   * Returns the events of this step and the tokens to feed the model before the next step
   * (empty once the sequence finished).
   */
  step(logits: Float32Array): { events: GenerationEvent[]; feed: Int32Array } {
    if (this.finished) throw new Error('sequence already finished');
    const events: GenerationEvent[] = [];
    if (this.parser?.inReasoning && this.reasoningTokens >= this.budget) {
      for (const id of this.closeTokens) {
        // maxTokens counts the forced tokens too: a close that does not fit is cut, never exceeds it
        if (this.finished || this.outputTokens.length >= this.maxTokens) break;
        this.emitToken(id, events, { forced: true });
      }
      if (!this.finished && this.outputTokens.length >= this.maxTokens) this.finish('length', events);
      return { events, feed: this.finished ? new Int32Array(0) : this.closeTokens };
    }
    const id = this.sampler.sample(logits);
    if (this.stopIds.has(id)) {
      this.stopToken = id;
      this.finish('stop', events);
      return { events, feed: new Int32Array(0) };
    }
    this.sampler.accept(id);
    let logprob: number | undefined;
    let top: TokenEvent['topLogprobs'];
    if (this.logprobs) {
      const lp = tokenLogprobs(logits, id, this.topLogprobs);
      logprob = lp.logprob;
      if (this.topLogprobs > 0) top = lp.top;
    }
    this.emitToken(id, events, { logprob, topLogprobs: top });
    if (!this.finished && this.outputTokens.length >= this.maxTokens) this.finish('length', events);
    return { events, feed: this.finished ? new Int32Array(0) : Int32Array.of(id) };
  }

  /** Ends the sequence (abort, context full, ...): releases held text as events. */
  finish(reason: FinishReason, events: GenerationEvent[] = []): GenerationEvent[] {
    if (this.finished) return events;
    this.finishReason = reason;
    const { parts, stop } = this.toParts(this.decoder.flush(), true);
    if (stop !== undefined) {
      // held text (a possible `<think>` at the start) turned out to be content with a stop in it
      this.stopString = stop;
      if (reason === 'length') this.finishReason = 'stop';
    }
    for (const part of parts) if (part.text) events.push({ type: 'text', channel: part.channel, text: part.text });
    return events;
  }

  /**
   * Decoded text -> channel parts, through the stop matcher and the reasoning parser (in the
   * order stopScope asks for). `final` releases everything held back.
   */
  private toParts(piece: string, final: boolean): { parts: ChannelText[]; stop?: string } {
    const parser = this.parser;
    if (this.stopScope === 'all' || parser === null) {
      const pushed = this.stops.push(piece);
      const text = pushed.text + (final && pushed.stop === undefined ? this.stops.flush() : '');
      const parts = parser ? [...parser.push(text), ...(final ? parser.flush() : [])] : text ? [{ channel: 'content' as const, text }] : [];
      return pushed.stop === undefined ? { parts } : { parts, stop: pushed.stop };
    }
    const parts: ChannelText[] = [];
    let stop: string | undefined;
    for (const part of [...parser.push(piece), ...(final ? parser.flush() : [])]) {
      if (part.channel === 'reasoning') {
        parts.push(part);
        continue;
      }
      const pushed = this.stops.push(part.text);
      if (pushed.text) parts.push({ channel: 'content', text: pushed.text });
      if (pushed.stop !== undefined) {
        stop = pushed.stop;
        break;
      }
    }
    if (final && stop === undefined) {
      const held = this.stops.flush();
      if (held) parts.push({ channel: 'content', text: held });
    }
    return stop === undefined ? { parts } : { parts, stop };
  }

  private emitToken(id: number, events: GenerationEvent[], extra: Pick<TokenEvent, 'logprob' | 'topLogprobs' | 'forced'>): void {
    this.outputTokens.push(id);
    if (extra.forced) this.sampler.accept(id);
    const piece = this.decoder.push(id);
    const wasReasoning = this.parser?.inReasoning ?? false;
    const { parts, stop } = this.toParts(piece, false);
    const reasoning = wasReasoning || (this.parser?.inReasoning ?? false);
    if (reasoning) this.reasoningTokens++;
    const channel = reasoning ? 'reasoning' : 'content';
    let text = '';
    const rest: ChannelText[] = [];
    for (const part of parts) {
      if (part.channel === channel && rest.length === 0) text += part.text;
      else rest.push(part);
    }
    const event: TokenEvent = { type: 'token', id, text, channel };
    if (extra.logprob !== undefined) event.logprob = extra.logprob;
    if (extra.topLogprobs !== undefined) event.topLogprobs = extra.topLogprobs;
    if (extra.forced) event.forced = true;
    events.push(event);
    for (const part of rest) events.push({ type: 'text', channel: part.channel, text: part.text });
    if (stop !== undefined) {
      this.stopString = stop;
      this.finish('stop', events);
    }
  }
}

/**
 * True when the prompt ends inside an opened thought (`<think>` plus optional whitespace). Decodes
 * a growing tail until it holds the tag whole: a fixed number of tokens is too few for a byte
 * tokenizer or a long run of trailing whitespace (`<think>\n\n` is 9 byte tokens).
 */
function promptEndsInThought(tokenizer: GenerationTokenizer, prompt: Int32Array): boolean {
  // a tail cut inside a character starts with up to 3 replacement characters
  const enough = '<think>'.length + 3;
  for (let window = 8; ; window *= 2) {
    const start = Math.max(0, prompt.length - window);
    const tail = tokenizer.decode(prompt.subarray(start));
    if (start === 0 || tail.trimEnd().length >= enough) return promptOpensThought(tail);
  }
}

function checkCount(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
