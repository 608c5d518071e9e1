/** Shared scratch views for reinterpreting float32 bits (module-private, no per-call allocation). */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The IEEE binary32 bit pattern of `value` (first rounded to float32), as an unsigned integer. */
export function f32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

/** The float32 whose bit pattern is `bits` (low 32 bits used). */
export function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/**
 * Round `full >>> shift` to nearest, ties to even (0 < shift <= 30). Used by the narrowing
 * float conversions for both normal and subnormal results.
 */
export function shiftRoundEven(full: number, shift: number): number {
  const kept = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** Little-endian u32 fields inside block bytes. */
export function readU32(src: Uint8Array, at: number): number {
  return (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;
}

export function writeU32(out: Uint8Array, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = value >>> 24;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('frugal quant: typed-array fast paths assume a little-endian host');
}

/**
 * Round to the nearest integer, halves away from zero, for |y| < 2^31 (every quantizer's
 * input here is bounded well below that). Much faster than Math.round in V8's hot loops.
 */
export function roundNearest(y: number): number {
  return y >= 0 ? (y + 0.5) | 0 : -((0.5 - y) | 0);
}
