/**
 * Batched sampling of many completions with the inference engine: every live sequence advances by
 * one token per `forwardBatch` call (the weight matmuls become small GEMMs over the batch), each
 * with its own KV cache and its own rng stream, so that each completion is the one
 * `EnginePolicy.complete` gives for the same prompt and rng (up to the last float bits of the
 * batched kernels).
 *
 * At most `maxBatch` sequences are live at once; a finished one leaves at once and the next
 * waiting prompt takes its place. Identical prompts (a GRPO group) are prefilled once: the
 * prefilled cache is copied for the others when the cache type can be copied (KvCache.assign:
 * DenseKvCache, DeepseekCache); otherwise each prompt is prefilled on its own.
 */
import type { Random } from '../autograd/random.js';
import type { CausalLM, KvCache } from '../models/model.js';
import type { Codec, Completion, SampleOptions } from './rollout.js';
import { CompletionDraft, completionCapacity } from './sampling.js';

/** Sequences decoded together by default (GRPO's 8 prompts x 8 samples in one batch). */
export const DEFAULT_MAX_BATCH = 64;

/** Whether `copyCache` can copy caches of this model. */
export function canCopyCache(lm: CausalLM): boolean {
  return typeof lm.newCache(1).assign === 'function';
}

/**
 * A new cache of `lm` with the given capacity holding the same tokens as `source` (a cache of the
 * same model). Throws for cache types that cannot be copied (check `canCopyCache` first).
 */
export function copyCache(lm: CausalLM, source: KvCache, capacity = source.capacity): KvCache {
  const length = source.length;
  if (length > capacity) throw new Error(`copyCache: ${length} cached tokens do not fit a capacity of ${capacity}`);
  const copy = lm.newCache(capacity);
  if (!copy.assign) throw new Error(`copyCache: cannot copy a ${source.constructor.name} into a ${copy.constructor.name}`);
  copy.assign(source);
  return copy;
}

interface LiveSequence {
  index: number;
  draft: CompletionDraft;
  cache: KvCache;
  logits: Float32Array;
}

/** A prefilled prompt kept for the copies still to come: its cache (not advanced) and next-token logits. */
interface PrefilledPrompt {
  cache: KvCache;
  logits: Float32Array;
}

/**
 * One completion per prompt, prompt i sampled with rngs[i] (its own stream), in prompt order.
 * Same options, stopping rules and records as `EnginePolicy.complete`.
 */
export function completeBatched(
  lm: CausalLM, codec: Pick<Codec, 'decode' | 'eosId'>, prompts: readonly (readonly number[])[], options: SampleOptions, rngs: readonly Random[],
  maxBatch = DEFAULT_MAX_BATCH,
): Completion[] {
  if (rngs.length !== prompts.length) throw new Error(`completeMany: ${prompts.length} prompts but ${rngs.length} rng streams`);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`completeMany: maxBatch ${maxBatch} must be a positive integer`);
  const capacities = prompts.map((p) => completionCapacity(p, options, lm.info.contextLength));
  const keys = prompts.map((p) => p.join(','));
  const share = canCopyCache(lm);
  const remaining = new Map<string, number>();
  for (const key of keys) remaining.set(key, (remaining.get(key) ?? 0) + 1);
  const prefilled = new Map<string, PrefilledPrompt>();
  const results: Completion[] = new Array<Completion>(prompts.length);
  let live: LiveSequence[] = [];
  let next = 0;
  const admit = (): void => {
    const admitted: number[] = [];
    while (live.length + admitted.length < maxBatch && next < prompts.length) admitted.push(next++);
    if (admitted.length === 0) return;
    // prompts to run: each admitted one, or (sharing) each distinct one not prefilled yet
    const run = share ? admitted.filter((i, k) => !prefilled.has(keys[i]!) && admitted.findIndex((j) => keys[j] === keys[i]) === k) : admitted;
    const caches = run.map((i) => lm.newCache(capacities[i]));
    const outs = run.length === 0 ? [] : lm.forwardBatch(run.map((i, k) => ({ tokens: Int32Array.from(prompts[i]!), cache: caches[k]! })));
    const start = (i: number, cache: KvCache, logits: Float32Array): void => {
      const draft = new CompletionDraft(prompts[i]!.length, capacities[i]!, options, rngs[i]!, codec);
      live.push({ index: i, draft, cache, logits });
    };
    if (!share) {
      run.forEach((i, k) => start(i, caches[k]!, outs[k]!));
      return;
    }
    run.forEach((i, k) => prefilled.set(keys[i]!, { cache: caches[k]!, logits: outs[k]! }));
    for (const i of admitted) {
      const key = keys[i]!;
      const left = remaining.get(key)! - 1;
      remaining.set(key, left);
      const p = prefilled.get(key)!;
      if (left === 0) {
        prefilled.delete(key);
        start(i, p.cache, p.logits);
      } else {
        start(i, copyCache(lm, p.cache, capacities[i]), p.logits);
      }
    }
  };
  while (next < prompts.length || live.length > 0) {
    admit();
    const going: LiveSequence[] = [];
    for (const s of live) {
      if (s.draft.accept(s.logits)) going.push(s);
      else results[s.index] = s.draft.result();
    }
    live = going;
    if (live.length === 0) continue;
    const outs = lm.forwardBatch(live.map((s) => ({ tokens: Int32Array.of(s.draft.last), cache: s.cache })));
    live.forEach((s, k) => { s.logits = outs[k]!; });
  }
  return results;
}
