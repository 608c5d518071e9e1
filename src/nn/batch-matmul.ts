/**
 * matmul for the few rows of a batched decode step (forwardBatch of several sequences): an f32
 * weight goes through Backend.matmulKMajor on a transposed copy of it (made on first use, kept
 * while the weight lives), which broadcasts x against the weight's columns instead of summing
 * dot products horizontally: 8 rows of the shipped model's matrices at ~150-200 GFLOPS on one
 * AVX-512 core against ~65-80 through matmul. Other rows counts, dtypes and backends: matmul.
 */
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';

/** Rows where the transposed kernel pays (below, matmul's matrix-vector kernels read the weight once anyway). */
const MIN_ROWS = 4;
const MAX_ROWS = 16;
/** Weights up to this many values get a transposed copy (small models: the copy stays in cache with the rest). */
const MAX_VALUES = 1 << 20;

const transposed = new WeakMap<WeightMatrix, Float32Array>();

/** out [m, w.rows] = x [m, w.cols] · wᵀ, as backend.matmul computes it (to float rounding). */
export function batchMatmul(backend: Backend, out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  if (backend.matmulKMajor && m >= MIN_ROWS && m <= MAX_ROWS && w.dtype === 'f32' && w.rows * w.cols <= MAX_VALUES) {
    if (backend.matmulKMajor(out, x, m, transposedOf(w), w.rows, w.cols)) return;
  }
  backend.matmul(out, x, m, w);
}

/** The weight [rows, cols] as [cols, rows rounded up to 16], zero padded. */
export function transposedOf(w: WeightMatrix): Float32Array {
  let t = transposed.get(w);
  if (t) return t;
  const { rows, cols } = w;
  const pad = Math.ceil(rows / 16) * 16;
  const values = new Float32Array(w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + rows * cols * 4));
  t = new Float32Array(cols * pad);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * pad + r] = values[r * cols + c]!;
  transposed.set(w, t);
  return t;
}
