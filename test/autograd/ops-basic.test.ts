import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, constant, backward, noGrad, result, Var } from '../../src/autograd/var.js';
import { gemm, loopGemm } from '../../src/autograd/compute.js';
import { refBackend } from '../../src/tensor/index.js';
import { add, sub, mul, div, minimum, maximum, addN } from '../../src/autograd/arith.js';
import { scale, addScalar, exp, log, square, sqrt, sigmoid, silu, relu, clamp, swiglu } from '../../src/autograd/unary.js';
import { sum, mean, sumAxis, meanAxis } from '../../src/autograd/reduce.js';
import { reshape, transpose, narrow, split, concat, expand } from '../../src/autograd/shape.js';
import { Random } from '../../src/autograd/random.js';
import { gradCheck, expectGradOk } from './gradcheck.js';

// Stated bound for f32 forwards with central differences (h = 1e-3): the largest
// |analytic − numeric| must stay below 1e-2 of the largest numeric gradient of each input.
const TOL = 1e-2;
const rng = new Random(7);
const p = (shape: number[], std = 1, name = ''): Var => parameter(rng.normalArray(shape.reduce((a, b) => a * b, 1), std), shape, name);
/** Values kept away from 0 (for log, sqrt, div) and from kinks. */
const positive = (shape: number[]): Var => parameter(rng.uniformArray(shape.reduce((a, b) => a * b, 1), 0.5, 2), shape);

test('binary ops with broadcasting match finite differences', (t) => {
  const a = p([3, 5, 7]);
  const bias = p([7]);
  const rowScale = positive([3, 5, 1]);
  const scalar = p([]);
  expectGradOk(t, 'add [3,5,7]+[7]', gradCheck([a, bias], () => add(a, bias)), TOL);
  expectGradOk(t, 'sub [7]-[3,5,7]', gradCheck([a, bias], () => sub(bias, a)), TOL);
  expectGradOk(t, 'mul [3,5,7]*[3,5,1]', gradCheck([a, rowScale], () => mul(a, rowScale)), TOL);
  expectGradOk(t, 'mul scalar', gradCheck([a, scalar], () => mul(scalar, a)), TOL);
  expectGradOk(t, 'div [3,5,7]/[3,5,1]', gradCheck([a, rowScale], () => div(a, rowScale)), TOL);
  const b = p([3, 5, 7]);
  // minimum/maximum are piecewise: the random values are ~1 apart, far beyond h.
  expectGradOk(t, 'minimum', gradCheck([a, b], () => minimum(a, b)), TOL);
  expectGradOk(t, 'maximum', gradCheck([a, b], () => maximum(a, b)), TOL);
  expectGradOk(t, 'addN (a repeated)', gradCheck([a, b], () => addN([a, b, a])), TOL);
});

test('broadcast forward values are the NumPy ones', () => {
  const a = constant(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const col = constant(Float32Array.from([10, 20]), [2, 1]);
  assert.deepEqual(Array.from(add(a, col).value), [11, 12, 13, 24, 25, 26]);
  const row = constant(Float32Array.from([1, 0, -1]), [3]);
  assert.deepEqual(Array.from(mul(a, row).value), [1, 0, -3, 4, 0, -6]);
  assert.throws(() => add(a, constant(new Float32Array(2), [2])), /do not broadcast/);
});

test('unary ops match finite differences and their formulas', (t) => {
  const x = p([4, 9]);
  const pos = positive([4, 9]);
  expectGradOk(t, 'scale', gradCheck([x], () => scale(x, -2.5)), TOL);
  expectGradOk(t, 'addScalar', gradCheck([x], () => addScalar(x, 3)), TOL);
  expectGradOk(t, 'exp', gradCheck([x], () => exp(x)), TOL);
  expectGradOk(t, 'log', gradCheck([pos], () => log(pos)), TOL);
  expectGradOk(t, 'square', gradCheck([x], () => square(x)), TOL);
  expectGradOk(t, 'sqrt', gradCheck([pos], () => sqrt(pos)), TOL);
  expectGradOk(t, 'sigmoid', gradCheck([x], () => sigmoid(x)), TOL);
  expectGradOk(t, 'silu', gradCheck([x], () => silu(x)), TOL);
  expectGradOk(t, 'relu', gradCheck([x], () => relu(x)), TOL);
  expectGradOk(t, 'clamp', gradCheck([x], () => clamp(x, -0.5, 0.7)), TOL);
  const up = p([4, 9]);
  expectGradOk(t, 'swiglu', gradCheck([x, up], () => swiglu(x, up)), TOL);
  // Forward values against the textbook formulas.
  const v = [-30, -1.5, 0, 2, 30];
  const xs = constant(Float32Array.from(v), [5]);
  sigmoid(xs).value.forEach((y, i) => assert.ok(Math.abs(y - 1 / (1 + Math.exp(-v[i]!))) < 1e-7));
  silu(xs).value.forEach((y, i) => assert.ok(Math.abs(y - v[i]! / (1 + Math.exp(-v[i]!))) < 1e-5));
  assert.deepEqual(Array.from(clamp(xs, -1, 1).value), [-1, -1, 0, 1, 1]);
  assert.throws(() => swiglu(x, p([9, 4])), /differ/);
});

test('reductions match finite differences and sums', (t) => {
  const x = p([3, 4, 5]);
  expectGradOk(t, 'sum', gradCheck([x], () => sum(x)), TOL);
  expectGradOk(t, 'mean', gradCheck([x], () => mean(x)), TOL);
  for (const axis of [0, 1, 2, -1]) {
    expectGradOk(t, `sumAxis ${axis}`, gradCheck([x], () => sumAxis(x, axis)), TOL);
    expectGradOk(t, `meanAxis ${axis} keepDim`, gradCheck([x], () => meanAxis(x, axis, true)), TOL);
  }
  const s1 = sumAxis(x, 1);
  assert.deepEqual(s1.shape, [3, 5]);
  let expected = 0;
  for (let j = 0; j < 4; j++) expected += x.value[(2 * 4 + j) * 5 + 3]!;
  assert.ok(Math.abs(s1.value[2 * 5 + 3]! - expected) < 1e-5);
  assert.deepEqual(meanAxis(x, 2, true).shape, [3, 4, 1]);
  assert.throws(() => sumAxis(x, 3), /out of range/);
});

test('shape ops match finite differences and move the right values', (t) => {
  const x = p([2, 3, 4]);
  expectGradOk(t, 'reshape', gradCheck([x], () => reshape(x, [6, -1])), TOL);
  expectGradOk(t, 'transpose 0,2', gradCheck([x], () => transpose(x, 0, 2)), TOL);
  expectGradOk(t, 'narrow', gradCheck([x], () => narrow(x, 2, 1, 2)), TOL);
  const y = p([2, 3, 5]);
  expectGradOk(t, 'concat last', gradCheck([x, y], () => concat([x, y, x], -1)), TOL);
  expectGradOk(t, 'split', gradCheck([y], () => {
    const [a, b] = split(y, [2, 3], 2);
    return concat([b!, a!], 2);
  }), TOL);
  const one = p([2, 1, 4]);
  expectGradOk(t, 'expand', gradCheck([one], () => expand(one, 1, 3)), TOL);

  const tr = transpose(x, 0, 2);
  assert.deepEqual(tr.shape, [4, 3, 2]);
  assert.equal(tr.value[(3 * 3 + 1) * 2 + 1], x.value[(1 * 3 + 1) * 4 + 3]);
  const cat = concat([x, y], 2);
  assert.equal(cat.value[(1 * 3 + 2) * 9 + 4], y.value[(1 * 3 + 2) * 5 + 0]);
  assert.equal(cat.value[(1 * 3 + 2) * 9 + 3], x.value[(1 * 3 + 2) * 4 + 3]);
  const ex = expand(one, 1, 3);
  assert.equal(ex.value[(1 * 3 + 2) * 4 + 1], one.value[1 * 4 + 1]);
  assert.throws(() => reshape(x, [5, -1]), /cannot reshape/);
  assert.throws(() => split(y, [2, 2], 2), /add up to 4/);
  assert.throws(() => narrow(x, 1, 2, 2), /out of bounds/);
});

test('backward accumulates leaf gradients across calls and frees intermediates', () => {
  const w = parameter(Float32Array.from([1, 2, 3]), [3]);
  const build = (): Var => sum(mul(w, w));
  backward(build());
  assert.deepEqual(Array.from(w.grad!), [2, 4, 6]);
  backward(build());
  assert.deepEqual(Array.from(w.grad!), [4, 8, 12]);
  // A Var used twice in one graph gets both contributions.
  w.zeroGrad();
  const sq = mul(w, w);
  backward(sum(add(sq, sq)));
  assert.deepEqual(Array.from(w.grad!), [4, 8, 12]);
  assert.equal(sq.grad, null);
  const frozen = noGrad(() => sum(mul(w, w)));
  assert.equal(frozen.requiresGrad, false);
  assert.throws(() => backward(frozen), /does not require a gradient/);
  assert.throws(() => backward(mul(w, w)), /not a scalar/);
});

test('the gradient check catches a wrong backward', () => {
  const x = p([3, 4]);
  // y = x², with a backward that is off by 2 % (2.04 x instead of 2 x).
  const wrong = (): Var => result(Float32Array.from(x.value, (v) => v * v), x.shape, [x], (out) => () => {
    const gx = x.gradBuffer();
    for (let i = 0; i < gx.length; i++) gx[i]! += out.grad![i]! * 2.04 * x.value[i]!;
  });
  const r = gradCheck([x], wrong);
  assert.ok(r.worst > TOL, `error ${r.worst} should exceed ${TOL}`);
  assert.throws(() => expectGradOk({ diagnostic() {} }, 'wrong', r, TOL), /not below/);
});

test('autograd GEMM (backend or loops) agrees with the ref backend on strided, transposed operands', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const [m, n, k] = [5, 7, 6];
      const lda = (transA ? m : k) + 3;
      const ldb = (transB ? k : n) + 2;
      const ldc = n + 1;
      const a = rng.normalArray((transA ? k : m) * lda);
      const b = rng.normalArray((transB ? n : k) * ldb);
      const c0 = rng.normalArray(m * ldc);
      for (const gemmImpl of [gemm, loopGemm]) {
        const c = Float32Array.from(c0);
        const expected = Float32Array.from(c0);
        gemmImpl(transA, transB, m, n, k, 0.7, a, lda, b, ldb, 0.5, c, ldc);
        refBackend.gemm(transA, transB, m, n, k, 0.7, a, lda, b, ldb, 0.5, expected, ldc);
        c.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-4, `gemm transA=${transA} transB=${transB} at ${i}: ${v} vs ${expected[i]}`));
      }
    }
  }
});
