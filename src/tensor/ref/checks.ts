/**
 * Argument checks shared by both backends: every kernel validates shapes against buffer
 * lengths before touching memory, so bad input gives a clear Error instead of garbage (or,
 * in the native addon, a crash).
 */
import type { AttentionParams, RopeParams } from '../backend.js';
import { byteSize, dtypeInfo } from '../dtype.js';
import type { WeightMatrix } from '../tensor.js';

export function checkCount(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new Error(`${what} must be a non-negative integer, got ${value}`);
}

/** checkCount for argument `name` of `kernel`; the message is built only on failure. */
export function checkCountOf(kernel: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new Error(`${kernel}: ${name} must be a non-negative integer, got ${value}`);
}

export function checkLength(kernel: string, name: string, buffer: ArrayLike<number>, need: number): void {
  if (buffer.length < need) throw new Error(`${kernel}: ${name} needs ${need} elements, has ${buffer.length}`);
}

/** Weight dtypes the matmul kernels accept. */
export const MATMUL_DTYPES = new Set(['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q4_k', 'q5_k', 'q6_k', 'fp8_e4m3', 'iq4_nl', 'iq4_xs', 'q2_k', 'q3_k', 'q5_1']);

/**
 * The fields a weight had when it passed checkWeight: model weights are checked on every matmul,
 * so a weight object seen before with the same dtype, shape and buffers skips the work.
 */
interface CheckedWeight {
  readonly dtype: string;
  readonly rows: number;
  readonly cols: number;
  readonly data: Uint8Array;
  readonly byteLength: number;
  readonly blockScales: Float32Array | undefined;
  readonly scales: number;
}

const checkedWeights = new WeakMap<WeightMatrix, CheckedWeight>();

export function checkWeight(kernel: string, w: WeightMatrix): void {
  const seen = checkedWeights.get(w);
  if (seen && seen.dtype === w.dtype && seen.rows === w.rows && seen.cols === w.cols && seen.data === w.data
    && seen.byteLength === w.data.byteLength && seen.blockScales === w.blockScales && seen.scales === (w.blockScales?.length ?? 0)) return;
  checkWeightFields(kernel, w);
  checkedWeights.set(w, { dtype: w.dtype, rows: w.rows, cols: w.cols, data: w.data, byteLength: w.data.byteLength, blockScales: w.blockScales, scales: w.blockScales?.length ?? 0 });
}

function checkWeightFields(kernel: string, w: WeightMatrix): void {
  checkCountOf(kernel, 'weight rows', w.rows);
  checkCountOf(kernel, 'weight cols', w.cols);
  if (!MATMUL_DTYPES.has(w.dtype)) throw new Error(`${kernel}: weight dtype '${w.dtype}' is not supported`);
  const info = dtypeInfo(w.dtype);
  if (w.cols % info.blockElements !== 0) {
    throw new Error(`${kernel}: ${w.dtype} weight has ${w.cols} columns, not a multiple of the block size ${info.blockElements}`);
  }
  const need = w.rows * byteSize(w.dtype, w.cols);
  if (w.data.byteLength < need) throw new Error(`${kernel}: ${w.dtype} weight [${w.rows}, ${w.cols}] needs ${need} bytes, has ${w.data.byteLength}`);
  if (w.dtype === 'fp8_e4m3') {
    const blocks = Math.ceil(w.rows / 128) * Math.ceil(w.cols / 128);
    if (!w.blockScales || w.blockScales.length < blocks) {
      throw new Error(`${kernel}: fp8 weight [${w.rows}, ${w.cols}] needs ${blocks} block scales, has ${w.blockScales?.length ?? 0}`);
    }
  }
}

export function checkGemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number, c: Float32Array, ldc: number,
): void {
  checkCount('gemm: m', m);
  checkCount('gemm: n', n);
  checkCount('gemm: k', k);
  checkCount('gemm: lda', lda);
  checkCount('gemm: ldb', ldb);
  checkCount('gemm: ldc', ldc);
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  if (lda < aCols) throw new Error(`gemm: lda ${lda} is smaller than A's row length ${aCols}`);
  if (ldb < bCols) throw new Error(`gemm: ldb ${ldb} is smaller than B's row length ${bCols}`);
  if (ldc < n) throw new Error(`gemm: ldc ${ldc} is smaller than n ${n}`);
  if (m > 0 && k > 0) checkLength('gemm', 'A', a, (aRows - 1) * lda + aCols);
  if (n > 0 && k > 0) checkLength('gemm', 'B', b, (bRows - 1) * ldb + bCols);
  if (m > 0 && n > 0) checkLength('gemm', 'C', c, (m - 1) * ldc + n);
}

export function checkMatmul(out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  checkCount('matmul: m', m);
  checkWeight('matmul', w);
  checkLength('matmul', 'x', x, m * w.cols);
  checkLength('matmul', 'out', out, m * w.rows);
}

export function checkRows(kernel: string, w: WeightMatrix, rowStart: number, rowCount: number): void {
  checkCountOf(kernel, 'rowStart', rowStart);
  checkCountOf(kernel, 'rowCount', rowCount);
  if (rowStart + rowCount > w.rows) throw new Error(`${kernel}: rows [${rowStart}, ${rowStart + rowCount}) exceed the weight's ${w.rows} rows`);
}

export function checkIds(kernel: string, ids: Int32Array, rows: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= rows) throw new Error(`${kernel}: id ${id} at index ${i} is outside [0, ${rows})`);
  }
}

export function checkRope(x: Float32Array, p: RopeParams): void {
  checkCount('rope: tokens', p.tokens);
  checkCount('rope: heads', p.heads);
  checkCount('rope: tokenStride', p.tokenStride);
  checkCount('rope: headStride', p.headStride);
  checkCount('rope: offset', p.offset);
  checkCount('rope: ropeDim', p.ropeDim);
  if (p.ropeDim % 2 !== 0) throw new Error(`rope: ropeDim ${p.ropeDim} must be even`);
  if (p.style !== 'interleaved' && p.style !== 'neox') throw new Error(`rope: unknown style '${String(p.style)}'`);
  checkLength('rope', 'positions', p.positions, p.tokens);
  checkLength('rope', 'invFreq', p.invFreq, p.ropeDim / 2);
  if (p.tokens > 0 && p.heads > 0 && p.ropeDim > 0) {
    checkLength('rope', 'x', x, (p.tokens - 1) * p.tokenStride + (p.heads - 1) * p.headStride + p.offset + p.ropeDim);
  }
}

export function checkAttention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): void {
  checkCount('attention: queries', p.queries);
  checkCount('attention: heads', p.heads);
  checkCount('attention: kvHeads', p.kvHeads);
  checkCount('attention: headDimK', p.headDimK);
  checkCount('attention: headDimV', p.headDimV);
  checkCount('attention: startPos', p.startPos);
  checkCount('attention: kTokenStride', p.kTokenStride);
  checkCount('attention: kHeadStride', p.kHeadStride);
  checkCount('attention: vTokenStride', p.vTokenStride);
  checkCount('attention: vHeadStride', p.vHeadStride);
  if (p.kvHeads === 0 || p.heads % p.kvHeads !== 0) throw new Error(`attention: heads ${p.heads} is not a multiple of kvHeads ${p.kvHeads}`);
  checkLength('attention', 'q', q, p.queries * p.heads * p.headDimK);
  checkLength('attention', 'out', out, p.queries * p.heads * p.headDimV);
  const keysTotal = p.startPos + p.queries;
  if (keysTotal > 0 && p.queries > 0) {
    checkLength('attention', 'k', k, (keysTotal - 1) * p.kTokenStride + (p.kvHeads - 1) * p.kHeadStride + p.headDimK);
    checkLength('attention', 'v', v, (keysTotal - 1) * p.vTokenStride + (p.kvHeads - 1) * p.vHeadStride + p.headDimV);
  }
}
