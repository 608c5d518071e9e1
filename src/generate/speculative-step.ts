/**
 * One sequence's speculative decoding, one step at a time: generateSpeculative (speculative.ts)
 * drives it for a whole generation, the server's scheduler for the steps a sequence decodes alone.
 *
 *   const decoder = new SpeculativeDecoder({ model, seq, cache, newDrafter, draftTokens: 4 });
 *   let logits = decoder.advance(prompt);           // prefill (observed by the drafter)
 *   let { events, feed } = seq.step(logits);
 *   while (!seq.finished) ({ events, feed } = decoder.step(feed));
 *
 * A step drafts up to k tokens after the pending feed, runs feed + drafts through the main model
 * in one forward (all logits), accepts drafts by the exact rule (speculative-sampling.ts), cuts the
 * KV cache back to the feed and the accepted drafts, and returns the next pending feed: the
 * correction of the first rejected draft, or the token sampled after the last accepted one. The
 * cache then holds no drafted token that was not accepted.
 *
 * Drafters with state (MTP) must observe every main-model position from where they started.
 * When the caller ran forwards of its own in between (the server batches sequences with plain
 * forwards), the drafter is restarted at the current position: a fresh MTP cache that starts
 * there (attention over a later window only changes how good drafts are, never the output).
 */
import type { CausalLM, KvCache } from '../models/model.js';
import { DeepseekModel } from '../models/deepseek-v3.js';
import type { CacheSlot } from './engine.js';
import type { GenerationEvent } from './events.js';
import { Rng } from './rng.js';
import type { Sequence } from './sequence.js';
import { sampleFrom, verifyDraft } from './speculative-sampling.js';
import type { DraftChooser, Drafter } from './speculative-types.js';

export interface SpeculativeDecoderOptions {
  model: CausalLM;
  seq: Sequence;
  /** The main model's cache (the slot's cache when slot is given). */
  cache: KvCache;
  /** Kept equal to the tokens in the cache, like generate() does. */
  slot?: CacheSlot | undefined;
  /** Makes the drafter, at first use and again when its observations were interrupted. */
  newDrafter: () => Drafter;
  /** Most tokens drafted per step (k >= 1). */
  draftTokens: number;
  /** The request's maxTokens (drafts never run past it). */
  maxTokens?: number | undefined;
}

/** Counters of one decoder. */
export interface SpeculativeCounts {
  /** Drafted tokens checked by the main model. */
  proposed: number;
  accepted: number;
  /** Main-model forwards of step() (prefill and advance() excluded). */
  forwards: number;
  /** Tokens decided by step(): accepted drafts, corrections and bonus tokens. */
  decisions: number;
}

/**
 * Sequence.step() with the token chosen by the caller instead of sampled (logits still give the
 * logprobs). `chosen` is false when the step did not pick a token (the reasoning budget forced
 * the thought closed).
 */
export function stepWithToken(seq: Sequence, logits: Float32Array, id: number): { events: GenerationEvent[]; feed: Int32Array; chosen: boolean } {
  const sampler = seq.sampler;
  let chosen = false;
  sampler.sample = () => {
    chosen = true;
    return id;
  };
  try {
    return { ...seq.step(logits), chosen };
  } finally {
    delete (sampler as { sample?: unknown }).sample; // back to the prototype's method
  }
}

export class SpeculativeDecoder {
  readonly counts: SpeculativeCounts = { proposed: 0, accepted: 0, forwards: 0, decisions: 0 };
  readonly draftTokens: number;
  private readonly model: CausalLM;
  private readonly seq: Sequence;
  private readonly cache: KvCache;
  private readonly slot: CacheSlot | undefined;
  private readonly newDrafter: () => Drafter;
  private readonly maxTokens: number;
  private readonly uniform: () => number;
  private readonly choose: DraftChooser;
  private drafter: Drafter | undefined;
  /** Position (prompt + output index) of context[0]: 0 for stateless drafters, else where the drafter started. */
  private origin = 0;
  /** Cache length the drafter has observed up to (its observations are whole while this equals cache.length). */
  private observedEnd = 0;
  /** The tokens from `origin` on: the ones in the cache, then the pending feed. */
  private readonly context: number[] = [];

  constructor(options: SpeculativeDecoderOptions) {
    const k = options.draftTokens;
    if (!Number.isInteger(k) || k < 1) throw new Error(`draftTokens must be an integer >= 1, got ${String(k)}`);
    this.draftTokens = k;
    this.model = options.model;
    this.seq = options.seq;
    this.cache = options.cache;
    this.slot = options.slot;
    this.newDrafter = options.newDrafter;
    this.maxTokens = options.maxTokens ?? Infinity;
    const sampler = this.seq.sampler;
    const rng = new Rng((sampler.seed ^ 0x5bd1e995) >>> 0);
    this.uniform = (): number => rng.nextFloat();
    const greedy = sampler.options.temperature === 0;
    this.choose = (logits) => {
      const q = sampler.distribution(logits);
      return { id: greedy ? q.ids[0]! : sampleFrom(q, this.uniform()), q };
    };
  }

  /**
   * Runs tokens through the main model (after the pending ones, as prefill or a plain decode
   * step), lets the drafter observe them and returns the last position's logits [vocab].
   */
  advance(tokens: Int32Array): Float32Array {
    const drafter = this.currentDrafter();
    const out = this.run(tokens, drafter.needsHidden);
    drafter.observe(tokens, out.hidden);
    this.observedEnd = this.cache.length;
    const V = this.model.info.vocabSize;
    return out.logits.subarray(out.logits.length - V);
  }

  /**
   * One speculative step from the pending `feed` (chosen tokens not yet in the cache; the cache
   * needs room for them). Returns the events of the tokens decided and the next pending feed
   * (empty once the sequence finished).
   */
  step(feed: Int32Array): { events: GenerationEvent[]; feed: Int32Array } {
    const { seq, cache } = this;
    const drafter = this.currentDrafter();
    this.syncContext();
    const V = this.model.info.vocabSize;
    const room = Math.min(this.draftTokens, cache.capacity - cache.length - feed.length, this.maxTokens - seq.completionTokens - 1);
    const proposal = room > 0 ? drafter.propose(this.context, feed.length, room, this.choose) : { tokens: [], q: [] };
    const drafts = proposal.tokens.slice(0, Math.max(0, room));
    const tokens = new Int32Array(feed.length + drafts.length);
    tokens.set(feed);
    tokens.set(drafts, feed.length);
    const cacheStart = cache.length;
    const out = this.run(tokens, true);
    this.counts.forwards++;
    const events: GenerationEvent[] = [];
    let accepted = 0;
    let next: Int32Array | undefined;
    for (let i = 0; i < drafts.length && !seq.finished; i++) {
      const row = out.logits.subarray((feed.length - 1 + i) * V, (feed.length + i) * V);
      const verdict = verifyDraft(seq.sampler.distribution(row), drafts[i]!, proposal.q[i] ?? null, this.uniform);
      const step = stepWithToken(seq, row, verdict.token);
      this.counts.decisions++;
      this.counts.proposed++;
      events.push(...step.events);
      if (!step.chosen || !verdict.accepted) {
        next = step.feed;
        break;
      }
      accepted++;
    }
    if (next === undefined && !seq.finished) {
      const step = seq.step(out.logits.subarray((tokens.length - 1) * V, tokens.length * V));
      this.counts.decisions++;
      events.push(...step.events);
      next = step.feed;
    }
    this.counts.accepted += accepted;
    // keep the feed and the accepted drafts
    const kept = feed.length + accepted;
    cache.truncate(cacheStart + kept);
    if (this.slot) this.slot.tokens.length = cacheStart + kept;
    const d = out.hidden ? out.hidden.length / tokens.length : 0;
    drafter.observe(tokens.subarray(0, kept), out.hidden?.subarray(0, kept * d));
    this.observedEnd = cache.length;
    return { events, feed: seq.finished ? new Int32Array(0) : (next ?? new Int32Array(0)) };
  }

  /** The drafter, (re)started at the current position when it missed some of the cache's tokens. */
  private currentDrafter(): Drafter {
    if (this.drafter && (!this.drafter.needsHidden || this.observedEnd === this.cache.length)) return this.drafter;
    const drafter = this.newDrafter();
    if (drafter.needsHidden && !(this.model instanceof DeepseekModel)) throw new Error(`the ${drafter.kind} drafter needs hidden states, which only deepseek2 models provide`);
    this.drafter = drafter;
    this.origin = drafter.needsHidden ? this.cache.length : 0;
    this.observedEnd = this.cache.length;
    this.context.length = 0;
    return drafter;
  }

  /** Appends the prompt and output tokens the context does not have yet. */
  private syncContext(): void {
    const prompt = this.seq.promptTokens;
    const output = this.seq.outputTokens;
    const total = prompt.length + output.length;
    for (let i = this.origin + this.context.length; i < total; i++) this.context.push(i < prompt.length ? prompt[i]! : output[i - prompt.length]!);
  }

  /** Main-model forward: logits [n, vocab] (allLogits) or [vocab], and hidden states when the drafter needs them. */
  private run(tokens: Int32Array, allLogits: boolean): { logits: Float32Array; hidden?: Float32Array } {
    const { cache, slot, model } = this;
    try {
      const out = this.drafter?.needsHidden && model instanceof DeepseekModel
        ? model.forwardWithHidden(tokens, cache, { allLogits: true })
        : { logits: model.forward(tokens, cache, { allLogits }) };
      if (slot) for (const t of tokens) slot.tokens.push(t);
      return out;
    } catch (error) {
      if (slot) {
        cache.truncate(0);
        slot.tokens.length = 0;
      }
      throw error;
    }
  }
}
