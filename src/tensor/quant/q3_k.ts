/**
 * Q3_K (110 bytes / 256 values): @0 u8 hmask[32] | @32 u8 qs[64] | @96 u8 scales[12] | @108 f16 d.
 * Sixteen sub-blocks of 16 (sub-block = element index / 16) with 6-bit scales stored minus 32:
 * sub-block j takes its low 4 bits from scales[j] (j < 8, low nibble) or scales[j-8] (high
 * nibble), and its top 2 bits from scales[8 + j%4] >> (2*floor(j/4)).
 * Element i = 128n + 32k + l (l in 0..31): q = ((qs[32n+l] >> 2k) & 3) - (hmask[l] bit (4n+k) ? 0 : 4),
 * y = d * (scale - 32) * q.
 */
import { roundNearest } from './bits.js';
import { readHalf, writeScale } from './half.js';
import { fitSymmetric } from './k-fit.js';

const QK_K = 256;
const BYTES = 110;

const scale = new Float32Array(16);
const weights = new Float64Array(16);
const subScales = new Float64Array(16);
const levels = new Uint8Array(QK_K);
const stored = new Uint8Array(16);

export function dequantizeQ3_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = readHalf(src, p + 108);
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? src[p + 96 + j]! & 0xf : src[p + 96 + j - 8]! >> 4;
      const high = (src[p + 104 + (j & 3)]! >> (2 * (j >> 2))) & 3;
      scale[j] = d * ((low | (high << 4)) - 32);
    }
    const o = b * QK_K;
    for (let i = 0; i < QK_K; i++) {
      const n = i >> 7;
      const k = (i >> 5) & 3;
      const l = i & 31;
      const low = (src[p + 32 + 32 * n + l]! >> (2 * k)) & 3;
      const high = (src[p + l]! >> (4 * n + k)) & 1;
      out[o + i] = scale[i >> 4]! * (low - (high ? 0 : 4));
    }
  }
}

/**
 * Quantize: per 16-value sub-block a symmetric fit with levels -4..3 (weights |x|; ggml uses x²,
 * which gives ~4% more RMSE here), then signed 6-bit scales against d = max|scale| / 32 (the largest maps to -32).
 */
export function quantizeQ3_K(values: Float32Array, out: Uint8Array): void {
  const blocks = values.length / QK_K;
  for (let b = 0; b < blocks; b++) {
    const at = b * QK_K;
    const p = b * BYTES;
    let maxScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(values[o + l]!);
      subScales[ib] = fitSymmetric(values, o, 16, 4, weights);
      if (Math.abs(subScales[ib]!) > Math.abs(maxScale)) maxScale = subScales[ib]!;
    }
    const d = writeScale(out, p + 108, maxScale / -32 + 0, 'q3_k', b);
    const invD = d !== 0 ? 1 / d : 0;
    for (let ib = 0; ib < 16; ib++) {
      const sc = clamp(roundNearest(subScales[ib]! * invD), -32, 31);
      stored[ib] = sc + 32;
      const step = d * sc;
      const inv = step !== 0 ? 1 / step : 0;
      const o = at + 16 * ib;
      for (let l = 0; l < 16; l++) levels[16 * ib + l] = clamp(roundNearest(values[o + l]! * inv), -4, 3) + 4;
    }
    // Scales: low 4 bits in bytes 0..7 (low nibble for j < 8, high nibble for j - 8),
    // top 2 bits in bytes 8..11 (byte 8 + j%4, bit pair floor(j/4)).
    out.fill(0, p, p + 108);
    for (let j = 0; j < 16; j++) {
      const v = stored[j]!;
      const lowAt = p + 96 + (j & 7);
      out[lowAt] = out[lowAt]! | ((v & 0xf) << (j < 8 ? 0 : 4));
      const highAt = p + 104 + (j & 3);
      out[highAt] = out[highAt]! | ((v >> 4) << (2 * (j >> 2)));
    }
    for (let i = 0; i < QK_K; i++) {
      const n = i >> 7;
      const k = (i >> 5) & 3;
      const l = i & 31;
      const q = levels[i]!;
      out[p + 32 + 32 * n + l] = out[p + 32 + 32 * n + l]! | ((q & 3) << (2 * k));
      if (q & 4) out[p + l] = out[p + l]! | (1 << (4 * n + k));
    }
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
