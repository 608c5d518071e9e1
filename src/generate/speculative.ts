/**
 * Speculative decoding: a drafter proposes up to k tokens, the main model checks them all in ONE
 * batched forward (allLogits), the longest acceptable prefix is kept, the KV cache is cut back to
 * it, and the main model's correction (or, when every draft passed, its bonus token) follows.
 *
 *   for await (const e of generateSpeculative(model, tokenizer, { prompt, speculative: { method: 'mtp' } })) ...
 *
 * Same events as generate(); the done event also carries `speculative` statistics.
 *
 * Exactness. At each drafted position the target distribution p is the one the engine's sampler
 * would draw from there: it is computed with Sampler.distribution() after the previously accepted
 * tokens were recorded (sampler.accept), so repetition/frequency/presence penalties see exactly the
 * history plain decoding would. A draft x drawn from q is accepted with probability
 * min(1, p(x)/q(x)), else the token comes from normalize(max(0, p - q)) (speculative-sampling.ts);
 * the tokens are therefore distributed exactly as in plain decoding. q is the drafter's: a point
 * mass for n-gram drafts and for greedy requests; for sampled MTP drafts, the sampler's filtering
 * (bias, penalties, temperature, top-k/top-p/min-p) applied to the MTP logits with the history as
 * of the start of the step (earlier drafts of the same chain not counted; that only affects the
 * acceptance rate, never the output distribution). Greedy (temperature 0) emits the argmax of
 * the verification logits at every position: the same tokens as plain greedy decoding, exactly on
 * backends whose batched forward matches the one-token forward bit for bit (ref), and up to
 * float rounding of the batched kernels otherwise (a flip needs a near-tie of the top logits).
 *
 * Stops, maxTokens, EOS and the reasoning budget are applied by the same Sequence as plain
 * decoding, one token at a time, so they end the output at exactly the same token.
 *
 * The per-step work (draft, verify, accept, cut the cache back) is SpeculativeDecoder
 * (speculative-step.ts), which the server's scheduler also uses for a sequence decoding alone.
 */
import type { CausalLM, KvCache } from '../models/model.js';
import { DeepseekModel } from '../models/deepseek-v3.js';
import { checkedPrompt, doneEvent, prefillChunks, tick, type GenerationRequest } from './engine.js';
import type { DoneEvent, GenerationEvent, GenerationTokenizer } from './events.js';
import { MtpDrafter } from './draft-mtp.js';
import { NgramDrafter, type NgramOptions } from './draft-ngram.js';
import { Sequence } from './sequence.js';
import { SpeculativeDecoder } from './speculative-step.js';
import type { Drafter, SpeculativeStats } from './speculative-types.js';

export type { Drafter, DraftProposal, DraftChooser, SpeculativeStats } from './speculative-types.js';
export { stepWithToken } from './speculative-step.js';

export type SpeculativeMethod = 'mtp' | 'ngram';

export interface SpeculativeOptions {
  /** 'mtp': the model's own MTP module (deepseek2 with MTP weights); 'ngram': prompt lookup. */
  method?: SpeculativeMethod;
  /** A custom drafter instead of method (tests, experiments). */
  drafter?: Drafter;
  /** Most tokens drafted per step (k >= 1). Default 1 for mtp (V3's setting), 4 for ngram. */
  draftTokens?: number;
  ngram?: NgramOptions;
}

export interface SpeculativeRequest extends GenerationRequest {
  speculative: SpeculativeOptions;
}

export interface SpeculativeDoneEvent extends DoneEvent {
  speculative: SpeculativeStats;
}

/** Prefill chunk when the drafter needs all hidden states (allLogits rows cost vocab-sized memory). */
export const HIDDEN_PREFILL_CHUNK = 64;


/** One line about the drafting of a speculative run ('' for a plain done event). */
export function formatSpeculativeStats(done: DoneEvent): string {
  const s = (done as Partial<SpeculativeDoneEvent>).speculative;
  if (!s) return '';
  return (
    `speculative ${s.method} (k=${s.draftTokens}): accepted ${s.accepted}/${s.proposed} drafts (${(s.acceptanceRate * 100).toFixed(1)}%), ` +
    `${s.tokensPerForward.toFixed(2)} tokens per forward, ${done.timings.tokensPerSecond.toFixed(1)} tokens/s`
  );
}

/** Default k per method. */
export function defaultDraftTokens(method: string): number {
  return method === 'mtp' ? 1 : 4;
}

/** The drafter of a method (or the custom one); `capacity`: most positions its own cache needs. */
export function makeDrafter(model: CausalLM, options: SpeculativeOptions, capacity: number): Drafter {
  if (options.drafter) return options.drafter;
  if (options.method === 'ngram') return new NgramDrafter(options.ngram);
  if (options.method === 'mtp') {
    if (!(model instanceof DeepseekModel)) throw new Error(`MTP drafting needs a deepseek2 model with MTP weights; this model is ${model.info.architecture} (use --speculative ngram)`);
    return new MtpDrafter(model, capacity);
  }
  throw new Error(`speculative method must be 'mtp' or 'ngram', got '${String(options.method)}'`);
}

export async function* generateSpeculative(
  model: CausalLM,
  tokenizer: GenerationTokenizer,
  request: SpeculativeRequest,
): AsyncGenerator<GenerationEvent, void, undefined> {
  const spec = request.speculative;
  if (!spec || typeof spec !== 'object') throw new Error('generateSpeculative needs request.speculative');
  const method = spec.drafter?.kind ?? spec.method ?? 'unset';
  const k = spec.draftTokens ?? defaultDraftTokens(method);
  if (!Number.isInteger(k) || k < 1) throw new Error(`draftTokens must be an integer >= 1, got ${String(k)}`);
  const checked = checkedPrompt(model, tokenizer, request);
  const prompt = checked.prompt;
  let chunkSize = checked.chunkSize;
  const slot = request.cacheSlot;
  const seq = new Sequence(tokenizer, prompt, request, model.info.vocabSize);
  const signal = request.signal;

  let cache: KvCache;
  let cached = 0;
  if (slot) {
    cache = slot.cache;
  } else {
    const wanted = prompt.length + (request.maxTokens ?? model.info.contextLength) + k;
    cache = model.newCache(Math.min(model.info.contextLength, wanted));
  }
  const drafter = makeDrafter(model, spec, cache.capacity);
  if (slot) {
    // A drafter with its own state (MTP) starts from position 0: the slot's prefix is not reused.
    const limit = drafter.needsHidden ? 0 : Math.min(slot.tokens.length, cache.length, prompt.length - 1);
    while (cached < limit && slot.tokens[cached] === prompt[cached]) cached++;
    cache.truncate(cached);
    slot.tokens.length = cached;
  }
  if (drafter.needsHidden) {
    if (!(model instanceof DeepseekModel)) throw new Error(`the ${drafter.kind} drafter needs hidden states, which only deepseek2 models provide`);
    chunkSize = Math.min(chunkSize, HIDDEN_PREFILL_CHUNK);
  }
  const decoder = new SpeculativeDecoder({ model, seq, cache, slot, newDrafter: () => drafter, draftTokens: k, maxTokens: request.maxTokens });
  const stats = decoder.counts;

  const start = performance.now();
  let prefillEnd = start;
  const done = (): SpeculativeDoneEvent => ({
    ...doneEvent(seq, prompt.length, cached, start, prefillEnd),
    speculative: {
      method,
      draftTokens: k,
      proposed: stats.proposed,
      accepted: stats.accepted,
      acceptanceRate: stats.proposed > 0 ? stats.accepted / stats.proposed : 0,
      forwards: stats.forwards,
      tokensPerForward: stats.forwards > 0 ? stats.decisions / stats.forwards : 0,
    },
  });

  if (signal?.aborted) {
    yield* seq.finish('abort');
    yield done();
    return;
  }
  const logits = await prefillChunks(prompt, cached, chunkSize, (tokens) => decoder.advance(tokens), signal);
  prefillEnd = performance.now();
  if (logits === null) {
    yield* seq.finish('abort');
    yield done();
    return;
  }

  let { events, feed } = seq.step(logits);
  yield* events;
  while (!seq.finished) {
    if (cache.length + feed.length > cache.capacity) {
      yield* seq.finish('length');
      break;
    }
    await tick();
    if (signal?.aborted) {
      yield* seq.finish('abort');
      break;
    }
    ({ events, feed } = decoder.step(feed));
    yield* events;
  }
  yield done();
}
