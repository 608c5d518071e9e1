// The ref backend against independent computations: hand-worked values, algebraic identities
// (transposes, rotation composition, normalisation) and compositions of other kernels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refBackend as ref } from '../../src/tensor/ref.js';
import { quantize } from '../../src/tensor/quant/index.js';
import { weightMatrix } from '../../src/tensor/tensor.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('ref gemm: a hand-worked 2x3 · 3x2 product, alpha, beta and NaN in C with beta 0', () => {
  const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const b = Float32Array.from([7, 8, 9, 10, 11, 12]);
  const c = Float32Array.from([NaN, NaN, NaN, NaN]);
  ref.gemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2);
  assert.deepEqual([...c], [58, 64, 139, 154]);
  ref.gemm(false, false, 2, 2, 3, 2, a, 3, b, 2, 1, c, 2);
  assert.deepEqual([...c], [174, 192, 417, 462]);
});

test('ref gemm: transA/transB equal the product of explicitly transposed copies, with leading dimensions', () => {
  const [m, n, k] = [5, 7, 3];
  const a = random(m * k, 1);
  const b = random(k * n, 2);
  const expected = new Float32Array(m * n);
  ref.gemm(false, false, m, n, k, 1, a, k, b, n, 0, expected, n);
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const aStored = transA ? transpose(a, m, k) : a;
      const bStored = transB ? transpose(b, k, n) : b;
      const c = new Float32Array(m * (n + 2));
      ref.gemm(transA, transB, m, n, k, 1, aStored, transA ? m : k, bStored, transB ? k : n, 0, c, n + 2);
      const packed = new Float32Array(m * n);
      for (let i = 0; i < m; i++) packed.set(c.subarray(i * (n + 2), i * (n + 2) + n), i * n);
      assertClose(packed, expected, 1e-6, `trans ${transA} ${transB}`);
    }
  }
});

test('ref gemm rejects short buffers and bad leading dimensions with clear errors', () => {
  assert.throws(() => ref.gemm(false, false, 2, 2, 2, 1, new Float32Array(3), 2, new Float32Array(4), 2, 0, new Float32Array(4), 2), /gemm: A needs 4/);
  assert.throws(() => ref.gemm(false, false, 2, 2, 2, 1, new Float32Array(4), 1, new Float32Array(4), 2, 0, new Float32Array(4), 2), /lda 1/);
});

test('ref matmul: f32 weights equal gemm with transB; quantized weights equal the dequantized f32 weight', () => {
  const [m, rows, cols] = [3, 5, 256];
  const x = random(m * cols, 3);
  const values = random(rows * cols, 4);
  const expected = new Float32Array(m * rows);
  ref.gemm(false, true, m, rows, cols, 1, x, cols, values, cols, 0, expected, rows);
  const out = new Float32Array(m * rows);
  ref.matmul(out, x, m, weightMatrix('f32', rows, cols, new Uint8Array(values.buffer)));
  assertClose(out, expected, 1e-6, 'f32 matmul');
  for (const dtype of ['q8_0', 'q4_k', 'bf16'] as const) {
    const w = weightMatrix(dtype, rows, cols, quantize(dtype, values));
    const dense = new Float32Array(rows * cols);
    ref.dequantizeRows(dense, w, 0, rows);
    ref.gemm(false, true, m, rows, cols, 1, x, cols, dense, cols, 0, expected, rows);
    ref.matmul(out, x, m, w);
    assertClose(out, expected, 1e-6, `${dtype} matmul`);
  }
});

test('ref dequantizeRows applies fp8 128x128 block scales by row and column block', () => {
  const [rows, cols] = [130, 256];
  const data = new Uint8Array(rows * cols).fill(0x38); // 1.0 in E4M3
  const scales = Float32Array.from([1, 2, 3, 4]);
  const w = weightMatrix('fp8_e4m3', rows, cols, data, scales);
  const out = new Float32Array(2 * cols);
  ref.dequantizeRows(out, w, 127, 2);
  assert.equal(out[0], 1);
  assert.equal(out[200], 2);
  assert.equal(out[cols + 5], 3);
  assert.equal(out[cols + 130], 4);
  assert.throws(() => ref.dequantizeRows(out, w, 129, 2), /rows \[129, 131\) exceed/);
});

test('ref embeddingGather copies dequantized rows and rejects out-of-range ids', () => {
  const table = random(4 * 32, 5);
  const w = weightMatrix('f32', 4, 32, new Uint8Array(table.buffer));
  const out = new Float32Array(2 * 32);
  ref.embeddingGather(out, w, Int32Array.from([3, 1]));
  assert.deepEqual([...out.subarray(0, 32)], [...table.subarray(96, 128)]);
  assert.deepEqual([...out.subarray(32)], [...table.subarray(32, 64)]);
  assert.throws(() => ref.embeddingGather(out, w, Int32Array.from([4])), /id 4 at index 0/);
});

test('ref rmsNorm: unit weight gives rows with mean square ~1; in-place works', () => {
  const x = random(3 * 16, 6);
  const out = new Float32Array(x.length);
  ref.rmsNorm(out, x, new Float32Array(16).fill(1), 3, 16, 0);
  for (let r = 0; r < 3; r++) {
    let ms = 0;
    for (let i = 0; i < 16; i++) ms += out[r * 16 + i]! ** 2 / 16;
    assert.ok(Math.abs(ms - 1) < 1e-5);
  }
  ref.rmsNorm(x, x, new Float32Array(16).fill(1), 3, 16, 0);
  assertClose(x, out, 0, 'in place');
});

test('ref softmax: rows sum to 1, order is kept, huge logits do not overflow', () => {
  const x = Float32Array.from([1, 2, 3, 1000, 1001, 1002]);
  ref.softmax(x, 2, 3);
  assertClose(x.subarray(0, 3), x.subarray(3), 1e-6, 'shift invariance');
  assert.ok(Math.abs(x[0]! + x[1]! + x[2]! - 1) < 1e-6);
  assert.ok(Math.abs(x[2]! / x[1]! - Math.E) < 1e-5);
});

test('ref rope: rotation by position a then b equals position a+b; norms kept; style pairs differ', () => {
  const dim = 8;
  const invFreq = Float32Array.from([1, 0.1, 0.01, 0.001]);
  for (const style of ['interleaved', 'neox'] as const) {
    const params = (pos: number) => ({ tokens: 1, heads: 1, tokenStride: dim + 2, headStride: dim + 2, offset: 2, ropeDim: dim, positions: Int32Array.from([pos]), invFreq, style, attentionFactor: 1 });
    const x = random(dim + 2, 7);
    const twice = x.slice();
    ref.rope(twice, params(3));
    ref.rope(twice, params(4));
    const once = x.slice();
    ref.rope(once, params(7));
    assertClose(twice, once, 1e-5, style);
    assert.equal(once[0], x[0]);
    assert.equal(once[1], x[1]);
    const norm = (v: Float32Array) => Math.hypot(...v);
    assert.ok(Math.abs(norm(once) - norm(x)) < 1e-5);
  }
  const x = Float32Array.from([1, 0, 0, 0]);
  ref.rope(x, { tokens: 1, heads: 1, tokenStride: 4, headStride: 4, offset: 0, ropeDim: 4, positions: Int32Array.from([1]), invFreq: Float32Array.from([Math.PI / 2, 0]), style: 'interleaved', attentionFactor: 2 });
  assertClose(x, [0, 2, 0, 0], 1e-6, 'interleaved quarter turn, factor 2');
  const y = Float32Array.from([1, 0, 0, 0]);
  ref.rope(y, { tokens: 1, heads: 1, tokenStride: 4, headStride: 4, offset: 0, ropeDim: 4, positions: Int32Array.from([1]), invFreq: Float32Array.from([Math.PI / 2, 0]), style: 'neox', attentionFactor: 1 });
  assertClose(y, [0, 0, 1, 0], 1e-6, 'neox quarter turn');
});

test('ref elementwise kernels: siluMul, add, mul, axpy', () => {
  const a = Float32Array.from([-2, 0, 3]);
  const b = Float32Array.from([1, 5, 2]);
  const out = new Float32Array(3);
  ref.siluMul(out, a, b, 3);
  assertClose(out, [-2 / (1 + Math.exp(2)), 0, (3 / (1 + Math.exp(-3))) * 2], 1e-6, 'siluMul');
  ref.add(out, a, b, 3);
  assert.deepEqual([...out], [-1, 5, 5]);
  ref.mul(out, a, b, 3);
  assert.deepEqual([...out], [-2, 0, 6]);
  ref.axpy(out, 0.5, b, 3);
  assert.deepEqual([...out], [-1.5, 2.5, 7]);
});

test('ref topK: descending values, ties by lower index', () => {
  const x = Float32Array.from([1, 5, 3, 5, 0, 9, 9, 1]);
  const idx = new Int32Array(4);
  const val = new Float32Array(4);
  ref.topK(idx, val, x, 2, 4, 2);
  assert.deepEqual([...idx], [1, 3, 1, 2]);
  assert.deepEqual([...val], [5, 5, 9, 9]);
  assert.throws(() => ref.topK(idx, val, x, 2, 4, 5), /k 5 is larger/);
});

test('ref attention: one key returns V; causal GQA equals softmax(QKᵀ)V per head built from gemm + softmax', () => {
  const [queries, heads, kvHeads, dk, dv, startPos] = [3, 4, 2, 5, 3, 2];
  const keys = startPos + queries;
  const q = random(queries * heads * dk, 8);
  // MLA-style shared row: K = row[0..dk), V = row[0..dv) of the same cache, stride 7 per head, 20 per token.
  const cache = random(keys * 20, 9);
  const params = { queries, heads, kvHeads, headDimK: dk, headDimV: dv, startPos, scale: 0.7, kTokenStride: 20, kHeadStride: 7, vTokenStride: 20, vHeadStride: 7 };
  const out = new Float32Array(queries * heads * dv);
  ref.attention(out, q, cache, cache, params);
  for (let h = 0; h < heads; h++) {
    const g = Math.floor(h / 2);
    const kh = new Float32Array(keys * dk);
    const vh = new Float32Array(keys * dv);
    for (let s = 0; s < keys; s++) {
      kh.set(cache.subarray(s * 20 + g * 7, s * 20 + g * 7 + dk), s * dk);
      vh.set(cache.subarray(s * 20 + g * 7, s * 20 + g * 7 + dv), s * dv);
    }
    for (let t = 0; t < queries; t++) {
      const visible = startPos + t + 1;
      const scores = new Float32Array(visible);
      ref.gemm(false, true, 1, visible, dk, 0.7, q.subarray((t * heads + h) * dk), dk, kh, dk, 0, scores, visible);
      ref.softmax(scores, 1, visible);
      const expected = new Float32Array(dv);
      ref.gemm(false, false, 1, dv, visible, 1, scores, visible, vh, dv, 0, expected, dv);
      assertClose(out.subarray((t * heads + h) * dv, (t * heads + h + 1) * dv), expected, 1e-5, `t ${t} h ${h}`);
    }
  }
  const one = new Float32Array(dv);
  ref.attention(one, q, cache, cache, { ...params, queries: 1, heads: 1, kvHeads: 1, startPos: 0 });
  assertClose(one, cache.subarray(0, dv), 1e-6, 'single key');
  assert.throws(() => ref.attention(out, q, cache, cache, { ...params, kvHeads: 3 }), /not a multiple of kvHeads/);
});
