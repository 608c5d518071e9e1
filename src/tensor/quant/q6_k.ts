/**
 * Q6_K (210 bytes / 256 values): @0 u8 ql[128] | @128 u8 qh[64] | @192 i8 scales[16] | @208 f16 d.
 * Sixteen sub-blocks of 16 (sub-block = element index / 16) with signed 8-bit scales. For half h
 * (128 values), L = ql + 64h, H = qh + 32h, l in 0..31:
 *   y[128h+l]    low L[l] & 0xF,    high (H[l] >> 0) & 3
 *   y[128h+l+32] low L[l+32] & 0xF, high (H[l] >> 2) & 3
 *   y[128h+l+64] low L[l] >> 4,     high (H[l] >> 4) & 3
 *   y[128h+l+96] low L[l+32] >> 4,  high (H[l] >> 6) & 3
 * q = (low | high << 4) - 32, y = d * scale * q.
 */
import { roundNearest } from './bits.js';
import { readHalf, writeScale } from './half.js';
import { fitSymmetric } from './k-fit.js';

const QK_K = 256;
const BYTES = 210;

const scale = new Float32Array(16);
const weights = new Float64Array(16);
const subScales = new Float64Array(16);
const levels = new Uint8Array(QK_K);

export function dequantizeQ6_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p + 208);
    for (let s = 0; s < 16; s++) scale[s] = d * ((src[p + 192 + s]! << 24) >> 24);
    const o = b * QK_K;
    for (let h = 0; h < 2; h++) {
      const L = p + 64 * h;
      const H = p + 128 + 32 * h;
      const S = 8 * h;
      const y = o + 128 * h;
      for (let l = 0; l < 32; l++) {
        const s = S + (l >> 4);
        const lowA = src[L + l]!;
        const lowB = src[L + l + 32]!;
        const high = src[H + l]!;
        out[y + l] = scale[s]! * (((lowA & 0xf) | ((high & 3) << 4)) - 32);
        out[y + l + 32] = scale[s + 2]! * (((lowB & 0xf) | (((high >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = scale[s + 4]! * (((lowA >> 4) | (((high >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = scale[s + 6]! * (((lowB >> 4) | (((high >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

export function quantizeQ6_K(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * QK_K;
    const p = b * BYTES;
    let maxScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) weights[l] = values[o + l]! * values[o + l]!;
      subScales[ib] = fitSymmetric(values, o, 16, 32, weights);
      if (Math.abs(subScales[ib]!) > Math.abs(maxScale)) maxScale = subScales[ib]!;
    }
    const d = writeScale(out, p + 208, maxScale / -128 + 0, 'q6_k', b);
    const invD = d !== 0 ? 1 / d : 0;
    for (let ib = 0; ib < 16; ib++) {
      const sc = clamp(roundNearest(subScales[ib]! * invD), -128, 127);
      out[p + 192 + ib] = sc & 0xff;
      const step = d * sc;
      const inv = step !== 0 ? 1 / step : 0;
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) levels[16 * ib + l] = clamp(roundNearest(values[o + l]! * inv), -32, 31) + 32;
    }
    for (let h = 0; h < 2; h++) {
      const L = p + 64 * h;
      const H = p + 128 + 32 * h;
      const y = 128 * h;
      for (let l = 0; l < 32; l++) {
        const q0 = levels[y + l]!;
        const q1 = levels[y + l + 32]!;
        const q2 = levels[y + l + 64]!;
        const q3 = levels[y + l + 96]!;
        out[L + l] = (q0 & 0xf) | ((q2 & 0xf) << 4);
        out[L + l + 32] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[H + l] = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6);
      }
    }
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
