/**
 * FP8 E4M3 in the OCP "FN" variant (PyTorch float8_e4m3fn): 1 sign, 4 exponent (bias 7) and
 * 3 mantissa bits, no infinities, 0x7F/0xFF are NaN, largest finite ±448, subnormals m·2^-9.
 * Encoding rounds to nearest, ties to even; finite values beyond ±448 saturate to ±448; NaN
 * and ±infinity give NaN (0x7F, with the sign bit of the input).
 */
import { f32Bits, shiftRoundEven } from './bits.js';

export const FP8_E4M3_MAX = 448;

function decodeFp8(byte: number): number {
  const sign = byte & 0x80 ? -1 : 1;
  const exp = (byte >> 3) & 0xf;
  const mant = byte & 7;
  if (exp === 15 && mant === 7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (8 + mant) * 2 ** (exp - 10);
}

/** FP8_TABLE[byte] is the float value of the E4M3FN pattern `byte`. */
export const FP8_TABLE: Float32Array = (() => {
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) table[b] = decodeFp8(b);
  return table;
})();

export function fp8E4M3ToF32(byte: number): number {
  return FP8_TABLE[byte & 0xff]!;
}

export function f32ToFp8E4M3(value: number): number {
  return f32BitsToFp8E4M3(f32Bits(value));
}

/** E4M3FN byte of the float32 with bit pattern `x`. */
export function f32BitsToFp8E4M3(x: number): number {
  const sign = (x >>> 24) & 0x80;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7f; // NaN or infinity: E4M3FN has no infinity
  const e = exp - 120; // rebias 127 -> 7
  if (e >= 16) return sign | 0x7e; // far beyond range: saturate
  if (e <= 0) {
    const shift = 21 - e; // subnormal: value / 2^-9, rounded
    if (shift > 24) return sign;
    return sign | shiftRoundEven(mant | 0x800000, shift);
  }
  const code = shiftRoundEven((e << 23) | mant, 20);
  return sign | (code > 0x7e ? 0x7e : code);
}

/** Decode `count` raw E4M3 bytes (no scale) into out[0..count). */
export function dequantizeFp8(src: Uint8Array, count: number, out: Float32Array): void {
  const table = FP8_TABLE;
  for (let i = 0; i < count; i++) out[i] = table[src[i]!]!;
}

/** Encode values as raw E4M3 bytes (no scale). */
export function quantizeFp8(values: Float32Array, out: Uint8Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToFp8E4M3(bits[i]!);
}
