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
import { panelLength, writePanels } from '../tensor/panels.js';
import { smallMatmul } from './small-matmul.js';
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { type ScratchBuffers, f32Buffer } from './scratch.js';

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
  const routing = { experts: new Int32Array(tokens * cfg.topK), weights: new Float32Array(tokens * cfg.topK) };
  routeInto(routing, logits, tokens, cfg, bias);
  return routing;
}

/** route, writing into `out` (each array holds at least tokens · topK values); work arrays from `scratch` when given. */
export function routeInto(out: Routing, logits: Float32Array, tokens: number, cfg: RouterConfig, bias?: Float32Array, scratch?: ScratchBuffers): void {
  const E = cfg.nExperts;
  const K = cfg.topK;
  const G = cfg.nGroup;
  if (logits.length < tokens * E) throw new Error(`router logits hold ${logits.length} values, need ${tokens}·${E}`);
  if (K < 1 || K > E) throw new Error(`cannot route to ${K} of ${E} experts`);
  if (G < 1 || E % G !== 0) throw new Error(`${E} experts do not split into ${G} groups`);
  if (cfg.topkGroup < 1 || cfg.topkGroup > G) throw new Error(`topk_group ${cfg.topkGroup} out of 1..${G}`);
  if (bias && bias.length !== E) throw new Error(`expert bias has ${bias.length} values, expected ${E}`);
  if (out.experts.length < tokens * K || out.weights.length < tokens * K) throw new Error(`routing output holds fewer than ${tokens}·${K} slots`);
  const perGroup = E / G;
  if (G > 1 && cfg.groupScore === 'top2sum' && perGroup < 2) throw new Error('top-2 group scores need at least 2 experts per group');

  const { experts, weights } = out;
  const scores = scratch ? scratch.f64('route.scores', E) : new Float64Array(E);
  const sel = scratch ? scratch.f64('route.sel', E) : new Float64Array(E);
  const chosen = scratch ? scratch.i32('route.chosen', K) : new Int32Array(K);
  const limitGroups = G > 1 && cfg.topkGroup < G;
  const groupScores = limitGroups ? (scratch ? scratch.f64('route.groupScores', G) : new Float64Array(G)) : undefined;
  const keptGroups = limitGroups ? (scratch ? scratch.i32('route.keptGroups', cfg.topkGroup) : new Int32Array(cfg.topkGroup)) : undefined;
  for (let t = 0; t < tokens; t++) {
    const base = t * E;
    if (cfg.scoring === 'sigmoid') {
      for (let e = 0; e < E; e++) scores[e] = 1 / (1 + Math.exp(-logits[base + e]!));
    } else {
      let max = -Infinity;
      for (let e = 0; e < E; e++) max = Math.max(max, logits[base + e]!);
      let sum = 0;
      for (let e = 0; e < E; e++) sum += (scores[e] = Math.exp(logits[base + e]! - max));
      for (let e = 0; e < E; e++) scores[e] = scores[e]! / sum;
    }
    for (let e = 0; e < E; e++) sel[e] = scores[e]! + (bias ? bias[e]! : 0);

    if (groupScores && keptGroups) {
      for (let g = 0; g < G; g++) groupScores[g] = groupScore(sel, g * perGroup, perGroup, cfg.groupScore);
      topIndicesInto(keptGroups, groupScores, cfg.topkGroup);
      for (let g = 0; g < G; g++) {
        if (!keptGroups.includes(g)) sel.fill(-Infinity, g * perGroup, (g + 1) * perGroup);
      }
    }

    topIndicesInto(chosen, sel, K);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += scores[chosen[k]!]!;
    const norm = cfg.normTopkProb ? 1 / Math.max(sum, 6.103515625e-5) : 1;
    for (let k = 0; k < K; k++) {
      experts[t * K + k] = chosen[k]!;
      weights[t * K + k] = scores[chosen[k]!]! * norm * cfg.routedScalingFactor;
    }
  }
}

/** A group's score over values[start, start + count): its best value, or the sum of its two best. */
function groupScore(values: Float64Array, start: number, count: number, kind: RouterConfig['groupScore']): number {
  let best = -Infinity;
  let second = -Infinity;
  for (let i = start; i < start + count; i++) {
    const v = values[i]!;
    if (v > best) {
      second = best;
      best = v;
    } else if (v > second) {
      second = v;
    }
  }
  return kind === 'max' ? best : best + second;
}

/**
 * out[0 .. k) = indices of the k largest values, descending (ties: lower index first), by
 * insertion into a sorted list of k (k is small: experts per token, groups kept).
 */
function topIndicesInto(out: Int32Array, values: ArrayLike<number>, k: number): void {
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (count === k && !(v > values[out[k - 1]!]!)) continue;
    let p = count < k ? count++ : k - 1;
    while (p > 0 && values[out[p - 1]!]! < v) {
      out[p] = out[p - 1]!;
      p--;
    }
    out[p] = i;
  }
}

/**
 * out[tokens, hidden] = SwiGLU FFN of x[tokens, hidden]. With `scratch`, the gate/up buffers and
 * the output (named `outName`) are scratch buffers.
 */
export function ffnForward(backend: Backend, w: FfnWeights, x: Float32Array, tokens: number, scratch?: ScratchBuffers, outName = 'ffn.out'): Float32Array {
  const width = w.gate.rows;
  if (w.up.rows !== width || w.down.cols !== width || w.gate.cols !== w.up.cols || w.down.rows !== w.gate.cols) {
    throw new Error(`FFN weight shapes disagree: gate [${w.gate.rows}, ${w.gate.cols}], up [${w.up.rows}, ${w.up.cols}], down [${w.down.rows}, ${w.down.cols}]`);
  }
  const gate = f32Buffer(scratch, 'ffn.gate', tokens * width);
  const up = f32Buffer(scratch, 'ffn.up', tokens * width);
  smallMatmul(backend, gate, x, tokens, w.gate);
  smallMatmul(backend, up, x, tokens, w.up);
  backend.siluMul(gate, gate, up, tokens * width);
  const out = f32Buffer(scratch, outName, tokens * w.down.rows);
  smallMatmul(backend, out, gate, tokens, w.down);
  return out;
}

/**
 * The MoE layer: routed experts (only those chosen, tokens grouped per expert, experts in
 * ascending id order) plus shared experts. With `scratch`, the result is a scratch buffer.
 */
export function moeForward(backend: Backend, cfg: RouterConfig, w: MoeWeights, x: Float32Array, tokens: number, scratch?: ScratchBuffers): Float32Array {
  const hidden = w.router.cols;
  const E = cfg.nExperts;
  const K = cfg.topK;
  const logits = f32Buffer(scratch, 'moe.logits', tokens * E);
  smallMatmul(backend, logits, x, tokens, w.router);
  const routing = scratch ? { experts: scratch.i32('moe.experts', tokens * K), weights: scratch.f32('moe.weights', tokens * K) } : undefined;
  if (routing) routeInto(routing, logits, tokens, cfg, w.bias, scratch);
  const { experts, weights } = routing ?? route(logits, tokens, cfg, w.bias);
  let out: Float32Array;
  if (w.shared) {
    out = ffnForward(backend, w.shared, x, tokens, scratch, 'moe.out');
  } else {
    out = f32Buffer(scratch, 'moe.out', tokens * hidden);
    out.fill(0);
  }

  addRoutedExperts(backend, out, x, tokens, hidden, K, E, experts, weights, w.experts, scratch, (e, rows, count) => ffnForward(backend, w.experts[e]!, rows, count, scratch));
  return out;
}

/**
 * out += Σ over each token's K routed experts of weight · expert(token): the tokens are grouped per
 * expert (experts in ascending id order), each expert runs once on its rows (`run`), and its
 * outputs are added in slot order.
 */
function addRoutedExperts(
  backend: Backend, out: Float32Array, x: Float32Array, tokens: number, hidden: number, K: number, E: number, experts: Int32Array, weights: Float32Array,
  loaded: readonly unknown[], scratch: ScratchBuffers | undefined, run: (expert: number, rows: Float32Array, count: number) => Float32Array,
): void {
  const { start, order } = groupByExpert(experts, tokens, K, E, loaded, scratch);
  for (let e = 0; e < E; e++) {
    const first = start[e]!;
    const count = start[e + 1]! - first;
    if (count === 0) continue;
    let rows: Float32Array;
    if (count === 1) {
      const t = Math.floor(order[first]! / K);
      rows = tokens === 1 ? x : x.subarray(t * hidden, (t + 1) * hidden);
    } else {
      rows = f32Buffer(scratch, 'moe.rows', count * hidden);
      for (let i = 0; i < count; i++) {
        const t = Math.floor(order[first + i]! / K);
        rows.set(x.subarray(t * hidden, (t + 1) * hidden), i * hidden);
      }
    }
    const y = run(e, rows, count);
    for (let i = 0; i < count; i++) {
      const slot = order[first + i]!;
      const t = Math.floor(slot / K);
      backend.axpy(tokens === 1 ? out : out.subarray(t * hidden, (t + 1) * hidden), weights[slot]!, i === 0 ? y : y.subarray(i * hidden, (i + 1) * hidden), hidden);
    }
  }
}

/**
 * The routing slots (token · topK + k) grouped by expert, in slot order within each expert (a
 * counting sort): expert e has the slots order[start[e] .. start[e + 1]).
 */
function groupByExpert(
  experts: Int32Array, tokens: number, K: number, E: number, loaded: readonly unknown[], scratch?: ScratchBuffers,
): { start: Int32Array; order: Int32Array } {
  const slots = tokens * K;
  const start = scratch ? scratch.i32('moe.start', E + 1) : new Int32Array(E + 1);
  start.fill(0);
  for (let i = 0; i < slots; i++) {
    const e = experts[i]!;
    if (e < 0 || e >= loaded.length || !loaded[e]) throw new Error(`router chose expert ${e}, but only ${loaded.length} experts are loaded`);
    start[e + 1]!++;
  }
  for (let e = 0; e < E; e++) start[e + 1]! += start[e]!;
  const order = scratch ? scratch.i32('moe.order', slots) : new Int32Array(slots);
  const filled = scratch ? scratch.i32('moe.filled', E) : new Int32Array(E);
  filled.fill(0);
  for (let i = 0; i < slots; i++) {
    const e = experts[i]!;
    order[start[e]! + filled[e]!++] = i;
  }
  return { start, order };
}

// ---------------------------------------------------------------------------------------------
// One sequence of a small model, with stacked weights

/**
 * A feed-forward layer's weights stacked for a small f32 model, whose decode step costs kernel
 * calls rather than arithmetic: matrices that read the same input become one matmul. Each output
 * row is what the separate matmuls give (the same dot products), so results do not change.
 */
export interface FfnFusedWeights {
  /** [gate rows; up rows]: [2·width, hidden]. */
  readonly gateUp: WeightMatrix;
}

export interface MoeFusedWeights {
  /** [router rows; shared gate rows; shared up rows]: [nExperts + 2·sharedWidth, hidden]. */
  readonly routerShared: WeightMatrix;
  /** Width of the shared experts' FFN (0 without shared experts). */
  readonly sharedWidth: number;
  /** Per routed expert, its stacked gate and up (empty when grouped is set: the kernel reads only grouped). */
  readonly experts: readonly FfnFusedWeights[];
  /**
   * Every routed expert in one buffer each, for Backend.moeExperts (several tokens in one call),
   * as k-major panels (../tensor/panels.ts writePanels), one block per expert: [gate; up]
   * ([2·width, hidden]) and down ([hidden, width]). Set when the backend has moeExperts and all
   * experts have one width and f32 down weights.
   */
  readonly grouped?: { readonly gateUp: Float32Array; readonly down: Float32Array; readonly width: number };
}

/** f32 values the stacked copies of an FFN would hold, or undefined unless every weight is f32. */
export function ffnFusedValues(w: FfnWeights): number | undefined {
  return w.gate.dtype === 'f32' && w.up.dtype === 'f32' ? 2 * w.gate.rows * w.gate.cols : undefined;
}

/** f32 values the stacked copies of a MoE layer would hold, or undefined unless its weights are f32. */
export function moeFusedValues(w: MoeWeights): number | undefined {
  if (w.router.dtype !== 'f32') return undefined;
  const shared = w.shared ? ffnFusedValues(w.shared) : 0;
  const experts = w.experts.map(ffnFusedValues);
  if (shared === undefined || experts.some((v) => v === undefined)) return undefined;
  return w.router.rows * w.router.cols + shared + experts.reduce((a: number, b) => a + b!, 0);
}

/** One f32 matrix of the given weights' rows, stacked in order (all with the same columns), in `values` when given. */
function stackRows(backend: Backend, parts: readonly WeightMatrix[], values?: Float32Array): WeightMatrix {
  const cols = parts[0]!.cols;
  const rows = parts.reduce((sum, p) => sum + p.rows, 0);
  values ??= new Float32Array(rows * cols);
  let at = 0;
  for (const p of parts) {
    if (p.cols !== cols) throw new Error(`cannot stack a [${p.rows}, ${p.cols}] weight under ${cols} columns`);
    backend.dequantizeRows(values.subarray(at * cols, (at + p.rows) * cols), p, 0, p.rows);
    at += p.rows;
  }
  return { dtype: 'f32', rows, cols, data: new Uint8Array(values.buffer, values.byteOffset, rows * cols * 4) };
}

export function fuseFfn(backend: Backend, w: FfnWeights, values?: Float32Array): FfnFusedWeights {
  return { gateUp: stackRows(backend, [w.gate, w.up], values) };
}

export function fuseMoe(backend: Backend, w: MoeWeights): MoeFusedWeights {
  const routerShared = stackRows(backend, w.shared ? [w.router, w.shared.gate, w.shared.up] : [w.router]);
  const sharedWidth = w.shared ? w.shared.gate.rows : 0;
  const width = w.experts[0]?.gate.rows ?? 0;
  const hidden = w.router.cols;
  const groupable = backend.moeExperts !== undefined && w.experts.every((e) => e.gate.rows === width && e.up.rows === width && e.down.rows === hidden && e.down.dtype === 'f32');
  if (!groupable) return { routerShared, sharedWidth, experts: w.experts.map((e) => fuseFfn(backend, e)) };
  const gateUpBlock = panelLength(2 * width, hidden);
  const downBlock = panelLength(hidden, width);
  const gateUp = new Float32Array(w.experts.length * gateUpBlock);
  const down = new Float32Array(w.experts.length * downBlock);
  const rowMajor = new Float32Array(Math.max(2 * width * hidden, hidden * width));
  w.experts.forEach((e, i) => {
    fuseFfn(backend, e, rowMajor);
    writePanels(gateUp.subarray(i * gateUpBlock, (i + 1) * gateUpBlock), rowMajor, 2 * width, hidden);
    backend.dequantizeRows(rowMajor.subarray(0, hidden * width), e.down, 0, hidden);
    writePanels(down.subarray(i * downBlock, (i + 1) * downBlock), rowMajor, hidden, width);
  });
  return { routerShared, sharedWidth, experts: [], grouped: { gateUp, down, width } };
}

/**
 * silu(gate) · up for `tokens` rows of [gate | up] pairs (each of `width` values, `stride` apart
 * from one row to the next, starting at `offset`), into act [tokens, width]. Several rows are
 * first gathered into contiguous gates and ups (copies), so that one kernel call does them all.
 */
function siluMulRows(
  backend: Backend, act: Float32Array, gu: Float32Array, tokens: number, width: number, stride: number, offset: number, scratch: ScratchBuffers,
): void {
  if (tokens === 1) {
    backend.siluMul(act.subarray(0, width), gu.subarray(offset, offset + width), gu.subarray(offset + width, offset + 2 * width), width);
    return;
  }
  const gates = scratch.f32('ffn.gates', tokens * width);
  const ups = scratch.f32('ffn.ups', tokens * width);
  for (let t = 0; t < tokens; t++) {
    const g = t * stride + offset;
    gates.set(gu.subarray(g, g + width), t * width);
    ups.set(gu.subarray(g + width, g + 2 * width), t * width);
  }
  backend.siluMul(act.subarray(0, tokens * width), gates, ups, tokens * width);
}

/** ffnForward with the stacked gate and up (one matmul fewer); the output is the scratch buffer `outName`. */
export function ffnForwardFused(
  backend: Backend, w: FfnWeights, fused: FfnFusedWeights, x: Float32Array, tokens: number, scratch: ScratchBuffers, outName = 'ffn.out',
): Float32Array {
  const width = w.gate.rows;
  const gu = scratch.f32('ffn.gateUp', tokens * 2 * width);
  smallMatmul(backend, gu, x, tokens, fused.gateUp);
  const act = scratch.f32('ffn.act', tokens * width);
  siluMulRows(backend, act, gu, tokens, width, 2 * width, 0, scratch);
  const out = scratch.f32(outName, tokens * w.down.rows);
  smallMatmul(backend, out, act, tokens, w.down);
  return out;
}

/**
 * moeForward with the stacked weights: the router and the shared experts' gate and up in one
 * matmul, each routed expert's gate and up in one. Same routing, same sums in the same order.
 * The result is a scratch buffer.
 */
export function moeForwardFused(
  backend: Backend, cfg: RouterConfig, w: MoeWeights, fused: MoeFusedWeights, x: Float32Array, tokens: number, scratch: ScratchBuffers,
): Float32Array {
  const hidden = w.router.cols;
  const E = cfg.nExperts;
  const K = cfg.topK;
  const fs = fused.sharedWidth;
  const stride = E + 2 * fs;
  const rs = scratch.f32('moe.routerShared', tokens * stride);
  smallMatmul(backend, rs, x, tokens, fused.routerShared);
  let logits: Float32Array;
  if (tokens === 1) {
    logits = rs.subarray(0, E);
  } else {
    logits = scratch.f32('moe.logits', tokens * E);
    for (let t = 0; t < tokens; t++) logits.set(rs.subarray(t * stride, t * stride + E), t * E);
  }
  const routing = { experts: scratch.i32('moe.experts', tokens * K), weights: scratch.f32('moe.weights', tokens * K) };
  routeInto(routing, logits, tokens, cfg, w.bias, scratch);
  const { experts, weights } = routing;
  const out = scratch.f32('moe.out', tokens * hidden);
  if (w.shared) {
    const act = scratch.f32('moe.sharedAct', tokens * fs);
    siluMulRows(backend, act, rs, tokens, fs, stride, E, scratch);
    smallMatmul(backend, out, act, tokens, w.shared.down);
  } else {
    out.fill(0);
  }
  const grouped = fused.grouped;
  if (grouped) {
    if (!backend.moeExperts) throw new Error('these MoE weights were grouped for a backend with moeExperts');
    backend.moeExperts(out, x, experts, weights, grouped.gateUp, grouped.down, { tokens, hidden, topK: K, experts: E, width: grouped.width });
    return out;
  }
  addRoutedExperts(backend, out, x, tokens, hidden, K, E, experts, weights, fused.experts, scratch, (e, rows, count) => ffnForwardFused(backend, w.experts[e]!, fused.experts[e]!, rows, count, scratch));
  return out;
}
