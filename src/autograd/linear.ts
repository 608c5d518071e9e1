import { type Var, result, shapeString } from './var.js';
import { outputFloats } from './pool.js';
import { gemm } from './compute.js';

/**
 * y = x · Wᵀ (+ b): x [..., in], W [out, in] (nn.Linear / GGUF layout), b [out] → y [..., out].
 * Forward and both backward products are GEMMs:
 *   dX[m, in]  += dY[m, out] · W[out, in]
 *   dW[out, in] += dYᵀ[out, m] · X[m, in]
 *   db[out]    += Σ_rows dY
 */
export function linear(x: Var, w: Var, b?: Var): Var {
  if (w.rank !== 2) throw new Error(`linear: weight ${w.toString()} must be 2-D [out, in]`);
  const [outDim, inDim] = w.shape as [number, number];
  if (x.rank < 1 || x.shape[x.rank - 1] !== inDim) throw new Error(`linear: input ${x.toString()} does not end in ${inDim} (weight ${w.toString()})`);
  if (b && (b.rank !== 1 || b.shape[0] !== outDim)) throw new Error(`linear: bias ${b.toString()} must be [${outDim}]`);
  const rows = x.size / inDim;
  const value = outputFloats(rows * outDim);
  linearKernels.forward(value, x.value, w.value, b ? b.value : null, rows, inDim, outDim);
  const shape = [...x.shape.slice(0, -1), outDim];
  const inputs = b ? [x, w, b] : [x, w];
  return result(value, shape, inputs, (out) => () => {
    linearKernels.backward(
      x.requiresGrad ? x.gradBuffer() : null, w.requiresGrad ? w.gradBuffer() : null, b && b.requiresGrad ? b.gradBuffer() : null,
      out.grad!, x.value, w.value, rows, inDim, outDim,
    );
  });
}

export function linearForward(y: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | null, rows: number, inDim: number, outDim: number): void {
  gemm(false, true, rows, outDim, inDim, 1, x, inDim, w, inDim, 0, y, outDim);
  if (b !== null) {
    for (let r = 0; r < rows; r++) for (let o = 0; o < outDim; o++) y[r * outDim + o]! += b[o]!;
  }
}

/** Accumulates (+=) into dx, dw, db where not null. */
export function linearBackward(
  dx: Float32Array | null, dw: Float32Array | null, db: Float32Array | null,
  dy: Float32Array, x: Float32Array, w: Float32Array, rows: number, inDim: number, outDim: number,
): void {
  if (dx !== null) gemm(false, false, rows, inDim, outDim, 1, dy, outDim, w, inDim, 1, dx, inDim);
  if (dw !== null) gemm(true, false, outDim, inDim, rows, 1, dy, outDim, x, inDim, 1, dw, inDim);
  if (db !== null) {
    for (let r = 0; r < rows; r++) for (let o = 0; o < outDim; o++) db[o]! += dy[r * outDim + o]!;
  }
}

/**
 * Batched matrix product C = op(A) · op(B) over leading batch dimensions:
 * A [..., m, k] (or [..., k, m] with transA), B [..., k, n] (or [..., n, k] with transB),
 * C [..., m, n]. B may also be 2-D, shared by every batch entry.
 */
export function matmul(a: Var, b: Var, options: { transA?: boolean; transB?: boolean } = {}): Var {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  if (a.rank < 2 || b.rank < 2) throw new Error(`matmul: ${a.toString()} and ${b.toString()} must be at least 2-D`);
  const batchShape = a.shape.slice(0, -2);
  const shared = b.rank === 2 && a.rank > 2;
  if (!shared && (b.rank !== a.rank || b.shape.slice(0, -2).some((d, i) => d !== batchShape[i]))) {
    throw new Error(`matmul: batch dimensions of ${a.toString()} and ${b.toString()} differ`);
  }
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const m = transA ? a1 : a0;
  const k = transA ? a0 : a1;
  const kb = transB ? b1 : b0;
  const n = transB ? b0 : b1;
  if (k !== kb) throw new Error(`matmul: inner dimensions differ: ${shapeString(a.shape)}${transA ? 'ᵀ' : ''} · ${shapeString(b.shape)}${transB ? 'ᵀ' : ''}`);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const lda = a1;
  const ldb = b1;
  const aStride = m * k;
  const bStride = shared ? 0 : k * n;
  const value = outputFloats(batch * m * n);
  for (let i = 0; i < batch; i++) {
    gemm(transA, transB, m, n, k, 1, a.value.subarray(i * aStride), lda, b.value.subarray(i * bStride), ldb, 0, value.subarray(i * m * n), n);
  }
  return result(value, [...batchShape, m, n], [a, b], (out) => () => {
    const dc = out.grad!;
    const da = a.requiresGrad ? a.gradBuffer() : null;
    const db = b.requiresGrad ? b.gradBuffer() : null;
    for (let i = 0; i < batch; i++) {
      const dci = dc.subarray(i * m * n);
      const ai = a.value.subarray(i * aStride);
      const bi = b.value.subarray(i * bStride);
      if (da !== null) {
        const dai = da.subarray(i * aStride);
        // d op(A) = dC · op(B)ᵀ; stored as its transpose when transA.
        if (!transA) gemm(false, !transB, m, k, n, 1, dci, n, bi, ldb, 1, dai, lda);
        else gemm(transB, true, k, m, n, 1, bi, ldb, dci, n, 1, dai, lda);
      }
      if (db !== null) {
        const dbi = db.subarray(i * bStride);
        // d op(B) = op(A)ᵀ · dC; stored as its transpose when transB.
        if (!transB) gemm(!transA, false, k, n, m, 1, ai, lda, dci, n, 1, dbi, ldb);
        else gemm(true, transA, n, k, m, 1, dci, n, ai, lda, 1, dbi, ldb);
      }
    }
  });
}

/**
 * The kernels this op runs (plain functions over Float32Arrays). A native implementation with
 * the same signature can replace an entry, op by op, without touching the op.
 */
export const linearKernels = { forward: linearForward, backward: linearBackward };
