/**
 * bfloat16: the top 16 bits of a float32. Encoding rounds to nearest, ties to even; NaN stays
 * a (quiet) NaN with its sign; values past the largest finite bf16 round to ±inf.
 */
import { bitsToF32, f32Bits } from './bits.js';

export function bf16ToF32(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

export function f32ToBf16(value: number): number {
  return f32BitsToBf16(f32Bits(value));
}

/** bf16 bits of the float32 with bit pattern `x` (round to nearest even, NaN kept NaN). */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decode `count` little-endian bf16 values starting at src[0] into out[0..count). */
export function dequantizeBf16(src: Uint8Array, count: number, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, count);
  for (let i = 0, p = 0; i < count; i++, p += 2) bits[i] = (src[p]! << 16) | (src[p + 1]! << 24);
}

/** `out` must be freshly allocated (its byteOffset even) and hold 2 bytes per value. */
export function quantizeBf16(values: Float32Array, out: Uint8Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const halves = new Uint16Array(out.buffer, out.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) halves[i] = f32BitsToBf16(bits[i]!);
}
