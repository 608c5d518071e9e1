/**
 * Q2_K (84 bytes / 256 values): @0 u8 scales[16] | @16 u8 qs[64] | @80 f16 d | @82 f16 dmin.
 * Sixteen sub-blocks of 16 (sub-block = element index / 16); scales[i] low nibble is the scale,
 * high nibble the min. For half n (128 values, q = qs + 32n) and shift j in 0..3 (2 bits each):
 * y[128n+32j+l] = d*sc*((q[l] >> 2j) & 3) - dmin*mn for l in 0..31 (q[l] for l < 16 and
 * q[16..31] for the next sub-block).
 */
import { roundNearest } from './bits.js';
import { readHalf, writeScale } from './half.js';
import { fitAffine } from './k-fit.js';

const QK_K = 256;
const BYTES = 84;

const weights = new Float64Array(16);
const fitted = new Float64Array(2);
const subScales = new Float64Array(16);
const subMins = new Float64Array(16);
const levels = new Uint8Array(QK_K);

export function dequantizeQ2_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p + 80);
    const dmin = readHalf(src, p + 82);
    const o = b * QK_K;
    for (let i = 0; i < QK_K; i++) {
      const n = i >> 7; // half
      const j = (i >> 5) & 3; // 2-bit plane
      const l = i & 31; // byte within the half
      const s = src[p + (i >> 4)]!;
      const q = (src[p + 16 + 32 * n + l]! >> (2 * j)) & 3;
      out[o + i] = d * (s & 0xf) * q - dmin * (s >> 4);
    }
  }
}

/**
 * Quantize: per 16-value sub-block an affine fit with 2-bit levels (weights |x|, as ggml),
 * then 4-bit scales and mins against f16 super-scales d = max scale / 15, dmin = max min / 15.
 */
export function quantizeQ2_K(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * QK_K;
    const p = b * BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let ib = 0; ib < 16; ib++) {
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(values[o + l]!);
      fitAffine(values, o, 16, 3, weights, levels.subarray(16 * ib, 16 * ib + 16), fitted);
      subScales[ib] = fitted[0]!;
      subMins[ib] = -fitted[1]!;
      if (subScales[ib]! > maxScale) maxScale = subScales[ib]!;
      if (subMins[ib]! > maxMin) maxMin = subMins[ib]!;
    }
    const d = writeScale(out, p + 80, maxScale / 15, 'q2_k', b);
    const dmin = writeScale(out, p + 82, maxMin / 15, 'q2_k', b);
    const invD = d > 0 ? 1 / d : 0;
    const invMin = dmin > 0 ? 1 / dmin : 0;
    for (let ib = 0; ib < 16; ib++) {
      const sc = clamp(roundNearest(subScales[ib]! * invD), 0, 15);
      const mn = clamp(roundNearest(subMins[ib]! * invMin), 0, 15);
      out[p + ib] = sc | (mn << 4);
      const step = d * sc;
      const offset = dmin * mn;
      const inv = step > 0 ? 1 / step : 0;
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) levels[16 * ib + l] = clamp(roundNearest((values[o + l]! + offset) * inv), 0, 3);
    }
    out.fill(0, p + 16, p + 80);
    for (let i = 0; i < QK_K; i++) {
      const at2 = p + 16 + 32 * (i >> 7) + (i & 31);
      out[at2] = out[at2]! | (levels[i]! << (2 * ((i >> 5) & 3)));
    }
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
