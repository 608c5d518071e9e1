/**
 * Q4_0 (18 bytes / 32 values): @0 f16 d | @2 u8 qs[16].
 * x[j] = ((qs[j] & 0xF) - 8) * d, x[j+16] = ((qs[j] >> 4) - 8) * d for j in 0..15.
 * Quantize: the value of largest magnitude maps to -8 (d = max / -8), others round to nearest.
 */
import { roundNearest } from './bits.js';
import { readHalf, writeScale } from './half.js';

const QK = 32;
const BYTES = 18;

export function dequantizeQ4_0(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      out[o + j] = ((q & 0xf) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

export function quantizeQ4_0(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK;
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    const p = b * BYTES;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = values[o + j]!;
      if (Math.abs(v) > Math.abs(max)) max = v;
    }
    const d = writeScale(out, p, max / -8 + 0, 'q4_0', b);
    const id = d !== 0 ? 1 / d : 0;
    for (let j = 0; j < 16; j++) {
      const lo = clampNibble(roundNearest(values[o + j]! * id) + 8);
      const hi = clampNibble(roundNearest(values[o + j + 16]! * id) + 8);
      out[p + 2 + j] = lo | (hi << 4);
    }
  }
}

function clampNibble(q: number): number {
  return q < 0 ? 0 : q > 15 ? 15 : q;
}
