import { type Var, result } from '../autograd/var.js';
import { linearBackward, linearForward } from '../autograd/linear.js';
import { FP8_E4M3_MAX, f32ToFp8E4M3, fp8E4M3ToF32 } from '../tensor/quant/fp8.js';

/**
 * A linear layer in DeepSeek-V3's FP8 recipe (model-and-training.md §5.1), simulated on f32:
 * every GEMM input is rounded through E4M3 with an online scale (max(amax, 1e-4) / 448), and the
 * GEMMs accumulate in f32.
 *   forward   Y  = Q_tile(X) · Q_block(W)ᵀ          (activations 1x128 tiles, weights 128x128 blocks)
 *   backward  dX = Q_tile(dY) · Q_block(W)          (dgrad; dY in 1x128 tiles along its K = out dim)
 *             dW = Q_col(dY)ᵀ · Q_col(X)            (wgrad; K = tokens, so both operands are
 *                                                    re-quantized in 128x1 tiles along the tokens)
 * as V3's "transposed re-quant 1x128 → 128x1" (scales here are not rounded to powers of two).
 * What FP8 activation caching saves is counted in Fp8Stats.
 */
export const FP8_GROUP = 128;

/** Running totals of what an FP8 run would store in FP8 instead of BF16 (for the memory report). */
export interface Fp8Stats {
  /** Elements of activations cached for the backward (linear inputs). */
  activationElements: number;
  /** Scales of those activations (one f32 per 1x128 tile). */
  activationScales: number;
}

export function newFp8Stats(): Fp8Stats {
  return { activationElements: 0, activationScales: 0 };
}

/** Rounds rows × cols values through E4M3, one scale per row and per `FP8_GROUP` columns. Returns the number of scales. */
export function quantizeTiles(out: Float32Array, x: Float32Array, rows: number, cols: number): number {
  let scales = 0;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += FP8_GROUP) {
      roundGroup(out, x, r * cols + c0, Math.min(cols, c0 + FP8_GROUP) - c0, 1, cols);
      scales++;
    }
  }
  return scales;
}

/** Rounds rows × cols values through E4M3, one scale per column and per `FP8_GROUP` rows (128x1 tiles). */
export function quantizeColumnTiles(out: Float32Array, x: Float32Array, rows: number, cols: number): void {
  for (let r0 = 0; r0 < rows; r0 += FP8_GROUP) {
    const count = Math.min(rows, r0 + FP8_GROUP) - r0;
    for (let c = 0; c < cols; c++) roundGroup(out, x, r0 * cols + c, 1, count, cols);
  }
}

/** Rounds a [rows, cols] matrix through E4M3, one scale per 128x128 block. */
export function quantizeBlocks(out: Float32Array, w: Float32Array, rows: number, cols: number): void {
  for (let r0 = 0; r0 < rows; r0 += FP8_GROUP) {
    for (let c0 = 0; c0 < cols; c0 += FP8_GROUP) {
      roundGroup(out, w, r0 * cols + c0, Math.min(cols, c0 + FP8_GROUP) - c0, Math.min(rows, r0 + FP8_GROUP) - r0, cols);
    }
  }
}

function roundGroup(out: Float32Array, x: Float32Array, start: number, width: number, count: number, stride: number): void {
  let amax = 0;
  for (let r = 0; r < count; r++) {
    const base = start + r * stride;
    for (let i = base; i < base + width; i++) {
      const a = Math.abs(x[i]!);
      if (a > amax) amax = a;
    }
  }
  const scale = Math.max(amax, 1e-4) / FP8_E4M3_MAX;
  const inv = 1 / scale;
  for (let r = 0; r < count; r++) {
    const base = start + r * stride;
    for (let i = base; i < base + width; i++) out[i] = fp8E4M3ToF32(f32ToFp8E4M3(x[i]! * inv)) * scale;
  }
}

/** y = x · Wᵀ with FP8-rounded GEMM inputs in forward and backward (see above). */
export function fp8Linear(x: Var, w: Var, stats?: Fp8Stats): Var {
  if (w.rank !== 2) throw new Error(`fp8Linear: weight ${w.toString()} must be 2-D [out, in]`);
  const [outDim, inDim] = w.shape as [number, number];
  if (x.rank < 1 || x.shape[x.rank - 1] !== inDim) throw new Error(`fp8Linear: input ${x.toString()} does not end in ${inDim} (weight ${w.toString()})`);
  const rows = x.size / inDim;
  const xq = new Float32Array(x.size);
  const scales = quantizeTiles(xq, x.value, rows, inDim);
  const wq = new Float32Array(w.size);
  quantizeBlocks(wq, w.value, outDim, inDim);
  if (stats) {
    stats.activationElements += x.size;
    stats.activationScales += scales;
  }
  const value = new Float32Array(rows * outDim);
  linearForward(value, xq, wq, null, rows, inDim, outDim);
  return result(value, [...x.shape.slice(0, -1), outDim], [x, w], (out) => () => {
    const dy = out.grad!;
    if (x.requiresGrad) {
      const dyq = new Float32Array(out.size);
      quantizeTiles(dyq, dy, rows, outDim);
      linearBackward(x.gradBuffer(), null, null, dyq, xq, wq, rows, inDim, outDim);
    }
    if (w.requiresGrad) {
      const dyc = new Float32Array(out.size);
      quantizeColumnTiles(dyc, dy, rows, outDim);
      const xc = new Float32Array(x.size);
      quantizeColumnTiles(xc, x.value, rows, inDim);
      linearBackward(null, w.gradBuffer(), null, dyc, xc, wq, rows, inDim, outDim);
    }
  });
}
