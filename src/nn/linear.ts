/**
 * A linear layer y = x · Wᵀ (+ b): the weight stays in its storage dtype (see WeightMatrix);
 * the optional bias is f32. All math goes through the backend.
 */
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';

export interface Linear {
  readonly weight: WeightMatrix;
  readonly bias?: Float32Array;
}

export function linear(weight: WeightMatrix, bias?: Float32Array): Linear {
  if (bias && bias.length !== weight.rows) {
    throw new Error(`bias has ${bias.length} values, weight has ${weight.rows} output rows`);
  }
  return bias ? { weight, bias } : { weight };
}

/** out[m, rows] = x[m, cols] · Wᵀ + b. `out` and `x` may be longer than needed (views are taken). */
export function linearForward(backend: Backend, out: Float32Array, x: Float32Array, m: number, layer: Linear): void {
  const { rows, cols } = layer.weight;
  if (x.length < m * cols) throw new Error(`linear input holds ${x.length} values, needs ${m} x ${cols}`);
  if (out.length < m * rows) throw new Error(`linear output holds ${out.length} values, needs ${m} x ${rows}`);
  backend.matmul(out.length === m * rows ? out : out.subarray(0, m * rows), x.length === m * cols ? x : x.subarray(0, m * cols), m, layer.weight);
  const bias = layer.bias;
  if (bias) {
    for (let r = 0; r < m; r++) {
      const row = out.subarray(r * rows, (r + 1) * rows);
      backend.add(row, row, bias, rows);
    }
  }
}

/** Parameters of a linear layer (weight elements plus bias). */
export function linearParameters(layer: Linear): number {
  return layer.weight.rows * layer.weight.cols + (layer.bias?.length ?? 0);
}
