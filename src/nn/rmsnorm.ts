/** RMSNorm: y = x / sqrt(mean(x²) + eps) · weight, row by row, through the backend. */
import type { Backend } from '../tensor/backend.js';

export interface RmsNorm {
  readonly weight: Float32Array;
  readonly eps: number;
}

export function rmsNorm(weight: Float32Array, eps: number): RmsNorm {
  if (!(eps > 0) || !Number.isFinite(eps)) throw new Error(`rms norm epsilon must be a positive number, got ${eps}`);
  return { weight, eps };
}

/** out[rows, dim] = RMSNorm(x[rows, dim]); out may alias x. */
export function rmsNormForward(backend: Backend, out: Float32Array, x: Float32Array, rows: number, norm: RmsNorm): void {
  const dim = norm.weight.length;
  backend.rmsNorm(out, x, norm.weight, rows, dim, norm.eps);
}
