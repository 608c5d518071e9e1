/**
 * matmul for the few rows of a batched decode step (forwardBatch of several sequences) and for
 * the prompt rows of a small model: an f32 weight goes through Backend.matmulKMajor on a
 * transposed copy of it (made on first use, kept while the weight lives), which broadcasts x
 * against the weight's columns instead of summing dot products horizontally.
 *
 * - 4-16 rows (batchMatmul): 8 rows of the shipped model's matrices at ~150-200 GFLOPS on one
 *   AVX-512 core against ~65-80 through matmul's matrix-vector kernels.
 * - 17-64 rows of a weight of at most 64K values (batchMatmul and sequenceMatmul: a prompt of
 *   the shipped model): ~200 GFLOPS against 60-130 through matmul's GEMM, whose packing costs
 *   more than such a matrix's arithmetic. Both accumulate each output over k in order with one
 *   FMA per term, so the results are the same bits (tested). Larger weights and longer prompts
 *   keep matmul, which spreads over the thread pool.
 *
 * Other rows counts, dtypes and backends: matmul.
 */
import type { Backend } from '../tensor/backend.js';
import { panelLength, writePanels } from '../tensor/panels.js';
import type { WeightMatrix } from '../tensor/tensor.js';

/** Rows where the transposed kernel pays for a batch (below, matmul's matrix-vector kernels read the weight once anyway). */
const MIN_ROWS = 4;
/** The native matmul's last matrix-vector row count (native SMALL_M); above it, matmul runs its GEMM. */
const MAX_ROWS = 16;
/** Weights up to this many values get a transposed copy (small models: the copy stays in cache with the rest). */
const MAX_VALUES = 1 << 20;
/** Above MAX_ROWS: the rows and weight sizes where the transposed kernel beats matmul's GEMM. */
const MAX_PROMPT_ROWS = 64;
const MAX_PROMPT_VALUES = 1 << 16;

const transposed = new WeakMap<WeightMatrix, Float32Array>();

/** Whether m rows times w go through matmulKMajor (minRows: the fewest rows that do). */
function kMajorPays(backend: Backend, m: number, w: WeightMatrix, minRows: number): boolean {
  if (!backend.matmulKMajor || w.dtype !== 'f32' || m < minRows) return false;
  const values = w.rows * w.cols;
  return m <= MAX_ROWS ? values <= MAX_VALUES : m <= MAX_PROMPT_ROWS && values <= MAX_PROMPT_VALUES;
}

function multiply(backend: Backend, out: Float32Array, x: Float32Array, m: number, w: WeightMatrix, minRows: number): void {
  if (kMajorPays(backend, m, w, minRows) && backend.matmulKMajor!(out, x, m, transposedOf(w), w.rows, w.cols)) return;
  backend.matmul(out, x, m, w);
}

/** out [m, w.rows] = x [m, w.cols] · wᵀ, as backend.matmul computes it (to float rounding), for rows of several sequences. */
export function batchMatmul(backend: Backend, out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  multiply(backend, out, x, m, w, MIN_ROWS);
}

/**
 * batchMatmul for m rows of ONE sequence: up to MAX_ROWS rows (a decode step, a speculative
 * verify) stay on matmul, whose rows do not depend on how many rows share the call, so drafting
 * never changes a greedy token; prompt rows above it may take the transposed kernel (same bits).
 */
export function sequenceMatmul(backend: Backend, out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  multiply(backend, out, x, m, w, MAX_ROWS + 1);
}

/**
 * The weight [rows, cols] transposed in panels of 16 rows: panel p is [cols, 16] (rows 16p..16p+15
 * of the weight, zero padded past the last row), and the panels follow each other. A kernel tile
 * then reads its panel front to back (cols x 64 contiguous bytes); in the plain [cols, rows]
 * transpose the same tile stepped 4 KiB at a time (the 1024-row head), which no prefetcher
 * followed once the weights no longer fitted in L2.
 */
export function transposedOf(w: WeightMatrix): Float32Array {
  let t = transposed.get(w);
  if (t) return t;
  const { rows, cols } = w;
  t = new Float32Array(panelLength(rows, cols));
  writePanels(t, new Float32Array(w.data.buffer.slice(w.data.byteOffset, w.data.byteOffset + rows * cols * 4)), rows, cols);
  transposed.set(w, t);
  return t;
}
