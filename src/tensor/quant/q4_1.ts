/**
 * Q4_1 (20 bytes / 32 values): @0 f16 d | @2 f16 m | @4 u8 qs[16]; x = q * d + m with q the
 * unsigned nibble, low nibbles holding x[0..15] and high nibbles x[16..31].
 * Quantize: m = min, d = (max - min) / 15, q = round((x - m) / d).
 */
import { roundNearest } from './bits.js';
import { readHalf, writeScale } from './half.js';

const QK = 32;
const BYTES = 20;

export function dequantizeQ4_1(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const m = readHalf(src, p + 2);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[p + 4 + j]!;
      out[o + j] = (q & 0xf) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  }
}

export function quantizeQ4_1(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK;
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    const p = b * BYTES;
    let min = Infinity;
    let max = -Infinity;
    for (let j = 0; j < QK; j++) {
      const v = values[o + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = writeScale(out, p, (max - min) / 15, 'q4_1', b);
    const m = writeScale(out, p + 2, min, 'q4_1', b);
    const id = d !== 0 ? 1 / d : 0;
    for (let j = 0; j < 16; j++) {
      const lo = clampNibble(roundNearest((values[o + j]! - m) * id));
      const hi = clampNibble(roundNearest((values[o + j + 16]! - m) * id));
      out[p + 4 + j] = lo | (hi << 4);
    }
  }
}

function clampNibble(q: number): number {
  return q < 0 ? 0 : q > 15 ? 15 : q;
}
