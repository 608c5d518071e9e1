// Every native kernel against the ref backend (in the spirit of llama.cpp's test-backend-ops):
// random data, awkward shapes, every SIMD level this CPU can run (switched in-process with the
// addon's setSimd). Tolerances, per kernel:
//  - gemm and matmul (all weight dtypes): |native - ref| <= 2e-5 · ‖row of op(A)‖ · ‖column of op(B)‖.
//    The native kernels accumulate in f32 with FMA (error ~ sqrt(k) · 6e-8 relative to that
//    Cauchy-Schwarz bound for random data, worst case k · 6e-8); ref sums in doubles. Quantized
//    weights are compared with ref's dequantize-then-multiply, and the native kernels also
//    dequantize to f32 in registers (activations are not quantized), so the same bound holds.
//  - except where activations are quantized to int8 (see int8Block: at the 'avx512-vnni' level
//    q4_k, q6_k, q2_k, q3_k, iq4_xs and q4_0 for every m, q5_0, q8_0, iq4_nl and q5_1 for m > 16,
//    and (even block counts) q8_0, iq4_nl and q5_1 for m <= 16; at the 'avx2' level q2_k, q3_k,
//    q4_k, q5_k, q6_k, iq4_xs, q8_0, q4_0, q4_1, q5_0, q5_1 and iq4_nl for every m) in the second pass of eachMode (setInt8('all'), which gives
//    'prefill' on avx2; the first pass sets 'off'): each x value is then rounded to within amax(its block) / 254 (blocks of 32 values,
//    256 for the K-quants and iq4_xs; a 32-block's scale is kept in f16 as ggml does, which adds
//    amax / 2048), so the bound adds sum over blocks of that · sum |w| over the block (exact
//    worst case of that rounding). int8-matmul.test.ts checks the int8 kernels tightly.
//  - dequantizeRows / embeddingGather: 1e-6 of the row's largest magnitude (the native decoders
//    round d·scale to f32 before multiplying by q; ref rounds once).
//  - rmsNorm, softmax, rope, siluMul, axpy, attention: 1e-5 relative (f32 vs double arithmetic).
//  - add, mul, topK: exact (one correctly rounded operation; selection is exact).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../../src/tensor/backend.js';
import { type DType, dtypeInfo } from '../../src/tensor/dtype.js';
import { loadNativeAddon, nativeBackend, type NativeAddon, SIMD_LEVELS } from '../../src/tensor/native.js';
import { f16ToF32, quantize, quantizeFp8BlockScaled } from '../../src/tensor/quant/index.js';
import { refBackend as ref } from '../../src/tensor/ref.js';
import { int8ModeAt, requestedInt8Mode } from './int8-mode.js';
import { type WeightMatrix, weightMatrix } from '../../src/tensor/tensor.js';

let addon: NativeAddon | undefined;
let skip: string | false = false;
try {
  addon = loadNativeAddon();
} catch (error) {
  skip = `native addon not built: ${(error as Error).message}`;
}
const native: Backend | undefined = addon && nativeBackend(addon);
const detected = addon?.info().detected ?? 'scalar';
const levels = SIMD_LEVELS.slice(SIMD_LEVELS.indexOf(detected as (typeof SIMD_LEVELS)[number]));

/** The level the process started with (FRUGAL_SIMD may cap it below the detected one). */
const startLevel = addon?.info().simd ?? 'scalar';

/** Run `body` once per SIMD level the CPU supports, restoring the starting level afterwards. */
function eachLevel(body: (level: string) => void): void {
  try {
    for (const level of levels) {
      assert.equal(addon!.setSimd(level), level);
      body(level);
    }
  } finally {
    addon!.setSimd(startLevel);
  }
}

/** The int8 mode the process started with (restored after each test that changes it). */
/** The int8 mode asked for at start (FRUGAL_INT8), in effect or not at the starting level. */
const startInt8 = requestedInt8Mode();

/** As eachLevel with int8 activations off, plus a second pass with them wherever the level has them ('avx512-vnni', 'avx2'). */
function eachMode(body: (level: string, int8: boolean) => void): void {
  eachLevel((level) => {
    try {
      addon!.setInt8('off');
      body(level, false);
      if (addon!.setInt8('all') !== 'off') body(level, true);
    } finally {
      addon!.setInt8(startInt8);
    }
  });
}

function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, bound: (i: number) => number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    if (!(diff <= bound(i))) assert.fail(`${what}: index ${i}: native ${actual[i]}, ref ${expected[i]}, |diff| ${diff} > ${bound(i)}`);
  }
}

function relative(expected: ArrayLike<number>, tol: number): (i: number) => number {
  return (i) => tol * (1 + Math.abs(expected[i]!));
}

// ---------------------------------------------------------------------------------------------

test('native gemm equals ref: awkward shapes x transA/transB x alpha/beta x leading dimensions', { skip }, () => {
  const shapes: [number, number, number][] = [[1, 1, 1], [7, 33, 64], [33, 7, 4097], [64, 97, 300], [100, 300, 50], [3, 4097, 5], [13, 1, 7]];
  let seed = 10;
  for (const [m, n, k] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [[1, 0], [0.5, 1]] as const) {
          const lda = (transA ? m : k) + 3;
          const ldb = (transB ? k : n) + 1;
          const ldc = n + 2;
          const a = random((transA ? k : m) * lda, seed++);
          const b = random((transB ? n : k) * ldb, seed++);
          const c0 = random(m * ldc, seed++);
          for (let idx = 0; idx < c0.length; idx++) if (idx % ldc >= n) c0[idx] = 12345; else if (beta === 0) c0[idx] = NaN;
          const expected = c0.slice();
          ref.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
          const aNorm = (i: number) => Math.hypot(...Array.from({ length: k }, (_, p) => (transA ? a[p * lda + i]! : a[i * lda + p]!)));
          const bNorm = (j: number) => Math.hypot(...Array.from({ length: k }, (_, p) => (transB ? b[j * ldb + p]! : b[p * ldb + j]!)));
          const an = Array.from({ length: m }, (_, i) => aNorm(i));
          const bn = Array.from({ length: n }, (_, j) => bNorm(j));
          eachLevel((level) => {
            const c = c0.slice();
            native!.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            const what = `${level} gemm m${m} n${n} k${k} tA ${transA} tB ${transB} alpha ${alpha} beta ${beta}`;
            assertNear(c, expected, (idx) => {
              const i = Math.floor(idx / ldc), j = idx % ldc;
              if (j >= n) return 0; // padding between rows must stay untouched
              return 2e-5 * alpha * an[i]! * bn[j]! + 1e-6 * Math.abs(expected[idx]!);
            }, what);
          });
        }
      }
    }
  }
});

test('native gemm: k = 0 scales C by beta; m or n = 0 writes nothing', { skip }, () => {
  eachLevel((level) => {
    const c = Float32Array.from([1, 2, 3, 4]);
    native!.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, new Float32Array(0), 2, 0.5, c, 2);
    assert.deepEqual([...c], [0.5, 1, 1.5, 2], level);
    const d = Float32Array.from([NaN, NaN]);
    native!.gemm(false, false, 1, 2, 0, 1, new Float32Array(0), 0, new Float32Array(0), 2, 0, d, 2);
    assert.deepEqual([...d], [0, 0], level);
    native!.gemm(false, false, 0, 2, 3, 1, new Float32Array(0), 3, new Float32Array(6), 2, 0, d, 2);
    assert.deepEqual([...d], [0, 0], level);
  });
});

/**
 * The rounding block of x where the native matmul rounds activations to int8, 0 where it keeps x
 * in f32. At the VNNI level (native/src/matvec_vnni.h for m <= 16, gemm_int8.h above): Q4_K,
 * Q6_K, Q2_K, Q3_K and IQ4_XS (q8_K, 256) for any m; Q4_0 (32) for any m; Q8_0, IQ4_NL and Q5_1
 * (32) with m > 16 or an even number of blocks; Q5_0 (32) with m > 16. At the AVX2 level
 * (matvec_int8_avx2.h): Q2_K .. Q6_K and IQ4_XS (256), Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL (32), any m. Callers pass
 * int8 = false when int8 is off.
 */
function int8Block(int8: boolean, level: string, dtype: DType, m: number, cols: number): number {
  if (!int8) return 0;
  if (level === 'avx2') return ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_xs'].includes(dtype) ? 256 : ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl'].includes(dtype) ? 32 : 0;
  if (dtype === 'q4_k' || dtype === 'q6_k' || dtype === 'q2_k' || dtype === 'q3_k' || dtype === 'iq4_xs') return 256;
  if (dtype === 'q4_0' || (dtype === 'q5_0' && m > 16)) return 32;
  if ((dtype === 'q8_0' || dtype === 'iq4_nl' || dtype === 'q5_1') && (m > 16 || cols % 64 === 0)) return 32;
  return 0;
}

/**
 * bound[i * rows + r] = sum over blocks of amax(x_i block) / 254 · sum |w_r| over the block. Q5_1
 * or Q4_1 (w given): its minimums m meet x through ggml's q8_1 block sum s = f16(d · Σq) (d = amax / 127 in
 * f32), within |Σq| · d · 2^-10 (<= 32 · amax / 1024) of the sum of the rounded x, so each block
 * also adds |m| · (amax / 32 + f16 subnormal and f32 slack).
 */
function int8Bound(x: Float32Array, dense: Float32Array, m: number, rows: number, cols: number, block: number, q5_1?: WeightMatrix): Float64Array {
  const bound = new Float64Array(m * rows);
  for (let i = 0; i < m; i++) {
    for (let b = 0; b < cols / block; b++) {
      let amax = 0;
      for (let j = 0; j < block; j++) amax = Math.max(amax, Math.abs(x[i * cols + block * b + j]!));
      for (let r = 0; r < rows; r++) {
        let wsum = 0;
        for (let j = 0; j < block; j++) wsum += Math.abs(dense[r * cols + block * b + j]!);
        bound[i * rows + r] += (amax / 254 + (block === 32 ? amax / 2048 + 127 * 2 ** -25 : 0)) * wsum;
        if (q5_1) {
          const at = (r * (cols / 32) + b) * (q5_1.dtype === 'q4_1' ? 20 : 24) + 2;
          const min = Math.abs(f16ToF32(q5_1.data[at]! | (q5_1.data[at + 1]! << 8)));
          bound[i * rows + r] += min * (amax / 32 + 32 * 127 * 2 ** -24 + 2 ** -20) * 1.01;
        }
      }
    }
  }
  return bound;
}

const MATMUL_DTYPES: DType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q4_k', 'q5_k', 'q6_k', 'fp8_e4m3', 'iq4_nl', 'iq4_xs', 'q2_k', 'q3_k', 'q5_1'];

function makeWeight(dtype: DType, rows: number, cols: number, seed: number): WeightMatrix {
  const values = random(rows * cols, seed);
  if (dtype === 'fp8_e4m3') {
    const { data, blockScales } = quantizeFp8BlockScaled(values, rows, cols);
    return weightMatrix(dtype, rows, cols, data, blockScales);
  }
  return weightMatrix(dtype, rows, cols, quantize(dtype, values));
}

function colsFor(dtype: DType): number {
  if (dtype === 'fp8_e4m3') return 300; // not a multiple of 128: partial scale blocks
  if (dtype.endsWith('_k') || dtype === 'iq4_xs') return 256 * 5; // 1280: more than one 1024-column segment, not a multiple of it
  if (dtype.startsWith('q') || dtype === 'iq4_nl') return 32 * 41;
  return 1031;
}

test('native matmul equals ref for every weight dtype, m in {1, 2, 3, 5, 6, 16, 17, 40}', { skip }, () => {
  // m 2..16 of quantized weights: whole-row kernels over groups of 4 activation rows (remainders 1, 2, 3) and weight rows in pairs (odd counts)
  let seed = 100;
  for (const dtype of MATMUL_DTYPES) {
    const cols = colsFor(dtype);
    for (const [m, rows] of [[1, 37], [2, 7], [3, 130], [5, 31], [6, 12], [16, 9], [17, 300], [40, 33]] as const) {
      const w = makeWeight(dtype, rows, cols, seed++);
      const dense = new Float32Array(rows * cols);
      ref.dequantizeRows(dense, w, 0, rows);
      checkMatmulAtEveryLevel(w, dense, random(m * cols, seed++), m);
    }
  }
});

/**
 * native.matmul of x [m, w.cols] by w at every SIMD level and int8 mode against ref's, within 2e-5
 * of the row norms plus, where int8 activations are used, the worst case of their rounding;
 * `afterEach` runs more checks at each level. dense: w dequantized.
 */
function checkMatmulAtEveryLevel(w: WeightMatrix, dense: Float32Array, x: Float32Array, m: number, afterEach?: (level: string) => void): void {
  const { rows, cols, dtype } = w;
  const expected = new Float32Array(m * rows);
  ref.matmul(expected, x, m, w);
  const xn = Array.from({ length: m }, (_, i) => Math.hypot(...x.subarray(i * cols, (i + 1) * cols)));
  const wn = Array.from({ length: rows }, (_, r) => Math.hypot(...dense.subarray(r * cols, (r + 1) * cols)));
  let quantBound: Float64Array | undefined;
  eachMode((level, int8) => {
    const out = new Float32Array(m * rows).fill(NaN);
    native!.matmul(out, x, m, w);
    const block = int8Block(int8, level, dtype, m, cols);
    if (block) quantBound ??= int8Bound(x, dense, m, rows, cols, block, dtype === 'q5_1' || dtype === 'q4_1' ? w : undefined);
    const extra = block ? quantBound! : undefined;
    assertNear(out, expected, (idx) => 2e-5 * xn[Math.floor(idx / rows)]! * wn[idx % rows]! + (extra ? extra[idx]! : 0), `${level}${int8 ? ' int8' : ''} matmul ${dtype} m${m} [${rows}, ${cols}]`);
    afterEach?.(level);
  });
}

test('native matmul equals ref for dense weights (f32, f16, bf16): m 1..16, ragged columns, odd row counts', { skip }, () => {
  // The dense small-m kernel (native/src/matvec_dense.h) blocks weight rows by 8/4/3/2/1 and
  // columns by 16/8/4 lanes: cover every block remainder, a ragged last chunk, m in two groups (9, 16).
  let seed = 900;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const rows of [1, 7, 129]) {
      for (const cols of [1, 7, 33, 128, 4097]) {
        const w = makeWeight(dtype, rows, cols, seed++);
        const dense = new Float32Array(rows * cols);
        ref.dequantizeRows(dense, w, 0, rows);
        const wn = Array.from({ length: rows }, (_, r) => Math.hypot(...dense.subarray(r * cols, (r + 1) * cols)));
        for (const m of [1, 2, 3, 5, 8, 9, 16]) {
          const x = random(m * cols, seed++);
          const expected = new Float32Array(m * rows);
          ref.matmul(expected, x, m, w);
          const xn = Array.from({ length: m }, (_, i) => Math.hypot(...x.subarray(i * cols, (i + 1) * cols)));
          eachLevel((level) => {
            const out = new Float32Array(m * rows).fill(NaN);
            native!.matmul(out, x, m, w);
            assertNear(out, expected, (idx) => 2e-5 * xn[Math.floor(idx / rows)]! * wn[idx % rows]!, `${level} matmul ${dtype} m${m} [${rows}, ${cols}]`);
          });
        }
      }
    }
  }
});

test('native dequantizeRows and embeddingGather equal ref for every weight dtype', { skip }, () => {
  let seed = 300;
  for (const dtype of MATMUL_DTYPES) {
    const cols = colsFor(dtype);
    const rows = 131;
    const w = makeWeight(dtype, rows, cols, seed++);
    const expected = new Float32Array((rows - 2) * cols);
    ref.dequantizeRows(expected, w, 1, rows - 2);
    const ids = Int32Array.from([0, 130, 5, 5, 129, 64]);
    const gathered = new Float32Array(ids.length * cols);
    ref.embeddingGather(gathered, w, ids);
    const rowMax = (values: Float32Array, i: number) => Math.max(...values.subarray(Math.floor(i / cols) * cols, (Math.floor(i / cols) + 1) * cols).map(Math.abs));
    const rowMaxes = Array.from({ length: rows - 2 }, (_, r) => rowMax(expected, r * cols));
    const gatherMaxes = Array.from({ length: ids.length }, (_, r) => rowMax(gathered, r * cols));
    eachLevel((level) => {
      const out = new Float32Array(expected.length);
      native!.dequantizeRows(out, w, 1, rows - 2);
      assertNear(out, expected, (i) => 1e-6 * rowMaxes[Math.floor(i / cols)]!, `${level} dequantizeRows ${dtype}`);
      const g = new Float32Array(gathered.length);
      native!.embeddingGather(g, w, ids);
      assertNear(g, gathered, (i) => 1e-6 * gatherMaxes[Math.floor(i / cols)]!, `${level} embeddingGather ${dtype}`);
    });
  }
});

/**
 * matmul of `dtypes` against ref on odd shapes, every level; dequantizeRows exact. One block per
 * row (the whole-row kernels' shortest rows), rows not a multiple of the 4 / 8-row groups, m
 * across the whole-row (1, 2), segment (3..16) and prefill (17) paths. `spread` shapes the values
 * of each `group` consecutive ones (scale, offset) so that a decoder mixing up blocks or
 * sub-blocks (or their scales and mins) shows.
 */
function checkOddShapes(dtypes: readonly DType[], seed: number, group: number, spread: (g: number) => [number, number]): void {
  for (const dtype of dtypes) {
    const block = dtypeInfo(dtype).blockElements;
    // [9, 2]: an even block count (the int8 pair kernels of 32-blocks).
    for (const [rows, blocks] of [[1, 1], [5, 1], [9, 2], [13, 3], [70, 9]] as const) {
      const cols = block * blocks;
      const values = random(rows * cols, seed++);
      for (let i = 0; i < values.length; i++) {
        const [scale, offset] = spread(Math.floor(i / group));
        values[i] = (values[i]! + offset) * scale;
      }
      const w = weightMatrix(dtype, rows, cols, quantize(dtype, values));
      const dense = new Float32Array(rows * cols);
      ref.dequantizeRows(dense, w, 0, rows);
      for (const m of [1, 2, 3, 4, 17]) {
        checkMatmulAtEveryLevel(w, dense, random(m * cols, seed++), m, (level) => {
          const decoded = new Float32Array(rows * cols);
          native!.dequantizeRows(decoded, w, 0, rows);
          assert.deepEqual(decoded, dense, `${level} dequantizeRows ${dtype} [${rows}, ${cols}] is exact`);
        });
      }
    }
  }
}

test('native iq4_nl / iq4_xs matmul equals ref on odd shapes: one block per row, ragged row counts, m up to 17', { skip }, () => {
  checkOddShapes(['iq4_nl', 'iq4_xs'], 7000, 32, (g) => [2 ** ((g % 7) - 3), 0]);
});

test('native q2_k / q3_k / q5_1 matmul equals ref on odd shapes: one block per row, ragged row counts, m up to 17', { skip }, () => {
  // Every 16 values (a Q2_K / Q3_K sub-block; half a Q5_1 block) their own scale and mean, so
  // that the two sub-blocks of a 32-value piece, Q2_K's mins and Q5_1's m all matter.
  checkOddShapes(['q2_k', 'q3_k', 'q5_1'], 7500, 16, (g) => [2 ** ((g % 7) - 3), ((g * 5) % 9) / 4 - 1]);
});

test('native: a dtype code the addon does not know is refused, by the addon and before it', { skip }, () => {
  const w = makeWeight('iq4_nl', 2, 64, 1);
  assert.throws(() => addon!.matmul(new Float32Array(2), new Float32Array(64), 1, 99, 2, 64, w.data, undefined), /unknown weight dtype code 99/);
  // An addon built before iq4 (no lastDtype, or a lower one) gets a clear error instead of garbage.
  const old = nativeBackend({ ...addon!, info: () => ({ ...addon!.info(), lastDtype: undefined }) } as NativeAddon);
  assert.throws(() => old.matmul(new Float32Array(2), new Float32Array(64), 1, w), /native addon predates iq4_nl weights: rebuild it/);
  // One built before q2_k / q3_k / q5_1 (lastDtype 12, iq4_xs) still runs iq4 and refuses those.
  const iq4Only = nativeBackend({ ...addon!, info: () => ({ ...addon!.info(), lastDtype: 12 }) } as NativeAddon);
  iq4Only.matmul(new Float32Array(2), new Float32Array(64).fill(1), 1, w);
  for (const dtype of ['q2_k', 'q3_k', 'q5_1'] as const) {
    const q = makeWeight(dtype, 2, 256, 2);
    assert.throws(() => iq4Only.matmul(new Float32Array(2), new Float32Array(256), 1, q), new RegExp(`native addon predates ${dtype} weights: rebuild it`));
    assert.throws(() => iq4Only.dequantizeRows(new Float32Array(512), q, 0, 2), /rebuild it/);
  }
  const out = new Float32Array(2);
  native!.matmul(out, new Float32Array(64).fill(1), 1, w);
  assert.ok(out.every(Number.isFinite));
});

test('native fp8 NaN patterns (0x7F, 0xFF) decode to NaN on every level, as in ref', { skip }, () => {
  const [rows, cols] = [3, 160];
  const w = makeWeight('fp8_e4m3', rows, cols, 31337);
  w.data[1 * cols + 40] = 0x7f;
  w.data[2 * cols + 150] = 0xff;
  const x = random(cols, 5);
  const expected = new Float32Array(rows);
  ref.matmul(expected, x, 1, w);
  assert.ok(Number.isNaN(expected[1]) && Number.isNaN(expected[2]) && !Number.isNaN(expected[0]));
  const x2 = random(2 * cols, 6);
  eachLevel((level) => {
    const out = new Float32Array(rows);
    native!.matmul(out, x, 1, w);
    assert.deepEqual([0, 1, 2].map((r) => Number.isNaN(out[r])), [false, true, true], `${level} matmul`);
    const out2 = new Float32Array(2 * rows);
    native!.matmul(out2, x2, 2, w);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => Number.isNaN(out2[i])), [false, true, true, false, true, true], `${level} matmul m = 2`);
    const dense = new Float32Array(rows * cols);
    native!.dequantizeRows(dense, w, 0, rows);
    assert.ok(Number.isNaN(dense[cols + 40]!) && Number.isNaN(dense[2 * cols + 150]!) && !Number.isNaN(dense[cols + 41]!), `${level} dequantizeRows`);
  });
});

test('native fp8 matmul m = 1, 2, 5 over several 128-row scale groups, ragged columns and subnormal bytes equals ref', { skip }, () => {
  // The small-m fp8 kernel multiplies x by each 128-row group's scales once and decodes through f16
  // (subnormals exactly); a ragged last 32 columns take the scalar decode.
  let seed = 4000;
  for (const [rows, cols] of [[300, 4100], [129, 64], [257, 131]] as const) {
    const w = makeWeight('fp8_e4m3', rows, cols, seed++);
    for (let i = 0; i < w.data.length; i += 37) w.data[i] = (i & 1 ? 0x80 : 0) | (1 + (i % 7)); // E4M3 subnormals, both signs
    const dense = new Float32Array(rows * cols);
    ref.dequantizeRows(dense, w, 0, rows);
    const wn = Array.from({ length: rows }, (_, r) => Math.hypot(...dense.subarray(r * cols, (r + 1) * cols)));
    for (const m of [1, 2, 5]) {
      const x = random(m * cols, seed++);
      const expected = new Float32Array(m * rows);
      ref.matmul(expected, x, m, w);
      const xn = Array.from({ length: m }, (_, i) => Math.hypot(...x.subarray(i * cols, (i + 1) * cols)));
      eachLevel((level) => {
        const out = new Float32Array(m * rows).fill(NaN);
        native!.matmul(out, x, m, w);
        assertNear(out, expected, (idx) => 2e-5 * xn[Math.floor(idx / rows)]! * wn[idx % rows]!, `${level} fp8 matmul m${m} [${rows}, ${cols}]`);
      });
    }
  }
});

test('native rmsNorm and softmax equal ref (odd sizes, in place, large logits)', { skip }, () => {
  for (const [rows, dim] of [[1, 1], [3, 4097], [5, 17]] as const) {
    const x = random(rows * dim, rows * 7 + dim, 3);
    const weight = random(dim, dim + 1);
    const expected = new Float32Array(rows * dim);
    ref.rmsNorm(expected, x, weight, rows, dim, 1e-6);
    for (const [r, c] of [[rows, dim], [2, 1000]] as const) {
      const logits = random(r * c, r + c, 40);
      const soft = logits.slice();
      ref.softmax(soft, r, c);
      eachLevel((level) => {
        const got = logits.slice();
        native!.softmax(got, r, c);
        assertNear(got, soft, (i) => 1e-6 + 1e-5 * soft[i]!, `${level} softmax [${r}, ${c}]`);
      });
    }
    // a causal mask's -Infinity scores (and scores e^-100 below the row's top) get exactly 0, as in ref
    const masked = random(3 * 37, 11, 4);
    for (let i = 0; i < 3 * 37; i++) if (i % 37 > 20 + (i / 37 | 0) * 5) masked[i] = -Infinity;
    masked[5] = 200;
    const softMasked = masked.slice();
    ref.softmax(softMasked, 3, 37);
    eachLevel((level) => {
      const got = masked.slice();
      native!.softmax(got, 3, 37);
      assertNear(got, softMasked, (i) => 1e-6 + 1e-5 * softMasked[i]!, `${level} masked softmax`);
      for (let i = 0; i < got.length; i++) if (softMasked[i] === 0) assert.equal(got[i], 0, `${level} masked softmax: element ${i} is ${got[i]}, ref 0`);
    });
    eachLevel((level) => {
      const inPlace = x.slice();
      native!.rmsNorm(inPlace, inPlace, weight, rows, dim, 1e-6);
      assertNear(inPlace, expected, relative(expected, 1e-5), `${level} rmsNorm [${rows}, ${dim}]`);
    });
  }
});

test('native rope equals ref: interleaved and neox, strided heads, offset, large positions, attention factor', { skip }, () => {
  const invFreq = Float32Array.from({ length: 8 }, (_, i) => 10000 ** (-i / 8));
  for (const style of ['interleaved', 'neox'] as const) {
    const params = {
      tokens: 3, heads: 5, tokenStride: 131, headStride: 24, offset: 4, ropeDim: 16,
      positions: Int32Array.from([0, 17, 100000]), invFreq, style, attentionFactor: 1.25,
    };
    const x = random(3 * 131, 55);
    const expected = x.slice();
    ref.rope(expected, params);
    eachLevel((level) => {
      const got = x.slice();
      native!.rope(got, params);
      assertNear(got, expected, relative(expected, 1e-5), `${level} rope ${style}`);
    });
  }
});

test('native rope stays equal to ref across its per-thread tables: 6 rope settings in turn, positions repeated, growing, jumping past the table', { skip }, () => {
  // The native kernel keeps cos/sin rows per (invFreq, factor) and position (4 tables per thread,
  // positions below 32768): settings that evict each other, a row read back, and a position
  // beyond the tables must all give what ref computes afresh.
  const settings = Array.from({ length: 6 }, (_, s) => ({
    invFreq: Float32Array.from({ length: 4 + (s % 2) * 4 }, (_, i) => (10000 + 1000 * s) ** (-i / 8)),
    attentionFactor: s === 3 ? 1.5 : 1,
  }));
  const positionRuns = [[0, 1, 2], [5, 1, 300], [4096, 4097, 0], [40000, 32767, 32768], [7, 7, 7]];
  let seed = 90;
  for (let round = 0; round < 2; round++) {
    for (const positions of positionRuns) {
      for (const setting of settings) {
        const ropeDim = 2 * setting.invFreq.length;
        const params = { tokens: 3, heads: 2, tokenStride: 2 * ropeDim + 3, headStride: ropeDim, offset: 3, ropeDim, positions: Int32Array.from(positions), style: 'interleaved' as const, ...setting };
        const x = random(3 * params.tokenStride, seed++);
        const expected = x.slice();
        ref.rope(expected, params);
        eachLevel((level) => {
          const got = x.slice();
          native!.rope(got, params);
          assertNear(got, expected, relative(expected, 1e-5), `${level} rope at ${positions} with ${setting.invFreq.length} frequencies`);
        });
      }
    }
  }
});

test('native element-wise kernels equal ref (siluMul with aliasing, add, mul, axpy)', { skip }, () => {
  for (const n of [1, 17, 1000]) {
    const a = random(n, n, 8);
    const b = random(n, n + 1, 2);
    const silu = new Float32Array(n);
    ref.siluMul(silu, a, b, n);
    const sum = new Float32Array(n);
    ref.add(sum, a, b, n);
    const prod = new Float32Array(n);
    ref.mul(prod, a, b, n);
    const ax = a.slice();
    ref.axpy(ax, -0.75, b, n);
    eachLevel((level) => {
      const gate = a.slice();
      native!.siluMul(gate, gate, b, n);
      assertNear(gate, silu, relative(silu, 1e-5), `${level} siluMul n${n}`);
      const out = new Float32Array(n);
      native!.add(out, a, b, n);
      assert.deepEqual(out, sum, `${level} add n${n}`);
      native!.mul(out, a, b, n);
      assert.deepEqual(out, prod, `${level} mul n${n}`);
      const y = a.slice();
      native!.axpy(y, -0.75, b, n);
      assertNear(y, ax, relative(ax, 1e-6), `${level} axpy n${n}`);
    });
  }
});

test('native topK equals ref, with ties, k = 1, k = cols', { skip }, () => {
  const [rows, cols] = [4, 300];
  const x = random(rows * cols, 77).map((v) => Math.round(v * 20) / 4); // coarse grid: many ties
  for (const k of [1, 8, cols]) {
    const idx = new Int32Array(rows * k);
    const val = new Float32Array(rows * k);
    ref.topK(idx, val, x, rows, cols, k);
    eachLevel((level) => {
      const gi = new Int32Array(rows * k).fill(-1);
      const gv = new Float32Array(rows * k);
      native!.topK(gi, gv, x, rows, cols, k);
      assert.deepEqual(gi, idx, `${level} topK indices k${k}`);
      assert.deepEqual(gv, val, `${level} topK values k${k}`);
    });
  }
});

test('native attention equals ref: causal, GQA groupings, startPos > 0, MLA-style shared strided K/V', { skip }, () => {
  const cases = [
    { queries: 1, heads: 8, kvHeads: 2, headDimK: 64, headDimV: 64, startPos: 37, kTokenStride: 128, kHeadStride: 64, vTokenStride: 128, vHeadStride: 64 },
    { queries: 5, heads: 4, kvHeads: 4, headDimK: 17, headDimV: 9, startPos: 0, kTokenStride: 68, kHeadStride: 17, vTokenStride: 36, vHeadStride: 9 },
    // MLA absorbed form: one cache row [latent 32 | rope 8]; K = the whole row, V = the latent at offset 0.
    { queries: 3, heads: 16, kvHeads: 1, headDimK: 40, headDimV: 32, startPos: 6, kTokenStride: 40, kHeadStride: 0, vTokenStride: 40, vHeadStride: 0 },
    // Prefill-sized: many queries per call, GQA, ragged head sizes, MLA-style shared K/V.
    { queries: 40, heads: 8, kvHeads: 2, headDimK: 64, headDimV: 64, startPos: 5, kTokenStride: 128, kHeadStride: 64, vTokenStride: 128, vHeadStride: 64 },
    { queries: 16, heads: 3, kvHeads: 3, headDimK: 17, headDimV: 9, startPos: 0, kTokenStride: 51, kHeadStride: 17, vTokenStride: 27, vHeadStride: 9 },
    { queries: 33, heads: 4, kvHeads: 1, headDimK: 40, headDimV: 32, startPos: 2, kTokenStride: 40, kHeadStride: 0, vTokenStride: 40, vHeadStride: 0 },
    // value widths of one, one and a half and two register passes (8 vectors of 8 or 16 lanes each, then 4)
    { queries: 7, heads: 4, kvHeads: 2, headDimK: 64, headDimV: 96, startPos: 30, kTokenStride: 128, kHeadStride: 64, vTokenStride: 192, vHeadStride: 96 },
    { queries: 2, heads: 2, kvHeads: 1, headDimK: 128, headDimV: 128, startPos: 70, kTokenStride: 128, kHeadStride: 0, vTokenStride: 128, vHeadStride: 0 },
    { queries: 3, heads: 2, kvHeads: 2, headDimK: 32, headDimV: 192, startPos: 11, kTokenStride: 64, kHeadStride: 32, vTokenStride: 384, vHeadStride: 192 },
  ];
  let seed = 900;
  for (const c of cases) {
    const p = { ...c, scale: 1 / Math.sqrt(c.headDimK) };
    const keys = p.startPos + p.queries;
    const q = random(p.queries * p.heads * p.headDimK, seed++, 2);
    const k = random(keys * p.kTokenStride, seed++);
    const v = p.vTokenStride === p.kTokenStride && p.vHeadStride === p.kHeadStride ? k : random(keys * p.vTokenStride, seed++);
    const expected = new Float32Array(p.queries * p.heads * p.headDimV);
    ref.attention(expected, q, k, v, p);
    eachLevel((level) => {
      const out = new Float32Array(expected.length).fill(NaN);
      native!.attention(out, q, k, v, p);
      assertNear(out, expected, () => 1e-5, `${level} attention ${JSON.stringify(c)}`);
    });
  }
});

test('native backend rejects bad shapes with the same errors as ref; the addon rejects wrong argument types', { skip }, () => {
  const w = weightMatrix('q8_0', 2, 32, new Uint8Array(68));
  assert.throws(() => native!.matmul(new Float32Array(2), new Float32Array(31), 1, w), /matmul: x needs 32 elements, has 31/);
  assert.throws(() => native!.gemm(false, false, 2, 2, 2, 1, new Float32Array(3), 2, new Float32Array(4), 2, 0, new Float32Array(4), 2), /gemm: A needs 4/);
  assert.throws(() => native!.embeddingGather(new Float32Array(32), w, Int32Array.from([2])), /id 2 at index 0/);
  assert.throws(() => native!.attention(new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(4),
    { queries: 1, heads: 1, kvHeads: 1, headDimK: 4, headDimV: 4, startPos: 1, scale: 1, kTokenStride: 4, kHeadStride: 0, vTokenStride: 4, vHeadStride: 0 }), /attention: k needs 8/);
  assert.throws(() => addon!.softmax(new Float64Array(4) as unknown as Float32Array, 1, 4), /Float32Array/);
  assert.throws(() => addon!.setSimd('avx9000'), /unknown SIMD level/);
});

test('native info: simd level and thread count', { skip }, (t) => {
  const info = addon!.info();
  t.diagnostic(`detected ${info.detected}, running ${info.simd}, ${info.threads} threads, int8 ${info.int8}; levels tested: ${levels.join(', ')}`);
  assert.equal(info.int8, int8ModeAt(info.simd), 'int8 activations: prefill by default on avx512-vnni and avx2, FRUGAL_INT8=0 off, =1 all (avx512-vnni)');
  assert.ok(SIMD_LEVELS.includes(info.simd as (typeof SIMD_LEVELS)[number]));
  assert.ok(info.threads >= 1);
  assert.equal(native!.simd, info.simd);
});

test('native thread pool: many back-to-back parallel calls give identical results', { skip }, () => {
  const w = makeWeight('q8_0', 64, 256, 4242);
  const x = random(3 * 256, 4343);
  const a = random(40 * 70, 1), b = random(70 * 50, 2);
  const firstMatmul = new Float32Array(3 * 64);
  native!.matmul(firstMatmul, x, 3, w);
  const firstGemm = new Float32Array(40 * 50);
  native!.gemm(false, false, 40, 50, 70, 1, a, 70, b, 50, 0, firstGemm, 50);
  const out = new Float32Array(3 * 64);
  const c = new Float32Array(40 * 50);
  for (let i = 0; i < 300; i++) {
    native!.matmul(out, x, 3, w);
    native!.gemm(false, false, 40, 50, 70, 1, a, 70, b, 50, 0, c, 50);
    assert.deepEqual(out, firstMatmul, `matmul, iteration ${i}`);
    assert.deepEqual(c, firstGemm, `gemm, iteration ${i}`);
  }
});

test('native addon works from a worker thread while the main thread computes (calls are serialized)', { skip }, async () => {
  const { Worker } = await import('node:worker_threads');
  const nativeUrl = new URL('../../src/tensor/native.js', import.meta.url).href;
  const source = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(nativeUrl)}).then(({ loadNativeAddon, nativeBackend }) => {
      const b = nativeBackend(loadNativeAddon());
      const n = 96, a = new Float32Array(n * n).fill(0.5), c = new Float32Array(n * n);
      for (let i = 0; i < 40; i++) b.gemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
      parentPort.postMessage(c.every((v) => v === n * 0.25));
    });`;
  const worker = new Worker(source, { eval: true });
  const fromWorker = new Promise<boolean>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const n = 96;
  const a = new Float32Array(n * n).fill(0.5);
  const c = new Float32Array(n * n);
  for (let i = 0; i < 40; i++) native!.gemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
  assert.ok(c.every((v) => v === n * 0.25), 'main thread result');
  assert.equal(await fromWorker, true, 'worker thread result');
  await worker.terminate();
});
