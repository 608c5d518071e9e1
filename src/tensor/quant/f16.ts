/**
 * IEEE binary16 (ggml_half): scalar conversions, a 65536-entry decode table, and array codecs.
 * Encoding rounds to nearest, ties to even; overflow gives ±inf, NaN stays NaN (quiet).
 * A JavaScript number is first rounded to float32; that double rounding is harmless for a
 * 11-bit target (24 >= 2*11 + 2), so the result is the correctly rounded binary16.
 */
import { f32Bits, shiftRoundEven } from './bits.js';

/** Decode by formula (used to build the table; exact). */
function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** F16_TABLE[bits] is the float value of the binary16 pattern `bits`. */
export const F16_TABLE: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let b = 0; b < 65536; b++) table[b] = decodeF16(b);
  return table;
})();

export function f16ToF32(bits: number): number {
  return F16_TABLE[bits & 0xffff]!;
}

export function f32ToF16(value: number): number {
  return f32BitsToF16(f32Bits(value));
}

/** binary16 bits of the float32 with bit pattern `x` (round to nearest even). */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // binary16 subnormal (or zero): value / 2^-24, rounded.
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal (or an f32 subnormal)
    return sign | shiftRoundEven(mant | 0x800000, shift);
  }
  // Normal: a carry out of the mantissa correctly bumps the exponent (up to inf).
  return sign | shiftRoundEven((e << 23) | mant, 13);
}

/** Decode `count` little-endian binary16 values starting at src[0] into out[0..count). */
export function dequantizeF16(src: Uint8Array, count: number, out: Float32Array): void {
  const table = F16_TABLE;
  if ((src.byteOffset & 1) === 0) {
    const halves = new Uint16Array(src.buffer, src.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = table[halves[i]!]!;
    return;
  }
  for (let i = 0, p = 0; i < count; i++, p += 2) out[i] = table[src[p]! | (src[p + 1]! << 8)]!;
}

/** `out` must be freshly allocated (its byteOffset even) and hold 2 bytes per value. */
export function quantizeF16(values: Float32Array, out: Uint8Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const halves = new Uint16Array(out.buffer, out.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) halves[i] = f32BitsToF16(bits[i]!);
}
