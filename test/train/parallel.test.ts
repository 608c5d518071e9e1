// Data-parallel training over worker threads: a step split over 2 shards equals the single-process
// step (gradients, parameters, losses, expert loads, FP8 counts), repeated runs are bit-identical,
// a worker's error surfaces, pre-training and SFT resume bit for bit with 1 and 2 shards, and the
// worker threads end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/autograd/random.js';
import { TrainModel } from '../../src/train/model.js';
import { Trainer, type StepRecord, type TrainerOptions } from '../../src/train/trainer.js';
import { DataParallel, defaultTrainWorkers, rowRanges } from '../../src/train/parallel.js';
import { runPretraining } from '../../src/train/pretrain.js';
import { runSft, type SftOptions, type TokenizedExample } from '../../src/train/sft.js';
import { tempDir, tinyDense, tinyV3 } from './helpers.js';
import { runFixture } from './run-fixture.js';

const config = tinyV3();
const SEQ = 17;

function options(workers: number, over: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    lr: 1e-3, minLr: 1e-4, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-8, clip: 1,
    schedule: { type: 'cosine', warmup: 1, steps: 100, decaySteps: 0 },
    mtp: { enabled: true, lambda: 0.3 }, moe: { gamma: 0.001, alpha: 0.0001 }, fp8: false, workers, ...over,
  };
}

/** `count` micro-batches of `rows` random sequences of SEQ tokens. */
function microBatches(rng: Random, count: number, rows: number): Int32Array[] {
  return Array.from({ length: count }, () => rng.intArray(rows * SEQ, config.vocab_size));
}

/** ||a − b|| / ||a||. */
function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += a[i]! ** 2;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

function assertClose(actual: number | null, expected: number | null, tolerance: number, what: string): void {
  assert.ok(actual !== null && expected !== null, `${what}: ${actual} vs ${expected}`);
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

function assertSameStats(parallel: StepRecord, single: StepRecord): void {
  assertClose(parallel.loss, single.loss, 1e-6, 'loss');
  assertClose(parallel.mtpLoss, single.mtpLoss, 1e-6, 'MTP loss');
  assertClose(parallel.mtpAccuracy, single.mtpAccuracy, 1e-6, 'MTP accuracy');
  assertClose(parallel.balanceLoss, single.balanceLoss, 1e-5, 'balance loss');
  assertClose(parallel.gradNorm, single.gradNorm, 1e-5, 'gradient norm');
  assert.deepEqual(parallel.loads, single.loads, 'expert loads');
  assert.equal(parallel.tokens, single.tokens);
}

test('FRUGAL_TRAIN_WORKERS: a count from 1 to 64; anything else is an error naming the variable', () => {
  const saved = process.env.FRUGAL_TRAIN_WORKERS;
  try {
    process.env.FRUGAL_TRAIN_WORKERS = '3';
    assert.equal(defaultTrainWorkers(), 3);
    for (const bad of ['two', '0', '1.5', '65']) {
      process.env.FRUGAL_TRAIN_WORKERS = bad;
      assert.throws(() => defaultTrainWorkers(), /FRUGAL_TRAIN_WORKERS = .* must be an integer from 1 to 64/, bad);
    }
  } finally {
    if (saved === undefined) delete process.env.FRUGAL_TRAIN_WORKERS;
    else process.env.FRUGAL_TRAIN_WORKERS = saved;
  }
});

test('rowRanges: contiguous, near-equal, non-empty shards', () => {
  assert.deepEqual(rowRanges(5, 2), [[0, 2], [2, 5]]);
  assert.deepEqual(rowRanges(16, 2), [[0, 8], [8, 16]]);
  assert.deepEqual(rowRanges(7, 3), [[0, 2], [2, 4], [4, 7]]);
  assert.deepEqual(rowRanges(1, 2), [[0, 1]], 'never an empty shard');
});

test('one step over 2 shards equals the single-process step (5 rows split 2 + 3, 2 micro-batches)', async () => {
  const single = new Trainer(TrainModel.init(config, 3), options(1));
  const parallel = new Trainer(TrainModel.init(config, 3), options(2));
  try {
    const micro = microBatches(new Random(5), 2, 5);
    const s = single.step(0, micro, 5, SEQ);
    const p = parallel.step(0, micro, 5, SEQ);
    assertSameStats(p, s);
    for (const [name, v] of single.model.params) {
      const w = parallel.model.params.get(name)!;
      assert.ok(v.grad !== null && w.grad !== null, `${name} has a gradient in both`);
      const gradDiff = relativeDifference(v.grad, w.grad);
      assert.ok(gradDiff <= 1e-5, `gradient of ${name}: relative difference ${gradDiff}`);
      const paramDiff = relativeDifference(v.value, w.value);
      assert.ok(paramDiff <= 1e-5, `${name} after the step: relative difference ${paramDiff}`);
    }
    // Equal loads give equal routing-bias updates.
    for (const [name, bias] of single.model.routingBiases) assert.deepEqual(parallel.model.routingBiases.get(name), bias, name);
    assert.ok([...single.model.routingBiases.values()].some((b) => b.some((x) => x !== 0)), 'the routing biases moved');
  } finally {
    await parallel.close();
  }
});

test('FP8 over 2 shards: the shards\' FP8 counts are merged to the single-process totals; losses and loads match', async () => {
  const single = new Trainer(TrainModel.init(config, 4), options(1, { fp8: true }));
  const parallel = new Trainer(TrainModel.init(config, 4), options(2, { fp8: true }));
  try {
    const micro = microBatches(new Random(6), 1, 4);
    const s = single.step(0, micro, 4, SEQ);
    const p = parallel.step(0, micro, 4, SEQ);
    assert.ok(single.fp8Stats.activationElements > 0);
    assert.deepEqual(parallel.fp8Stats, single.fp8Stats);
    // The forward rounds per row (1x128 tiles) and per weight block, so it does not depend on the split.
    assertClose(p.loss, s.loss, 1e-6, 'loss');
    assertClose(p.mtpLoss, s.mtpLoss, 1e-6, 'MTP loss');
    assert.deepEqual(p.loads, s.loads);
  } finally {
    await parallel.close();
  }
});

test('3 steps over 2 shards are bit for bit the same on a rerun', async () => {
  const run = async () => {
    const trainer = new Trainer(TrainModel.init(config, 7), options(2));
    const rng = new Random(9);
    const records = [0, 1, 2].map((step) => trainer.step(step, microBatches(rng, 1, 4), 4, SEQ));
    await trainer.close();
    return { records, model: trainer.model };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(b.records, a.records);
  for (const [name, v] of a.model.params) assert.deepEqual(b.model.params.get(name)!.value, v.value, name);
  for (const [name, bias] of a.model.routingBiases) assert.deepEqual(b.model.routingBiases.get(name), bias, name);
});

test('a worker\'s error is thrown by the step, and the next step works', async () => {
  const trainer = new Trainer(TrainModel.init(config, 2), options(2));
  try {
    const ids = new Random(3).intArray(4 * SEQ, config.vocab_size);
    const bad = ids.slice();
    bad[3 * SEQ + 5] = config.vocab_size; // a row of the second shard
    assert.throws(() => trainer.step(0, [bad], 4, SEQ), /data-parallel worker 1: .*token id 300 outside the vocabulary of 300/);
    const r = trainer.step(0, [ids], 4, SEQ);
    assert.ok(Number.isFinite(r.loss) && !r.skipped);
  } finally {
    await trainer.close();
  }
});

test('close() ends the worker threads; running after close throws', async () => {
  const model = TrainModel.init(config, 1);
  const dp = new DataParallel(model, 2);
  assert.equal(dp.runningWorkers, 0, 'workers start at the first run');
  const ids = new Random(1).intArray(2 * SEQ, config.vocab_size);
  const task = (from: number) => ({
    kind: 'pretrain' as const, microBatches: [ids.slice(from * SEQ, (from + 1) * SEQ)], rows: 1, seqPlusOne: SEQ, share: 0.5,
    mtp: false, mtpLambda: 0, balanceAlpha: 0, fp8: false,
  });
  const results = dp.run([task(0), task(1)]);
  assert.equal(results.length, 2);
  assert.equal(dp.runningWorkers, 1);
  await dp.close();
  assert.equal(dp.runningWorkers, 0, 'the worker thread exited');
  assert.throws(() => dp.run([task(0), task(1)]), /run after close/);
});

test('pre-training resumes bit for bit with 1 shard and with 2 shards', () => {
  const common = { schedule: { type: 'cosine', warmup: 1, steps: 4 }, batch_size: 3, checkpoint_every: 2, eval_every: 2 };
  const quiet = () => {};
  for (const workers of [1, 2]) {
    const straight = runPretraining(runFixture(common).run, { progress: quiet, workers });
    const split = runFixture(common);
    runPretraining(split.run, { progress: quiet, workers, stopAtStep: 2 });
    const resumed = runPretraining(split.run, { progress: quiet, workers });
    assert.equal(resumed.startStep, 2);
    const stats = (records: StepRecord[]) => records.map((s) => [s.loss, s.mtpLoss, s.balanceLoss, s.gradNorm]);
    assert.deepEqual(stats(resumed.steps), stats(straight.steps.slice(2)), `${workers} shard(s)`);
    for (const [name, t] of straight.model.tensors()) assert.deepEqual(resumed.model.tensors().get(name)!.values, t.values, `${workers} shard(s): ${name}`);
  }
});

test('SFT over 2 shards matches the single-process run and resumes bit for bit', () => {
  const dense = tinyDense('Qwen2ForCausalLM');
  const rng = new Random(12);
  // Prompts and completions of different lengths: masks and padding differ between the shards.
  const examples: TokenizedExample[] = Array.from({ length: 12 }, () => ({
    prompt: [...rng.intArray(2 + rng.int(6), 300)], completion: [...rng.intArray(1 + rng.int(8), 300)],
  }));
  const sft = (outDir: string, workers: number, over: Partial<SftOptions> = {}) => runSft(TrainModel.init(dense, 2), examples, {
    lr: 0.01, minLr: 0.001, warmup: 1, steps: 4, batchSize: 5, weightDecay: 0.01, clip: 1, maxLen: 16, seed: 1,
    outDir, checkpointEvery: 2, logEvery: 1000, print: () => {}, workers, ...over,
  });
  const single = sft(tempDir('sft-dp1'), 1);
  const parallel = sft(tempDir('sft-dp2'), 2);
  for (let i = 0; i < 4; i++) {
    assertClose(parallel.log[i]!.loss, single.log[i]!.loss, 1e-5, `loss at step ${i + 1}`);
    assertClose(parallel.log[i]!.grad_norm, single.log[i]!.grad_norm, 1e-4, `gradient norm at step ${i + 1}`);
  }
  for (const [name, v] of single.model.params) {
    // The key bias shifts every score of a query row equally, which the softmax ignores: its gradient
    // is 0 up to rounding, and AdamW's normalized step turns that rounding into the update.
    if (name.endsWith('k_proj.bias')) continue;
    const diff = relativeDifference(v.value, parallel.model.params.get(name)!.value);
    assert.ok(diff <= 1e-5, `${name}: relative difference ${diff} after 4 steps`);
  }
  const dir = tempDir('sft-dp2-resume');
  sft(dir, 2, { stopAt: 2 });
  const resumed = sft(dir, 2);
  assert.equal(resumed.startStep, 2);
  assert.deepEqual(resumed.log.map((e) => ({ ...e, seconds: 0 })), parallel.log.map((e) => ({ ...e, seconds: 0 })));
  for (const [name, t] of parallel.model.tensors()) assert.deepEqual(resumed.model.tensors().get(name)!.values, t.values, name);
});
