import { type Var, result, assertSameShape } from './var.js';
import { outputFloats } from './pool.js';
import { nativeKernelsFor } from './native-kernels.js';

/**
 * Elementwise unary ops. Each forward is y = f(x); the backward adds g · f'(x) (computed from x
 * and y) into x's gradient.
 */
function unary(x: Var, f: (v: number) => number, df: (v: number, y: number) => number): Var {
  const xv = x.value;
  const value = outputFloats(xv.length);
  for (let i = 0; i < xv.length; i++) value[i] = f(xv[i]!);
  return result(value, x.shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let i = 0; i < g.length; i++) gx[i]! += g[i]! * df(xv[i]!, value[i]!);
  });
}

/** s · x for a constant s. */
export function scale(x: Var, s: number): Var {
  return unary(x, (v) => s * v, () => s);
}

/** x + c for a constant c. */
export function addScalar(x: Var, c: number): Var {
  return unary(x, (v) => v + c, () => 1);
}

export function neg(x: Var): Var {
  return scale(x, -1);
}

export function exp(x: Var): Var {
  return unary(x, Math.exp, (_v, y) => y);
}

/** Natural log (x must be > 0). */
export function log(x: Var): Var {
  return unary(x, Math.log, (v) => 1 / v);
}

export function square(x: Var): Var {
  return unary(x, (v) => v * v, (v) => 2 * v);
}

export function sqrt(x: Var): Var {
  return unary(x, Math.sqrt, (_v, y) => 0.5 / y);
}

export function sigmoidValue(v: number): number {
  return v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
}

/** 1 / (1 + e^-x) (DeepSeek-V3 router affinities). */
export function sigmoid(x: Var): Var {
  return unary(x, sigmoidValue, (_v, y) => y * (1 - y));
}

/** x · sigmoid(x). */
export function silu(x: Var): Var {
  return unary(x, (v) => v * sigmoidValue(v), (v) => {
    const s = sigmoidValue(v);
    return s * (1 + v * (1 - s));
  });
}

export function relu(x: Var): Var {
  return unary(x, (v) => (v > 0 ? v : 0), (v) => (v > 0 ? 1 : 0));
}

/** min(max(x, lo), hi); the gradient is 0 where x was clipped (GRPO's ratio clip). */
export function clamp(x: Var, lo: number, hi: number): Var {
  if (!(lo <= hi)) throw new Error(`clamp: lo ${lo} > hi ${hi}`);
  return unary(x, (v) => (v < lo ? lo : v > hi ? hi : v), (v) => (v < lo || v > hi ? 0 : 1));
}

/** SwiGLU's gating: silu(gate) · up, elementwise over two Vars of one shape. */
export function swiglu(gate: Var, up: Var): Var {
  assertSameShape('swiglu', gate, up);
  const gv = gate.value;
  const uv = up.value;
  const value = outputFloats(gv.length);
  swigluKernels.forward(value, gv, uv, gv.length);
  return result(value, gate.shape, [gate, up], (out) => () => {
    swigluKernels.backward(gate.requiresGrad ? gate.gradBuffer() : null, up.requiresGrad ? up.gradBuffer() : null, out.grad!, gv, uv, gv.length);
  });
}

export function swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = gate[i]!;
    out[i] = v * sigmoidValue(v) * up[i]!;
  }
}

/** dgate += dy · up · silu'(gate), dup += dy · silu(gate). */
export function swigluBackward(dgate: Float32Array | null, dup: Float32Array | null, dy: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = gate[i]!;
    const s = sigmoidValue(v);
    if (dgate !== null) dgate[i]! += dy[i]! * up[i]! * s * (1 + v * (1 - s));
    if (dup !== null) dup[i]! += dy[i]! * v * s;
  }
}

/**
 * The kernels this op runs (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const swigluKernels: { forward: typeof swigluForward; backward: typeof swigluBackward } = {
  forward: swigluForward, backward: swigluBackward, ...nativeKernelsFor('swiglu'),
};
