import type { Var } from '../autograd/var.js';
import { nativeKernelsFor } from '../autograd/native-kernels.js';

/**
 * AdamW (Loshchilov & Hutter; the PyTorch update) with decoupled weight decay per parameter
 * group, global-norm gradient clipping, and state export/import for checkpoints.
 *
 * For each parameter with a gradient, at its step t (counted per parameter, as PyTorch does, so
 * that an expert that received no tokens is neither decayed nor advanced):
 *   p ← p − lr · wd · p
 *   m ← β1 m + (1 − β1) g,   v ← β2 v + (1 − β2) g²
 *   p ← p − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
 * Parameters whose gradient is null (not reached by any backward since zeroGrad) are skipped.
 * Gradient accumulation: call backward several times, then step(), then zeroGrad().
 */
export interface ParamGroup {
  params: readonly Var[];
  /** Decoupled weight decay of this group (default: the optimizer's). */
  weightDecay?: number;
  /** Multiplies the learning rate for this group (default 1). */
  lrScale?: number;
}

export interface AdamWOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** What exportState returns: enough to resume bit-exactly. */
export interface AdamWState {
  /** Number of step() calls. */
  steps: number;
  params: { name: string; size: number; step: number; m: Float32Array; v: Float32Array }[];
}

interface Slot {
  param: Var;
  weightDecay: number;
  lrScale: number;
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly slots: Slot[] = [];
  private steps = 0;

  constructor(groups: readonly ParamGroup[] | readonly Var[], options: AdamWOptions = {}) {
    this.lr = options.lr ?? 1e-3;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    const defaultDecay = options.weightDecay ?? 0;
    for (const [name, value] of [['lr', this.lr], ['eps', this.eps], ['weightDecay', defaultDecay]] as const) {
      if (!(value >= 0) || !Number.isFinite(value)) throw new Error(`AdamW: ${name} = ${value} must be a finite number >= 0`);
    }
    for (const [name, value] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) throw new Error(`AdamW: ${name} = ${value} must be in [0, 1)`);
    }
    const normalized: ParamGroup[] = isGroupList(groups) ? [...groups] : [{ params: groups }];
    const seen = new Set<Var>();
    for (const group of normalized) {
      const weightDecay = group.weightDecay ?? defaultDecay;
      const lrScale = group.lrScale ?? 1;
      if (!(weightDecay >= 0) || !(lrScale >= 0)) throw new Error(`AdamW: group weightDecay ${weightDecay} and lrScale ${lrScale} must be >= 0`);
      for (const param of group.params) {
        if (!param.requiresGrad) throw new Error(`AdamW: ${param.toString()} does not require a gradient`);
        if (seen.has(param)) throw new Error(`AdamW: ${param.toString()} appears in more than one group`);
        seen.add(param);
        this.slots.push({ param, weightDecay, lrScale, step: 0, m: new Float32Array(param.size), v: new Float32Array(param.size) });
      }
    }
  }

  /** All parameters, in group order. */
  get params(): Var[] {
    return this.slots.map((s) => s.param);
  }

  /** Number of step() calls so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Drops every parameter's gradient (the next backward starts from zero; the buffers are kept for it). */
  zeroGrad(): void {
    for (const s of this.slots) s.param.resetGrad();
  }

  /** One update with learning rate `lr` (default: the constructor's; pass the schedule's value). */
  step(lr: number = this.lr): void {
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`AdamW.step: lr = ${lr} must be a finite number >= 0`);
    this.steps++;
    for (const s of this.slots) {
      const g = s.param.grad;
      if (g === null) continue;
      s.step++;
      adamWUpdate(s.param.value, g, s.m, s.v, lr * s.lrScale, this.beta1, this.beta2, this.eps, s.weightDecay, s.step);
    }
  }

  exportState(): AdamWState {
    return {
      steps: this.steps,
      params: this.slots.map((s) => ({ name: s.param.name, size: s.param.size, step: s.step, m: Float32Array.from(s.m), v: Float32Array.from(s.v) })),
    };
  }

  /** Restores exportState's output; the parameter list must match (count, sizes, names). */
  importState(state: AdamWState): void {
    if (state.params.length !== this.slots.length) throw new Error(`AdamW.importState: state has ${state.params.length} parameters, optimizer has ${this.slots.length}`);
    state.params.forEach((p, i) => {
      const s = this.slots[i]!;
      if (p.name !== s.param.name) throw new Error(`AdamW.importState: parameter ${i} is '${p.name}' in the state, '${s.param.name}' here`);
      if (p.size !== s.param.size || p.m.length !== p.size || p.v.length !== p.size) {
        throw new Error(`AdamW.importState: parameter ${i} ('${p.name}') has ${p.size} values in the state, ${s.param.size} here`);
      }
      if (!Number.isInteger(p.step) || p.step < 0) throw new Error(`AdamW.importState: parameter ${i} ('${p.name}') has invalid step ${p.step}`);
    });
    this.steps = state.steps;
    state.params.forEach((p, i) => {
      const s = this.slots[i]!;
      s.step = p.step;
      s.m.set(p.m);
      s.v.set(p.v);
    });
  }
}

/** Σ x² in float64. */
export function sumSquares(x: Float32Array): number {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  return ss;
}

/** x *= factor. */
export function scaleValues(x: Float32Array, factor: number): void {
  for (let i = 0; i < x.length; i++) x[i]! *= factor;
}

/**
 * The loops of the optimizer and of gradient clipping; the native ones replace them when the
 * process computes natively (adamw equal to float32 rounding, sumSquares to float64 rounding,
 * scaleValues bit for bit).
 */
export const optimizerKernels: { adamw: typeof adamwStep; sumSquares: typeof sumSquares; scaleValues: typeof scaleValues } = {
  adamw: adamwStep, sumSquares, scaleValues, ...nativeKernelsFor('optimizer'),
};

function isGroupList(groups: readonly ParamGroup[] | readonly Var[]): groups is readonly ParamGroup[] {
  return groups.length > 0 && 'params' in groups[0]!;
}

/** The AdamW update of one parameter tensor (in place on p, m, v); `t` is its 1-based step. */
export function adamWUpdate(
  p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, t: number,
): void {
  optimizerKernels.adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, 1 - Math.pow(beta1, t), 1 - Math.pow(beta2, t));
}

/** adamWUpdate's loop, given the bias corrections c1 = 1 − β1^t, c2 = 1 − β2^t (float64 arithmetic). */
export function adamwStep(
  p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, c1: number, c2: number,
): void {
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
  }
}

/** sqrt(Σ g²) over every parameter's gradient (null gradients count as 0), in float64. */
export function gradNorm(params: readonly Var[]): number {
  let ss = 0;
  for (const p of params) {
    const g = p.grad;
    if (g !== null) ss += optimizerKernels.sumSquares(g);
  }
  return Math.sqrt(ss);
}

/**
 * Scales all gradients so that their global norm is at most maxNorm (PyTorch's
 * clip_grad_norm_: factor maxNorm / (norm + 1e-6) when it is below 1). Returns the norm before
 * clipping (log it: spikes show instability). A non-finite norm is returned unchanged and the
 * gradients are left alone, so that the caller can skip the step.
 */
export function clipGradNorm(params: readonly Var[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm ${maxNorm} must be > 0`);
  const norm = gradNorm(params);
  if (!Number.isFinite(norm)) return norm;
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) scaleGrads(params, factor);
  return norm;
}

/** Multiplies every gradient by `factor` (e.g. 1 / accumulation steps). */
export function scaleGrads(params: readonly Var[], factor: number): void {
  for (const p of params) {
    const g = p.grad;
    if (g !== null) optimizerKernels.scaleValues(g, factor);
  }
}

/**
 * The usual grouping: weight decay on matrices (rank ≥ 2: linear weights, embeddings), none on
 * vectors (norm weights, biases, routing biases).
 */
export function decayGroups(params: readonly Var[], weightDecay: number): ParamGroup[] {
  return [
    { params: params.filter((p) => p.rank >= 2), weightDecay },
    { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
  ];
}
