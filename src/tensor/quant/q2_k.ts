/**
 * Q2_K (84 bytes / 256 values, dequantize only): @0 u8 scales[16] | @16 u8 qs[64] | @80 f16 d | @82 f16 dmin.
 * Sixteen sub-blocks of 16 (sub-block = element index / 16); scales[i] low nibble is the scale,
 * high nibble the min. For half n (128 values, q = qs + 32n) and shift j in 0..3 (2 bits each):
 * y[128n+32j+l] = d*sc*((q[l] >> 2j) & 3) - dmin*mn for l in 0..31 (q[l] for l < 16 and
 * q[16..31] for the next sub-block).
 */
import { readHalf } from './half.js';

const QK_K = 256;
const BYTES = 84;

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
