/**
 * The native kernels of a batched decode step (native/src/batch_kernels.h) against the ref
 * backend on random values and odd shapes: attentionSegments against one ref attention() per
 * segment, moeExperts against the per-expert loop (ref, and bit for bit the native loop).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FfnWeights, type MoeWeights, type RouterConfig, fuseMoe, moeForwardFused } from '../../src/nn/moe.js';
import { ScratchBuffers } from '../../src/nn/scratch.js';
import type { Backend } from '../../src/tensor/backend.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';
import { loadNativeAddon } from '../../src/tensor/native.js';
import { panelLength } from '../../src/tensor/panels.js';
import type { WeightMatrix } from '../../src/tensor/tensor.js';

const native = loadNativeBackend();
const skip = native?.attentionSegments && native.moeExperts ? false : 'native addon without the batch kernels';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** [row, count, startPos] per segment, rows in order. */
function attentionCase(heads: number, headDimK: number, headDimV: number, stride: number, segments: [number, number][], seed: number): void {
  const spec: [number, number, number][] = [];
  let rows = 0;
  for (const [count, startPos] of segments) {
    spec.push([rows, count, startPos]);
    rows += count;
  }
  const caches = spec.map(([, count, startPos], i) => random((startPos + count) * stride + 3, seed + i));
  const q = random(rows * heads * headDimK, seed + 100);
  const scale = 0.41;
  const got = new Float32Array(rows * heads * headDimV).fill(Number.NaN);
  native!.attentionSegments!(got, q, caches, Int32Array.from(spec.flat()), { heads, headDimK, headDimV, stride, scale });
  const want = new Float32Array(rows * heads * headDimV);
  spec.forEach(([row, count, startPos], i) => {
    refBackend.attention(want.subarray(row * heads * headDimV, (row + count) * heads * headDimV), q.subarray(row * heads * headDimK, (row + count) * heads * headDimK),
      caches[i]!, caches[i]!, { queries: count, heads, kvHeads: 1, headDimK, headDimV, startPos, scale, kTokenStride: stride, kHeadStride: 0, vTokenStride: stride, vHeadStride: 0 });
  });
  const diff = maxAbsDiff(got, want);
  assert.ok(diff < 1e-5, `heads ${heads}, dims ${headDimK}/${headDimV}, stride ${stride}: differs by ${diff}`);
}

/** Runs body at each SIMD level the CPU has (each has its own code), then restores the level. */
function atEachLevel(body: (level: string) => void): void {
  const addon = loadNativeAddon();
  const start = addon.info().simd;
  try {
    for (const level of ['avx512-vnni', 'avx2', 'scalar']) if (addon.setSimd(level) === level) body(level);
  } finally {
    addon.setSimd(start);
  }
}

test('attentionSegments equals one ref attention per segment (decode steps, prefill chunks, long and short histories)', { skip }, () => {
  atEachLevel(() => {
    attentionCase(4, 48, 32, 48, [[1, 0], [1, 150], [5, 7], [1, 300], [2, 1]], 1); // MLA shapes of the shipped model
    attentionCase(3, 21, 13, 25, [[1, 4], [17, 0], [1, 33], [3, 2]], 2); // odd sizes, key and value not filling the row
    attentionCase(1, 1, 1, 1, [[1, 0]], 3);
    attentionCase(2, 70, 40, 70, [[1, 1000]], 4); // keys wider than 64 values
    attentionCase(2, 64, 16, 80, [[3, 20]], 5);
    attentionCase(8, 48, 32, 48, [[1, 90], [2, 3]], 6); // heads in groups of 4
    attentionCase(5, 40, 24, 44, [[1, 17], [4, 0]], 7); // a group of 4 and one more; values in a chunk and a part
    attentionCase(4, 17, 33, 40, [[2, 9]], 8); // values wider than two chunks
  });
});

test('attentionSegments rejects a cache too short for its positions and a value wider than the row', { skip }, () => {
  const p = { heads: 2, headDimK: 8, headDimV: 4, stride: 8, scale: 1 };
  const out = new Float32Array(2 * 2 * 4);
  const q = new Float32Array(2 * 2 * 8);
  assert.throws(() => native!.attentionSegments!(out, q, [new Float32Array(5 * 8)], Int32Array.of(0, 2, 4), p), /cache 0 needs 48/);
  assert.throws(() => native!.attentionSegments!(out, q, [new Float32Array(64)], Int32Array.of(0, 1, 0), { ...p, headDimV: 9 }), /must fit a cache row/);
});

function weight(rows: number, cols: number, seed: number): WeightMatrix {
  const values = random(rows * cols, seed);
  return { dtype: 'f32', rows, cols, data: new Uint8Array(values.buffer) };
}

function ffn(hidden: number, width: number, seed: number): FfnWeights {
  return { gate: weight(width, hidden, seed), up: weight(width, hidden, seed + 1), down: weight(hidden, width, seed + 2) };
}

test('moeExperts adds the routed experts like the per-expert loop: equal to ref (as is the native per-expert loop), and each token gets the same bits alone as in the batch', { skip }, () => {
  atEachLevel((level) => {
  for (const [hidden, width, E, K, tokens] of [[24, 10, 5, 2, 7], [128, 96, 8, 2, 8], [33, 17, 4, 3, 16], [16, 16, 3, 1, 2], [40, 24, 6, 2, 1]] as const) {
    const w: MoeWeights = {
      router: weight(E, hidden, 7), bias: random(E, 8),
      experts: Array.from({ length: E }, (_, e) => ffn(hidden, width, 20 + 3 * e)), shared: ffn(hidden, 2 * width, 90),
    };
    const cfg: RouterConfig = { nExperts: E, topK: K, nGroup: 1, topkGroup: 1, scoring: 'sigmoid', groupScore: 'top2sum', normTopkProb: true, routedScalingFactor: 2.5 };
    const x = random(tokens * hidden, 11);
    const run = (backend: Backend): Float32Array => moeForwardFused(backend, cfg, w, fuseMoe(backend, w), x, tokens, new ScratchBuffers()).slice();
    const fused = fuseMoe(native!, w);
    assert.ok(fused.grouped, 'f32 experts of one width are grouped');
    assert.equal(fused.experts.length, 0, 'grouped experts keep no row-major copies');
    const grouped = run(native!);
    const loop = run({ ...native!, moeExperts: undefined });
    const ref = run(refBackend);
    const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbsDiff(grouped, ref) < 1e-6 * scale, `${level}, hidden ${hidden}, E ${E}, K ${K}: differs from ref by ${maxAbsDiff(grouped, ref)} (values up to ${scale})`);
    assert.ok(maxAbsDiff(loop, ref) < 1e-6 * scale, `${level}, hidden ${hidden}, E ${E}, K ${K}: the native per-expert loop differs from ref by ${maxAbsDiff(loop, ref)}`);
    // the kernel alone, on fixed routing: each token gets the same bits by itself as in the batch
    const experts = Int32Array.from({ length: tokens * K }, (_, i) => (Math.floor(i / K) * 3 + (i % K) * 2) % E);
    const weights = random(tokens * K, 13);
    const p = { tokens, hidden, topK: K, experts: E, width };
    const batch = random(tokens * hidden, 14);
    native!.moeExperts!(batch, x, experts, weights, fused.grouped.gateUp, fused.grouped.down, p);
    for (let t = 0; t < tokens; t++) {
      const alone = random(tokens * hidden, 14).subarray(t * hidden, (t + 1) * hidden);
      native!.moeExperts!(alone, x.subarray(t * hidden, (t + 1) * hidden), experts.subarray(t * K, (t + 1) * K), weights.subarray(t * K, (t + 1) * K), fused.grouped.gateUp, fused.grouped.down, { ...p, tokens: 1 });
      assert.deepEqual(alone, batch.subarray(t * hidden, (t + 1) * hidden), `${level}, hidden ${hidden}, E ${E}, K ${K}: token ${t} alone differs from the batch`);
    }
  }
  });
});

test('moeExperts rejects an expert id outside the grouped weights', { skip }, () => {
  const p = { tokens: 1, hidden: 4, topK: 1, experts: 2, width: 3 };
  const args = [new Float32Array(4), new Float32Array(4), Int32Array.of(2), Float32Array.of(1), new Float32Array(2 * panelLength(6, 4)), new Float32Array(2 * panelLength(4, 3))] as const;
  assert.throws(() => native!.moeExperts!(...args, p), /slot 0 names expert 2 of 2/);
});
