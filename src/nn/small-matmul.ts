/**
 * matmul for the few rows of a decode step, a speculative verify, a batched step of several
 * sequences or a short prompt of a small model: an f32 weight goes through Backend.matmulKMajor on
 * a copy of it in k-major panels (made on first use, kept while the weight lives), which
 * broadcasts x against the weight's columns instead of summing dot products horizontally.
 *
 * - 1-16 rows, weights of at most 1M values. One AVX2 thread, the shipped model's matrices read
 *   from L3: 1.3-1.55x matmul's matrix-vector kernels at 1 row, 1.3-1.7x at 2, 1.6-2x at 3
 *   (2026-11-30); at 8 rows ~150-200 GFLOPS on one AVX-512 core against ~65-80.
 * - 17-64 rows of a weight of at most 64K values (a prompt of the shipped model): ~200 GFLOPS
 *   against 60-130 through matmul's GEMM, whose packing costs more than such a matrix's arithmetic.
 *
 * Every output is summed over k in order with one FMA per term, whatever the row count, so a row
 * gets the same bits alone, in a verify of several rows, in a batch or in a prompt (and the same
 * as matmul's GEMM, tested): drafting never changes a greedy token. Larger weights, longer
 * prompts, other dtypes and backends without the kernel: matmul.
 */
import type { Backend } from '../tensor/backend.js';
import { panelLength, writePanels } from '../tensor/panels.js';
import type { WeightMatrix } from '../tensor/tensor.js';

/** The native matmul's last matrix-vector row count (native SMALL_M); above it, matmul runs its GEMM. */
const MAX_ROWS = 16;
/** Weights up to this many values get a k-major copy (small models: the copy stays in cache instead of the original). */
const MAX_VALUES = 1 << 20;
/** Above MAX_ROWS: the rows and weight sizes where the k-major kernel beats matmul's GEMM. */
const MAX_PROMPT_ROWS = 64;
const MAX_PROMPT_VALUES = 1 << 16;

const transposed = new WeakMap<WeightMatrix, Float32Array>();

/** Whether m rows times w go through matmulKMajor. */
function kMajorPays(backend: Backend, m: number, w: WeightMatrix): boolean {
  if (!backend.matmulKMajor || w.dtype !== 'f32' || m < 1) return false;
  const values = w.rows * w.cols;
  return m <= MAX_ROWS ? values <= MAX_VALUES : m <= MAX_PROMPT_ROWS && values <= MAX_PROMPT_VALUES;
}

/** out [m, w.rows] = x [m, w.cols] · wᵀ, as backend.matmul computes it (to float rounding). */
export function smallMatmul(backend: Backend, out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  if (kMajorPays(backend, m, w) && backend.matmulKMajor!(out, x, m, transposedOf(w), w.rows, w.cols)) return;
  backend.matmul(out, x, m, w);
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
