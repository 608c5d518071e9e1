/**
 * The speculative-sampling acceptance rule (Leviathan et al. 2023; Chen et al. 2023), which keeps
 * the output distribution exactly the target's:
 *
 *   draft x ~ q;  accept x with probability min(1, p(x) / q(x));
 *   on rejection emit y ~ normalize(max(0, p - q)).
 *
 * p is the distribution the engine's sampler would draw from at that position (after bias,
 * penalties, temperature, top-k/top-p/min-p), q the drafter's. A deterministic draft (n-gram
 * lookup, greedy MTP) is a point mass: accept with probability p(x), else draw from p with x
 * removed. With greedy p (a point mass at the argmax) the rule accepts exactly when x is the argmax
 * and the correction is the argmax, drawing no random numbers.
 */
import type { CandidateDistribution } from './sampling.js';

/** Probability of `id` under a candidate distribution (0 when it is not a candidate). */
export function probabilityOf(dist: CandidateDistribution, id: number): number {
  const { ids, probs } = dist;
  if (id < ids.length && ids[id] === id) return probs[id]!;
  for (let j = 0; j < ids.length; j++) if (ids[j] === id) return probs[j]!;
  return 0;
}

/** Draws an index j with probability weights[j] / sum(weights); -1 when all weights are 0. */
export function drawIndex(weights: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let j = 0; j < weights.length; j++) total += weights[j]!;
  if (!(total > 0)) return -1;
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let j = 0; j < weights.length; j++) {
    const w = weights[j]!;
    if (w <= 0) continue;
    last = j;
    cum += w;
    if (cum > target) return j;
  }
  return last;
}

/** Samples a token from a candidate distribution with the uniform number u in [0, 1). */
export function sampleFrom(dist: CandidateDistribution, u: number): number {
  const j = drawIndex(dist.probs, u);
  if (j < 0) throw new Error('cannot sample from a distribution with no mass');
  return dist.ids[j]!;
}

export interface DraftVerdict {
  /** The token to emit at this position: the draft when accepted, else the correction. */
  token: number;
  accepted: boolean;
}

/**
 * Verifies one drafted token against the target distribution p. `q` is the distribution the draft
 * was sampled from (null for a deterministic draft: a point mass). `uniform` supplies random
 * numbers in [0, 1); it is called only when a decision needs one.
 */
export function verifyDraft(p: CandidateDistribution, draft: number, q: CandidateDistribution | null, uniform: () => number): DraftVerdict {
  const px = probabilityOf(p, draft);
  const qx = q === null ? 1 : probabilityOf(q, draft);
  if (!(qx > 0)) throw new Error(`draft token ${draft} has probability 0 under the draft distribution it was sampled from`);
  if (px >= qx) return { token: draft, accepted: true };
  if (px > 0 && uniform() < px / qx) return { token: draft, accepted: true };
  return { token: sampleResidual(p, q ?? { ids: Int32Array.of(draft), probs: Float64Array.of(1) }, uniform), accepted: false };
}

/** y ~ normalize(max(0, p - q)); falls back to p itself if rounding left the residual empty. */
export function sampleResidual(p: CandidateDistribution, q: CandidateDistribution, uniform: () => number): number {
  let maxId = 0;
  for (const id of q.ids) if (id > maxId) maxId = id;
  const dense = new Float64Array(maxId + 1);
  for (let j = 0; j < q.ids.length; j++) dense[q.ids[j]!] = q.probs[j]!;
  const residual = new Float64Array(p.ids.length);
  for (let j = 0; j < p.ids.length; j++) {
    const id = p.ids[j]!;
    residual[j] = Math.max(0, p.probs[j]! - (id <= maxId ? dense[id]! : 0));
  }
  // A point-mass p that rejected its own argmax cannot happen (px >= qx accepts), so a residual
  // with no mass only comes from p ≈ q up to rounding: then p is the right distribution.
  let positive = 0;
  let only = -1;
  for (let j = 0; j < residual.length; j++) if (residual[j]! > 0) (positive++, (only = j));
  if (positive === 1) return p.ids[only]!; // deterministic (greedy): no random number drawn
  const j = positive === 0 ? -1 : drawIndex(residual, uniform());
  return j < 0 ? sampleFrom(p, uniform()) : p.ids[j]!;
}
