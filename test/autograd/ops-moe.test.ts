import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parameter, Var } from '../../src/autograd/var.js';
import { linear } from '../../src/autograd/linear.js';
import { add, div } from '../../src/autograd/arith.js';
import { sigmoid, swiglu, scale } from '../../src/autograd/unary.js';
import { sumAxis } from '../../src/autograd/reduce.js';
import { reshape } from '../../src/autograd/shape.js';
import {
  selectExperts, gatherColumns, routePlan, expertLoad, gatherRows, combineExperts, updateRoutingBias, sequenceBalanceLoss,
} from '../../src/autograd/moe.js';
import { Random } from '../../src/autograd/random.js';
import { gradCheck, expectGradOk } from './gradcheck.js';

const TOL = 1e-2;
const rng = new Random(23);
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const p = (shape: number[], std = 1): Var => parameter(rng.normalArray(size(shape), std), shape);

test('selectExperts: top-k by score + bias, ties to the lower index, group-limited routing', () => {
  const scores = Float32Array.from([
    0.1, 0.9, 0.3, 0.9, 0.2, 0.0,
    0.5, 0.1, 0.2, 0.3, 0.8, 0.7,
  ]);
  const plain = selectExperts(scores, 2, 6, 2);
  assert.deepEqual(Array.from(plain.indices), [1, 3, 4, 5]);
  // The bias changes the choice only.
  const biased = selectExperts(scores, 2, 6, 2, { bias: Float32Array.from([0, 0, 0.7, 0, 0, 0]) });
  assert.deepEqual(Array.from(biased.indices), [2, 1, 2, 4]);
  // 3 groups of 2, keep 1 group ranked by the sum of its two best scores:
  // token 0 groups: {0.1,0.9}=1.0 {0.3,0.9}=1.2 {0.2,0}=0.2 → group 1 → experts 3, 2.
  // token 1: {0.5,0.1}=0.6 {0.2,0.3}=0.5 {0.8,0.7}=1.5 → group 2 → experts 4, 5.
  const grouped = selectExperts(scores, 2, 6, 2, { groups: 3, topkGroups: 1 });
  assert.deepEqual(Array.from(grouped.indices), [3, 2, 4, 5]);
  // Ranking groups by their best score instead: token 0 ties groups 0 and 1 at 0.9 → lower group wins.
  const byMax = selectExperts(scores, 2, 6, 2, { groups: 3, topkGroups: 1, groupScore: 'max' });
  assert.deepEqual(Array.from(byMax.indices), [1, 0, 4, 5]);
  assert.throws(() => selectExperts(scores, 2, 6, 7), /k = 7/);
  assert.throws(() => selectExperts(scores, 2, 6, 3, { groups: 3, topkGroups: 1 }), /fewer than k/);
});

test('routePlan, expertLoad and the aux-loss-free bias update', () => {
  const sel = { indices: Int32Array.from([2, 0, 2, 1, 0, 2]), tokens: 3, k: 2 };
  assert.deepEqual(Array.from(expertLoad(sel, 4)), [2, 1, 3, 0]);
  const plan = routePlan(sel, 4);
  assert.deepEqual(Array.from(plan[2]!.tokens), [0, 1, 2]);
  assert.deepEqual(Array.from(plan[2]!.slots), [0, 2, 5]);
  assert.deepEqual(Array.from(plan[0]!.slots), [1, 4]);
  assert.equal(plan[3]!.tokens.length, 0);
  const bias = new Float32Array(4);
  updateRoutingBias(bias, expertLoad(sel, 4), 0.001);
  // Mean load 1.5: experts 0 and 2 are overloaded (down), 1 and 3 underloaded (up).
  assert.deepEqual(Array.from(bias), [-0.001, 0.001, -0.001, 0.001].map(Math.fround));
});

test('gatherColumns, gatherRows and combineExperts match finite differences', (t) => {
  const tokens = 5;
  const experts = 4;
  const k = 2;
  const scores = p([tokens, experts]);
  const sel = selectExperts(scores.value, tokens, experts, k);
  expectGradOk(t, 'gatherColumns', gradCheck([scores], () => gatherColumns(scores, sel)), TOL);
  const x = p([tokens, 3]);
  const rows = Int32Array.from([4, 0, 4, 2]);
  expectGradOk(t, 'gatherRows', gradCheck([x], () => gatherRows(x, rows)), TOL);

  const plan = routePlan(sel, experts);
  const weights = p([tokens, k]);
  const outputs = plan.map((r) => (r.tokens.length === 0 ? null : p([r.tokens.length, 3])));
  const live = outputs.filter((o): o is Var => o !== null);
  const y = combineExperts(tokens, 3, outputs, plan, weights);
  // Forward by the definition.
  for (let tk = 0; tk < tokens; tk++) {
    for (let j = 0; j < 3; j++) {
      let expected = 0;
      for (let s = 0; s < k; s++) {
        const e = sel.indices[tk * k + s]!;
        const row = Array.from(plan[e]!.tokens).indexOf(tk);
        expected += weights.value[tk * k + s]! * outputs[e]!.value[row * 3 + j]!;
      }
      assert.ok(Math.abs(y.value[tk * 3 + j]! - expected) < 1e-6);
    }
  }
  expectGradOk(t, 'combineExperts', gradCheck([weights, ...live], () => combineExperts(tokens, 3, outputs, plan, weights)), TOL);
});

/**
 * A small DeepSeek-V3-style MoE layer from the ops: sigmoid affinities, biased group-limited
 * top-k selection, weights from the unbiased scores renormalized and scaled, SwiGLU experts,
 * and a shared expert.
 */
function moeLayer(x: Var, router: Var, bias: Float32Array, experts: { gate: Var; up: Var; down: Var }[], shared: { gate: Var; up: Var; down: Var }, k: number): { y: Var; scores: Var; selection: ReturnType<typeof selectExperts> } {
  const [tokens, dim] = x.shape as [number, number];
  const scores = sigmoid(linear(x, router));
  const selection = selectExperts(scores.value, tokens, experts.length, k, { bias, groups: 2, topkGroups: 1 });
  const picked = gatherColumns(scores, selection);
  const weights = scale(div(picked, sumAxis(picked, 1, true)), 2.5);
  const plan = routePlan(selection, experts.length);
  const ffn = (h: Var, e: { gate: Var; up: Var; down: Var }): Var => linear(swiglu(linear(h, e.gate), linear(h, e.up)), e.down);
  const outputs = plan.map((route, e) => (route.tokens.length === 0 ? null : ffn(gatherRows(x, route.tokens), experts[e]!)));
  const routed = combineExperts(tokens, dim, outputs, plan, weights);
  return { y: add(routed, ffn(x, shared)), scores, selection };
}

test('a tiny MoE layer (sigmoid router, bias, groups, top-2, shared expert) matches finite differences', (t) => {
  const tokens = 6;
  const dim = 5;
  const hidden = 4;
  const nExperts = 4;
  const x = p([tokens, dim]);
  const router = p([nExperts, dim], 0.5);
  const bias = Float32Array.from([0.05, -0.02, 0, 0.01]);
  const expert = (): { gate: Var; up: Var; down: Var } => ({ gate: p([hidden, dim], 0.5), up: p([hidden, dim], 0.5), down: p([dim, hidden], 0.5) });
  const experts = Array.from({ length: nExperts }, expert);
  const shared = expert();
  const params = [x, router, ...experts.flatMap((e) => [e.gate, e.up, e.down]), shared.gate];
  const result = gradCheck(params, () => moeLayer(x, router, bias, experts, shared, 2).y);
  expectGradOk(t, 'MoE layer (x, router, experts, shared)', result, TOL);
  // The router got a gradient through the gate weights (not through the integer selection).
  assert.ok(result.errors[1]! < TOL);
});

test('sequence-wise balance loss: value by the definition, gradient through the scores only', (t) => {
  const batch = 2;
  const seq = 4;
  const nExperts = 4;
  const k = 2;
  const logits = p([batch, seq, nExperts]);
  const build = (): Var => {
    const scores = sigmoid(logits);
    const sel = selectExperts(scores.value, batch * seq, nExperts, k);
    return sequenceBalanceLoss(scores, sel, 0.01);
  };
  const loss = build();
  const s = Array.from(logits.value, (v) => 1 / (1 + Math.exp(-v)));
  const sel = selectExperts(Float32Array.from(s), batch * seq, nExperts, k);
  let expected = 0;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < nExperts; i++) {
      let count = 0;
      let pSum = 0;
      for (let tk = 0; tk < seq; tk++) {
        const row = (b * seq + tk) * nExperts;
        for (let j = 0; j < k; j++) if (sel.indices[(b * seq + tk) * k + j] === i) count++;
        let total = 0;
        for (let e = 0; e < nExperts; e++) total += s[row + e]!;
        pSum += s[row + i]! / total;
      }
      expected += ((nExperts / (k * seq)) * count) * (pSum / seq);
    }
  }
  expected = (0.01 * expected) / batch;
  assert.ok(Math.abs(loss.item() - expected) < 1e-7, `${loss.item()} vs ${expected}`);
  // A larger step: the loss is ~1e-2 in f32, so h = 1e-3 leaves more rounding noise than truncation error.
  expectGradOk(t, 'sequenceBalanceLoss', gradCheck([logits], build, { h: 1e-2 }), TOL);
  assert.throws(() => sequenceBalanceLoss(reshape(logits, [8, 4]), sel, 0.01), /must be \[batch, seq, experts\]/);
});
