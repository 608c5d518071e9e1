/**
 * MTP self-drafting (../shared/spec/model-and-training.md §4.3): DeepSeek-V3's depth-1 MTP module
 * predicts token t+2 from the main model's final hidden state at t and the embedding of t+1.
 *
 * - Its own KV cache holds one entry per main-model position i, built from the main model's hidden
 *   state h_i and token t_{i+1}. Entries are added lazily, in one batched MTP call per step: the
 *   positions the main model accepted since the last step, plus the newest position, whose row
 *   gives the first draft.
 * - k > 1: the depth-1 module is chained. Step j feeds the module's own output state (after
 *   shared_head.norm, the counterpart of the main model's final-normalized state) and draft j-1.
 *   These chained entries are speculative: the MTP cache is cut back right after drafting, and the
 *   next step re-enters the accepted positions from the main model's true hidden states. Drafts
 *   are proposals only: how they are made never changes the output distribution.
 * - Every call asks the module for its last row only (DeepseekModel.mtpForwardWithHidden with
 *   allLogits false): the earlier rows just enter its cache, so a step that accepted drafts
 *   costs about what a step that accepted none does.
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

export class MtpDrafter implements Drafter {
  readonly kind = 'mtp';
  readonly needsHidden = true;
  private readonly cache: KvCache;
  private readonly d: number;
  /** Every token the main model has run, in order. */
  private readonly tokens: number[] = [];
  /** Hidden states of the main positions not yet in the MTP cache (cache.length ..): rows [0, pendingRows). */
  private pending = new Float32Array(0);
  private pendingRows = 0;

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
    const d = this.d;
    if (!hidden || hidden.length !== tokens.length * d) throw new Error(`MTP drafter: expected ${tokens.length}·${d} hidden values, got ${hidden?.length ?? 0}`);
    for (const t of tokens) this.tokens.push(t);
    const rows = this.pendingRows + tokens.length;
    if (rows * d > this.pending.length) {
      const grown = new Float32Array(Math.max(rows, 2 * this.pendingRows, 4) * d);
      grown.set(this.pending.subarray(0, this.pendingRows * d));
      this.pending = grown;
    }
    this.pending.set(hidden, this.pendingRows * d);
    this.pendingRows = rows;
    // Enter all but the newest position now when many are waiting (the newest needs the next token).
    if (this.pendingRows > FLUSH_ROWS) this.enter(this.pendingRows - 1, undefined);
  }

  propose(context: readonly number[], feedLength: number, k: number, choose: DraftChooser): DraftProposal {
    const none: DraftProposal = { tokens: [], q: [] };
    // Only a single pending token has a hidden state to draft from (multi-token feeds are forced text).
    if (k <= 0 || feedLength !== 1 || this.pendingRows === 0 || context.length !== this.tokens.length + 1) return none;
    const base = this.cache.length;
    const rows = this.pendingRows;
    let { logits, hidden: state } = this.enter(rows, context[context.length - 1]!);
    const tokens: number[] = [];
    const q: DraftProposal['q'] = [];
    for (let j = 0; j < k; j++) {
      const pick = choose(logits);
      tokens.push(pick.id);
      q.push(pick.q);
      if (j + 1 === k || this.cache.length >= this.cache.capacity) break;
      ({ logits, hidden: state } = this.model.mtpForwardWithHidden(state, Int32Array.of(pick.id), this.cache, { allLogits: false }));
    }
    this.cache.truncate(base + rows); // drop the chained (speculative) entries
    return { tokens, q };
  }

  /**
   * Enters the first `count` pending positions into the MTP cache; returns the last one's draft
   * logits [vocab] and module state [hidden]. The token after the newest observed position is
   * `next` (the pending feed token) when it is included.
   */
  private enter(count: number, next: number | undefined): { logits: Float32Array; hidden: Float32Array } {
    const d = this.d;
    const start = this.cache.length;
    const nextTokens = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const at = start + i + 1;
      nextTokens[i] = at < this.tokens.length ? this.tokens[at]! : next!;
    }
    const out = this.model.mtpForwardWithHidden(this.pending.subarray(0, count * d), nextTokens, this.cache, { allLogits: false });
    this.pending.copyWithin(0, count * d, this.pendingRows * d);
    this.pendingRows -= count;
    return out;
  }
}
