import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, backward } from '../../src/autograd/var.js';
import { add, mul, minimum, sub } from '../../src/autograd/arith.js';
import { addScalar, clamp, exp, neg, scale } from '../../src/autograd/unary.js';
import { sum } from '../../src/autograd/reduce.js';
import { constant } from '../../src/autograd/var.js';
import { groupAdvantages, grpoLoss, grpoTokenLoss, tokenWeights } from '../../src/train/grpo.js';

const close = (a: number, b: number, tol = 1e-6, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

test('grpo: group advantages: z-score with the sample std, zero for all-equal groups, Dr. GRPO mean-only', () => {
  const a = groupAdvantages([1, 0, 0, 1, 2, 2, 2, 2], 4, true);
  const std = Math.sqrt((4 * 0.25) / 3);
  [0.5, -0.5, -0.5, 0.5].forEach((c, i) => close(a[i]!, c / (std + 1e-4), 1e-6, `adv ${i}`));
  assert.deepEqual(a.slice(4), [0, 0, 0, 0]);
  assert.deepEqual(groupAdvantages([1, 0, 0, 1], 4, false), [0.5, -0.5, -0.5, 0.5]);
  assert.deepEqual(groupAdvantages([3, 0, 0], 3, false), [2, -1, -1]);
  assert.throws(() => groupAdvantages([1, 2, 3], 2, true), /do not split into groups of 2/);
});

test('grpo: clipped surrogate inside and outside [1-eps, 1+eps] for positive and negative advantages', () => {
  const eps = 0.2;
  const at = (ratio: number, adv: number) => grpoTokenLoss(Math.log(ratio) + -1.3, -1.3, 0, adv, eps, 0);
  // ratio 1.5, A > 0: clipped at 1.2, no gradient.
  let t = at(1.5, 1);
  close(t.loss, -1.2, 1e-9);
  assert.equal(t.grad, 0);
  assert.equal(t.clipped, true);
  // ratio 1.5, A < 0: min(-1.5, -1.2) = -1.5, unclipped, gradient -A·ρ = 1.5.
  t = at(1.5, -1);
  close(t.loss, 1.5, 1e-9);
  close(t.grad, 1.5, 1e-9);
  assert.equal(t.clipped, false);
  // ratio 0.5, A > 0: min(0.5, 0.8) = 0.5 unclipped; A < 0: min(-0.5, -0.8) = -0.8 clipped.
  t = at(0.5, 1);
  close(t.loss, -0.5, 1e-9);
  close(t.grad, -0.5, 1e-9);
  t = at(0.5, -1);
  close(t.loss, 0.8, 1e-9);
  assert.equal(t.grad, 0);
  assert.equal(t.clipped, true);
  // inside the range: plain ρA with gradient −ρA.
  t = at(1.1, 2);
  close(t.loss, -2.2, 1e-9);
  close(t.grad, -2.2, 1e-9);
});

test('grpo: k3 KL value, non-negativity and gradient sign', () => {
  // π = 0.5, π_ref = 0.25: KL = 0.5 − ln 0.5 − 1, dKL/dlogπ = 1 − π_ref/π = 0.5 > 0 (pushes π back down).
  const t = grpoTokenLoss(Math.log(0.5), Math.log(0.5), Math.log(0.25), 0, 0.2, 1);
  close(t.kl, 0.5 - Math.log(0.5) - 1, 1e-9);
  close(t.loss, t.kl, 1e-9);
  close(t.grad, 0.5, 1e-9);
  // π below π_ref: the gradient is negative (raises π).
  const u = grpoTokenLoss(Math.log(0.1), Math.log(0.1), Math.log(0.4), 0, 0.2, 1);
  assert.ok(u.grad < 0 && u.kl > 0);
  const same = grpoTokenLoss(-2, -2, -2, 0, 0.2, 1);
  assert.equal(same.kl, 0);
  assert.equal(same.grad, 0);
  for (let d = -3; d <= 3; d += 0.25) assert.ok(grpoTokenLoss(0, 0, d, 0, 0.2, 1).kl >= 0);
});

test('grpo: per-token weights: per-sequence mean (grpo), constant L (Dr. GRPO), token mean (DAPO)', () => {
  assert.deepEqual(tokenWeights([2, 4], 2, 'grpo', 8), [1 / 4, 1 / 8]);
  assert.deepEqual(tokenWeights([2, 4], 2, 'dr_grpo', 8), [1 / 16, 1 / 16]);
  assert.deepEqual(tokenWeights([2, 4], 2, 'token', 8), [1 / 6, 1 / 6]);
});

test('grpo: grpoLoss value and gradient equal an autograd composition of the objective; clip fraction and KL stats', () => {
  const n = 7;
  const logp = Float32Array.from([-1.2, -0.3, -2.5, -0.9, -1.7, -0.05, -3.1]);
  const old = Float32Array.from([-1.0, -0.6, -2.0, -0.9, -1.0, -0.2, -3.0]);
  const ref = Float32Array.from([-1.1, -0.5, -2.2, -1.3, -1.5, -0.1, -2.7]);
  const adv = Float32Array.from([1.5, 1.5, -0.7, -0.7, 0.9, -1.2, 0.4]);
  const w = Float32Array.from([0.1, 0.1, 0.05, 0.05, 0.2, 0, 0.3]);
  const eps = 0.2;
  const beta = 0.04;
  const a = parameter(Float32Array.from(logp), [n]);
  const { loss, stats } = grpoLoss(a, { oldLogp: old, refLogp: ref, advantage: adv, weight: w, epsilon: eps, beta });
  backward(loss);
  // Independent composition with autograd ops.
  const b = parameter(Float32Array.from(logp), [n]);
  const c = (v: Float32Array) => constant(v, [n]);
  const ratio = exp(sub(b, c(old)));
  const surrogate = minimum(mul(ratio, c(adv)), mul(clamp(ratio, 1 - eps, 1 + eps), c(adv)));
  const logq = sub(c(ref), b);
  const kl = addScalar(sub(exp(logq), logq), -1);
  const reference = sum(mul(c(w), add(neg(surrogate), scale(kl, beta))));
  backward(reference);
  close(loss.item(), reference.item(), 1e-6, 'loss');
  for (let i = 0; i < n; i++) close(a.grad![i]!, b.grad![i]!, 1e-6, `grad ${i}`);
  // Clipped rows (weight > 0): ratios e^{-0.2}=0.82 (A>0: not clipped), e^{0.3}=1.35 (A>0: clipped),
  // e^{-0.5}=0.61 (A<0: clipped), 1 (no), e^{-0.7}=0.50 (A>0: no), row 5 has weight 0, e^{-0.1} (A>0: no).
  close(stats.clipFraction, 2 / 6, 1e-9, 'clip fraction');
  assert.ok(stats.kl > 0);
});

test('grpo: on-policy (ratio 1, beta 0) the gradient is −Â·w per token (REINFORCE with the group baseline)', () => {
  const logp = Float32Array.from([-1, -2, -0.5]);
  const a = parameter(Float32Array.from(logp), [3]);
  const adv = Float32Array.from([0.5, -0.5, 2]);
  const w = Float32Array.from([0.25, 0.25, 0.5]);
  const { loss, stats } = grpoLoss(a, { oldLogp: logp, refLogp: logp, advantage: adv, weight: w, epsilon: 0.2, beta: 0 });
  backward(loss);
  assert.deepEqual([...a.grad!], [-0.125, 0.125, -1]);
  assert.equal(stats.clipFraction, 0);
  close(loss.item(), -(0.125 - 0.125 + 1), 1e-9);
});
