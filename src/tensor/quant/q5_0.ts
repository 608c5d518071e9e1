/**
 * Q5_0 (22 bytes / 32 values): @0 f16 d | @2 u32 qh (LE) | @6 u8 qs[16].
 * For j in 0..15: lo = (qs[j] & 0xF) | bit j of qh << 4, hi = (qs[j] >> 4) | bit (j+16) of qh << 4;
 * x[j] = (lo - 16) * d, x[j+16] = (hi - 16) * d.
 * Quantize: the value of largest magnitude maps to -16 (d = max / -16).
 */
import { readU32, roundNearest, writeU32 } from './bits.js';
import { readHalf, writeScale } from './half.js';

const QK = 32;
const BYTES = 22;

export function dequantizeQ5_0(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const qh = readU32(src, p + 2);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[p + 6 + j]!;
      const lo = (q & 0xf) | (((qh >>> j) & 1) << 4);
      const hi = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      out[o + j] = (lo - 16) * d;
      out[o + j + 16] = (hi - 16) * d;
    }
  }
}

export function quantizeQ5_0(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK;
  for (let b = 0; b < blocks; b++) {
    const o = b * QK;
    const p = b * BYTES;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = values[o + j]!;
      if (Math.abs(v) > Math.abs(max)) max = v;
    }
    const d = writeScale(out, p, max / -16 + 0, 'q5_0', b);
    const id = d !== 0 ? 1 / d : 0;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = clamp5(roundNearest(values[o + j]! * id) + 16);
      const hi = clamp5(roundNearest(values[o + j + 16]! * id) + 16);
      out[p + 6 + j] = (lo & 0xf) | ((hi & 0xf) << 4);
      qh |= ((lo >> 4) << j) | ((hi >> 4) << (j + 16));
    }
    writeU32(out, p + 2, qh >>> 0);
  }
}

function clamp5(q: number): number {
  return q < 0 ? 0 : q > 31 ? 31 : q;
}
