/** The drafter interface of speculative decoding (speculative.ts) and its statistics. */
import type { CandidateDistribution } from './sampling.js';

/** Drafted tokens and, per token, the distribution it was drawn from (null: deterministic, a point mass). */
export interface DraftProposal {
  tokens: number[];
  q: (CandidateDistribution | null)[];
}

/**
 * Picks a draft token from draft logits the way the speculative loop asks: greedy requests take
 * the argmax of the sampler-filtered logits; sampling requests draw from that filtered
 * distribution. Returns the token and the distribution q it was drawn from.
 */
export type DraftChooser = (logits: Float32Array) => { id: number; q: CandidateDistribution };

export interface Drafter {
  readonly kind: string;
  /** Whether observe() needs the main model's final hidden states (the loop then runs forwardWithHidden). */
  readonly needsHidden: boolean;
  /**
   * The main model has run `tokens` (they are now in its cache, in order, after the ones observed
   * before); `hidden` holds their final-normalized hidden states [tokens, hidden] when needsHidden.
   */
  observe(tokens: Int32Array, hidden?: Float32Array): void;
  /**
   * Proposes up to k tokens to follow `context` (prompt + output so far). Its last `feedLength`
   * tokens are the pending feed: chosen, not yet run by the main model (not observed).
   */
  propose(context: readonly number[], feedLength: number, k: number, choose: DraftChooser): DraftProposal;
}

export interface SpeculativeStats {
  method: string;
  /** Most tokens drafted per step (k). */
  draftTokens: number;
  /** Drafted tokens checked by the main model (drafts past the end of the output are not counted). */
  proposed: number;
  /** Drafted tokens accepted. */
  accepted: number;
  /** accepted / proposed (0 when nothing was proposed). */
  acceptanceRate: number;
  /** Main-model forward calls during decoding (prefill excluded). */
  forwards: number;
  /** Tokens decided per decoding forward (accepted drafts + corrections/bonus tokens); 1 without drafts. */
  tokensPerForward: number;
}
