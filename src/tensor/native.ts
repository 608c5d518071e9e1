/**
 * The `native` backend: the C++ addon of native/ (built by `npm install` with node-gyp into
 * native/build/Release/frugal_native.node). Every call is checked here (the same checks as the
 * ref backend, src/tensor/ref/checks.ts) before raw buffers go to C++, so bad shapes give an
 * Error naming the kernel and argument rather than a crash.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AttentionParams, type Backend, EXP_PREFIX_BLOCK, type MoeExpertsParams, type RopeParams, type SegmentAttentionParams } from './backend.js';
import {
  checkAttention, checkCount, checkCountOf, checkGemm, checkIds, checkLength, checkMatmul, checkRope, checkRows, checkWeight,
} from './ref/checks.js';
import { panelLength } from './panels.js';
import type { WeightMatrix } from './tensor.js';

/** The functions the addon exports (native/src/addon.cc). */
export interface NativeAddon {
  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, a: Float32Array, lda: number,
    b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number): void;
  matmul(out: Float32Array, x: Float32Array, m: number, dtype: number, rows: number, cols: number, data: Uint8Array, scales: Float32Array | undefined): void;
  dequantizeRows(out: Float32Array, dtype: number, rows: number, cols: number, data: Uint8Array, scales: Float32Array | undefined, rowStart: number, rowCount: number): void;
  embeddingGather(out: Float32Array, dtype: number, rows: number, cols: number, data: Uint8Array, scales: Float32Array | undefined, ids: Int32Array, count: number): void;
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, rows: number, dim: number, eps: number): void;
  softmax(x: Float32Array, rows: number, cols: number): void;
  rope(x: Float32Array, tokens: number, heads: number, tokenStride: number, headStride: number, offset: number, ropeDim: number,
    positions: Int32Array, invFreq: Float32Array, neox: boolean, attentionFactor: number): void;
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  axpy(out: Float32Array, alpha: number, x: Float32Array, n: number): void;
  topK(outIndices: Int32Array, outValues: Float32Array, x: Float32Array, rows: number, cols: number, k: number): void;
  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, queries: number, heads: number, kvHeads: number,
    headDimK: number, headDimV: number, startPos: number, scale: number, kTokenStride: number, kHeadStride: number,
    vTokenStride: number, vHeadStride: number): void;
  attentionSegments(out: Float32Array, q: Float32Array, caches: readonly Float32Array[], segments: Int32Array, count: number, heads: number,
    headDimK: number, headDimV: number, stride: number, scale: number): void;
  moeExperts(out: Float32Array, x: Float32Array, experts: Int32Array, weights: Float32Array, gateUp: Float32Array, down: Float32Array,
    tokens: number, hidden: number, topK: number, nExperts: number, width: number): void;
  expShifted?(out: Float64Array, z: Float32Array, n: number, shift: number, scale: number, prefix?: Float64Array): number;
  softmaxBuckets?(full: Float64Array, z: Float32Array, n: number, m: number, invT: number, buckets: number, bucket: Uint16Array, mass: Float64Array): number;
  argmaxLogits?(z: Float32Array, n: number): number;
  matmulKMajor?(out: Float32Array, x: Float32Array, m: number, wt: Float32Array, n: number, k: number): boolean;
  /** lastDtype: the highest dtype code (DTYPE_CODES) the build knows (12 before q2_k / q3_k / q5_1); absent on builds older than iq4_nl / iq4_xs (code 10). */
  info(): { simd: string; detected: string; threads: number; int8: Int8Mode; lastDtype?: number };
  /**
   * Where int8 activations may be used on levels that have them (x rounded to 8 bits like llama.cpp
   * does, so results move by that rounding): 'off', 'prefill' (the default despite its name; on
   * AVX-512 VNNI: Q4_0, Q5_0, Q8_0, IQ4_NL, Q5_1, Q4_K, Q6_K, Q2_K, Q3_K and IQ4_XS matmuls with
   * m > 16 rows of x, and Q4_0, Q8_0, IQ4_NL and Q5_1 with an even block count, Q4_K, Q6_K, Q2_K,
   * Q3_K and IQ4_XS with m <= 16; on AVX2: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K-Q6_K and
   * IQ4_XS for every m), 'all' (VNNI only: also Q4_0 with an odd block count). FRUGAL_INT8=0
   * starts the process with 'off', FRUGAL_INT8=1 with 'all'. Returns the mode in effect at the
   * current level ('off' where the level has no int8 kernels, 'prefill' for 'all' on AVX2).
   */
  setInt8(mode: Int8Mode): Int8Mode;
  /**
   * Serial mode, nested (each `true` needs its `false`): while on, every kernel runs on the thread
   * that calls it, without the pool. For callers that already run one thread per core.
   */
  setSerial(on: boolean): void;
  /** Switch the kernel table to that level (capped at what the CPU supports); returns the level in use. */
  setSimd(level: string): string;
  probeFma(threads: number, iterations: number): { seconds: number; flops: number };
  probeRead(bytes: number, threads: number, repeats: number): { seconds: number; bytes: number };
  /**
   * Bytes [offset, offset + length) of a file (a path, or an open descriptor that stays open;
   * default: the whole file) as a Uint8Array over a copy-on-write memory mapping (native/src/mmap.cc):
   * pages are read when first touched, writes never reach the file, and the mapping is released
   * when the last view of it is collected. Node 20 limits one mapping to 4 GiB. Throws an Error
   * naming the file and the OS error.
   */
  mapFile(file: string | number, offset?: number, length?: number): Uint8Array;
}

/** Where the native matmul rounds activations to int8 (NativeAddon.setInt8). */
export type Int8Mode = 'off' | 'prefill' | 'all';

/** dtype codes of native/src/kernels.h (DTypeCode). */
const DTYPE_CODES: Readonly<Record<string, number>> = {
  f32: 0, f16: 1, bf16: 2, q8_0: 3, q4_0: 4, q4_1: 5, q5_0: 6, q4_k: 7, q5_k: 8, q6_k: 9, fp8_e4m3: 10,
  iq4_nl: 11, iq4_xs: 12, q2_k: 13, q3_k: 14, q5_1: 15,
};

/** The SIMD levels from best to worst; the addon can run any level at or below the detected one. */
export const SIMD_LEVELS = ['avx512-vnni', 'avx512', 'avx2', 'scalar'] as const;

/**
 * Path of the built addon: <package root>/native/build/Release/frugal_native.node, or the file
 * FRUGAL_NATIVE_ADDON names (scripts/emulated-avx512.mjs points it at the emulated build).
 */
export function nativeAddonPath(): string {
  const chosen = process.env.FRUGAL_NATIVE_ADDON;
  if (chosen) return chosen;
  // This file runs as dist/src/tensor/native.js (package root three levels up) or src/tensor/native.ts (two).
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..'), join(here, '..', '..', '..')];
  const root = candidates.find((dir) => existsSync(join(dir, 'package.json'))) ?? candidates[1]!;
  return join(root, 'native', 'build', 'Release', 'frugal_native.node');
}

let loadedAddon: NativeAddon | undefined;

/**
 * Loads the addon once per thread (later calls return the same module, even if the file on disk
 * has since been rebuilt or removed); throws an Error saying why when it cannot.
 */
export function loadNativeAddon(): NativeAddon {
  if (loadedAddon) return loadedAddon;
  loadedAddon = requireAddon();
  return loadedAddon;
}

function requireAddon(): NativeAddon {
  const path = nativeAddonPath();
  if (!path.endsWith('.node')) throw new Error(`FRUGAL_NATIVE_ADDON must name a .node file (a built addon), got ${path}`);
  if (!existsSync(path)) {
    throw new Error(process.env.FRUGAL_NATIVE_ADDON ? `FRUGAL_NATIVE_ADDON names ${path}, which does not exist` : `${path} is not built (run npm install, or node scripts/build-native.mjs)`);
  }
  const require = createRequire(import.meta.url);
  return require(path) as NativeAddon;
}

/** The addon's code of w's dtype; throws when the addon was built before that dtype existed. */
function codeOf(w: WeightMatrix, lastDtype: number): number {
  const c = DTYPE_CODES[w.dtype]!;
  if (c > lastDtype) throw new Error(`the native addon predates ${w.dtype} weights: rebuild it (npm install, or node scripts/build-native.mjs)`);
  return c;
}

/** The native backend: a Backend plus where int8 activations are in use (NativeAddon.setInt8). */
export type NativeBackend = Backend & { readonly int8: Int8Mode };

/** A Backend over the addon. `simd` reflects the addon's current level (see NativeAddon.setSimd). */
export function nativeBackend(addon: NativeAddon): NativeBackend {
  const lastDtype = addon.info().lastDtype ?? DTYPE_CODES.fp8_e4m3!;
  const code = (w: WeightMatrix): number => codeOf(w, lastDtype);
  return {
    name: 'native',
    get simd() {
      return addon.info().simd;
    },
    get int8() {
      return addon.info().int8;
    },
    threads: addon.info().threads,

    gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
      addon.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    },
    matmul(out, x, m, w) {
      checkMatmul(out, x, m, w);
      addon.matmul(out, x, m, code(w), w.rows, w.cols, w.data, w.blockScales);
    },
    dequantizeRows(out, w, rowStart, rowCount) {
      checkWeight('dequantizeRows', w);
      checkRows('dequantizeRows', w, rowStart, rowCount);
      checkLength('dequantizeRows', 'out', out, rowCount * w.cols);
      addon.dequantizeRows(out, code(w), w.rows, w.cols, w.data, w.blockScales, rowStart, rowCount);
    },
    embeddingGather(out, table, ids) {
      checkWeight('embeddingGather', table);
      checkIds('embeddingGather', ids, table.rows);
      checkLength('embeddingGather', 'out', out, ids.length * table.cols);
      addon.embeddingGather(out, code(table), table.rows, table.cols, table.data, table.blockScales, ids, ids.length);
    },
    rmsNorm(out, x, weight, rows, dim, eps) {
      checkCount('rmsNorm: rows', rows);
      checkCount('rmsNorm: dim', dim);
      checkLength('rmsNorm', 'x', x, rows * dim);
      checkLength('rmsNorm', 'out', out, rows * dim);
      checkLength('rmsNorm', 'weight', weight, dim);
      addon.rmsNorm(out, x, weight, rows, dim, eps);
    },
    softmax(x, rows, cols) {
      checkCount('softmax: rows', rows);
      checkCount('softmax: cols', cols);
      checkLength('softmax', 'x', x, rows * cols);
      addon.softmax(x, rows, cols);
    },
    rope(x: Float32Array, p: RopeParams) {
      checkRope(x, p);
      addon.rope(x, p.tokens, p.heads, p.tokenStride, p.headStride, p.offset, p.ropeDim, p.positions, p.invFreq, p.style === 'neox', p.attentionFactor);
    },
    siluMul(out, gate, up, n) {
      elementwise('siluMul', n, out, gate, up);
      addon.siluMul(out, gate, up, n);
    },
    add(out, a, b, n) {
      elementwise('add', n, out, a, b);
      addon.add(out, a, b, n);
    },
    mul(out, a, b, n) {
      elementwise('mul', n, out, a, b);
      addon.mul(out, a, b, n);
    },
    axpy(out, alpha, x, n) {
      elementwise('axpy', n, out, x, x);
      addon.axpy(out, alpha, x, n);
    },
    topK(outIndices, outValues, x, rows, cols, k) {
      checkCount('topK: rows', rows);
      checkCount('topK: cols', cols);
      checkCount('topK: k', k);
      if (k > cols) throw new Error(`topK: k ${k} is larger than cols ${cols}`);
      checkLength('topK', 'x', x, rows * cols);
      checkLength('topK', 'outIndices', outIndices, rows * k);
      checkLength('topK', 'outValues', outValues, rows * k);
      addon.topK(outIndices, outValues, x, rows, cols, k);
    },
    attention(out, q, k, v, p: AttentionParams) {
      checkAttention(out, q, k, v, p);
      addon.attention(out, q, k, v, p.queries, p.heads, p.kvHeads, p.headDimK, p.headDimV, p.startPos, p.scale,
        p.kTokenStride, p.kHeadStride, p.vTokenStride, p.vHeadStride);
    },
    ...(typeof addon.attentionSegments === 'function' ? {
      attentionSegments(out: Float32Array, q: Float32Array, caches: readonly Float32Array[], segments: Int32Array, p: SegmentAttentionParams) {
        checkSegmentAttention(out, q, caches, segments, p);
        addon.attentionSegments(out, q, caches, segments, caches.length, p.heads, p.headDimK, p.headDimV, p.stride, p.scale);
      },
      moeExperts(out: Float32Array, x: Float32Array, experts: Int32Array, weights: Float32Array, gateUp: Float32Array, down: Float32Array, p: MoeExpertsParams) {
        checkMoeExperts(out, x, experts, weights, gateUp, down, p);
        addon.moeExperts(out, x, experts, weights, gateUp, down, p.tokens, p.hidden, p.topK, p.experts, p.width);
      },
    } : {}),
    ...(typeof addon.expShifted === 'function' ? {
      expShifted(out: Float64Array, z: Float32Array, n: number, shift: number, scale: number, prefix?: Float64Array) {
        checkCountOf('expShifted', 'n', n);
        if (out.length < n || z.length < n) throw new RangeError(`expShifted: out (${out.length}) and z (${z.length}) need n = ${n} elements`);
        if (prefix) checkLength('expShifted', 'prefix', prefix, Math.ceil(n / EXP_PREFIX_BLOCK));
        return addon.expShifted!(out, z, n, shift, scale, prefix);
      },
    } : {}),
    ...(typeof addon.softmaxBuckets === 'function' ? {
      softmaxBuckets(full: Float64Array, z: Float32Array, n: number, m: number, invT: number, buckets: number, bucket: Uint16Array, mass: Float64Array) {
        checkCountOf('softmaxBuckets', 'n', n);
        checkCountOf('softmaxBuckets', 'buckets', buckets);
        if (buckets < 1 || buckets > 65535) throw new RangeError(`softmaxBuckets: buckets must be 1..65535, got ${buckets}`);
        checkLength('softmaxBuckets', 'full', full, n);
        checkLength('softmaxBuckets', 'z', z, n);
        checkLength('softmaxBuckets', 'bucket', bucket, n);
        checkLength('softmaxBuckets', 'mass', mass, buckets + 1);
        return addon.softmaxBuckets!(full, z, n, m, invT, buckets, bucket, mass);
      },
    } : {}),
    ...(typeof addon.argmaxLogits === 'function' ? {
      argmaxLogits(z: Float32Array, n: number) {
        checkCountOf('argmaxLogits', 'n', n);
        checkLength('argmaxLogits', 'z', z, n);
        return addon.argmaxLogits!(z, n);
      },
    } : {}),
    ...(typeof addon.matmulKMajor === 'function' ? {
      matmulKMajor(out: Float32Array, x: Float32Array, m: number, wt: Float32Array, n: number, k: number) {
        checkCountOf('matmulKMajor', 'm', m);
        checkCountOf('matmulKMajor', 'n', n);
        checkCountOf('matmulKMajor', 'k', k);
        checkLength('matmulKMajor', 'out', out, m * n);
        checkLength('matmulKMajor', 'x', x, m * k);
        checkLength('matmulKMajor', 'wt', wt, k * Math.ceil(n / 16) * 16);
        return addon.matmulKMajor!(out, x, m, wt, n, k);
      },
    } : {}),
  };
}

function elementwise(kernel: string, n: number, out: Float32Array, a: Float32Array, b: Float32Array): void {
  checkCountOf(kernel, 'n', n);
  checkLength(kernel, 'out', out, n);
  checkLength(kernel, 'a', a, n);
  checkLength(kernel, 'b', b, n);
}

/** Checks of Backend.attentionSegments (the kernel trusts every row and position it is given). */
function checkSegmentAttention(out: Float32Array, q: Float32Array, caches: readonly Float32Array[], segments: Int32Array, p: SegmentAttentionParams): void {
  for (const [name, value] of [['heads', p.heads], ['headDimK', p.headDimK], ['headDimV', p.headDimV], ['stride', p.stride]] as const) checkCountOf('attentionSegments', name, value);
  if (p.headDimK > p.stride || p.headDimV > p.stride) throw new Error(`attentionSegments: key ${p.headDimK} and value ${p.headDimV} values must fit a cache row of ${p.stride}`);
  checkLength('attentionSegments', 'segments', segments, 3 * caches.length);
  let rows = 0;
  caches.forEach((cache, i) => {
    const row = segments[3 * i]!;
    const count = segments[3 * i + 1]!;
    const startPos = segments[3 * i + 2]!;
    if (row < 0 || count < 1 || startPos < 0) throw new Error(`attentionSegments: segment ${i} has row ${row}, count ${count}, startPos ${startPos}`);
    checkLength('attentionSegments', `cache ${i}`, cache, (startPos + count) * p.stride);
    rows = Math.max(rows, row + count);
  });
  checkLength('attentionSegments', 'q', q, rows * p.heads * p.headDimK);
  checkLength('attentionSegments', 'out', out, rows * p.heads * p.headDimV);
}

/** Checks of Backend.moeExperts (the kernel trusts every expert id). */
function checkMoeExperts(out: Float32Array, x: Float32Array, experts: Int32Array, weights: Float32Array, gateUp: Float32Array, down: Float32Array, p: MoeExpertsParams): void {
  for (const [name, value] of [['tokens', p.tokens], ['hidden', p.hidden], ['topK', p.topK], ['experts', p.experts], ['width', p.width]] as const) checkCountOf('moeExperts', name, value);
  checkLength('moeExperts', 'out', out, p.tokens * p.hidden);
  checkLength('moeExperts', 'x', x, p.tokens * p.hidden);
  checkLength('moeExperts', 'experts', experts, p.tokens * p.topK);
  checkLength('moeExperts', 'weights', weights, p.tokens * p.topK);
  checkLength('moeExperts', 'gateUp', gateUp, p.experts * panelLength(2 * p.width, p.hidden));
  checkLength('moeExperts', 'down', down, p.experts * panelLength(p.hidden, p.width));
  for (let i = 0; i < p.tokens * p.topK; i++) {
    const e = experts[i]!;
    if (!(e >= 0 && e < p.experts)) throw new Error(`moeExperts: slot ${i} names expert ${e} of ${p.experts}`);
  }
}
