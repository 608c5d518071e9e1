/**
 * Scaled FP8 E4M3 layouts of DeepSeek-V3 (model-and-training.md §5.2):
 * - weights: one f32 scale per 128x128 block, row-major over [ceil(rows/128), ceil(cols/128)]
 *   (HF `weight_scale_inv`), value ≈ fp8 * scale, scale = amax / 448 per block;
 * - activations: one f32 scale per 1x128 tile, [rows, ceil(cols/128)], scale = max(amax, 1e-4) / 448.
 * Edge blocks/tiles are partial (as if zero-padded). An all-zero weight block gets scale 0.
 * With `{ pow2Scales: true }` each scale is rounded up to a power of two (DeepSeek-V3.1's
 * `scale_fmt="ue8m0"`, and the power-of-2 scales of the V3 FP8 training recipe).
 */
import { bitsToF32, f32Bits } from './bits.js';
import { FP8_E4M3_MAX, FP8_TABLE, f32ToFp8E4M3 } from './fp8.js';

export interface Fp8ScaleOptions {
  /** Round every scale up to a power of two (2^ceil(log2(scale))). */
  readonly pow2Scales?: boolean;
}

/** The smallest power of two >= a positive normal float32 (0 stays 0). */
export function ceilPow2(scale: number): number {
  const bits = f32Bits(scale);
  if ((bits & 0x7fffff) === 0) return scale;
  return bitsToF32(((bits & 0x7f800000) + 0x800000) >>> 0);
}

function blockScale(amax: number, options: Fp8ScaleOptions | undefined): number {
  const scale = Math.fround(amax / FP8_E4M3_MAX);
  return options?.pow2Scales ? ceilPow2(scale) : scale;
}

export const FP8_BLOCK = 128;
const TILE_MIN_AMAX = 1e-4;

function checkShape(what: string, rows: number, cols: number, length: number, lengthName: string): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new Error(`${what}: rows and cols must be non-negative integers, got ${rows} x ${cols}`);
  }
  if (length !== rows * cols) {
    throw new Error(`${what}: ${lengthName} has ${length} elements, expected rows*cols = ${rows}*${cols} = ${rows * cols}`);
  }
}

function encodeRange(
  values: Float32Array, data: Uint8Array, cols: number,
  r0: number, r1: number, c0: number, c1: number, scale: number,
): void {
  for (let r = r0; r < r1; r++) {
    const row = r * cols;
    if (scale === 0) {
      data.fill(0, row + c0, row + c1);
      continue;
    }
    for (let c = c0; c < c1; c++) data[row + c] = f32ToFp8E4M3(values[row + c]! / scale);
  }
}

function rangeAmax(values: Float32Array, cols: number, r0: number, r1: number, c0: number, c1: number, what: string): number {
  let amax = 0;
  for (let r = r0; r < r1; r++) {
    const row = r * cols;
    for (let c = c0; c < c1; c++) {
      const a = Math.abs(values[row + c]!);
      if (a > amax) amax = a;
      else if (!(a <= amax)) throw new Error(`${what}: non-finite value ${values[row + c]} at row ${r}, col ${c}`);
    }
  }
  if (amax === Infinity) throw new Error(`${what}: infinite value in rows ${r0}..${r1 - 1}, cols ${c0}..${c1 - 1}`);
  return amax;
}

export function quantizeFp8BlockScaled(
  values: Float32Array, rows: number, cols: number, options?: Fp8ScaleOptions,
): { data: Uint8Array; blockScales: Float32Array } {
  const what = 'quantizeFp8BlockScaled';
  checkShape(what, rows, cols, values.length, 'values');
  const blockRows = Math.ceil(rows / FP8_BLOCK);
  const blockCols = Math.ceil(cols / FP8_BLOCK);
  const data = new Uint8Array(rows * cols);
  const blockScales = new Float32Array(blockRows * blockCols);
  for (let br = 0; br < blockRows; br++) {
    const r0 = br * FP8_BLOCK;
    const r1 = Math.min(rows, r0 + FP8_BLOCK);
    for (let bc = 0; bc < blockCols; bc++) {
      const c0 = bc * FP8_BLOCK;
      const c1 = Math.min(cols, c0 + FP8_BLOCK);
      const scale = blockScale(rangeAmax(values, cols, r0, r1, c0, c1, what), options);
      blockScales[br * blockCols + bc] = scale;
      encodeRange(values, data, cols, r0, r1, c0, c1, scale);
    }
  }
  return { data, blockScales };
}

export function dequantizeFp8BlockScaled(
  data: Uint8Array, blockScales: Float32Array, rows: number, cols: number,
): Float32Array {
  const what = 'dequantizeFp8BlockScaled';
  checkShape(what, rows, cols, data.length, 'data');
  const blockCols = Math.ceil(cols / FP8_BLOCK);
  const expected = Math.ceil(rows / FP8_BLOCK) * blockCols;
  if (blockScales.length !== expected) {
    throw new Error(`${what}: blockScales has ${blockScales.length} entries, expected ceil(${rows}/128)*ceil(${cols}/128) = ${expected}`);
  }
  const out = new Float32Array(rows * cols);
  const table = FP8_TABLE;
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    const scaleRow = (r >> 7) * blockCols;
    for (let bc = 0; bc < blockCols; bc++) {
      const scale = blockScales[scaleRow + bc]!;
      const c1 = Math.min(cols, (bc + 1) * FP8_BLOCK);
      for (let c = bc * FP8_BLOCK; c < c1; c++) out[row + c] = table[data[row + c]!]! * scale;
    }
  }
  return out;
}

export function quantizeFp8Tiles(
  values: Float32Array, rows: number, cols: number, options?: Fp8ScaleOptions,
): { data: Uint8Array; tileScales: Float32Array } {
  const what = 'quantizeFp8Tiles';
  checkShape(what, rows, cols, values.length, 'values');
  const tileCols = Math.ceil(cols / FP8_BLOCK);
  const data = new Uint8Array(rows * cols);
  const tileScales = new Float32Array(rows * tileCols);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < tileCols; t++) {
      const c0 = t * FP8_BLOCK;
      const c1 = Math.min(cols, c0 + FP8_BLOCK);
      const amax = Math.max(rangeAmax(values, cols, r, r + 1, c0, c1, what), TILE_MIN_AMAX);
      const scale = blockScale(amax, options);
      tileScales[r * tileCols + t] = scale;
      encodeRange(values, data, cols, r, r + 1, c0, c1, scale);
    }
  }
  return { data, tileScales };
}

/** Inverse of quantizeFp8Tiles: value = fp8 * tileScales[r, c / 128]. */
export function dequantizeFp8Tiles(data: Uint8Array, tileScales: Float32Array, rows: number, cols: number): Float32Array {
  const what = 'dequantizeFp8Tiles';
  checkShape(what, rows, cols, data.length, 'data');
  const tileCols = Math.ceil(cols / FP8_BLOCK);
  if (tileScales.length !== rows * tileCols) {
    throw new Error(`${what}: tileScales has ${tileScales.length} entries, expected ${rows}*ceil(${cols}/128) = ${rows * tileCols}`);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = FP8_TABLE[data[r * cols + c]!]! * tileScales[r * tileCols + (c >> 7)]!;
  }
  return out;
}
