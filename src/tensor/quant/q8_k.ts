/**
 * Q8_K (292 bytes / 256 values, dequantize only): @0 f32 d | @4 i8 qs[256] | @260 i16 bsums[16]; y = d * qs.
 * An intermediate format of ggml's dot products, included for completeness.
 */
import { bitsToF32, readU32 } from './bits.js';

const QK_K = 256;
const BYTES = 292;

export function dequantizeQ8_K(src: Uint8Array, blocks: number, out: Float32Array): void {
  for (let b = 0; b < blocks; b++) {
    const p = b * BYTES;
    const d = bitsToF32(readU32(src, p));
    const o = b * QK_K;
    for (let j = 0; j < QK_K; j++) out[o + j] = ((src[p + 4 + j]! << 24) >> 24) * d;
  }
}
