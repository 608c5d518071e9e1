/** Little-endian binary16 fields inside block bytes. */
import { F16_TABLE, f32ToF16 } from './f16.js';

export function readHalf(src: Uint8Array, at: number): number {
  return F16_TABLE[src[at]! | (src[at + 1]! << 8)]!;
}

/**
 * Store a block scale as binary16 at `at` and return the stored value as decoded (what
 * dequantize will see). Throws when the scale does not fit in binary16 (values too large
 * for the format), naming the format and block.
 */
export function writeScale(out: Uint8Array, at: number, value: number, format: string, block: number): number {
  const h = f32ToF16(value);
  const stored = F16_TABLE[h]!;
  if (!Number.isFinite(stored)) {
    throw new Error(`${format} quantize: block ${block} needs scale ${value}, beyond the f16 range (values too large)`);
  }
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
  return stored;
}
