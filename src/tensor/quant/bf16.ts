/**
 * bfloat16: the top 16 bits of a float32. Encoding rounds to nearest, ties to even; NaN stays
 * a (quiet) NaN with its sign; values past the largest finite bf16 round to ±inf.
 */
import { bitsToF32, f32Bits } from './bits.js';

export function bf16ToF32(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

export function f32ToBf16(value: number): number {
  const x = f32Bits(value);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode `count` little-endian bf16 values starting at src[0] into out[0..count). */
export function dequantizeBf16(src: Uint8Array, count: number, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, count);
  for (let i = 0, p = 0; i < count; i++, p += 2) bits[i] = (src[p]! << 16) | (src[p + 1]! << 24);
}

export function quantizeBf16(values: Float32Array, out: Uint8Array): void {
  for (let i = 0, p = 0; i < values.length; i++, p += 2) {
    const h = f32ToBf16(values[i]!);
    out[p] = h & 0xff;
    out[p + 1] = h >>> 8;
  }
}
