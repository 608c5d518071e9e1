// Pre-training runs end to end on a tiny MLA + MoE + MTP model: the loss falls, MTP loss and
// accuracy and expert loads are logged, the chart is written, resume is bit-for-bit, the token
// cache is reused, and bad run configs are rejected naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runPretraining } from '../../src/train/pretrain.js';
import { parseRunConfig } from '../../src/train/run-config.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { runFixture } from './run-fixture.js';
import { tempDir } from './helpers.js';

const quiet = () => {};

test('a tiny DeepSeek-V3 run: loss falls, MTP and expert loads logged, chart and checkpoint written', () => {
  const f = runFixture({ schedule: { type: 'cosine', warmup: 3, steps: 16 } });
  const r = runPretraining(f.run, { progress: quiet });
  const first = r.steps[0]!;
  const last = r.steps[r.steps.length - 1]!;
  // ln(300) = 5.70 at the start; the grammar is learnable: require the loss to fall by more than half.
  assert.ok(first.loss > 5, `initial loss ${first.loss}`);
  assert.ok(last.loss < 0.5 * first.loss, `loss ${first.loss} -> ${last.loss} did not fall by half`);
  assert.ok(r.evals.length === 2 && r.evals[1]!.valLoss < 0.5 * first.loss, `validation loss ${JSON.stringify(r.evals)}`);
  const log = readFileSync(join(f.run.outDir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const steps = log.filter((e) => e.type === 'step');
  assert.equal(steps.length, 16);
  for (const e of steps) {
    assert.equal(typeof e.mtp_loss, 'number');
    assert.ok((e.mtp_accuracy as number) >= 0 && (e.mtp_accuracy as number) <= 1);
    const loads = e.expert_load as Record<string, number[]>;
    // layer 1 (MoE) and layer 2 (the MTP block): every token picks num_experts_per_tok = 2 experts.
    assert.deepEqual(Object.keys(loads).sort(), ['1', '2']);
    assert.equal(loads['1']!.reduce((a, b) => a + b, 0), 4 * 24 * 2);
    assert.equal(loads['2']!.reduce((a, b) => a + b, 0), 4 * 23 * 2);
  }
  assert.ok((steps[15]!.mtp_loss as number) < 0.6 * (steps[0]!.mtp_loss as number), 'MTP loss falls too');
  const svg = readFileSync(join(f.run.outDir, 'loss.svg'), 'utf8');
  assert.match(svg, /^<svg/);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 3);
  const ckpt = loadCheckpoint(f.run.outDir);
  assert.equal(ckpt.state.step, 16);
  assert.equal(ckpt.state.dataCursor, 16 * 4);
  assert.ok(existsSync(join(ckpt.dir, 'tokenizer.json')) && existsSync(join(ckpt.dir, 'config.json')));
  assert.deepEqual(JSON.parse(readFileSync(join(ckpt.dir, 'config.json'), 'utf8')).architectures, ['DeepseekV3ForCausalLM']);
});

test('resume is bit for bit: 12 steps straight == 6 steps, stop, resume, 6 more (grad_accum 2, wsd)', () => {
  const common = { schedule: { type: 'wsd', warmup: 2, steps: 12, decay_steps: 4 }, grad_accum: 2, batch_size: 2, checkpoint_every: 6, eval_every: 6 };
  const straight = runFixture(common);
  const a = runPretraining(straight.run, { progress: quiet });
  const split = runFixture({ ...common, keep_checkpoints: 1 });
  const b1 = runPretraining(split.run, { progress: quiet, stopAtStep: 6 });
  assert.equal(b1.endStep, 6);
  const b2 = runPretraining(split.run, { progress: quiet });
  assert.equal(b2.startStep, 6);
  assert.ok(b2.dataCached, 'the second run reads the token cache');
  const lossesA = a.steps.map((s) => [s.loss, s.mtpLoss, s.balanceLoss, s.gradNorm]);
  const lossesB = [...b1.steps, ...b2.steps].map((s) => [s.loss, s.mtpLoss, s.balanceLoss, s.gradNorm]);
  assert.deepEqual(lossesB, lossesA);
  for (const [name, p] of a.model.params) assert.deepEqual(b2.model.params.get(name)!.value, p.value, `parameter ${name}`);
  for (const [name, bias] of a.model.routingBiases) assert.deepEqual(b2.model.routingBiases.get(name), bias, `routing bias ${name}`);
  assert.ok([...a.model.routingBiases.values()].some((bias) => bias.some((x) => x !== 0)), 'the routing biases moved');
  // The log of the resumed run has each step once.
  const log = readFileSync(join(split.run.outDir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
  assert.deepEqual(log.filter((e) => e.type === 'step').map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  // keep_checkpoints 1: only the newest step directory is left (the straight run keeps both).
  assert.deepEqual(readdirSync(join(split.run.outDir, 'checkpoints')), ['step-00000012']);
  assert.deepEqual(readdirSync(join(straight.run.outDir, 'checkpoints')), ['step-00000006', 'step-00000012']);
});

test('run config errors name the field', () => {
  const f = runFixture();
  const bad = (patch: (j: Record<string, unknown>) => void, pattern: RegExp) => {
    const json = structuredClone(f.json);
    patch(json);
    assert.throws(() => parseRunConfig(json, 'run.json', f.dir), pattern);
  };
  bad((j) => { (j.optimizer as Record<string, unknown>).lr = -1; }, /run\.json: field 'optimizer\.lr': -1 must be positive/);
  bad((j) => { (j.optimizer as Record<string, unknown>).betas = [0.9]; }, /field 'optimizer\.betas': expected two numbers/);
  bad((j) => { (j.schedule as Record<string, unknown>).type = 'linear'; }, /field 'schedule\.type': 'linear' is not one of 'cosine', 'wsd'/);
  bad((j) => { (j.schedule as Record<string, unknown>).warmup = 100; }, /field 'schedule\.warmup': 100 exceeds schedule\.steps 24/);
  bad((j) => { j.batch_size = 0; }, /field 'batch_size': 0 is below the minimum 1/);
  bad((j) => { j.seq_len = 1000; }, /field 'seq_len': 1000 exceeds model\.max_position_embeddings 256/);
  bad((j) => { j.optimiser = {}; }, /field 'optimiser': unknown field/);
  bad((j) => { delete j.out_dir; }, /field 'out_dir': required field is missing/);
  bad((j) => { (j.data as Record<string, unknown>).train = []; }, /field 'data\.train': expected a path or a list of paths/);
  bad((j) => { (j.model as Record<string, unknown>).num_experts_per_tok = 9; }, /field 'model'.*num_experts_per_tok/);
  bad((j) => { (j.mtp as Record<string, unknown>).enabled = true; (j.model as Record<string, unknown>).num_nextn_predict_layers = 0; }, /field 'mtp\.enabled': MTP needs/);
  bad((j) => { j.fp8 = 'yes'; }, /field 'fp8': expected true or false/);
  bad((j) => { j.fp8_compare = true; }, /field 'fp8_compare': needs "fp8": true/);
  bad((j) => { j.keep_checkpoints = -1; }, /field 'keep_checkpoints': -1 is below the minimum 0/);
  // Missing data files and a vocabulary smaller than the tokenizer's are runtime errors naming them.
  const missing = runFixture({ data: { train: 'nope.txt', tokenizer: 'tokenizer.json' } }, {}, tempDir('run-missing'));
  assert.throws(() => runPretraining(missing.run, { progress: quiet }), /data file not found: .*nope\.txt/);
  const small = runFixture({}, { vocab_size: 100 });
  assert.throws(() => runPretraining(small.run, { progress: quiet }), /model\.vocab_size 100 is smaller than the tokenizer's/);
});
