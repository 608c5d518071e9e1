/**
 * Q5_K (176 bytes / 256 values): @0 f16 d | @2 f16 dmin | @4 u8 scales[12] | @16 u8 qh[32] | @48 u8 qs[128].
 * As Q4_K with a fifth bit: element 64c+l adds 16 when qh[l] has bit 2c, element 64c+32+l
 * adds 16 when qh[l] has bit 2c+1.
 */
import { readHalf } from './half.js';
import { quantizeAffineSuperBlock } from './k-affine.js';
import { unpackScalesMins } from './k-scales.js';

const QK_K = 256;
const BYTES = 176;

const sc = new Uint8Array(8);
const mn = new Uint8Array(8);
const levels = new Uint8Array(QK_K);

export function dequantizeQ5_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p);
    const dmin = readHalf(src, p + 2);
    unpackScalesMins(src, p + 4, sc, mn);
    const o = b * QK_K;
    for (let c = 0; c < 4; c++) {
      const q = p + 48 + 32 * c;
      const d1 = d * sc[2 * c]!;
      const m1 = dmin * mn[2 * c]!;
      const d2 = d * sc[2 * c + 1]!;
      const m2 = dmin * mn[2 * c + 1]!;
      const shiftLo = 2 * c;
      const shiftHi = 2 * c + 1;
      const y = o + 64 * c;
      for (let l = 0; l < 32; l++) {
        const byte = src[q + l]!;
        const high = src[p + 16 + l]!;
        out[y + l] = d1 * ((byte & 0xf) | (((high >> shiftLo) & 1) << 4)) - m1;
        out[y + 32 + l] = d2 * ((byte >> 4) | (((high >> shiftHi) & 1) << 4)) - m2;
      }
    }
  }
}

export function quantizeQ5_K(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    quantizeAffineSuperBlock(values, b * QK_K, 31, out, p, levels, 'q5_k', b);
    out.fill(0, p + 16, p + 48);
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const lo = levels[64 * c + l]!;
        const hi = levels[64 * c + 32 + l]!;
        out[p + 48 + 32 * c + l] = (lo & 0xf) | ((hi & 0xf) << 4);
        out[p + 16 + l] = out[p + 16 + l]! | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
      }
    }
  }
}
