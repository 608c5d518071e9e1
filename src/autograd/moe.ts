import { type Var, constant, result } from './var.js';
import { floats, outputFloats } from './pool.js';
import { div, mul } from './arith.js';
import { meanAxis, sum, sumAxis } from './reduce.js';
import { scale } from './unary.js';

/**
 * Mixture-of-experts plumbing. Routing decisions (which experts) are integers and carry no
 * gradient; the gate weights of the chosen experts do (gatherColumns), and so does every
 * expert's output through the weighted combine:
 *   y[t] = Σ_j w[t, j] · expert_{idx[t, j]}(x[t]).
 * A layer is: scores → selectExperts → gatherColumns (+ renormalize/scale with arith ops) →
 * routePlan → per expert: gatherRows → FFN → combineExperts.
 */

export interface ExpertSelection {
  /** Per token, the k chosen experts, best first: [tokens · k]. */
  indices: Int32Array;
  tokens: number;
  k: number;
}

export interface SelectOptions {
  /** Added to the scores for selection only (DeepSeek-V3's e_score_correction_bias). */
  bias?: Float32Array | null;
  /** Group-limited routing: experts split into `groups` equal groups, keep the best `topkGroups`. */
  groups?: number;
  topkGroups?: number;
  /** How a group is ranked: sum of its two best (biased) scores (V3) or its best score. */
  groupScore?: 'top2sum' | 'max';
}

/**
 * The k best experts of each token by score (+ bias), descending, ties to the lower index.
 * With groups: experts outside the best `topkGroups` groups are excluded first (−∞ masking).
 */
export function selectExperts(scores: Float32Array, tokens: number, experts: number, k: number, options: SelectOptions = {}): ExpertSelection {
  if (scores.length !== tokens * experts) throw new Error(`selectExperts: ${scores.length} scores for ${tokens} tokens × ${experts} experts`);
  if (!Number.isInteger(k) || k < 1 || k > experts) throw new Error(`selectExperts: k = ${k} must be in 1..${experts}`);
  const bias = options.bias ?? null;
  if (bias !== null && bias.length !== experts) throw new Error(`selectExperts: bias has ${bias.length} values for ${experts} experts`);
  const groups = options.groups ?? 1;
  const topkGroups = options.topkGroups ?? groups;
  if (experts % groups !== 0 || topkGroups < 1 || topkGroups > groups) throw new Error(`selectExperts: ${experts} experts cannot form ${groups} groups keeping ${topkGroups}`);
  const perGroup = experts / groups;
  if (groups > 1 && perGroup * topkGroups < k) throw new Error(`selectExperts: ${topkGroups} groups of ${perGroup} hold fewer than k = ${k} experts`);
  const indices = new Int32Array(tokens * k);
  const sel = new Float64Array(experts);
  const groupScores = new Float64Array(groups);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < experts; e++) sel[e] = scores[t * experts + e]! + (bias === null ? 0 : bias[e]!);
    if (groups > 1 && topkGroups < groups) {
      for (let g = 0; g < groups; g++) {
        const part = Array.from(sel.subarray(g * perGroup, (g + 1) * perGroup)).sort((a, b) => b - a);
        groupScores[g] = options.groupScore === 'max' || perGroup < 2 ? part[0]! : part[0]! + part[1]!;
      }
      const kept = topIndices(groupScores, topkGroups);
      const keep = new Uint8Array(groups);
      for (const g of kept) keep[g] = 1;
      for (let g = 0; g < groups; g++) if (!keep[g]) sel.fill(-Infinity, g * perGroup, (g + 1) * perGroup);
    }
    indices.set(topIndices(sel, k), t * k);
  }
  return { indices, tokens, k };
}

/** Indices of the k largest values, descending, ties to the lower index. */
function topIndices(values: Float64Array, k: number): number[] {
  const order = Array.from(values.keys());
  order.sort((a, b) => (values[b]! - values[a]!) || a - b);
  return order.slice(0, k);
}

/** out[t, j] = x[t, idx[t, j]]: the chosen experts' scores [tokens, k]; backward scatters. */
export function gatherColumns(x: Var, selection: ExpertSelection): Var {
  const { tokens, k, indices } = selection;
  const cols = x.shape[x.rank - 1]!;
  if (x.size !== tokens * cols) throw new Error(`gatherColumns: ${x.toString()} is not [${tokens}, experts]`);
  const value = floats(tokens * k);
  for (let t = 0; t < tokens; t++) for (let j = 0; j < k; j++) value[t * k + j] = x.value[t * cols + indices[t * k + j]!]!;
  return result(value, [tokens, k], [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let t = 0; t < tokens; t++) for (let j = 0; j < k; j++) gx[t * cols + indices[t * k + j]!]! += g[t * k + j]!;
  });
}

/** Which tokens each expert serves, and the slot (t · k + j) of their gate weight. */
export interface ExpertRoute {
  tokens: Int32Array;
  slots: Int32Array;
}

export function routePlan(selection: ExpertSelection, experts: number): ExpertRoute[] {
  const counts = expertLoad(selection, experts);
  const routes = Array.from(counts, (c) => ({ tokens: new Int32Array(c), slots: new Int32Array(c) }));
  const fill = new Int32Array(experts);
  for (let t = 0; t < selection.tokens; t++) {
    for (let j = 0; j < selection.k; j++) {
      const e = selection.indices[t * selection.k + j]!;
      const at = fill[e]!++;
      routes[e]!.tokens[at] = t;
      routes[e]!.slots[at] = t * selection.k + j;
    }
  }
  return routes;
}

/** Tokens routed to each expert. */
export function expertLoad(selection: ExpertSelection, experts: number): Int32Array {
  const counts = new Int32Array(experts);
  for (const e of selection.indices) {
    if (e < 0 || e >= experts) throw new Error(`expertLoad: expert index ${e} outside 0..${experts - 1}`);
    counts[e]!++;
  }
  return counts;
}

/** Rows of x [tokens, d] (MoE dispatch); backward scatter-adds. */
export function gatherRows(x: Var, rows: Int32Array): Var {
  const d = x.shape[x.rank - 1]!;
  const n = x.size / d;
  for (const r of rows) if (r < 0 || r >= n) throw new Error(`gatherRows: row ${r} outside 0..${n - 1} of ${x.toString()}`);
  const value = outputFloats(rows.length * d);
  for (let i = 0; i < rows.length; i++) value.set(x.value.subarray(rows[i]! * d, (rows[i]! + 1) * d), i * d);
  return result(value, [rows.length, d], [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let i = 0; i < rows.length; i++) {
      const dst = rows[i]! * d;
      for (let j = 0; j < d; j++) gx[dst + j]! += g[i * d + j]!;
    }
  });
}

/**
 * MoE combine: y[t] = Σ over experts e and their rows i with routes[e].tokens[i] = t of
 * weights[routes[e].slots[i]] · outputs[e][i]. weights [tokens, k]; outputs[e] [rows_e, d]
 * (an expert with no tokens may pass null). Gradients: d outputs[e][i] = w · dy[t],
 * d w = dy[t] · outputs[e][i].
 */
export function combineExperts(tokens: number, dim: number, outputs: readonly (Var | null)[], routes: readonly ExpertRoute[], weights: Var): Var {
  if (outputs.length !== routes.length) throw new Error(`combineExperts: ${outputs.length} outputs for ${routes.length} routes`);
  const value = floats(tokens * dim);
  const w = weights.value;
  const inputs: Var[] = [weights];
  outputs.forEach((y, e) => {
    const route = routes[e]!;
    if (y === null) {
      if (route.tokens.length !== 0) throw new Error(`combineExperts: expert ${e} has ${route.tokens.length} tokens but no output`);
      return;
    }
    if (y.size !== route.tokens.length * dim) throw new Error(`combineExperts: expert ${e} output ${y.toString()} is not [${route.tokens.length}, ${dim}]`);
    inputs.push(y);
    for (let i = 0; i < route.tokens.length; i++) {
      const wi = w[route.slots[i]!]!;
      const dst = route.tokens[i]! * dim;
      for (let j = 0; j < dim; j++) value[dst + j]! += wi * y.value[i * dim + j]!;
    }
  });
  return result(value, [tokens, dim], inputs, (out) => () => {
    const g = out.grad!;
    const gw = weights.requiresGrad ? weights.gradBuffer() : null;
    outputs.forEach((y, e) => {
      if (y === null) return;
      const route = routes[e]!;
      const gy = y.requiresGrad ? y.gradBuffer() : null;
      for (let i = 0; i < route.tokens.length; i++) {
        const slot = route.slots[i]!;
        const src = route.tokens[i]! * dim;
        let dot = 0;
        for (let j = 0; j < dim; j++) {
          dot += g[src + j]! * y.value[i * dim + j]!;
          if (gy !== null) gy[i * dim + j]! += w[slot]! * g[src + j]!;
        }
        if (gw !== null) gw[slot]! += dot;
      }
    });
  });
}

/**
 * DeepSeek-V3's auxiliary-loss-free balancing, applied after each step (no gradient):
 * b_i += γ · sign(mean load − load_i).
 */
export function updateRoutingBias(bias: Float32Array, load: Int32Array, gamma: number): void {
  if (bias.length !== load.length) throw new Error(`updateRoutingBias: ${bias.length} biases for ${load.length} experts`);
  let mean = 0;
  for (const c of load) mean += c;
  mean /= load.length;
  for (let i = 0; i < bias.length; i++) bias[i]! += gamma * Math.sign(mean - load[i]!);
}

/**
 * The complementary sequence-wise balance loss (V3-TR §3.3) for scores [B, T, E] (the unbiased
 * affinities) and the selection of each token: α · mean over sequences of Σ_i f_i · P_i with
 * f_i = E / (k · T) · (tokens of the sequence routed to i) (a constant) and
 * P_i = mean_t s_{i,t} / Σ_j s_{j,t}.
 */
export function sequenceBalanceLoss(scores: Var, selection: ExpertSelection, alpha: number): Var {
  if (scores.rank !== 3) throw new Error(`sequenceBalanceLoss: scores ${scores.toString()} must be [batch, seq, experts]`);
  const [batch, seq, experts] = scores.shape as [number, number, number];
  if (selection.tokens !== batch * seq) throw new Error(`sequenceBalanceLoss: selection covers ${selection.tokens} tokens, scores ${batch * seq}`);
  const f = new Float32Array(batch * experts);
  const k = selection.k;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      for (let j = 0; j < k; j++) f[b * experts + selection.indices[(b * seq + t) * k + j]!]! += experts / (k * seq);
    }
  }
  const normalized = div(scores, sumAxis(scores, 2, true));
  const p = meanAxis(normalized, 1);
  return scale(sum(mul(p, constant(f, [batch, experts]))), alpha / batch);
}
