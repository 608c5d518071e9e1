import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, constant, Var } from '../../src/autograd/var.js';
import { linear, matmul } from '../../src/autograd/linear.js';
import { embedding } from '../../src/autograd/embedding.js';
import { rmsNorm } from '../../src/autograd/rmsnorm.js';
import { softmax, logSoftmax } from '../../src/autograd/softmax.js';
import { crossEntropy, tokenLogProbs, IGNORE_INDEX } from '../../src/autograd/loss.js';
import { rope, ropeInvFreq } from '../../src/autograd/rope.js';
import { attention } from '../../src/autograd/attention.js';
import { Random } from '../../src/autograd/random.js';
import { gradCheck, expectGradOk } from './gradcheck.js';

// Stated bound (h = 1e-3 on f32 forwards): max |analytic − numeric| < 1e-2 · max |numeric| per input.
const TOL = 1e-2;
const rng = new Random(11);
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const p = (shape: number[], std = 1): Var => parameter(rng.normalArray(size(shape), std), shape);

test('linear: x·Wᵀ + b against loops, and its gradients', (t) => {
  const x = p([2, 3, 5]);
  const w = p([7, 5]);
  const b = p([7]);
  const y = linear(x, w, b);
  assert.deepEqual(y.shape, [2, 3, 7]);
  for (let r = 0; r < 6; r++) {
    for (let o = 0; o < 7; o++) {
      let s = b.value[o]!;
      for (let i = 0; i < 5; i++) s += x.value[r * 5 + i]! * w.value[o * 5 + i]!;
      assert.ok(Math.abs(y.value[r * 7 + o]! - s) < 1e-5);
    }
  }
  expectGradOk(t, 'linear (x, W, b)', gradCheck([x, w, b], () => linear(x, w, b)), TOL);
  expectGradOk(t, 'linear no bias', gradCheck([x, w], () => linear(x, w)), TOL);
  assert.throws(() => linear(x, p([7, 4])), /does not end in 4/);
});

test('matmul: every transpose combination, batched and shared B', (t) => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = p(transA ? [3, 4, 2] : [3, 2, 4]);
      const b = p(transB ? [3, 5, 4] : [3, 4, 5]);
      const c = matmul(a, b, { transA, transB });
      assert.deepEqual(c.shape, [3, 2, 5]);
      const A = (i: number, m: number, k: number): number => (transA ? a.value[i * 8 + k * 2 + m]! : a.value[i * 8 + m * 4 + k]!);
      const B = (i: number, k: number, n: number): number => (transB ? b.value[i * 20 + n * 4 + k]! : b.value[i * 20 + k * 5 + n]!);
      for (let i = 0; i < 3; i++) for (let m = 0; m < 2; m++) for (let n = 0; n < 5; n++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += A(i, m, k) * B(i, k, n);
        assert.ok(Math.abs(c.value[(i * 2 + m) * 5 + n]! - s) < 1e-5);
      }
      expectGradOk(t, `matmul transA=${transA} transB=${transB}`, gradCheck([a, b], () => matmul(a, b, { transA, transB })), TOL);
    }
  }
  const a = p([2, 3, 3, 4]);
  const shared = p([4, 6]);
  expectGradOk(t, 'matmul shared 2-D B', gradCheck([a, shared], () => matmul(a, shared)), TOL);
  assert.throws(() => matmul(p([2, 3]), p([4, 2])), /inner dimensions/);
});

test('embedding gathers rows and scatter-adds repeated ids', (t) => {
  const table = p([6, 4]);
  const ids = Int32Array.from([3, 0, 3, 5, 3]);
  const e = embedding(table, ids, [1, 5]);
  assert.deepEqual(e.shape, [1, 5, 4]);
  assert.deepEqual(Array.from(e.value.subarray(8, 12)), Array.from(table.value.subarray(12, 16)));
  expectGradOk(t, 'embedding', gradCheck([table], () => embedding(table, ids)), TOL);
  assert.throws(() => embedding(table, Int32Array.from([6])), /outside the table/);
});

test('rmsNorm matches its formula and finite differences', (t) => {
  const x = p([3, 2, 16]);
  const w = p([16]);
  const y = rmsNorm(x, w, 1e-6);
  for (let r = 0; r < 6; r++) {
    let ss = 0;
    for (let i = 0; i < 16; i++) ss += x.value[r * 16 + i]! ** 2;
    const s = 1 / Math.sqrt(ss / 16 + 1e-6);
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(y.value[r * 16 + i]! - x.value[r * 16 + i]! * s * w.value[i]!) < 1e-5);
  }
  expectGradOk(t, 'rmsNorm (x, w)', gradCheck([x, w], () => rmsNorm(x, w, 1e-6)), TOL);
  expectGradOk(t, 'rmsNorm no weight', gradCheck([x], () => rmsNorm(x, null, 1e-5)), TOL);
});

test('softmax and logSoftmax', (t) => {
  const x = p([4, 7], 2);
  const s = softmax(x);
  const ls = logSoftmax(x);
  for (let r = 0; r < 4; r++) {
    let total = 0;
    for (let c = 0; c < 7; c++) total += s.value[r * 7 + c]!;
    assert.ok(Math.abs(total - 1) < 1e-6);
    for (let c = 0; c < 7; c++) assert.ok(Math.abs(Math.log(s.value[r * 7 + c]!) - ls.value[r * 7 + c]!) < 1e-5);
  }
  expectGradOk(t, 'softmax', gradCheck([x], () => softmax(x)), TOL);
  expectGradOk(t, 'logSoftmax', gradCheck([x], () => logSoftmax(x)), TOL);
  // Stable for large logits.
  const big = constant(Float32Array.from([1000, 1001, 999]), [1, 3]);
  assert.ok(softmax(big).value.every(Number.isFinite));
});

test('crossEntropy: mean over valid targets, ignore index, and gradients', (t) => {
  const logits = p([2, 4, 9], 2);
  const targets = Int32Array.from([1, 8, IGNORE_INDEX, 0, 4, IGNORE_INDEX, 2, 7]);
  const loss = crossEntropy(logits, targets);
  let expected = 0;
  let valid = 0;
  for (let r = 0; r < 8; r++) {
    if (targets[r] === IGNORE_INDEX) continue;
    let total = 0;
    for (let c = 0; c < 9; c++) total += Math.exp(logits.value[r * 9 + c]!);
    expected += Math.log(total) - logits.value[r * 9 + targets[r]!]!;
    valid++;
  }
  assert.ok(Math.abs(loss.item() - expected / valid) < 1e-5);
  expectGradOk(t, 'crossEntropy', gradCheck([logits], () => crossEntropy(logits, targets)), TOL);
  const none = crossEntropy(logits, new Int32Array(8).fill(IGNORE_INDEX));
  assert.equal(none.item(), 0);
  assert.throws(() => crossEntropy(logits, new Int32Array(8).fill(9)), /outside the vocabulary/);
  assert.throws(() => crossEntropy(logits, new Int32Array(7)), /7 targets for 8 rows/);

  const ids = Int32Array.from([3, 0, 8, 1, 1, 2, 5, 6]);
  const lp = tokenLogProbs(logits, ids);
  assert.deepEqual(lp.shape, [2, 4]);
  const ls = logSoftmax(logits);
  for (let r = 0; r < 8; r++) assert.ok(Math.abs(lp.value[r]! - ls.value[r * 9 + ids[r]!]!) < 1e-5);
  expectGradOk(t, 'tokenLogProbs', gradCheck([logits], () => tokenLogProbs(logits, ids)), TOL);
  // at a sampling temperature T: log softmax(logits / T)[target], and its gradient
  for (const temperature of [0.6, 1.7]) {
    const scaled = logSoftmax(constant(logits.value.map((x) => x / temperature), logits.shape));
    const hot = tokenLogProbs(logits, ids, temperature);
    for (let r = 0; r < 8; r++) assert.ok(Math.abs(hot.value[r]! - scaled.value[r * 9 + ids[r]!]!) < 1e-5, `T ${temperature} row ${r}`);
    expectGradOk(t, `tokenLogProbs at T ${temperature}`, gradCheck([logits], () => tokenLogProbs(logits, ids, temperature)), TOL);
  }
  assert.throws(() => tokenLogProbs(logits, ids, 0), /temperature 0 must be a finite number > 0/);
});

test('rope: both pair layouts rotate by position · frequency, backward by the inverse rotation', (t) => {
  const tokens = 5;
  const heads = 3;
  const dim = 8;
  const x = p([tokens, heads, dim]);
  const positions = Int32Array.from([0, 1, 2, 7, 30]);
  const invFreq = ropeInvFreq(dim, 10000);
  for (const style of ['interleaved', 'neox'] as const) {
    const y = rope(x, positions, invFreq, style, 1.25);
    for (let tk = 0; tk < tokens; tk++) for (let h = 0; h < heads; h++) for (let i = 0; i < dim / 2; i++) {
      const base = (tk * heads + h) * dim;
      const [ia, ib] = style === 'interleaved' ? [base + 2 * i, base + 2 * i + 1] : [base + i, base + i + dim / 2];
      const angle = positions[tk]! * invFreq[i]!;
      const a = x.value[ia]!;
      const b = x.value[ib]!;
      // (a + ib) · e^{i angle} · factor
      assert.ok(Math.abs(y.value[ia]! - 1.25 * (a * Math.cos(angle) - b * Math.sin(angle))) < 1e-5);
      assert.ok(Math.abs(y.value[ib]! - 1.25 * (a * Math.sin(angle) + b * Math.cos(angle))) < 1e-5);
    }
    expectGradOk(t, `rope ${style}`, gradCheck([x], () => rope(x, positions, invFreq, style, 1.25)), TOL);
  }
  assert.throws(() => rope(x, positions.subarray(1), invFreq, 'neox'), /4 positions for 5 tokens/);
});

/** Attention by the definition, one query at a time, float64. */
function naiveAttention(q: Var, k: Var, v: Var, scale: number, causal: boolean): Float64Array {
  const [B, T, H, Dk] = q.shape as [number, number, number, number];
  const Hkv = k.shape[2]!;
  const Dv = v.shape[3]!;
  const out = new Float64Array(B * T * H * Dv);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / Hkv));
    const last = causal ? t : T - 1;
    const scores: number[] = [];
    for (let s = 0; s <= last; s++) {
      let dot = 0;
      for (let d = 0; d < Dk; d++) dot += q.value[((b * T + t) * H + h) * Dk + d]! * k.value[((b * T + s) * Hkv + g) * Dk + d]!;
      scores.push(dot * scale);
    }
    const max = Math.max(...scores);
    const e = scores.map((x) => Math.exp(x - max));
    const total = e.reduce((a, c) => a + c, 0);
    for (let s = 0; s <= last; s++) {
      for (let d = 0; d < Dv; d++) out[((b * T + t) * H + h) * Dv + d]! += (e[s]! / total) * v.value[((b * T + s) * Hkv + g) * Dv + d]!;
    }
  }
  return out;
}

test('attention (GQA, causal and not, Dk ≠ Dv) against the definition and finite differences', (t) => {
  for (const [heads, kvHeads, causal] of [[4, 2, true], [3, 3, false], [4, 1, true]] as const) {
    const q = p([2, 5, heads, 6]);
    const k = p([2, 5, kvHeads, 6]);
    const v = p([2, 5, kvHeads, 3]);
    const scale = 0.3;
    const out = attention(q, k, v, { scale, causal });
    const ref = naiveAttention(q, k, v, scale, causal);
    out.value.forEach((x, i) => assert.ok(Math.abs(x - ref[i]!) < 1e-5, `attention output ${i}: ${x} vs ${ref[i]}`));
    expectGradOk(t, `attention H=${heads} Hkv=${kvHeads} causal=${causal}`, gradCheck([q, k, v], () => attention(q, k, v, { scale, causal })), TOL);
  }
  assert.throws(() => attention(p([1, 2, 3, 4]), p([1, 2, 2, 4]), p([1, 2, 2, 4])), /not a multiple/);
});
