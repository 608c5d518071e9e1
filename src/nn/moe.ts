/**
 * DeepSeekMoE (../shared/spec/model-and-training.md §3): a router picks `topK` routed experts per
 * token, shared experts always run with weight 1.
 *
 *   s   = sigmoid(x W_gateᵀ) (V3) or softmax (V2)      -- the affinities, used for the weights
 *   sel = s + e_score_correction_bias                   -- used ONLY to choose experts
 *   groups: keep the `topkGroup` best of `nGroup` groups (group score = sum of its top-2 `sel`,
 *           or its max for V2's group_limited_greedy), others masked to -inf
 *   idx = topK(sel); w = s[idx]; w /= Σw if normTopkProb; w *= routedScalingFactor
 *   y   = Σ_k w_k · FFN_idx_k(x) + Σ shared FFN(x)
 *
 * Only the routed experts of each token are computed: tokens are grouped by expert.
 */
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';

export interface RouterConfig {
  readonly nExperts: number;
  readonly topK: number;
  /** Expert groups (1 = no group limit). */
  readonly nGroup: number;
  /** Groups kept per token. */
  readonly topkGroup: number;
  readonly scoring: 'sigmoid' | 'softmax';
  /** How a group is scored: sum of its two best biased scores (V3, llama.cpp) or its best (V2 group_limited_greedy). */
  readonly groupScore: 'top2sum' | 'max';
  readonly normTopkProb: boolean;
  readonly routedScalingFactor: number;
}

/** A SwiGLU feed-forward block: down(silu(gate x) · up x). */
export interface FfnWeights {
  readonly gate: WeightMatrix;
  readonly up: WeightMatrix;
  readonly down: WeightMatrix;
}

export interface MoeWeights {
  /** Router [nExperts, hidden]. */
  readonly router: WeightMatrix;
  /** e_score_correction_bias [nExperts], or undefined. */
  readonly bias?: Float32Array;
  readonly experts: readonly FfnWeights[];
  /** Shared experts fused into one FFN (width moeIntermediate · nShared), or undefined. */
  readonly shared?: FfnWeights;
}

export interface Routing {
  /** [tokens, topK] chosen expert ids, best first. */
  readonly experts: Int32Array;
  /** [tokens, topK] combine weights. */
  readonly weights: Float32Array;
}

/** Routes `tokens` rows of router logits ([tokens, nExperts]). Pure; math in doubles. */
export function route(logits: Float32Array, tokens: number, cfg: RouterConfig, bias?: Float32Array): Routing {
  const E = cfg.nExperts;
  const K = cfg.topK;
  if (logits.length < tokens * E) throw new Error(`router logits hold ${logits.length} values, need ${tokens}·${E}`);
  if (K < 1 || K > E) throw new Error(`cannot route to ${K} of ${E} experts`);
  if (cfg.nGroup < 1 || E % cfg.nGroup !== 0) throw new Error(`${E} experts do not split into ${cfg.nGroup} groups`);
  if (cfg.topkGroup < 1 || cfg.topkGroup > cfg.nGroup) throw new Error(`topk_group ${cfg.topkGroup} out of 1..${cfg.nGroup}`);
  if (bias && bias.length !== E) throw new Error(`expert bias has ${bias.length} values, expected ${E}`);
  const perGroup = E / cfg.nGroup;
  if (cfg.nGroup > 1 && cfg.groupScore === 'top2sum' && perGroup < 2) throw new Error('top-2 group scores need at least 2 experts per group');

  const experts = new Int32Array(tokens * K);
  const weights = new Float32Array(tokens * K);
  const scores = new Float64Array(E);
  const sel = new Float64Array(E);
  for (let t = 0; t < tokens; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    if (cfg.scoring === 'sigmoid') {
      for (let e = 0; e < E; e++) scores[e] = 1 / (1 + Math.exp(-row[e]!));
    } else {
      let max = -Infinity;
      for (let e = 0; e < E; e++) max = Math.max(max, row[e]!);
      let sum = 0;
      for (let e = 0; e < E; e++) sum += (scores[e] = Math.exp(row[e]! - max));
      for (let e = 0; e < E; e++) scores[e] = scores[e]! / sum;
    }
    for (let e = 0; e < E; e++) sel[e] = scores[e]! + (bias ? bias[e]! : 0);

    if (cfg.nGroup > 1 && cfg.topkGroup < cfg.nGroup) {
      const groupScores: number[] = [];
      for (let g = 0; g < cfg.nGroup; g++) {
        const members = Array.from(sel.subarray(g * perGroup, (g + 1) * perGroup)).sort((a, b) => b - a);
        groupScores.push(cfg.groupScore === 'max' ? members[0]! : members[0]! + members[1]!);
      }
      const kept = new Set(topIndices(groupScores, cfg.topkGroup));
      for (let g = 0; g < cfg.nGroup; g++) {
        if (!kept.has(g)) sel.fill(-Infinity, g * perGroup, (g + 1) * perGroup);
      }
    }

    const chosen = topIndices(sel, K);
    let sum = 0;
    for (const e of chosen) sum += scores[e]!;
    const norm = cfg.normTopkProb ? 1 / Math.max(sum, 6.103515625e-5) : 1;
    for (let k = 0; k < K; k++) {
      experts[t * K + k] = chosen[k]!;
      weights[t * K + k] = scores[chosen[k]!]! * norm * cfg.routedScalingFactor;
    }
  }
  return { experts, weights };
}

/** Indices of the k largest values, descending (ties: lower index first). */
function topIndices(values: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => (values[b]! - values[a]!) || a - b);
  return order.slice(0, k);
}

/** out[tokens, hidden] = SwiGLU FFN of x[tokens, hidden]. */
export function ffnForward(backend: Backend, w: FfnWeights, x: Float32Array, tokens: number): Float32Array {
  const width = w.gate.rows;
  if (w.up.rows !== width || w.down.cols !== width || w.gate.cols !== w.up.cols || w.down.rows !== w.gate.cols) {
    throw new Error(`FFN weight shapes disagree: gate [${w.gate.rows}, ${w.gate.cols}], up [${w.up.rows}, ${w.up.cols}], down [${w.down.rows}, ${w.down.cols}]`);
  }
  const gate = new Float32Array(tokens * width);
  const up = new Float32Array(tokens * width);
  backend.matmul(gate, x, tokens, w.gate);
  backend.matmul(up, x, tokens, w.up);
  backend.siluMul(gate, gate, up, tokens * width);
  const out = new Float32Array(tokens * w.down.rows);
  backend.matmul(out, gate, tokens, w.down);
  return out;
}

/** The MoE layer: routed experts (only those chosen, tokens grouped per expert) plus shared experts. */
export function moeForward(backend: Backend, cfg: RouterConfig, w: MoeWeights, x: Float32Array, tokens: number): Float32Array {
  const hidden = w.router.cols;
  const logits = new Float32Array(tokens * cfg.nExperts);
  backend.matmul(logits, x, tokens, w.router);
  const routing = route(logits, tokens, cfg, w.bias);
  const out = w.shared ? ffnForward(backend, w.shared, x, tokens) : new Float32Array(tokens * hidden);

  const byExpert = new Map<number, number[]>();
  for (let i = 0; i < routing.experts.length; i++) {
    const e = routing.experts[i]!;
    let list = byExpert.get(e);
    if (!list) byExpert.set(e, (list = []));
    list.push(i);
  }
  for (const [e, slots] of [...byExpert].sort((a, b) => a[0] - b[0])) {
    const expert = w.experts[e];
    if (!expert) throw new Error(`router chose expert ${e}, but only ${w.experts.length} experts are loaded`);
    const rows = new Float32Array(slots.length * hidden);
    slots.forEach((slot, i) => {
      const t = Math.floor(slot / cfg.topK);
      rows.set(x.subarray(t * hidden, (t + 1) * hidden), i * hidden);
    });
    const y = ffnForward(backend, expert, rows, slots.length);
    slots.forEach((slot, i) => {
      const t = Math.floor(slot / cfg.topK);
      backend.axpy(out.subarray(t * hidden, (t + 1) * hidden), routing.weights[slot]!, y.subarray(i * hidden, (i + 1) * hidden), hidden);
    });
  }
  return out;
}
