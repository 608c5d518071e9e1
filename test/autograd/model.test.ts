import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/autograd/random.js';
import { gradCheck, expectGradOk } from './gradcheck.js';
import { TinyDeepSeek, TinyLlama } from './tiny-models.js';

// Whole-model checks on a random subset of each parameter's elements (h = 1e-3, f32 forward).
// Stated bound: per parameter, max |analytic − numeric| < 2e-2 · max |numeric| over the checked
// elements (looser than the per-op 1e-2: the loss passes through ~40 f32 ops). The MoE model
// uses h = 1e-2, and a tensor whose gradient is itself near the f32 noise of the finite
// difference (|loss| ≈ 4, 2^-24 · 4 / (2h) ≈ 1e-5 per rounding) may instead stay within an absolute
// 3e-5 of the numeric value.
const TOL = 2e-2;
const NOISE_FLOOR = 3e-5;

test('2-layer Llama-style model (GQA, RoPE, SwiGLU) matches finite differences', (t) => {
  const model = new TinyLlama({ vocab: 11, dim: 8, layers: 2, heads: 4, kvHeads: 2, headDim: 4, hidden: 12, ropeBase: 10000 }, 3);
  const rng = new Random(5);
  const [batch, seq] = [2, 5];
  const ids = rng.intArray(batch * seq, 11);
  const result = gradCheck(model.params, () => model.loss(ids, batch, seq), { maxElements: 4, seed: 9 });
  t.diagnostic(`params: ${model.params.map((p, i) => `${p.name}=${result.errors[i]!.toExponential(1)}`).join(' ')}`);
  expectGradOk(t, `llama (${model.params.length} params)`, result, TOL);
});

test('DeepSeek-V3-style model (MLA, sigmoid-routed MoE with bias and groups, MTP, balance loss) matches finite differences', (t) => {
  const model = new TinyDeepSeek({
    vocab: 13, dim: 8, heads: 2, qLoraRank: 6, kvLoraRank: 5, nopeDim: 4, ropeDim: 4, vDim: 3,
    experts: 4, expertHidden: 6, topK: 2, groups: 2, topkGroups: 1, routedScale: 2.5, balanceAlpha: 0.01, mtpWeight: 0.3,
  }, 4);
  model.blocks[0]!.routerBias.set([0.02, -0.01, 0, 0.01]);
  const rng = new Random(6);
  const [batch, seq] = [2, 6];
  const ids = rng.intArray(batch * seq, 13);
  const out = model.forward(ids, batch, seq);
  assert.ok(out.mtpLoss.item() > 0 && out.mainLoss.item() > 0);
  const result = gradCheck(model.params, () => model.forward(ids, batch, seq).loss, { maxElements: 3, seed: 10, h: 1e-2 });
  t.diagnostic(`params: ${model.params.map((p, i) => `${p.name}=${result.errors[i]!.toExponential(1)}`).join(' ')}`);
  const worst = result.errors.indexOf(result.worst);
  t.diagnostic(`worst: ${model.params[worst]!.name} rel ${result.worst.toExponential(2)}, abs ${result.absErrors[worst]!.toExponential(2)}`);
  expectGradOk(t, `deepseek (${model.params.length} params)`, result, TOL, NOISE_FLOOR);
});
