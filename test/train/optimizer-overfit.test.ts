import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/autograd/var.js';
import { expertLoad, updateRoutingBias } from '../../src/autograd/moe.js';
import { Random } from '../../src/autograd/random.js';
import { AdamW, clipGradNorm, decayGroups } from '../../src/train/optimizer.js';
import { warmupCosine } from '../../src/train/schedule.js';
import { TinyDeepSeek, TinyLlama } from '../autograd/tiny-models.js';

test('a tiny Llama overfits a fixed batch in 50 AdamW steps', (t) => {
  const vocab = 16;
  const model = new TinyLlama({ vocab, dim: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 4, hidden: 32, ropeBase: 10000 }, 1);
  const [batch, seq] = [2, 12];
  const ids = new Random(2).intArray(batch * seq, vocab);
  const opt = new AdamW(decayGroups(model.params, 0.01), { beta1: 0.9, beta2: 0.95 });
  const losses: number[] = [];
  for (let step = 0; step < 50; step++) {
    opt.zeroGrad();
    const loss = model.loss(ids, batch, seq);
    losses.push(loss.item());
    backward(loss);
    clipGradNorm(opt.params, 1);
    opt.step(warmupCosine(step, { maxLr: 2e-2, minLr: 2e-3, warmupSteps: 5, totalSteps: 50 }));
  }
  const final = model.loss(ids, batch, seq).item();
  t.diagnostic(`loss ${losses[0]!.toFixed(3)} → ${final.toFixed(4)} (ln ${vocab} = ${Math.log(vocab).toFixed(3)})`);
  // Stated threshold: a memorizable batch (22 targets) ends below 0.05 nats, from ~3 (measured: 0.002).
  assert.ok(losses[0]! > 2, `initial loss ${losses[0]}`);
  assert.ok(final < 0.05, `final loss ${final} should be below 0.05`);
});

test('a tiny MLA + MoE + MTP model trains on a fixed batch, with the aux-loss-free bias update', (t) => {
  const vocab = 16;
  const model = new TinyDeepSeek({
    vocab, dim: 16, heads: 2, qLoraRank: 8, kvLoraRank: 8, nopeDim: 4, ropeDim: 4, vDim: 4,
    experts: 4, expertHidden: 16, topK: 2, groups: 2, topkGroups: 2, routedScale: 1, balanceAlpha: 1e-3, mtpWeight: 0.3,
  }, 3);
  const [batch, seq] = [2, 10];
  const ids = new Random(4).intArray(batch * seq, vocab);
  const opt = new AdamW(decayGroups(model.params, 0.01), { beta1: 0.9, beta2: 0.95 });
  let first = 0;
  let biasMoved = 0;
  for (let step = 0; step < 40; step++) {
    opt.zeroGrad();
    const out = model.forward(ids, batch, seq);
    if (step === 0) first = out.mainLoss.item();
    backward(out.loss);
    clipGradNorm(opt.params, 1);
    opt.step(warmupCosine(step, { maxLr: 2e-2, minLr: 2e-3, warmupSteps: 4, totalSteps: 40 }));
    out.selections.forEach((sel, i) => updateRoutingBias(model.blocks[i]!.routerBias, expertLoad(sel, 4), 1e-3));
  }
  for (const b of model.blocks) for (const v of b.routerBias) biasMoved = Math.max(biasMoved, Math.abs(v));
  const final = model.forward(ids, batch, seq);
  t.diagnostic(`main loss ${first.toFixed(3)} → ${final.mainLoss.item().toFixed(4)}, MTP loss → ${final.mtpLoss.item().toFixed(4)}, max |bias| ${biasMoved.toFixed(4)}`);
  // Stated thresholds: the main loss falls below 0.1 nats (from ~3) and the MTP loss below 0.2 (measured: 0.010, 0.009).
  assert.ok(first > 2, `initial loss ${first}`);
  assert.ok(final.mainLoss.item() < 0.1, `final main loss ${final.mainLoss.item()}`);
  assert.ok(final.mtpLoss.item() < 0.2, `final MTP loss ${final.mtpLoss.item()}`);
  assert.ok(biasMoved > 0, 'the routing bias was updated');
});
