import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, detach, backward, Var } from '../../src/autograd/var.js';
import { mul, sub, minimum } from '../../src/autograd/arith.js';
import { exp, clamp, scale } from '../../src/autograd/unary.js';
import { sum, mean } from '../../src/autograd/reduce.js';
import { tokenLogProbs } from '../../src/autograd/loss.js';
import { fakeQuantTiles, fakeQuantBlocks } from '../../src/autograd/fp8.js';
import { FP8_TABLE } from '../../src/tensor/quant/fp8.js';
import { Random } from '../../src/autograd/random.js';
import { rmsNorm, rmsNormKernels } from '../../src/autograd/rmsnorm.js';

const rng = new Random(31);
const fp8Values = new Set(Array.from(FP8_TABLE).filter(Number.isFinite));

/** Checks that every value of a group is an E4M3 value times the group's scale amax / 448. */
function checkGroup(q: Float32Array, x: Float32Array, indices: number[]): void {
  const amax = Math.max(...indices.map((i) => Math.abs(x[i]!)));
  const s = Math.max(amax, 1e-4) / 448;
  for (const i of indices) {
    const code = q[i]! / s;
    // Representable up to the f32 rounding of code · s / s.
    const nearest = Math.fround(code);
    assert.ok([...fp8Values].some((v) => Math.abs(v - nearest) <= 1e-4 * Math.max(1, Math.abs(v))), `value ${q[i]} / scale ${s} = ${code} is not an E4M3 value`);
    // Round to nearest with 3 mantissa bits: relative error at most 2^-4 in the normal range.
    if (Math.abs(x[i]! / s) >= 2 ** -6) assert.ok(Math.abs(q[i]! - x[i]!) <= 2 ** -4 * Math.abs(x[i]!) + 1e-7, `${q[i]} vs ${x[i]}`);
  }
  const top = indices.find((i) => Math.abs(x[i]!) === amax)!;
  assert.ok(Math.abs(q[top]! - x[top]!) <= 1e-6 * amax, 'the tile maximum maps to 448 exactly');
}

test('fakeQuantTiles: one E4M3 scale per row and per 128 columns, straight-through gradient', () => {
  const x = parameter(rng.normalArray(3 * 300), [3, 300]);
  // Make the tiles of row 1 very different in scale: tiles must not share scales.
  for (let c = 128; c < 256; c++) x.value[300 + c]! *= 1000;
  const q = fakeQuantTiles(x);
  for (let r = 0; r < 3; r++) {
    for (const [c0, c1] of [[0, 128], [128, 256], [256, 300]] as const) {
      checkGroup(q.value, x.value, Array.from({ length: c1 - c0 }, (_, j) => r * 300 + c0 + j));
    }
  }
  const c = rng.normalArray(q.size);
  backward(sum(mul(q, parameter(c, q.shape))));
  x.grad!.forEach((g, i) => assert.ok(Math.abs(g - c[i]!) < 1e-6));
});

test('fakeQuantBlocks: one E4M3 scale per 128×128 block, edge blocks included', () => {
  const w = parameter(rng.normalArray(130 * 140), [130, 140]);
  const q = fakeQuantBlocks(w);
  for (const [r0, r1] of [[0, 128], [128, 130]] as const) {
    for (const [c0, c1] of [[0, 128], [128, 140]] as const) {
      const idx: number[] = [];
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) idx.push(r * 140 + c);
      checkGroup(q.value, w.value, idx);
    }
  }
  assert.throws(() => fakeQuantBlocks(parameter(new Float32Array(8), [2, 2, 2])), /must be 2-D/);
});

test('detach cuts the graph: the GRPO ratio exp(logp − detach(logp)) is 1 with gradient ∇logp', () => {
  const logits = parameter(rng.normalArray(4 * 5), [4, 5]);
  const targets = Int32Array.from([1, 4, 0, 2]);
  const adv = parameter(Float32Array.from([0.5, -1, 2, 0.25]), [4]);
  // Clipped surrogate min(ρA, clip(ρ, 1−ε, 1+ε)A) at ρ = 1: its gradient is A · ∇logp.
  const build = (): Var => {
    const logp = tokenLogProbs(logits, targets);
    const ratio = exp(sub(logp, detach(logp)));
    const frozenAdv = detach(adv);
    return scale(mean(minimum(mul(ratio, frozenAdv), mul(clamp(ratio, 0.8, 1.2), frozenAdv))), -1);
  };
  const loss = build();
  assert.ok(Math.abs(loss.item() - -(0.5 - 1 + 2 + 0.25) / 4) < 1e-6);
  backward(loss);
  const viaRatio = Float32Array.from(logits.grad!);
  logits.clearGrad();
  backward(scale(mean(mul(tokenLogProbs(logits, targets), detach(adv))), -1));
  viaRatio.forEach((g, i) => assert.ok(Math.abs(g - logits.grad![i]!) < 1e-6));
  assert.equal(adv.grad, null);
});

test('an op runs whatever kernel its table holds (the hook for native kernels)', () => {
  const x = parameter(rng.normalArray(2 * 8), [2, 8]);
  const w = parameter(rng.normalArray(8), [8]);
  const original = { ...rmsNormKernels };
  let forwards = 0;
  let backwards = 0;
  rmsNormKernels.forward = (...args) => {
    forwards++;
    original.forward(...args);
  };
  rmsNormKernels.backward = (...args) => {
    backwards++;
    original.backward(...args);
  };
  try {
    backward(sum(rmsNorm(x, w, 1e-6)));
  } finally {
    Object.assign(rmsNormKernels, original);
  }
  assert.deepEqual([forwards, backwards], [1, 1]);
  backward(sum(rmsNorm(x, w, 1e-6)));
  assert.deepEqual([forwards, backwards], [1, 1]);
});
