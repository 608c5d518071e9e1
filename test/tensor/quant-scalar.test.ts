// Scalar float conversions (f16, bf16, fp8 e4m3fn) against independent formula-based decoders
// and brute-force nearest-value encoders written here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, f32ToFp8E4M3, fp8E4M3ToF32,
} from '../../src/tensor/quant/index.js';

const view = new DataView(new ArrayBuffer(4));
function f32FromBits(bits: number): number {
  view.setUint32(0, bits >>> 0);
  return view.getFloat32(0);
}
function bitsOfF32(value: number): number {
  view.setFloat32(0, value);
  return view.getUint32(0);
}
/** The next float32 above (dir=1) or below (dir=-1) a positive float32. */
function nextF32(value: number, dir: 1 | -1): number {
  return f32FromBits(bitsOfF32(value) + dir);
}

function refF16(bits: number): number {
  const sign = bits >> 15 ? -1 : 1;
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  if (e === 31) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * Math.pow(2, -14) * (m / 1024);
  return sign * Math.pow(2, e - 15) * (1 + m / 1024);
}

function refFp8(byte: number): number {
  const sign = byte >> 7 ? -1 : 1;
  const e = (byte >> 3) & 15;
  const m = byte & 7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * Math.pow(2, -6) * (m / 8);
  return sign * Math.pow(2, e - 7) * (1 + m / 8);
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Brute-force round to nearest, ties to the even code, over an ascending list of the
 * non-negative finite values of a format (codes 0..n-1 in order).
 */
function nearestCode(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  if (x >= sorted[hi]!) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const dLo = x - sorted[lo]!;
  const dHi = sorted[hi]! - x;
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return lo % 2 === 0 ? lo : hi;
}

test('f16 decode matches the formula for all 65536 patterns, and encode inverts it', () => {
  for (let b = 0; b < 65536; b++) {
    const v = f16ToF32(b);
    const ref = refF16(b);
    if (Number.isNaN(ref)) {
      assert.ok(Number.isNaN(v), `bits ${b.toString(16)} should be NaN`);
      const back = f32ToF16(v);
      assert.equal(back & 0x7c00, 0x7c00, 'NaN encodes with an all-ones exponent');
      assert.notEqual(back & 0x3ff, 0, 'NaN keeps a non-zero mantissa');
      continue;
    }
    assert.equal(v, ref, `bits ${b.toString(16)}`);
    assert.equal(f32ToF16(v), b, `round trip of bits ${b.toString(16)} (${v})`);
  }
});

test('f16 encode rounds to nearest even at every midpoint, and to nearest just beside it', () => {
  for (let b = 0; b < 0x7bff; b++) {
    const a = refF16(b);
    const c = refF16(b + 1);
    const mid = (a + c) / 2; // exactly representable in float32
    assert.equal(Math.fround(mid), mid);
    const even = b % 2 === 0 ? b : b + 1;
    assert.equal(f32ToF16(mid), even, `tie between ${b.toString(16)} and ${(b + 1).toString(16)}`);
    assert.equal(f32ToF16(-mid), even | 0x8000, 'negative tie');
    if (mid > 0) {
      assert.equal(f32ToF16(nextF32(mid, -1)), b, 'just below the midpoint');
      assert.equal(f32ToF16(nextF32(mid, 1)), b + 1, 'just above the midpoint');
    }
  }
});

test('f16 overflow, infinities, zeros and subnormals', () => {
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65519.99), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00, 'the tie above the largest finite rounds to inf');
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(-1e6), 0xfc00);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(0), 0);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(2 ** -24), 1, 'smallest subnormal');
  assert.equal(f32ToF16(2 ** -25), 0, 'half the smallest subnormal ties to zero');
  assert.equal(f32ToF16(2 ** -25 * 1.0001), 1);
  assert.equal(f32ToF16(3 * 2 ** -25), 2, '1.5 ulp ties to even 2');
  assert.equal(f32ToF16(2 ** -14 - 2 ** -25), 0x400, 'largest-subnormal tie rounds up into the normals');
  assert.equal(f32ToF16(1e-30), 0);
  assert.equal(f32ToF16(-1e-45), 0x8000, 'float32 subnormal input');
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
});

test('f16 encode equals brute-force nearest-even over random float32 inputs', () => {
  const positive: number[] = [];
  for (let b = 0; b <= 0x7bff; b++) positive.push(refF16(b));
  const rand = seeded(7);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround(Math.pow(2, -27 + rand() * 44) * (1 + rand()));
    const expected = x > 65520 || x === 65520 ? 0x7c00 : nearestCode(positive, x);
    assert.equal(f32ToF16(x), expected, `x = ${x}`);
    assert.equal(f32ToF16(-x), expected | 0x8000, `x = ${-x}`);
  }
});

test('bf16 decode is the top half of float32 for all 65536 patterns, and encode inverts it', () => {
  for (let b = 0; b < 65536; b++) {
    const v = bf16ToF32(b);
    const ref = f32FromBits(b << 16);
    if (Number.isNaN(ref)) {
      assert.ok(Number.isNaN(v));
      const back = f32ToBf16(v);
      assert.ok(Number.isNaN(bf16ToF32(back)), 'NaN stays NaN');
      continue;
    }
    assert.equal(v, ref);
    assert.equal(f32ToBf16(v), b, `round trip of bf16 ${b.toString(16)}`);
  }
});

test('bf16 encode is nearest-even, by value, for random float32 bit patterns and exact ties', () => {
  const rand = seeded(11);
  for (let i = 0; i < 50000; i++) {
    const bits = Math.floor(rand() * 4294967296) >>> 0;
    const x = f32FromBits(bits);
    const got = f32ToBf16(x);
    if (Number.isNaN(x)) {
      assert.ok(Number.isNaN(bf16ToF32(got)), 'NaN must stay NaN (not become inf)');
      assert.equal(got >> 15, bits >>> 31, 'NaN keeps its sign');
      continue;
    }
    const below = bits >>> 16;
    const lowerV = f32FromBits(below << 16);
    let upperV = f32FromBits(((below + 1) & 0xffff) << 16);
    // Past the largest finite value, IEEE rounding treats infinity as if it sat at 2^128.
    if (!Number.isFinite(upperV)) upperV = Math.sign(upperV) * 2 ** 128;
    const dLo = Math.abs(x - lowerV);
    const dHi = Math.abs(upperV - x);
    let expected: number;
    if ((bits & 0x7f800000) === 0x7f800000) expected = below; // infinities
    else if (dLo < dHi) expected = below;
    else if (dHi < dLo) expected = (below + 1) & 0xffff;
    else expected = below % 2 === 0 ? below : below + 1;
    assert.equal(got, expected, `bits ${bits.toString(16)}`);
  }
  assert.equal(f32ToBf16(f32FromBits(0x3f808000)), 0x3f80, 'tie to even (down)');
  assert.equal(f32ToBf16(f32FromBits(0x3f818000)), 0x3f82, 'tie to even (up)');
  assert.equal(f32ToBf16(f32FromBits(0x7f7fffff)), 0x7f80, 'max float32 rounds to inf');
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(f32FromBits(0x7f800001)))), 'signalling NaN with low payload stays NaN');
});

test('fp8 e4m3fn decode matches the formula for all 256 patterns, and encode inverts it', () => {
  let nans = 0;
  for (let b = 0; b < 256; b++) {
    const v = fp8E4M3ToF32(b);
    const ref = refFp8(b);
    if (Number.isNaN(ref)) {
      nans++;
      assert.ok(Number.isNaN(v));
      assert.equal(f32ToFp8E4M3(v) & 0x7f, 0x7f, 'NaN encodes as 0x7F/0xFF');
      continue;
    }
    assert.equal(v, ref, `byte ${b.toString(16)}`);
    assert.equal(f32ToFp8E4M3(v), b, `round trip of byte ${b.toString(16)} (${v})`);
  }
  assert.equal(nans, 2, 'only 0x7F and 0xFF are NaN');
  assert.equal(fp8E4M3ToF32(0x7e), 448);
  assert.equal(fp8E4M3ToF32(0x78), 256, 'exponent 15 is a normal binade (no infinities)');
  assert.equal(fp8E4M3ToF32(0x01), 2 ** -9);
  assert.equal(fp8E4M3ToF32(0x08), 2 ** -6);
  assert.equal(fp8E4M3ToF32(0x38), 1);
});

test('fp8 encode: nearest-even ties, saturation at 448, infinities and subnormals', () => {
  for (let b = 0; b < 0x7e; b++) {
    const mid = (refFp8(b) + refFp8(b + 1)) / 2;
    const even = b % 2 === 0 ? b : b + 1;
    assert.equal(f32ToFp8E4M3(mid), even, `tie between ${b} and ${b + 1}`);
    assert.equal(f32ToFp8E4M3(-mid), even | 0x80);
    if (mid > 0) {
      assert.equal(f32ToFp8E4M3(nextF32(mid, -1)), b);
      assert.equal(f32ToFp8E4M3(nextF32(mid, 1)), b + 1);
    }
  }
  for (const x of [448, 449, 464, 465, 480, 500, 1e4, 3e38]) {
    assert.equal(f32ToFp8E4M3(x), 0x7e, `${x} saturates to 448`);
    assert.equal(f32ToFp8E4M3(-x), 0xfe, `${-x} saturates to -448`);
  }
  assert.ok(Number.isNaN(fp8E4M3ToF32(f32ToFp8E4M3(Infinity))), 'inf has no E4M3FN code: NaN');
  assert.ok(Number.isNaN(fp8E4M3ToF32(f32ToFp8E4M3(-Infinity))));
  assert.ok(Number.isNaN(fp8E4M3ToF32(f32ToFp8E4M3(NaN))));
  assert.equal(f32ToFp8E4M3(2 ** -9), 0x01, 'smallest subnormal');
  assert.equal(f32ToFp8E4M3(2 ** -10), 0x00, 'half the smallest subnormal ties to zero');
  assert.equal(f32ToFp8E4M3(3 * 2 ** -10), 0x02, '1.5 ulp ties to even');
  assert.equal(f32ToFp8E4M3(7.5 * 2 ** -9), 0x08, 'largest-subnormal tie rounds up to 2^-6');
  assert.equal(f32ToFp8E4M3(-0), 0x80);
  assert.equal(f32ToFp8E4M3(1e-20), 0);
});

test('fp8 encode equals brute-force nearest-even over random inputs', () => {
  const positive: number[] = [];
  for (let b = 0; b <= 0x7e; b++) positive.push(refFp8(b));
  const rand = seeded(3);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround(Math.pow(2, -12 + rand() * 22) * (1 + rand()));
    const expected = nearestCode(positive, x);
    assert.equal(f32ToFp8E4M3(x), expected, `x = ${x}`);
    assert.equal(f32ToFp8E4M3(-x), expected | 0x80, `x = ${-x}`);
  }
});
