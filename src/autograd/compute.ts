import type { Backend } from '../tensor/backend.js';
import { getBackend } from '../tensor/index.js';

/**
 * The GEMM that autograd ops use for their heavy math (forward and backward). By default it is
 * the process backend's (getBackend(): the native addon when it is built); when that is the
 * pure-TypeScript ref backend, the loop GEMM below is used instead (same contract, row-oriented
 * and faster in JS). `useBackend` overrides the choice. Everything else in autograd is
 * TypeScript loops, one function per op, so that native kernels can take over op by op.
 */
let backend: Pick<Backend, 'gemm'> | null | undefined;

/** Route autograd's GEMMs to `b` (null: the built-in loops; undefined: back to the default). */
export function useBackend(b: Pick<Backend, 'gemm'> | null | undefined): void {
  backend = b;
}

/** The GEMM provider in use: a backend, or null for the loops. */
export function gemmBackend(): Pick<Backend, 'gemm'> | null {
  if (backend === undefined) {
    const b = getBackend();
    backend = b.name === 'ref' ? null : b;
  }
  return backend;
}

/**
 * C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C, row-major with leading dimensions (the
 * Backend.gemm contract: op(A) = Aᵀ when transA, A then stored [k, m]; beta = 0 ignores C).
 */
export function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number,
  beta: number, c: Float32Array, ldc: number,
): void {
  if (m === 0 || n === 0) return;
  const provider = gemmBackend();
  if (provider !== null) {
    provider.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  loopGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/** The reference GEMM: float64 accumulation of each output row. */
export function loopGemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number,
  beta: number, c: Float32Array, ldc: number,
): void {
  if (transB && !transA) {
    // Rows of A against rows of B: contiguous dot products.
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        const ai = i * lda;
        const bj = j * ldb;
        for (let p = 0; p < k; p++) sum += a[ai + p]! * b[bj + p]!;
        const at = i * ldc + j;
        c[at] = beta === 0 ? alpha * sum : alpha * sum + beta * c[at]!;
      }
    }
    return;
  }
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const aip = transA ? a[p * lda + i]! : a[i * lda + p]!;
      if (transB) {
        for (let j = 0; j < n; j++) row[j]! += aip * b[j * ldb + p]!;
      } else {
        const base = p * ldb;
        for (let j = 0; j < n; j++) row[j]! += aip * b[base + j]!;
      }
    }
    const base = i * ldc;
    for (let j = 0; j < n; j++) {
      c[base + j] = beta === 0 ? alpha * row[j]! : alpha * row[j]! + beta * c[base + j]!;
    }
  }
}
