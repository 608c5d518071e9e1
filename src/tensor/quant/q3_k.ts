/**
 * Q3_K (110 bytes / 256 values, dequantize only): @0 u8 hmask[32] | @32 u8 qs[64] | @96 u8 scales[12] | @108 f16 d.
 * Sixteen sub-blocks of 16 (sub-block = element index / 16) with 6-bit scales stored minus 32:
 * sub-block j takes its low 4 bits from scales[j] (j < 8, low nibble) or scales[j-8] (high
 * nibble), and its top 2 bits from scales[8 + j%4] >> (2*floor(j/4)).
 * Element i = 128n + 32k + l (l in 0..31): q = ((qs[32n+l] >> 2k) & 3) - (hmask[l] bit (4n+k) ? 0 : 4),
 * y = d * (scale - 32) * q.
 */
import { readHalf } from './half.js';

const QK_K = 256;
const BYTES = 110;

const scale = new Float32Array(16);

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
