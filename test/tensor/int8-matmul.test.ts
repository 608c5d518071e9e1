// The int8-activation matmul: at the AVX-512 VNNI level, for prefill-shaped products
// (native/src/gemm_int8.h: Q4_0, Q5_0, Q8_0, IQ4_NL, Q5_1 (x as q8_0) and Q4_K, Q6_K, Q3_K, Q2_K,
// IQ4_XS (x as q8_K) weights, m > 16 rows of x) and the Q4_0, Q8_0, IQ4_NL, Q5_1 (q8_0) and Q4_K,
// Q6_K, Q3_K, Q2_K, IQ4_XS (q8_K) small-m kernels (m <= 16; native/src/matvec_vnni.h); at the AVX2
// level, Q4_0, Q5_0, Q8_0, IQ4_NL (q8_0), Q4_1, Q5_1 (q8_1) and Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS
// (q8_K) for any m (native/src/matvec_int8_avx2.h, 16
// rows at a time). All round x as ggml's q8_0 / q8_K; the default on both levels (FRUGAL_INT8=0
// turns it off). Tolerances:
//  - against the exact same math (ref's dequantized weights times x rounded here the way the
//    kernel and ggml round it: q = x · 127 / amax to nearest, ties to even, per 32 values with
//    d = amax / 127 in f16 for Q4_0, Q5_0, Q8_0, IQ4_NL and Q5_1, per 256 values with d in f32 for
//    Q4_K, Q5_K, Q6_K, Q3_K, Q2_K and IQ4_XS; Q5_1's minimums against ggml's q8_1 block sums, see
//    q8_1SumCorrection): |native - ref| <= 2e-5 · ‖rounded row of x‖ · ‖row of W‖, the f32-summation bound of
//    the other matmul tests (the int8 products themselves are exact);
//  - against the f32 path (ref with x itself): that bound plus the worst case of the rounding,
//    sum over scale blocks of (amax / 254 + amax / 2048 for an f16 d) · sum |w| over the block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DType } from '../../src/tensor/dtype.js';
import { loadNativeAddon, nativeBackend, type NativeAddon } from '../../src/tensor/native.js';
import { f16ToF32, f32ToF16, quantize } from '../../src/tensor/quant/index.js';
import { refBackend as ref } from '../../src/tensor/ref.js';
import { int8ModeAt, requestedInt8Mode } from './int8-mode.js';
import { type WeightMatrix, weightMatrix } from '../../src/tensor/tensor.js';

let addon: NativeAddon | undefined;
try {
  addon = loadNativeAddon();
} catch {
  addon = undefined;
}
/** The levels with int8 kernels that this CPU runs (the addon caps setSimd at what it has). */
const int8Levels = addon ? (['avx512-vnni', 'avx2'] as const).filter((level) => {
  const start = addon!.info().simd;
  const ok = addon!.setSimd(level) === level;
  addon!.setSimd(start);
  return ok;
}) : [];
const skip = !addon ? 'native addon not built' : int8Levels.length === 0 ? 'no AVX2 or AVX-512 VNNI on this CPU (no int8 kernels)' : false;

/** The int8 mode asked for at start (FRUGAL_INT8), restored after each test. */
const startInt8 = requestedInt8Mode();

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2;
  }
  return out;
}

/** Nearest integer, ties to even (the rounding of vcvtps2dq). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x rounded to int8 per `block` values and scaled back, in f32 as the kernel computes it (f16 scales for 32-blocks). */
function roundActivations(x: Float32Array, block: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += block) {
    let amax = 0;
    for (let j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
    const d32 = Math.fround(amax / 127);
    const d = block === 32 && d32 <= 65504 ? f16ToF32(f32ToF16(d32)) : d32;
    const inv = amax === 0 ? 0 : Math.fround(127 / amax);
    for (let j = 0; j < block; j++) out[b + j] = Math.fround(roundEven(Math.fround(x[b + j]! * inv)) * d);
  }
  return out;
}

/** Worst |q · (d - f16(d))| for |q| <= 127, d = amax / 127: f16 rounding is within d · 2^-11, or 2^-25 when subnormal. */
function f16ScaleError(amax: number): number {
  return amax / 2048 + 127 * 2 ** -25;
}

/** bound[i * rows + r] = sum over blocks of (amax(x_i block) / 254 (+ f16ScaleError for 32-blocks)) · sum |w_r| over the block. */
function roundingBound(x: Float32Array, dense: Float32Array, m: number, rows: number, cols: number, block: number): Float64Array {
  const bound = new Float64Array(m * rows);
  for (let i = 0; i < m; i++) {
    for (let b = 0; b < cols; b += block) {
      let amax = 0;
      for (let j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x[i * cols + b + j]!));
      for (let r = 0; r < rows; r++) {
        let wsum = 0;
        for (let j = 0; j < block; j++) wsum += Math.abs(dense[r * cols + b + j]!);
        bound[i * rows + r] += (amax / 254 + (block === 32 ? f16ScaleError(amax) : 0)) * wsum;
      }
    }
  }
  return bound;
}

/**
 * Q5_1 (and Q4_1 at the AVX2 level) meets x as ggml's q8_1: its minimums multiply the block sum s = f16(d · Σq) (d = amax / 127
 * in f32) instead of the sum of the rounded values. What that adds to ref on the rounded
 * activations: out[i * rows + r] = sum over blocks b of m_rb · (s_ib - sum of rounded x_ib).
 */
function q8_1SumCorrection(w: WeightMatrix, x: Float32Array, rounded: Float32Array, m: number): Float64Array {
  const { rows, cols } = w;
  const blocks = cols / 32;
  const delta = new Float64Array(m * blocks);
  for (let i = 0; i < m * blocks; i++) {
    const o = 32 * i;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
    const inv = amax === 0 ? 0 : Math.fround(127 / amax);
    let q = 0;
    let sum = 0;
    for (let j = 0; j < 32; j++) {
      q += roundEven(Math.fround(x[o + j]! * inv));
      sum += rounded[o + j]!;
    }
    delta[i] = f16ToF32(f32ToF16(Math.fround(Math.fround(amax / 127) * q))) - sum;
  }
  const out = new Float64Array(m * rows);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const at = (r * blocks + b) * (w.dtype === 'q4_1' ? 20 : 24) + 2;
      const min = f16ToF32(w.data[at]! | (w.data[at + 1]! << 8));
      for (let i = 0; i < m; i++) out[i * rows + r] += min * delta[i * blocks + b];
    }
  }
  return out;
}

function norms(values: Float32Array, count: number, len: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.hypot(...values.subarray(i * len, (i + 1) * len)));
}

/** Awkward activations: an all-zero block, exact ties (amax 127 makes x · 127 / amax = x), an outlier. */
function awkwardActivations(m: number, cols: number, seed: number): Float32Array {
  const x = random(m * cols, seed);
  x.fill(0, 0, Math.min(256, cols));
  const ties = [127, 0.5, 1.5, 2.5, -0.5, -3.5, 126.5, -126.5];
  for (let j = 0; j < 32 && cols + j < x.length; j++) x[cols + j] = ties[j % ties.length]!;
  if (m > 2) x[2 * cols + 7] = 1e4;
  return x;
}

/** Types rounded to int8 at the VNNI level with m > 16 (gemm_int8.h) and with m <= 16 (matvec_vnni.h; 32-blocks other than Q5_0: even block counts there). */
const INT8_TYPES: [DType, number][] = [['q4_0', 32], ['q5_0', 32], ['q8_0', 32], ['q4_k', 256], ['q6_k', 256],
  ['q3_k', 256], ['q2_k', 256], ['iq4_xs', 256], ['iq4_nl', 32], ['q5_1', 32]];

/** Per level: the types rounded to int8, and whether m <= 16 rows of one at `cols` columns are (else f32 there). */
const LEVEL_TYPES: Record<(typeof int8Levels)[number], { types: [DType, number][]; small: (dtype: DType, cols: number) => boolean }> = {
  'avx512-vnni': {
    types: INT8_TYPES,
    small: (dtype, cols) => dtype.endsWith('_k') || dtype === 'iq4_xs' || (['q4_0', 'q8_0', 'iq4_nl', 'q5_1'].includes(dtype) && cols % 64 === 0),
  },
  avx2: { types: [...INT8_TYPES.filter(([dtype]) => ['q4_0', 'q5_0', 'q8_0', 'iq4_nl', 'q5_1', 'q4_k', 'q6_k', 'q3_k', 'q2_k', 'iq4_xs'].includes(dtype)), ['q4_1', 32], ['q5_k', 256]], small: () => true },
};

function colsFor(dtype: DType): number[] {
  // 67 and 130 blocks: AVX2 walks the q8_0 types' rows 64 blocks at a time, so these have a full chunk and an odd / even tail
  return dtype.endsWith('_k') || dtype === 'iq4_xs' ? [256, 1280] : [32, 64, 32 * 41, 32 * 42, 32 * 67, 32 * 130];
}

function weight(dtype: DType, rows: number, cols: number, seed: number): WeightMatrix {
  return weightMatrix(dtype, rows, cols, quantize(dtype, random(rows * cols, seed)));
}

test('int8 matmul equals ref on the int8-rounded activations (exact same math), and the f32 path within the rounding bound, at each level with int8 kernels', { skip }, () => {
  const native = nativeBackend(addon!);
  let seed = 7000;
  const start = addon!.info().simd;
  try {
    for (const level of int8Levels) {
    assert.equal(addon!.setSimd(level), level);
    assert.equal(addon!.setInt8('prefill'), 'prefill');
    for (const [dtype, block] of LEVEL_TYPES[level].types) {
      for (const cols of colsFor(dtype)) {
        const small = LEVEL_TYPES[level].small(dtype, cols) ? [[1, 37], [2, 9], [3, 5], [4, 12], [5, 7], [7, 6], [16, 3]] as const : [];
        for (const [m, rows] of [...small, ...([[17, 1], [23, 33], [33, 45], [64, 31], [131, 70]] as const)]) {
          const w = weight(dtype, rows, cols, seed++);
          const dense = new Float32Array(rows * cols);
          ref.dequantizeRows(dense, w, 0, rows);
          const wn = norms(dense, rows, cols);
          const x = awkwardActivations(m, cols, seed++);
          const rounded = roundActivations(x, block);
          const exact = new Float32Array(m * rows);
          ref.matmul(exact, rounded, m, w);
          if (dtype === 'q5_1' || dtype === 'q4_1') {
            const correction = q8_1SumCorrection(w, x, rounded, m);
            for (let idx = 0; idx < exact.length; idx++) exact[idx] = exact[idx]! + correction[idx]!;
          }
          const out = new Float32Array(m * rows).fill(NaN);
          native.matmul(out, x, m, w);
          const rn = norms(rounded, m, cols);
          const what = `${level} ${dtype} m${m} [${rows}, ${cols}]`;
          for (let idx = 0; idx < out.length; idx++) {
            const bound = 2e-5 * rn[Math.floor(idx / rows)]! * wn[idx % rows]! + 1e-30;
            const diff = Math.abs(out[idx]! - exact[idx]!);
            if (!(diff <= bound)) assert.fail(`${what} vs rounded activations: index ${idx}: native ${out[idx]}, ref ${exact[idx]}, |diff| ${diff} > ${bound}`);
          }
          const f32 = new Float32Array(m * rows);
          ref.matmul(f32, x, m, w);
          const xn = norms(x, m, cols);
          const rounding = roundingBound(x, dense, m, rows, cols, block);
          for (let idx = 0; idx < out.length; idx++) {
            const bound = 2e-5 * xn[Math.floor(idx / rows)]! * wn[idx % rows]! + rounding[idx]!;
            const diff = Math.abs(out[idx]! - f32[idx]!);
            if (!(diff <= bound)) assert.fail(`${what} vs f32 activations: index ${idx}: native ${out[idx]}, ref ${f32[idx]}, |diff| ${diff} > ${bound}`);
          }
        }
      }
    }
    }
  } finally {
    addon!.setSimd(start);
    addon!.setInt8(startInt8);
  }
});

test('an int8 row gives the same bits whatever rows share its matmul (1, 2, 3, 4 or 13 at once), at each level with int8 kernels', { skip }, () => {
  const native = nativeBackend(addon!);
  const start = addon!.info().simd;
  let seed = 9100;
  try {
    for (const level of int8Levels) {
      assert.equal(addon!.setSimd(level), level);
      assert.equal(addon!.setInt8('prefill'), 'prefill');
      for (const [dtype] of LEVEL_TYPES[level].types) {
        const cols = dtype.endsWith('_k') || dtype === 'iq4_xs' ? 1280 : 32 * 67;
        if (!LEVEL_TYPES[level].small(dtype, cols)) continue;
        const [m, rows] = [13, 19];
        const w = weight(dtype, rows, cols, seed++);
        const x = awkwardActivations(m, cols, seed++);
        const all = new Float32Array(m * rows);
        native.matmul(all, x, m, w);
        for (const group of [1, 2, 3, 4]) {
          for (let i0 = 0; i0 < m; i0 += group) {
            const g = Math.min(group, m - i0);
            const out = new Float32Array(g * rows);
            native.matmul(out, x.subarray(i0 * cols, (i0 + g) * cols), g, w);
            for (let k = 0; k < g * rows; k++) {
              const expected = all[i0 * rows + k]!;
              if (!Object.is(out[k], expected)) assert.fail(`${level} ${dtype} [${rows}, ${cols}]: row ${i0 + Math.floor(k / rows)} alone in a group of ${g} gives ${out[k]}, among ${m} rows ${expected}`);
            }
          }
        }
      }
    }
  } finally {
    addon!.setSimd(start);
    addon!.setInt8(startInt8);
  }
});

test('int8 modes: prefill is the default at the levels with int8 kernels; off gives the f32 path; all only on avx512-vnni; none below avx2', { skip }, () => {
  const native = nativeBackend(addon!);
  const [m, rows, cols] = [20, 40, 512];
  const w = weight('q4_k', rows, cols, 99);
  const x = random(m * cols, 100);
  const run = () => {
    const out = new Float32Array(m * rows);
    native.matmul(out, x, m, w);
    return out;
  };
  const f32 = new Float32Array(m * rows);
  ref.matmul(f32, x, m, w);
  const rounded = new Float32Array(m * rows);
  ref.matmul(rounded, roundActivations(x, 256), m, w);
  const closer = (out: Float32Array, a: Float32Array, b: Float32Array) => {
    let da = 0;
    let db = 0;
    for (let i = 0; i < out.length; i++) {
      da += Math.abs(out[i]! - a[i]!);
      db += Math.abs(out[i]! - b[i]!);
    }
    return da < db;
  };
  const start = addon!.info().simd;
  try {
    assert.equal(addon!.info().int8, int8ModeAt(start), 'the mode the process started with');
    for (const level of int8Levels) {
      assert.equal(addon!.setSimd(level), level);
      assert.equal(addon!.setInt8('prefill'), 'prefill');
      assert.ok(closer(run(), rounded, f32), `${level} default: int8-rounded activations`);
      assert.equal(addon!.setInt8('off'), 'off');
      assert.equal(addon!.info().int8, 'off');
      assert.ok(closer(run(), f32, rounded), `${level} off: f32 activations`);
      assert.equal(addon!.setInt8('all'), level === 'avx512-vnni' ? 'all' : 'prefill', `${level}: 'all' where Q4_0 with odd block counts has its kernel`);
    }
    for (const level of ['avx512', 'scalar']) {
      if (addon!.setSimd(level) !== level) continue;
      assert.equal(addon!.info().int8, 'off', `no int8 kernels at ${level}`);
      assert.ok(closer(run(), f32, rounded), `${level}: f32 activations`);
    }
    assert.throws(() => addon!.setInt8('1' as 'all'), /unknown int8 mode '1'/);
  } finally {
    addon!.setSimd(start);
    addon!.setInt8(startInt8);
  }
});
