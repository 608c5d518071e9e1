import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, backward, Var } from '../../src/autograd/var.js';
import { mul, add } from '../../src/autograd/arith.js';
import { sum } from '../../src/autograd/reduce.js';
import { AdamW, clipGradNorm, gradNorm, scaleGrads, decayGroups, adamWUpdate } from '../../src/train/optimizer.js';

/** The AdamW update written out in float64 for one scalar. */
function handAdamW(p: number, g: number, m: number, v: number, t: number, lr: number, b1: number, b2: number, eps: number, wd: number): { p: number; m: number; v: number } {
  const m1 = b1 * m + (1 - b1) * g;
  const v1 = b2 * v + (1 - b2) * g * g;
  const mHat = m1 / (1 - b1 ** t);
  const vHat = v1 / (1 - b2 ** t);
  return { p: p - lr * wd * p - (lr * mHat) / (Math.sqrt(vHat) + eps), m: m1, v: v1 };
}

function setGrad(p: Var, values: number[]): void {
  p.clearGrad();
  p.gradBuffer().set(values);
}

test('AdamW: two steps equal the hand-computed update, per-group decay and lr scale', () => {
  const w = parameter(Float32Array.from([0.5, -1.5, 2]), [1, 3], 'w');
  const norm = parameter(Float32Array.from([1, 0.25]), [2], 'norm');
  const opt = new AdamW([{ params: [w], weightDecay: 0.1 }, { params: [norm], weightDecay: 0, lrScale: 0.5 }], { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8 });
  const grads = [[[0.3, -0.2, 1e-4], [2, -0.5]], [[-0.1, 0.4, 0], [1, 1]]];
  const state = { w: [0.5, -1.5, 2].map((p) => ({ p, m: 0, v: 0 })), norm: [1, 0.25].map((p) => ({ p, m: 0, v: 0 })) };
  grads.forEach(([gw, gn], step) => {
    setGrad(w, gw!);
    setGrad(norm, gn!);
    opt.step();
    state.w = state.w.map((s, i) => handAdamW(s.p, gw![i]!, s.m, s.v, step + 1, 0.01, 0.9, 0.95, 1e-8, 0.1));
    state.norm = state.norm.map((s, i) => handAdamW(s.p, gn![i]!, s.m, s.v, step + 1, 0.005, 0.9, 0.95, 1e-8, 0));
    state.w.forEach((s, i) => assert.ok(Math.abs(w.value[i]! - s.p) < 1e-6, `w[${i}] after step ${step + 1}: ${w.value[i]} vs ${s.p}`));
    state.norm.forEach((s, i) => assert.ok(Math.abs(norm.value[i]! - s.p) < 1e-6, `norm[${i}] after step ${step + 1}: ${norm.value[i]} vs ${s.p}`));
  });
  // First step of Adam moves each weight by about lr · sign(g) (plus decay): a sanity anchor.
  assert.equal(opt.stepCount, 2);
});

test('AdamW skips parameters without a gradient (no decay, no step count)', () => {
  const used = parameter(Float32Array.from([1]), [1, 1], 'used');
  const idle = parameter(Float32Array.from([1]), [1, 1], 'idle');
  const opt = new AdamW([used, idle], { lr: 0.1, weightDecay: 0.5 });
  backward(sum(mul(used, used)));
  opt.step();
  assert.equal(idle.value[0], 1);
  assert.notEqual(used.value[0], 1);
  const state = opt.exportState();
  assert.deepEqual(state.params.map((p) => p.step), [1, 0]);
  opt.zeroGrad();
  assert.equal(used.grad, null);
});

test('gradient accumulation: two half-batch backwards then one step equal one full backward', () => {
  const make = (): Var => parameter(Float32Array.from([0.3, -0.7, 1.1]), [3], 'w');
  const xs = [Float32Array.from([1, 2, 3]), Float32Array.from([-1, 0.5, 2])];
  const loss = (w: Var, x: Float32Array): Var => sum(mul(mul(w, w), parameter(x, [3])));
  const a = make();
  const optA = new AdamW([a], { lr: 0.05 });
  backward(add(loss(a, xs[0]!), loss(a, xs[1]!)));
  optA.step();
  const b = make();
  const optB = new AdamW([b], { lr: 0.05 });
  for (const x of xs) backward(loss(b, x));
  optB.step();
  assert.deepEqual(Array.from(b.value), Array.from(a.value));
  // scaleGrads for averaging.
  optB.zeroGrad();
  backward(loss(b, xs[0]!));
  const before = Array.from(b.grad!);
  scaleGrads([b], 0.5);
  b.grad!.forEach((g, i) => assert.equal(g, Math.fround(before[i]! * 0.5)));
});

test('clipGradNorm returns the global norm and scales gradients down to maxNorm', () => {
  const a = parameter(new Float32Array(2), [2]);
  const b = parameter(new Float32Array(3), [3]);
  const c = parameter(new Float32Array(1), [1]);
  setGrad(a, [3, 0]);
  setGrad(b, [0, 4, 12]);
  // c has no gradient and counts as zero.
  c.clearGrad();
  assert.equal(gradNorm([a, b, c]), 13);
  const norm = clipGradNorm([a, b, c], 1);
  assert.equal(norm, 13);
  assert.ok(Math.abs(gradNorm([a, b]) - 1) < 1e-6);
  assert.ok(Math.abs(b.grad![2]! - 12 / 13) < 1e-6);
  // Below the threshold: untouched.
  const again = clipGradNorm([a, b], 5);
  assert.ok(Math.abs(again - 1) < 1e-6);
  assert.ok(Math.abs(b.grad![2]! - 12 / 13) < 1e-6);
  // Non-finite norm: reported, gradients left alone.
  setGrad(a, [Number.NaN, 1]);
  assert.ok(Number.isNaN(clipGradNorm([a, b], 1)));
  assert.equal(a.grad![1], 1);
  assert.throws(() => clipGradNorm([a], 0), /maxNorm/);
});

test('exported state resumes bit-exactly; mismatched state is refused', () => {
  const run = (steps: number, resumeAt?: number): Float32Array => {
    const w = parameter(Float32Array.from([0.1, -0.2, 0.3, 0.4]), [2, 2], 'w');
    let opt = new AdamW(decayGroups([w], 0.1), { lr: 0.02, beta2: 0.95 });
    for (let s = 0; s < steps; s++) {
      if (s === resumeAt) {
        const saved = opt.exportState();
        const wCopy = Float32Array.from(w.value);
        opt = new AdamW(decayGroups([w], 0.1), { lr: 0.02, beta2: 0.95 });
        opt.importState(saved);
        w.value.set(wCopy);
      }
      opt.zeroGrad();
      backward(sum(mul(mul(w, w), w)));
      opt.step();
    }
    return w.value;
  };
  assert.deepEqual(Array.from(run(5, 3)), Array.from(run(5)));
  const w = parameter(new Float32Array(4), [4], 'w');
  const other = parameter(new Float32Array(3), [3], 'w');
  const state = new AdamW([w]).exportState();
  assert.throws(() => new AdamW([other]).importState(state), /4 values in the state, 3 here/);
  const renamed = parameter(new Float32Array(4), [4], 'v');
  assert.throws(() => new AdamW([renamed]).importState(state), /'w' in the state, 'v' here/);
});

test('decayGroups puts matrices in the decayed group and vectors in the other', () => {
  const m = parameter(new Float32Array(4), [2, 2], 'm');
  const v = parameter(new Float32Array(2), [2], 'v');
  const [decay, none] = decayGroups([m, v], 0.1);
  assert.deepEqual(decay!.params, [m]);
  assert.deepEqual(none!.params, [v]);
  assert.equal(none!.weightDecay, 0);
  assert.throws(() => new AdamW([m], { beta2: 1 }), /beta2/);
  assert.throws(() => new AdamW([{ params: [m] }, { params: [m] }]), /more than one group/);
});

test('adamWUpdate with zero gradient only decays', () => {
  const p = Float32Array.from([2]);
  adamWUpdate(p, Float32Array.from([0]), new Float32Array(1), new Float32Array(1), 0.1, 0.9, 0.999, 1e-8, 0.5, 1);
  assert.ok(Math.abs(p[0]! - 2 * (1 - 0.05)) < 1e-6);
});
