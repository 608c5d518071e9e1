import { type Var, result } from './var.js';
import { outputFloats } from './pool.js';
import { nativeKernelsFor } from './native-kernels.js';

/**
 * RMSNorm over the last axis: y = x / sqrt(mean(x²) + eps) · w, w [dim] (or no weight).
 * The forward keeps 1/rms per row for the backward:
 *   with n = x · rstd (normalized), dn = dy · w:
 *   dx = rstd · (dn − n · mean(dn · n)),   dw += Σ_rows dy · n.
 */
export function rmsNorm(x: Var, weight: Var | null, eps: number): Var {
  const dim = x.shape[x.rank - 1];
  if (dim === undefined || dim === 0) throw new Error(`rmsNorm: ${x.toString()} has no last axis to normalize`);
  if (weight && (weight.rank !== 1 || weight.shape[0] !== dim)) throw new Error(`rmsNorm: weight ${weight.toString()} must be [${dim}]`);
  const rows = x.size / dim;
  const value = outputFloats(x.size);
  const rstd = new Float32Array(rows);
  rmsNormKernels.forward(value, rstd, x.value, weight ? weight.value : null, rows, dim, eps);
  const inputs = weight ? [x, weight] : [x];
  return result(value, x.shape, inputs, (out) => () => {
    rmsNormKernels.backward(
      x.requiresGrad ? x.gradBuffer() : null, weight && weight.requiresGrad ? weight.gradBuffer() : null,
      out.grad!, x.value, weight ? weight.value : null, rstd, rows, dim,
    );
  });
}

export function rmsNormForward(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[base + i]! * x[base + i]!;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    for (let i = 0; i < dim; i++) y[base + i] = x[base + i]! * s * (w === null ? 1 : w[i]!);
  }
}

export function rmsNormBackward(
  dx: Float32Array | null, dw: Float32Array | null, dy: Float32Array,
  x: Float32Array, w: Float32Array | null, rstd: Float32Array, rows: number, dim: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    const s = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) {
      const n = x[base + i]! * s;
      const g = dy[base + i]!;
      dot += g * (w === null ? 1 : w[i]!) * n;
      if (dw !== null) dw[i]! += g * n;
    }
    if (dx === null) continue;
    const meanDot = dot / dim;
    for (let i = 0; i < dim; i++) {
      const n = x[base + i]! * s;
      const dn = dy[base + i]! * (w === null ? 1 : w[i]!);
      dx[base + i]! += s * (dn - n * meanDot);
    }
  }
}

/**
 * The kernels this op runs (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const rmsNormKernels: { forward: typeof rmsNormForward; backward: typeof rmsNormBackward } = {
  forward: rmsNormForward, backward: rmsNormBackward, ...nativeKernelsFor('rmsNorm'),
};
