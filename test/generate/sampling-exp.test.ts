/**
 * The native expShifted (the sampler's softmax weights, native/src/fdlibm_exp.h) must equal
 * Math.exp((z - shift) · scale) bit for bit, so that seeded sampling draws the same tokens with
 * and without the addon: random logits at several temperatures, and arguments in every branch of
 * fdlibm's exp (tiny, near ±ln 2, reduced, underflow, overflow, ±Infinity, NaN), at each SIMD
 * level the CPU has (8 lanes on AVX-512, 4 on AVX2, one at a time below).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/generate/rng.js';
import { BUCKETS, argmaxLogits, expShifted as expShiftedJs, softmaxBuckets } from '../../src/generate/sampling.js';
import { loadNativeBackend } from '../../src/tensor/index.js';
import { loadNativeAddon } from '../../src/tensor/native.js';

const native = loadNativeBackend();
const skip = native?.expShifted ? false : 'native addon without expShifted';

/** Runs body at each SIMD level the CPU has, then restores the level. */
function atEachLevel(body: () => void): void {
  const addon = loadNativeAddon();
  const start = addon.info().simd;
  try {
    for (const level of ['avx512-vnni', 'avx512', 'avx2', 'scalar']) if (addon.setSimd(level) === level) body();
  } finally {
    addon.setSimd(start);
  }
}

function assertSameAsMathExp(z: Float32Array, shift: number, scale: number): void {
  const out = new Float64Array(z.length + 1).fill(-1);
  native!.expShifted!(out, z, z.length, shift, scale);
  for (let i = 0; i < z.length; i++) {
    const want = Math.exp((z[i]! - shift) * scale);
    if (!Object.is(out[i], want)) assert.fail(`z ${z[i]}, shift ${shift}, scale ${scale}: native ${out[i]} vs Math.exp ${want}`);
  }
  assert.equal(out[z.length], -1, 'nothing written past n');
}

test('expShifted equals Math.exp on random logits at several temperatures', { skip }, () => {
  atEachLevel(() => {
    const rng = new Rng(7);
    for (const spread of [0.01, 1, 8, 40, 300]) {
      const z = Float32Array.from({ length: 1021 }, () => (rng.nextFloat() * 2 - 1) * spread);
      let max = -Infinity;
      for (const v of z) max = Math.max(max, v);
      for (const temperature of [1, 0.7, 0.05, 1.3, 1e-3]) assertSameAsMathExp(z, max, 1 / temperature);
    }
  });
});

test('expShifted equals Math.exp in every branch of the exp', { skip }, () => {
  const ln2 = Math.LN2;
  const xs = [0, -0, 1, -1, 1e-9, -1e-9, 2 ** -30, 0.3 * ln2, 0.5 * ln2, 0.51 * ln2, -0.9 * ln2, 1.49 * ln2, -1.51 * ln2, 1.5 * ln2,
    -3, 3, -20.5, 20.5, -700, 700, 709.7, 709.8, -745.1, -745.2, -744, -708.5, -709.5, -800, 800, Infinity, -Infinity, NaN];
  const rng = new Rng(11);
  for (let i = 0; i < 4000; i++) xs.push((rng.nextFloat() * 2 - 1) * 760);
  atEachLevel(() => {
    assertSameAsMathExp(Float32Array.from(xs), 0, 1);
    assertSameAsMathExp(Float32Array.from(xs), 0.25, 1.75);
  });
});

test('expShifted rejects n beyond its arrays and a negative n', { skip }, () => {
  assert.throws(() => native!.expShifted!(new Float64Array(4), new Float32Array(8), 8, 0, 1), /need n = 8/);
  assert.throws(() => native!.expShifted!(new Float64Array(8), new Float32Array(4), 8, 0, 1), /need n = 8/);
  assert.throws(() => native!.expShifted!(new Float64Array(8), new Float32Array(8), -1, 0, 1), /n must be a non-negative integer/);
});

test('softmaxBuckets gives the bits of the JavaScript loops: weights, buckets, masses and total, with -Infinity, equal logits and huge vocabularies', { skip: native?.softmaxBuckets ? false : 'native addon without softmaxBuckets' }, () => {
  atEachLevel(() => {
    const rng = new Rng(11);
    const cases: Float32Array[] = [
      Float32Array.from({ length: 1024 }, () => (rng.nextFloat() - 0.5) * 30),
      Float32Array.from({ length: 151_937 }, () => (rng.nextFloat() - 0.5) * 12 + (rng.nextFloat() < 0.001 ? 15 : 0)),
      Float32Array.from({ length: 77 }, (_, i) => (i % 5 === 0 ? -Infinity : Math.fround(rng.nextFloat() * 4))),
      new Float32Array(33).fill(2.5),
      Float32Array.of(1, -Infinity, -Infinity),
    ];
    for (const z of cases) {
      let m = -Infinity;
      for (const v of z) if (v > m) m = v;
      for (const invT of [1, 1 / 0.6, 1 / 1.7, 50]) {
        const n = z.length;
        const want = { full: new Float64Array(n), bucket: new Uint16Array(n), mass: new Float64Array(BUCKETS + 1) };
        const wantTotal = softmaxBuckets(want.full, z, n, m, invT, want.bucket, want.mass);
        const got = { full: new Float64Array(n + 1).fill(-1), bucket: new Uint16Array(n + 1).fill(7), mass: new Float64Array(BUCKETS + 1).fill(3) };
        const total = native!.softmaxBuckets!(got.full, z, n, m, invT, BUCKETS, got.bucket, got.mass);
        const what = `vocabulary ${n}, 1/T ${invT}`;
        assert.ok(Object.is(total, wantTotal), `${what}: total ${total} vs ${wantTotal}`);
        assert.deepEqual(got.full.subarray(0, n), want.full, `${what}: weights`);
        assert.deepEqual(got.bucket.subarray(0, n), want.bucket, `${what}: buckets`);
        assert.deepEqual(got.mass, want.mass, `${what}: masses`);
        assert.equal(got.full[n], -1, 'nothing written past n');
        assert.equal(got.bucket[n], 7, 'nothing written past n');
      }
    }
  });
  assert.throws(() => native!.softmaxBuckets!(new Float64Array(8), new Float32Array(8), 8, 0, 1, BUCKETS, new Uint16Array(4), new Float64Array(BUCKETS + 1)), /bucket needs 8/);
  assert.throws(() => native!.softmaxBuckets!(new Float64Array(8), new Float32Array(8), 8, 0, 1, BUCKETS, new Uint16Array(8), new Float64Array(BUCKETS)), /mass needs 1025/);
});

test('argmaxLogits equals the JavaScript loop: first of equal maxima, the first NaN, all -Infinity, +Infinity, empty', { skip: native?.argmaxLogits ? false : 'native addon without argmaxLogits' }, () => {
  const rng = new Rng(13);
  const random = Float32Array.from({ length: 152_064 }, () => (rng.nextFloat() - 0.5) * 20);
  const ties = Float32Array.from({ length: 100 }, (_, i) => (i % 7 === 3 ? 5 : 1));
  const nan = Float32Array.from({ length: 50 }, (_, i) => (i === 20 || i === 30 ? NaN : i));
  const nanAfterMax = Float32Array.of(1, 9, 2, NaN, 3);
  const banned = new Float32Array(9).fill(-Infinity);
  const infinite = Float32Array.of(1, Infinity, 2);
  for (const z of [random, ties, nan, nanAfterMax, banned, infinite, new Float32Array(0), Float32Array.of(-3)]) {
    assert.equal(native!.argmaxLogits!(z, z.length), argmaxLogits(z, z.length), `length ${z.length}`);
  }
  assert.equal(argmaxLogits(ties, 100), 3);
  assert.equal(argmaxLogits(nan, 50), -22);
  assert.equal(argmaxLogits(banned, 9), -1);
  assert.throws(() => native!.argmaxLogits!(new Float32Array(4), 5), /z needs 5/);
});

test('expShifted returns the sum in index order and, with a prefix array, the running sum at the end of every 64-entry block', { skip }, () => {
  atEachLevel(() => {
    const rng = new Rng(17);
    for (const n of [1, 63, 64, 65, 1000, 152_064]) {
      const z = Float32Array.from({ length: n }, () => (rng.nextFloat() - 0.5) * 24);
      const out = new Float64Array(n);
      const prefix = new Float64Array(Math.ceil(n / 64) + 1).fill(-1);
      const total = native!.expShifted!(out, z, n, 3, 1.3, prefix);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += out[i]!;
        if (i % 64 === 63 || i === n - 1) assert.ok(Object.is(prefix[Math.floor(i / 64)], sum), `n ${n}: prefix ${Math.floor(i / 64)}`);
      }
      assert.ok(Object.is(total, sum), `n ${n}: total ${total} vs ${sum}`);
      assert.equal(prefix[Math.ceil(n / 64)], -1, 'nothing written past the last block');
      // the JavaScript fallback (what the sampler uses without the addon) gives the same bits
      const jsOut = new Float64Array(n);
      const jsPrefix = new Float64Array(Math.ceil(n / 64) + 1).fill(-1);
      assert.ok(Object.is(expShiftedJs(jsOut, z, n, 3, 1.3, jsPrefix), total), `n ${n}: the fallback's total`);
      assert.deepEqual(jsOut, out, `n ${n}: the fallback's weights`);
      assert.deepEqual(jsPrefix, prefix, `n ${n}: the fallback's running sums`);
      assert.ok(Object.is(native!.expShifted!(out, z, n, 3, 1.3), sum), 'the same total without a prefix array');
    }
  });
  assert.throws(() => native!.expShifted!(new Float64Array(130), new Float32Array(130), 130, 0, 1, new Float64Array(2)), /prefix needs 3/);
});
