/**
 * Q4_K (144 bytes / 256 values): @0 f16 d | @2 f16 dmin | @4 u8 scales[12] | @16 u8 qs[128].
 * Eight sub-blocks of 32 with 6-bit scale sc[i] and min mn[i] (packing in ./k-scales.ts).
 * For chunk c in 0..3: y[64c+l] = d*sc[2c]*(qs[32c+l] & 0xF) - dmin*mn[2c],
 * y[64c+32+l] = d*sc[2c+1]*(qs[32c+l] >> 4) - dmin*mn[2c+1].
 */
import { readHalf } from './half.js';
import { quantizeAffineSuperBlock } from './k-affine.js';
import { unpackScalesMins } from './k-scales.js';

const QK_K = 256;
const BYTES = 144;

const sc = new Uint8Array(8);
const mn = new Uint8Array(8);
const levels = new Uint8Array(QK_K);

export function dequantizeQ4_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const dmin = readHalf(src, p + 2);
    unpackScalesMins(src, p + 4, sc, mn);
    const o = b * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = p + 16 + 32 * c;
      const d1 = d * sc[2 * c]!;
      const m1 = dmin * mn[2 * c]!;
      const d2 = d * sc[2 * c + 1]!;
      const m2 = dmin * mn[2 * c + 1]!;
      const y = o + 64 * c;
      for (let l = 0; l < 32; l++) {
        const byte = src[q + l]!;
        out[y + l] = d1 * (byte & 0xf) - m1;
        out[y + 32 + l] = d2 * (byte >> 4) - m2;
      }
    }
  }
}

export function quantizeQ4_K(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    quantizeAffineSuperBlock(values, b * QK_K, 15, out, p, levels, 'q4_k', b);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        out[p + 16 + 32 * c + l] = levels[64 * c + l]! | (levels[64 * c + 32 + l]! << 4);
      }
    }
  }
}
