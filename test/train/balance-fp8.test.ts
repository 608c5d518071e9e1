// Aux-loss-free balancing evens out a deliberately imbalanced router; FP8 (E4M3 1x128 / 128x128)
// training stays within a stated loss gap of FP32 on the same data and seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/autograd/random.js';
import { TrainModel } from '../../src/train/model.js';
import { Trainer, type TrainerOptions, loadImbalance } from '../../src/train/trainer.js';
import { fp8Linear, quantizeBlocks, quantizeColumnTiles, quantizeTiles } from '../../src/train/fp8-linear.js';
import { linear } from '../../src/autograd/linear.js';
import { parameter, backward } from '../../src/autograd/var.js';
import { sum } from '../../src/autograd/reduce.js';
import { runPretraining } from '../../src/train/pretrain.js';
import { tinyV3 } from './helpers.js';
import { runFixture } from './run-fixture.js';

function options(gamma: number): TrainerOptions {
  return {
    lr: 3e-3, minLr: 3e-3, weightDecay: 0, betas: [0.9, 0.95], eps: 1e-8, clip: 1,
    schedule: { type: 'cosine', warmup: 0, steps: 1000, decaySteps: 0 },
    mtp: { enabled: false, lambda: 0 }, moe: { gamma, alpha: 0 }, fp8: false,
  };
}

/**
 * Every token embedding shares a strong common direction c, and the router rows of experts 0 and 1
 * point along c while 2 and 3 point against it: without correction nearly every token picks 0 and 1.
 */
function imbalancedModel(): TrainModel {
  const config = tinyV3({ n_group: 1, topk_group: 1, num_nextn_predict_layers: 0 });
  const model = TrainModel.init(config, 11);
  const rng = new Random(4);
  const d = config.hidden_size;
  const c = rng.normalArray(d, 1);
  const embed = model.params.get('model.embed_tokens.weight')!.value;
  for (let r = 0; r < config.vocab_size; r++) for (let j = 0; j < d; j++) embed[r * d + j]! += 0.03 * c[j]!;
  const gate = model.params.get('model.layers.1.mlp.gate.weight')!.value;
  for (let e = 0; e < 4; e++) for (let j = 0; j < d; j++) gate[e * d + j] = (e < 2 ? 1 : -1) * 0.5 * c[j]! + gate[e * d + j]!;
  return model;
}

function meanImbalance(gamma: number, steps: number): { first: number; last: number } {
  const model = imbalancedModel();
  const trainer = new Trainer(model, options(gamma));
  const rng = new Random(8);
  const cvs: number[] = [];
  for (let s = 0; s < steps; s++) {
    const ids = rng.intArray(4 * 17, 300);
    cvs.push(loadImbalance(trainer.step(s, [ids], 4, 17).loads['1']!));
  }
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { first: cvs[0]!, last: avg(cvs.slice(-5)) };
}

test('aux-loss-free bias updates balance an imbalanced router (gamma > 0 vs gamma = 0)', () => {
  const off = meanImbalance(0, 30);
  const on = meanImbalance(0.02, 30);
  assert.ok(off.first > 0.8, `the setup is imbalanced at the start (cv ${off.first})`);
  assert.equal(on.first, off.first, 'same first step');
  // Over the last 5 of 30 steps the load's coefficient of variation is at most half of the uncorrected run's.
  assert.ok(on.last < 0.5 * off.last, `cv with gamma 0.02: ${on.last}, with gamma 0: ${off.last}`);
  console.log(`# expert-load cv over the last 5 steps: gamma 0.02 -> ${on.last.toFixed(3)}, gamma 0 -> ${off.last.toFixed(3)} (first step ${off.first.toFixed(3)})`);
});

test('fp8Linear rounds GEMM inputs to E4M3 per tile/block and passes quantized gradients', () => {
  const rng = new Random(3);
  const x = parameter(rng.normalArray(6 * 200, 1), [6, 200]);
  const w = parameter(rng.normalArray(130 * 200, 0.1), [130, 200]);
  const y = fp8Linear(x, w);
  // Independent computation: quantize explicitly, then a plain f32 linear.
  const xq = new Float32Array(x.size);
  quantizeTiles(xq, x.value, 6, 200);
  const wq = new Float32Array(w.size);
  quantizeBlocks(wq, w.value, 130, 200);
  const ref = linear(parameter(xq, [6, 200]), parameter(wq, [130, 200]));
  let maxDiff = 0;
  for (let i = 0; i < y.size; i++) maxDiff = Math.max(maxDiff, Math.abs(y.value[i]! - ref.value[i]!));
  assert.ok(maxDiff < 1e-5, `forward differs from the explicit reference by ${maxDiff}`);
  // E4M3 has 3 mantissa bits: relative error per value at most 2^-4 (normal range).
  for (let i = 0; i < x.size; i++) assert.ok(Math.abs(xq[i]! - x.value[i]!) <= Math.abs(x.value[i]!) / 16 + 1e-6);
  const exact = linear(x, w);
  let rel = 0;
  let norm = 0;
  for (let i = 0; i < y.size; i++) {
    rel += (y.value[i]! - exact.value[i]!) ** 2;
    norm += exact.value[i]! ** 2;
  }
  assert.ok(Math.sqrt(rel / norm) < 0.06 && Math.sqrt(rel / norm) > 1e-4, `FP8 output error ${Math.sqrt(rel / norm)}`);
  backward(sum(y));
  // dX = Q(dY) · Q(W) with dY = 1 (exactly representable): the row sums of Q(W).
  for (let j = 0; j < 200; j += 37) {
    let col = 0;
    for (let o = 0; o < 130; o++) col += wq[o * 200 + j]!;
    assert.ok(Math.abs(x.grad![j]! - col) < 1e-4);
  }
  // dW = Q_col(dY)ᵀ · Q_col(X) with dY = 1: column sums of X quantized in 128x1 tiles (6 rows: one tile per column).
  const xc = new Float32Array(x.size);
  quantizeColumnTiles(xc, x.value, 6, 200);
  for (let j = 0; j < 200; j += 41) {
    let colSum = 0;
    for (let r = 0; r < 6; r++) colSum += xc[r * 200 + j]!;
    assert.ok(Math.abs(w.grad![5 * 200 + j]! - colSum) < 1e-4);
  }
  // 128x1 tiles: one scale per column, so a column's largest value is exact (amax / 448 · 448).
  for (let j = 0; j < 200; j++) {
    let at = 0;
    for (let r = 1; r < 6; r++) if (Math.abs(x.value[r * 200 + j]!) > Math.abs(x.value[at * 200 + j]!)) at = r;
    assert.ok(Math.abs(xc[at * 200 + j]! - x.value[at * 200 + j]!) <= 1e-6 * Math.abs(x.value[at * 200 + j]!));
  }
});

test('FP8 vs FP32 training on the same data and seed: the run reports the gap (below 3%) and the memory FP8 saves', () => {
  const steps = { type: 'cosine', warmup: 3, steps: 16 };
  const fp32 = runPretraining(runFixture({ schedule: steps, eval_every: 8, checkpoint_every: 0 }).run, { progress: () => {} });
  const lines: string[] = [];
  const fp8 = runPretraining(runFixture({ schedule: steps, eval_every: 8, checkpoint_every: 0, fp8: true, fp8_compare: true }).run, { progress: (l) => lines.push(l) });
  const a = fp32.evals[fp32.evals.length - 1]!.valLoss;
  const ev = fp8.evals[fp8.evals.length - 1]!;
  // The run's FP32 twin is the same computation as a separate FP32 run (same data, same seed).
  assert.equal(ev.valLossFp32Reference, a);
  const b = ev.valLoss;
  assert.notEqual(b, a, 'FP8 changes the numbers');
  const gap = Math.abs(b - a) / a;
  assert.ok(Math.abs(ev.fp8TrainingGap! - (b - a) / a) < 1e-12);
  assert.ok(gap < 0.03, `validation loss FP32 ${a} vs FP8 ${b}: gap ${(gap * 100).toFixed(3)}%`);
  const trainGap = Math.abs(fp8.steps[15]!.loss - fp32.steps[15]!.loss) / fp32.steps[15]!.loss;
  assert.ok(trainGap < 0.03, `train loss gap ${trainGap}`);
  assert.ok(lines.some((l) => /FP8 training gap -?\d+\.\d+%/.test(l)), 'the progress output reports the gap');
  const m = fp8.fp8Memory!;
  assert.ok(m.weightBytesFp8 < 0.6 * m.weightBytesBf16 && m.activationBytesFp8PerStep < 0.6 * m.activationBytesBf16PerStep, JSON.stringify(m));
  assert.ok(lines.some((l) => l.startsWith('FP8 storage: linear weights')));
  console.log(`# FP8 vs FP32: validation loss ${a.toFixed(5)} vs ${b.toFixed(5)} (gap ${(gap * 100).toFixed(3)}%), train gap ${(trainGap * 100).toFixed(3)}%, FP8 forward gap on the same weights ${(ev.fp8ForwardGap! * 100).toFixed(3)}%; memory ${JSON.stringify(m)}`);
});

test('a non-finite gradient skips the update (weights and routing biases unchanged)', () => {
  const model = TrainModel.init(tinyV3(), 2);
  const trainer = new Trainer(model, options(0.01));
  const ids = new Random(1).intArray(2 * 9, 300);
  assert.equal(trainer.step(0, [ids], 2, 9).skipped, false);
  const before = new Map([...model.tensors()].map(([n, t]) => [n, Float32Array.from(t.values)]));
  model.params.get('model.layers.0.self_attn.o_proj.weight')!.value[3] = Number.NaN;
  before.get('model.layers.0.self_attn.o_proj.weight')![3] = Number.NaN;
  const r = trainer.step(1, [ids], 2, 9);
  assert.equal(r.skipped, true);
  for (const [name, t] of model.tensors()) assert.deepEqual(t.values, before.get(name), name);
});

test('an fp8_compare run resumes bit for bit, its FP32 twin included', () => {
  const common = { schedule: { type: 'cosine', warmup: 1, steps: 6 }, fp8: true, fp8_compare: true, eval_every: 3, checkpoint_every: 3, batch_size: 2, seq_len: 12 };
  const straight = runPretraining(runFixture(common).run, { progress: () => {} });
  const split = runFixture(common);
  runPretraining(split.run, { progress: () => {}, stopAtStep: 3 });
  const resumed = runPretraining(split.run, { progress: () => {} });
  assert.equal(resumed.startStep, 3);
  assert.deepEqual(resumed.evals[resumed.evals.length - 1], straight.evals[straight.evals.length - 1]);
  for (const [name, p] of straight.model.params) assert.deepEqual(resumed.model.params.get(name)!.value, p.value, name);
});
