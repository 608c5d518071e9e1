/**
 * smallMatmul through the native k-major kernel (a copy of an f32 weight in panels of 16 rows)
 * against the ref backend's matmul, on odd shapes: columns that are not a multiple of 16 or 32,
 * 1..129 inputs, 4..16 rows (passes of 8 and the rest); the kernel itself directly on more row counts. Prompt
 * rows (17-64) of a small weight: the same bits as the native matmul's GEMM; every row the same
 * bits alone as among others (what keeps speculative decoding's greedy tokens the same).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/generate/rng.js';
import { smallMatmul, transposedOf } from '../../src/nn/small-matmul.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';
import { type WeightMatrix, weightMatrix } from '../../src/tensor/tensor.js';
import { loadNativeAddon } from '../../src/tensor/native.js';
import type { Backend } from '../../src/tensor/backend.js';

const native = loadNativeBackend();
/** false where the addon lacks the kernel or the SIMD level has none (AVX-512 only). */
const has = native?.matmulKMajor?.(new Float32Array(1), new Float32Array(1), 1, new Float32Array(16), 1, 1) ?? false;
const skip = has ? false : 'no native matmulKMajor (addon or SIMD level)';

function random(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.nextFloat() * 2 - 1);
}

function close(actual: Float32Array, expected: Float32Array, k: number, what: string): void {
  assert.equal(actual.length, expected.length);
  const bound = 1e-5 * Math.sqrt(k) + 1e-6;
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i]! - expected[i]!) <= bound)) assert.fail(`${what}: element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('smallMatmul equals the ref matmul on odd shapes', { skip }, () => {
  const rng = new Rng(5);
  for (const [n, k] of [[1, 1], [15, 7], [17, 64], [33, 129], [48, 128], [100, 96], [1024, 128]] as const) {
    const w = weightMatrix('f32', n, k, new Uint8Array(random(rng, n * k).buffer));
    for (const m of [1, 4, 5, 8, 9, 13, 16, 17]) {
      const x = random(rng, m * k);
      const want = new Float32Array(m * n);
      refBackend.matmul(want, x, m, w);
      const got = new Float32Array(m * n + 3).fill(7);
      smallMatmul(native!, got.subarray(0, m * n), x, m, w);
      close(got.subarray(0, m * n), want, k, `n ${n} k ${k} m ${m}`);
      assert.deepEqual([...got.subarray(m * n)], [7, 7, 7], 'nothing written past the output');
    }
  }
});

test('matmulKMajor on every row count 1..17 against ref at each SIMD level, split across the pool for a large weight, and the panel copy zero padded', { skip }, () => {
  const rng = new Rng(9);
  const n = 37;
  const k = 21;
  const w = weightMatrix('f32', n, k, new Uint8Array(random(rng, n * k).buffer));
  const wt = transposedOf(w);
  assert.equal(wt.length, k * 48);
  // panels of 16 rows, each [k, 16]: row r, column c at panel(r) + c·16 + r % 16; past row n, zeros
  const values = new Float32Array(w.data.buffer, w.data.byteOffset, n * k);
  for (let r = 0; r < 48; r++) {
    for (let c = 0; c < k; c++) assert.equal(wt[Math.floor(r / 16) * 16 * k + c * 16 + (r % 16)], r < n ? values[r * k + c] : 0, `row ${r} column ${c}`);
  }
  // 1000 x 130 (520 KB): the AVX2 kernel splits its column tiles across the pool
  const large = weightMatrix('f32', 1000, 130, new Uint8Array(random(rng, 1000 * 130).buffer));
  const addon = loadNativeAddon();
  const start = addon.info().simd;
  let levels = 0;
  try {
    for (const level of ['avx512-vnni', 'avx2', 'scalar']) {
      if (addon.setSimd(level) !== level) continue;
      if (!native!.matmulKMajor!(new Float32Array(1), new Float32Array(1), 1, new Float32Array(16), 1, 1)) {
        assert.equal(level, 'scalar', `${level} has a k-major kernel`);
        continue;
      }
      levels++;
      const cases: [WeightMatrix, number][] = [...Array.from({ length: 17 }, (_, i): [WeightMatrix, number] => [w, i + 1]), [large, 8], [large, 13]];
      for (const [weight, m] of cases) {
        const x = random(rng, m * weight.cols);
        const want = new Float32Array(m * weight.rows);
        refBackend.matmul(want, x, m, weight);
        const got = new Float32Array(m * weight.rows + 3).fill(7);
        assert.equal(native!.matmulKMajor!(got, x, m, transposedOf(weight), weight.rows, weight.cols), true);
        close(got.subarray(0, m * weight.rows), want, weight.cols, `${level}: n ${weight.rows} m ${m}`);
        assert.deepEqual([...got.subarray(m * weight.rows)], [7, 7, 7], 'nothing written past the output');
      }
    }
  } finally {
    addon.setSimd(start);
  }
  assert.ok(levels > 0);
});

test('matmulKMajor rejects arrays too short for m, n, k and a negative count', { skip }, () => {
  const [m, n, k] = [4, 20, 8];
  const ok = () => ({ out: new Float32Array(m * n), x: new Float32Array(m * k), wt: new Float32Array(k * 32) });
  const { out, x, wt } = ok();
  assert.throws(() => native!.matmulKMajor!(out.subarray(1), x, m, wt, n, k), /out/);
  assert.throws(() => native!.matmulKMajor!(out, x.subarray(1), m, wt, n, k), /x/);
  assert.throws(() => native!.matmulKMajor!(out, x, m, wt.subarray(0, k * n), n, k), /wt/); // n padded to 32 columns
  assert.throws(() => native!.matmulKMajor!(out, x, -1, wt, n, k), /m must be a non-negative integer/);
  assert.equal(native!.matmulKMajor!(out, x, m, wt, n, k), true);
});

test('smallMatmul: 1-16 rows of a weight up to 1M values and 17-64 rows of one up to 64K take the k-major kernel; the bits of the native GEMM past 16 rows; each row the same bits alone as among m rows', { skip }, () => {
  const rng = new Rng(12);
  let kMajorCalls = 0;
  const kMajor = native!.matmulKMajor!.bind(native);
  const counting: Backend = { ...native!, matmulKMajor: (out, x, m, wt, n, k) => {
    kMajorCalls++;
    return kMajor(out, x, m, wt, n, k);
  } };
  for (const [n, k] of [[1, 5], [31, 17], [96, 128], [129, 300], [200, 64], [300, 200], [1024, 128]] as const) {
    const w = weightMatrix('f32', n, k, new Uint8Array(random(rng, n * k).buffer));
    for (const m of [1, 2, 3, 4, 8, 16, 17, 23, 40, 64, 65]) {
      const x = random(rng, m * k);
      const want = new Float32Array(m * n);
      native!.matmul(want, x, m, w);
      const ref = new Float32Array(m * n);
      refBackend.matmul(ref, x, m, w);
      const before = kMajorCalls;
      const got = new Float32Array(m * n + 2).fill(7);
      smallMatmul(counting, got.subarray(0, m * n), x, m, w);
      const expectKMajor = m <= 16 || (m <= 64 && n * k <= 1 << 16);
      assert.equal(kMajorCalls > before, expectKMajor, `n ${n} k ${k} m ${m}: k-major kernel used`);
      close(got.subarray(0, m * n), ref, k, `n ${n} k ${k} m ${m}`);
      if (m > 16) assert.deepEqual(got.subarray(0, m * n), want, `n ${n} k ${k} m ${m}: the bits of matmul`);
      assert.deepEqual([...got.subarray(m * n)], [7, 7], 'nothing written past the output');
      if (m > 64) continue;
      for (const row of [0, m - 1, m >> 1]) {
        const alone = new Float32Array(n);
        smallMatmul(native!, alone, x.subarray(row * k, (row + 1) * k), 1, w);
        assert.deepEqual(alone, got.subarray(row * n, (row + 1) * n), `n ${n} k ${k} m ${m}: row ${row} alone differs from the same row among ${m}`);
      }
    }
  }
});
