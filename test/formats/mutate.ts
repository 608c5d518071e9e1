import { prng } from './helpers.js';

const EXTREME_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe];
const EXTREME_U64 = [0n, 1n, 2n, 7n, 31n, 32n, 255n, 4096n, 1n << 31n, 1n << 32n, (1n << 32n) - 1n, 1n << 53n, 1n << 62n, 1n << 63n, (1n << 64n) - 1n];

/**
 * A corrupted copy of `base`: one to three random mutations (bit flips, extreme bytes or 64-bit
 * values, truncation, insertion, deletion, duplicated ranges).
 */
export function mutate(base: Uint8Array, rand: () => number): Uint8Array {
  let bytes: Uint8Array = Uint8Array.from(base);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const pos = (n = bytes.length) => Math.floor(rand() * Math.max(1, n));
  const mutations = 1 + Math.floor(rand() * 3);
  for (let m = 0; m < mutations; m++) {
    const kind = Math.floor(rand() * 7);
    if (kind === 0) {
      const i = pos();
      if (i < bytes.length) bytes[i]! ^= 1 << Math.floor(rand() * 8);
    } else if (kind === 1) {
      const i = pos();
      if (i < bytes.length) bytes[i] = pick(EXTREME_BYTES);
    } else if (kind === 2) {
      const i = pos(bytes.length - 7);
      let v = pick(EXTREME_U64);
      if (rand() < 0.3) v = BigInt(bytes.length + Math.floor(rand() * 16) - 8) & ((1n << 64n) - 1n);
      for (let b = 0; b < 8 && i + b < bytes.length; b++) bytes[i + b] = Number((v >> BigInt(8 * b)) & 0xffn);
    } else if (kind === 3) {
      bytes = bytes.subarray(0, pos(bytes.length + 1));
    } else if (kind === 4) {
      const i = pos(bytes.length + 1);
      const extra = Uint8Array.from({ length: 1 + Math.floor(rand() * 16) }, () => Math.floor(rand() * 256));
      bytes = concat(bytes.subarray(0, i), extra, bytes.subarray(i));
    } else if (kind === 5) {
      const i = pos();
      const n = 1 + Math.floor(rand() * 16);
      bytes = concat(bytes.subarray(0, i), bytes.subarray(Math.min(bytes.length, i + n)));
    } else {
      const i = pos();
      const n = 1 + Math.floor(rand() * 32);
      bytes = concat(bytes.subarray(0, i), bytes.subarray(i, i + n), bytes.subarray(i));
    }
  }
  return bytes;
}

/** The parts one after another in one array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export { prng };
