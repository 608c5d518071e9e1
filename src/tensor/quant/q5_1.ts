/**
 * Q5_1 (24 bytes / 32 values): @0 f16 d | @2 f16 m | @4 u32 qh (LE) | @8 u8 qs[16];
 * 5-bit q as in Q5_0 (low nibbles x[0..15], high nibbles x[16..31], qh bit j / j+16), x = q * d + m.
 * Quantize: m = min, d = (max - min) / 31.
 */
import { readHalf, writeScale } from './half.js';
import { readU32, roundNearest, writeU32 } from './bits.js';

const QK = 32;
const BYTES = 24;

export function dequantizeQ5_1(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const m = readHalf(src, p + 2);
    const qh = readU32(src, p + 4);
    const o = b * QK;
    for (let j = 0; j < 16; j++) {
      const q = src[p + 8 + j]!;
      out[o + j] = ((q & 0xf) | (((qh >>> j) & 1) << 4)) * d + m;
      out[o + j + 16] = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d + m;
    }
  }
}

export function quantizeQ5_1(values: Float32Array, out: Uint8Array): void {
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
    const d = writeScale(out, p, (max - min) / 31, 'q5_1', b);
    const m = writeScale(out, p + 2, min, 'q5_1', b);
    const id = d !== 0 ? 1 / d : 0;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const lo = clamp5(roundNearest((values[o + j]! - m) * id));
      const hi = clamp5(roundNearest((values[o + j + 16]! - m) * id));
      out[p + 8 + j] = (lo & 0xf) | ((hi & 0xf) << 4);
      qh |= ((lo >> 4) << j) | ((hi >> 4) << (j + 16));
    }
    writeU32(out, p + 4, qh >>> 0);
  }
}

function clamp5(q: number): number {
  return q < 0 ? 0 : q > 31 ? 31 : q;
}
