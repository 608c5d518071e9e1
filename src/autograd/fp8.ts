import { type Var, result } from './var.js';
import { floats } from './pool.js';
import { FP8_E4M3_MAX, f32ToFp8E4M3, fp8E4M3ToF32 } from '../tensor/quant/fp8.js';

/**
 * Simulated FP8 (E4M3) training in the DeepSeek-V3 recipe (spec §5.1): values are rounded
 * through E4M3 with online scales — activations per 1×128 tile (per row, per 128 columns),
 * weights per 128×128 block — and the backward is the straight-through estimator (the gradient
 * passes unchanged). scale = max(amax, 1e-4) / 448, q = e4m3(x / scale) · scale.
 * Use as linear(fakeQuantTiles(x), fakeQuantBlocks(w)) to see FP8's effect on a small model.
 */
export const FP8_TILE = 128;

/** Rounds x [..., cols] through E4M3 with one scale per row and per 128 columns. */
export function fakeQuantTiles(x: Var, tile = FP8_TILE): Var {
  const cols = x.shape[x.rank - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const value = floats(x.size);
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      roundGroup(value, x.value, r * cols + c0, r * cols + c1, 1, 1);
    }
  }
  return straightThrough(x, value);
}

/** Rounds a 2-D weight [rows, cols] through E4M3 with one scale per 128×128 block. */
export function fakeQuantBlocks(w: Var, block = FP8_TILE): Var {
  if (w.rank !== 2) throw new Error(`fakeQuantBlocks: ${w.toString()} must be 2-D`);
  const [rows, cols] = w.shape as [number, number];
  const value = floats(w.size);
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let c0 = 0; c0 < cols; c0 += block) {
      const c1 = Math.min(cols, c0 + block);
      roundGroup(value, w.value, r0 * cols + c0, r0 * cols + c1, r1 - r0, cols);
    }
  }
  return straightThrough(w, value);
}

/**
 * Quantizes `count` rows of the column range [start, end) (relative to row 0), `stride` apart,
 * with one shared scale.
 */
function roundGroup(out: Float32Array, x: Float32Array, start: number, end: number, count: number, stride: number): void {
  let amax = 0;
  for (let r = 0; r < count; r++) for (let i = start + r * stride; i < end + r * stride; i++) amax = Math.max(amax, Math.abs(x[i]!));
  const scale = Math.max(amax, 1e-4) / FP8_E4M3_MAX;
  for (let r = 0; r < count; r++) {
    for (let i = start + r * stride; i < end + r * stride; i++) out[i] = fp8E4M3ToF32(f32ToFp8E4M3(x[i]! / scale)) * scale;
  }
}

function straightThrough(x: Var, value: Float32Array): Var {
  return result(value, x.shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let i = 0; i < g.length; i++) gx[i]! += g[i]!;
  });
}
