/**
 * MTP self-drafting (../shared/spec/model-and-training.md §4.3): DeepSeek-V3's depth-1 MTP module
 * predicts token t+2 from the main model's final hidden state at t and the embedding of t+1.
 *
 * - Its own KV cache holds one entry per main-model position i, built from the main model's hidden
 *   state h_i and token t_{i+1}. Entries are added lazily, in one batched MTP call per step: the
 *   positions the main model accepted since the last step, plus the newest position, whose row
 *   gives the first draft.
 * - k > 1: the depth-1 module is chained. Step j feeds the module's own output state (after
 *   shared_head.norm, the counterpart of the main model's final-normalized state) and draft j-1,
 *   when the model exposes that state (mtpForwardWithHidden); with only DeepseekModel.mtpForward
 *   (logits only) it feeds the newest main-model state instead, a weaker guess for drafts 2..k.
 *   These chained entries are speculative: the MTP cache is cut back right after drafting, and the
 *   next step re-enters the accepted positions from the main model's true hidden states. Drafts
 *   are proposals only: how they are made never changes the output distribution.
 */
import { DeepseekModel } from '../models/deepseek-v3.js';
import type { CausalLM, KvCache } from '../models/model.js';
import type { DraftChooser, Drafter, DraftProposal } from './speculative-types.js';

/** Positions entered into the MTP cache at once when hidden states pile up (long prompts). */
const FLUSH_ROWS = 64;

/** Whether a model can draft with MTP (a DeepSeek model that loaded its MTP weights). */
export function hasMtp(model: CausalLM | DeepseekModel): boolean {
  return model instanceof DeepseekModel && model.weights.mtp.length > 0;
}

/** The public method this drafter prefers (not yet on DeepseekModel; see mtpStep). */
interface MtpWithHidden {
  mtpForwardWithHidden(hidden: Float32Array, nextTokens: Int32Array, cache: KvCache): { logits: Float32Array; hidden: Float32Array };
}

/**
 * One MTP module call: draft logits [n, vocab] and, when the model exposes them
 * (mtpForwardWithHidden), the module's output states [n, hidden] after shared_head.norm, which
 * chained drafting feeds back. DeepseekModel.mtpForward returns only logits; with it, `hidden` is
 * undefined and chaining falls back to the last main-model state (see MtpDrafter).
 */
export function mtpStep(model: DeepseekModel, hidden: Float32Array, nextTokens: Int32Array, cache: KvCache): { logits: Float32Array; hidden?: Float32Array } {
  const withHidden = (model as unknown as Partial<MtpWithHidden>).mtpForwardWithHidden;
  if (typeof withHidden === 'function') return withHidden.call(model, hidden, nextTokens, cache);
  return { logits: model.mtpForward(hidden, nextTokens, cache) };
}

export class MtpDrafter implements Drafter {
  readonly kind = 'mtp';
  readonly needsHidden = true;
  private readonly cache: KvCache;
  private readonly d: number;
  /** Every token the main model has run, in order. */
  private readonly tokens: number[] = [];
  /** Hidden states of the main positions not yet in the MTP cache (cache.length .. tokens.length-1). */
  private pending: Float32Array[] = [];

  constructor(private readonly model: DeepseekModel, capacity: number) {
    if (model.weights.mtp.length === 0) throw new Error('this model has no MTP module: MTP drafting needs a deepseek2 model with its MTP (nextn) weights; use n-gram drafting instead');
    this.cache = model.newMtpCache(capacity);
    this.d = model.config.hiddenSize;
  }

  /** Positions in the MTP cache (for tests). */
  get cachedPositions(): number {
    return this.cache.length;
  }

  observe(tokens: Int32Array, hidden?: Float32Array): void {
    if (!hidden || hidden.length !== tokens.length * this.d) throw new Error(`MTP drafter: expected ${tokens.length}·${this.d} hidden values, got ${hidden?.length ?? 0}`);
    for (let i = 0; i < tokens.length; i++) {
      this.tokens.push(tokens[i]!);
      this.pending.push(hidden.slice(i * this.d, (i + 1) * this.d));
    }
    // Enter all but the newest position now when many are waiting (the newest needs the next token).
    if (this.pending.length > FLUSH_ROWS) this.enter(this.pending.length - 1, undefined);
  }

  propose(context: readonly number[], feedLength: number, k: number, choose: DraftChooser): DraftProposal {
    const none: DraftProposal = { tokens: [], q: [] };
    // Only a single pending token has a hidden state to draft from (multi-token feeds are forced text).
    if (k <= 0 || feedLength !== 1 || this.pending.length === 0 || context.length !== this.tokens.length + 1) return none;
    const base = this.cache.length;
    const newest = this.pending[this.pending.length - 1]!;
    const first = this.enter(this.pending.length, context[context.length - 1]!);
    const V = this.model.info.vocabSize;
    const tokens: number[] = [];
    const q: DraftProposal['q'] = [];
    const rows = first.logits.length / V;
    let logits = first.logits.subarray((rows - 1) * V);
    let state = first.hidden?.slice((rows - 1) * this.d) ?? newest;
    for (let j = 0; j < k; j++) {
      const pick = choose(logits);
      tokens.push(pick.id);
      q.push(pick.q);
      if (j + 1 === k || this.cache.length >= this.cache.capacity) break;
      const next = mtpStep(this.model, state, Int32Array.of(pick.id), this.cache);
      logits = next.logits;
      state = next.hidden ?? newest;
    }
    this.cache.truncate(base + rows); // drop the chained (speculative) entries
    return { tokens, q };
  }

  /**
   * Enters the first `count` pending positions into the MTP cache. The token after the newest
   * observed position is `next` (the pending feed token) when it is included.
   */
  private enter(count: number, next: number | undefined): { logits: Float32Array; hidden?: Float32Array } {
    const start = this.cache.length;
    const hidden = new Float32Array(count * this.d);
    const nextTokens = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      hidden.set(this.pending[i]!, i * this.d);
      const at = start + i + 1;
      nextTokens[i] = at < this.tokens.length ? this.tokens[at]! : next!;
    }
    this.pending = this.pending.slice(count);
    return mtpStep(this.model, hidden, nextTokens, this.cache);
  }
}
