/**
 * DeepseekModel reuses its work buffers from call to call (src/nn/scratch.ts). These tests make
 * sure that reuse never leaks between calls: what one call returns is not overwritten by the
 * next, and interleaving sequences, MTP drafts and batches gives bit-identical results to
 * running each sequence alone. The router's allocation-free top-k is checked against a plain
 * sort.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { type RouterConfig, route } from '../../src/nn/moe.js';
import { ScratchBuffers } from '../../src/nn/scratch.js';
import { deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import type { DeepseekModel } from '../../src/models/deepseek-v3.js';
import { memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';
import { SeededRandom } from '../../src/models/tiny.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';
import type { Backend } from '../../src/tensor/backend.js';

const native = loadNativeBackend();
const backends: [string, Backend][] = [['ref', refBackend], ...(native ? [['native', native] as [string, Backend]] : [])];

const ids = (...values: number[]): Int32Array => Int32Array.from(values);

test('ScratchBuffers: reused by name, grown on demand, views of the requested length, huge requests not kept', () => {
  const s = new ScratchBuffers();
  const a = s.f32('a', 100);
  assert.equal(a.length, 100);
  a[0] = 7;
  assert.equal(s.f32('a', 100), a, 'same name and length: the same array');
  const shorter = s.f32('a', 10);
  assert.equal(shorter.length, 10);
  assert.equal(shorter.buffer, a.buffer, 'a shorter request is a view of the kept buffer');
  assert.equal(shorter[0], 7, 'contents are not cleared');
  assert.notEqual(s.f32('b', 100).buffer, a.buffer, 'different names never share');
  const longer = s.f32('a', 300);
  assert.equal(longer.length, 300);
  assert.notEqual(longer.buffer, a.buffer);
  assert.equal(s.i32('a', 5).length, 5);
  assert.equal(s.f64('a', 5).length, 5);
  const small = s.f32('small', 2);
  assert.ok(small.buffer.byteLength > 64, 'small buffers are allocated off the JS heap (more than 64 bytes)');
  const huge = s.f32('huge', 4 << 20);
  assert.equal(huge.length, 4 << 20);
  assert.notEqual(s.f32('huge', 4 << 20), huge, 'requests over the keep limit get a fresh array each time');
});

const STEPS = [ids(5, 17, 200, 3, 99), ids(42), ids(7, 128), ids(64), ids(1, 2, 3), ids(9)];

/**
 * Decodes STEPS on one sequence, drafting with the MTP module after each step; `between` runs
 * other work on the same model after each step. Returns every logits and draft array it got.
 */
function session(model: DeepseekModel, between: (step: number) => void): { logits: Float32Array[]; drafts: Float32Array[]; copies: Float32Array[] } {
  const main = model.newCache(64);
  const mtpCache = model.newMtpCache(64);
  const d = model.config.hiddenSize;
  const logits: Float32Array[] = [];
  const drafts: Float32Array[] = [];
  const copies: Float32Array[] = [];
  for (const [i, step] of STEPS.entries()) {
    const out = model.forwardWithHidden(step, main, { allLogits: true });
    logits.push(out.logits);
    drafts.push(model.mtpForward(out.hidden.subarray((step.length - 1) * d), ids(40 + i), mtpCache));
    copies.push(out.logits.slice(), drafts[i]!.slice());
    between(i);
  }
  return { logits, drafts, copies };
}

for (const [name, backend] of backends) {
  test(`${name}: interleaving sequences, MTP drafts and batches leaves every result bit-identical`, () => {
    const m = tinyDeepseekModel({ mtp: true, seed: 3 });
    const alone = session(deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend }), () => {});
    const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend });
    const other = model.newCache(64);
    const otherMtp = model.newMtpCache(64);
    const got = session(model, (i) => {
      const out = model.forwardWithHidden(ids(30 + i, 31 + i), other, { allLogits: true });
      model.mtpForward(out.hidden, ids(60 + i, 61 + i), otherMtp);
      model.forwardBatch([{ tokens: ids(50 + i), cache: other }, { tokens: ids(70 + i, 71 + i, 72 + i), cache: model.newCache(8) }]);
    });
    for (const run of [alone, got]) {
      run.logits.forEach((l, i) => assert.deepEqual(l, run.copies[2 * i], `step ${i}: logits were overwritten by later calls`));
      run.drafts.forEach((l, i) => assert.deepEqual(l, run.copies[2 * i + 1], `step ${i}: MTP draft was overwritten by later calls`));
    }
    got.logits.forEach((l, i) => assert.deepEqual(l, alone.logits[i], `step ${i}: logits differ from the sequence run alone`));
    got.drafts.forEach((l, i) => assert.deepEqual(l, alone.drafts[i], `step ${i}: MTP draft differs from the sequence run alone`));
  });
}

/** The router's selection written plainly: sort by value (ties: lower index), group limit by sorting. */
function sortedRoute(logits: Float32Array, cfg: RouterConfig, bias?: Float32Array): number[] {
  const E = cfg.nExperts;
  const scores = Array.from(logits.subarray(0, E), (l) => 1 / (1 + Math.exp(-l)));
  const sel = scores.map((s, e) => s + (bias ? bias[e]! : 0));
  const perGroup = E / cfg.nGroup;
  const top = (values: number[], k: number) => values.map((_, i) => i).sort((a, b) => (values[b]! - values[a]!) || a - b).slice(0, k);
  if (cfg.nGroup > 1 && cfg.topkGroup < cfg.nGroup) {
    const groupScores = Array.from({ length: cfg.nGroup }, (_, g) => {
      const members = sel.slice(g * perGroup, (g + 1) * perGroup).sort((a, b) => b - a);
      return cfg.groupScore === 'max' ? members[0]! : members[0]! + members[1]!;
    });
    const kept = new Set(top(groupScores, cfg.topkGroup));
    for (let e = 0; e < E; e++) if (!kept.has(Math.floor(e / perGroup))) sel[e] = -Infinity;
  }
  return top(sel, cfg.topK);
}

test('router top-k (insertion, no sort) picks what a full sort picks, ties and group limits included', () => {
  const rng = new SeededRandom(19);
  for (let trial = 0; trial < 300; trial++) {
    const nGroup = [1, 2, 4, 8][trial % 4]!;
    const nExperts = nGroup * (2 + (trial % 5));
    const cfg: RouterConfig = {
      nExperts, topK: 1 + (trial % Math.min(6, nExperts)), nGroup, topkGroup: 1 + (trial % nGroup), scoring: 'sigmoid',
      groupScore: trial % 3 === 0 ? 'max' : 'top2sum', normTopkProb: true, routedScalingFactor: 1,
    };
    // Coarse logits make ties (equal scores and equal group scores) common.
    const logits = Float32Array.from(rng.normals(nExperts, 1), (v) => Math.round(v * 2) / 2);
    const bias = trial % 2 === 0 ? Float32Array.from(rng.normals(nExperts, 0.1), (v) => Math.round(v * 10) / 10) : undefined;
    const r = route(logits, 1, cfg, bias);
    assert.deepEqual([...r.experts], sortedRoute(logits, cfg, bias), `trial ${trial}: ${JSON.stringify(cfg)} logits ${[...logits]}`);
  }
});
