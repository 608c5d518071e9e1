/**
 * The `ref` backend: every kernel of ../backend.ts in plain TypeScript, written for clarity
 * rather than speed. It is the truth the native kernels are tested against, and the fallback
 * when the native addon is not built. Sums are accumulated in doubles (JS numbers).
 */
import type { AttentionParams, Backend, RopeParams } from './backend.js';
import { byteSize } from './dtype.js';
import { dequantize } from './quant/index.js';
import {
  checkAttention, checkCount, checkGemm, checkIds, checkLength, checkMatmul, checkRope, checkRows, checkWeight,
} from './ref/checks.js';
import type { WeightMatrix } from './tensor.js';

/** Dequantize rows [rowStart, rowStart + rowCount) of w into out, applying fp8 block scales. */
function dequantizeWeightRows(out: Float32Array, w: WeightMatrix, rowStart: number, rowCount: number): void {
  const bytesPerRow = byteSize(w.dtype, w.cols);
  for (let r = 0; r < rowCount; r++) {
    const row = rowStart + r;
    const src = w.data.subarray(row * bytesPerRow, (row + 1) * bytesPerRow);
    const dst = out.subarray(r * w.cols, (r + 1) * w.cols);
    dequantize(w.dtype, src, w.cols, dst);
    if (w.dtype === 'fp8_e4m3') {
      const scaleColumns = Math.ceil(w.cols / 128);
      const scales = w.blockScales!;
      for (let c = 0; c < w.cols; c++) dst[c] = dst[c]! * scales[Math.floor(row / 128) * scaleColumns + Math.floor(c / 128)]!;
    }
  }
}

function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number,
  beta: number, c: Float32Array, ldc: number,
): void {
  checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const aip = transA ? a[p * lda + i]! : a[i * lda + p]!;
        const bpj = transB ? b[j * ldb + p]! : b[p * ldb + j]!;
        sum += aip * bpj;
      }
      const old = beta === 0 ? 0 : beta * c[i * ldc + j]!;
      c[i * ldc + j] = alpha * sum + old;
    }
  }
}

function matmul(out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void {
  checkMatmul(out, x, m, w);
  const row = new Float32Array(w.cols);
  for (let r = 0; r < w.rows; r++) {
    dequantizeWeightRows(row, w, r, 1);
    for (let i = 0; i < m; i++) {
      let sum = 0;
      for (let c = 0; c < w.cols; c++) sum += x[i * w.cols + c]! * row[c]!;
      out[i * w.rows + r] = sum;
    }
  }
}

function dequantizeRows(out: Float32Array, w: WeightMatrix, rowStart: number, rowCount: number): void {
  checkWeight('dequantizeRows', w);
  checkRows('dequantizeRows', w, rowStart, rowCount);
  checkLength('dequantizeRows', 'out', out, rowCount * w.cols);
  dequantizeWeightRows(out, w, rowStart, rowCount);
}

function embeddingGather(out: Float32Array, table: WeightMatrix, ids: Int32Array): void {
  checkWeight('embeddingGather', table);
  checkIds('embeddingGather', ids, table.rows);
  checkLength('embeddingGather', 'out', out, ids.length * table.cols);
  for (let i = 0; i < ids.length; i++) dequantizeWeightRows(out.subarray(i * table.cols), table, ids[i]!, 1);
}

function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, rows: number, dim: number, eps: number): void {
  checkCount('rmsNorm: rows', rows);
  checkCount('rmsNorm: dim', dim);
  checkLength('rmsNorm', 'x', x, rows * dim);
  checkLength('rmsNorm', 'out', out, rows * dim);
  checkLength('rmsNorm', 'weight', weight, dim);
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let i = 0; i < dim; i++) squares += x[r * dim + i]! ** 2;
    const inv = 1 / Math.sqrt(squares / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i]! * inv * weight[i]!;
  }
}

function softmax(x: Float32Array, rows: number, cols: number): void {
  checkCount('softmax: rows', rows);
  checkCount('softmax: cols', cols);
  checkLength('softmax', 'x', x, rows * cols);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += Math.exp(row[i]! - max);
    for (let i = 0; i < cols; i++) row[i] = Math.exp(row[i]! - max) / sum;
  }
}

function rope(x: Float32Array, p: RopeParams): void {
  checkRope(x, p);
  const half = p.ropeDim / 2;
  for (let t = 0; t < p.tokens; t++) {
    for (let h = 0; h < p.heads; h++) {
      const base = t * p.tokenStride + h * p.headStride + p.offset;
      for (let i = 0; i < half; i++) {
        const angle = p.positions[t]! * p.invFreq[i]!;
        const cos = Math.cos(angle) * p.attentionFactor;
        const sin = Math.sin(angle) * p.attentionFactor;
        const [i0, i1] = p.style === 'interleaved' ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + i + half];
        const x0 = x[i0]!;
        const x1 = x[i1]!;
        x[i0] = x0 * cos - x1 * sin;
        x[i1] = x0 * sin + x1 * cos;
      }
    }
  }
}

function checkElementwise(kernel: string, n: number, ...buffers: [string, Float32Array][]): void {
  checkCount(`${kernel}: n`, n);
  for (const [name, buffer] of buffers) checkLength(kernel, name, buffer, n);
}

function siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  checkElementwise('siluMul', n, ['out', out], ['gate', gate], ['up', up]);
  for (let i = 0; i < n; i++) out[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
}

function add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  checkElementwise('add', n, ['out', out], ['a', a], ['b', b]);
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

function mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  checkElementwise('mul', n, ['out', out], ['a', a], ['b', b]);
  for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
}

function axpy(out: Float32Array, alpha: number, x: Float32Array, n: number): void {
  checkElementwise('axpy', n, ['out', out], ['x', x]);
  for (let i = 0; i < n; i++) out[i] = out[i]! + alpha * x[i]!;
}

function topK(outIndices: Int32Array, outValues: Float32Array, x: Float32Array, rows: number, cols: number, k: number): void {
  checkCount('topK: rows', rows);
  checkCount('topK: cols', cols);
  checkCount('topK: k', k);
  if (k > cols) throw new Error(`topK: k ${k} is larger than cols ${cols}`);
  checkLength('topK', 'x', x, rows * cols);
  checkLength('topK', 'outIndices', outIndices, rows * k);
  checkLength('topK', 'outValues', outValues, rows * k);
  for (let r = 0; r < rows; r++) {
    const order = Array.from({ length: cols }, (_, i) => i);
    order.sort((i, j) => x[r * cols + j]! - x[r * cols + i]! || i - j);
    for (let i = 0; i < k; i++) {
      outIndices[r * k + i] = order[i]!;
      outValues[r * k + i] = x[r * cols + order[i]!]!;
    }
  }
}

function attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): void {
  checkAttention(out, q, k, v, p);
  const group = p.heads / p.kvHeads;
  const scores = new Float64Array(p.startPos + p.queries);
  for (let t = 0; t < p.queries; t++) {
    const keys = p.startPos + t + 1;
    for (let h = 0; h < p.heads; h++) {
      const g = Math.floor(h / group);
      const qBase = (t * p.heads + h) * p.headDimK;
      let max = -Infinity;
      for (let s = 0; s < keys; s++) {
        const kBase = s * p.kTokenStride + g * p.kHeadStride;
        let dot = 0;
        for (let d = 0; d < p.headDimK; d++) dot += q[qBase + d]! * k[kBase + d]!;
        scores[s] = dot * p.scale;
        max = Math.max(max, scores[s]!);
      }
      let sum = 0;
      for (let s = 0; s < keys; s++) {
        scores[s] = Math.exp(scores[s]! - max);
        sum += scores[s]!;
      }
      const oBase = (t * p.heads + h) * p.headDimV;
      for (let d = 0; d < p.headDimV; d++) {
        let acc = 0;
        for (let s = 0; s < keys; s++) acc += scores[s]! * v[s * p.vTokenStride + g * p.vHeadStride + d]!;
        out[oBase + d] = acc / sum;
      }
    }
  }
}

export const refBackend: Backend = {
  name: 'ref',
  simd: 'js',
  threads: 1,
  gemm,
  matmul,
  dequantizeRows,
  embeddingGather,
  rmsNorm,
  softmax,
  rope,
  siluMul,
  add,
  mul,
  axpy,
  topK,
  attention,
};
