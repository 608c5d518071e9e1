// Resumability and atomicity of every training command, fuzzed: SIGKILL at seeded moments of
// `frugal train`, `frugal sft`, `frugal distill` and a GRPO run (runGrpo in a child process, with a
// reward that varies so that the weights move), then the same command again until it finishes. The
// final checkpoint must equal an uninterrupted run's bit for bit (training is deterministic for a
// given seed and shard count), and the log must hold every step once. Then corrupted files, a full
// disk during a checkpoint write, a --no-resume run killed while replacing the checkpoint `latest`
// names, and an fp8_compare run killed between its two checkpoint saves.
//
// The file doubles as the GRPO child: FRUGAL_RESUME_FUZZ_CHILD=grpo node <this file> <dir>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../../src/autograd/random.js';
import { hfConfigToObject } from '../../src/formats/hf-config.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { loadCheckpoint, loadModelDir, writeModelDir } from '../../src/train/checkpoint.js';
import { coldStartExamples } from '../../src/train/cold-start.js';
import { writeChatJsonl } from '../../src/train/distill.js';
import { runGrpo } from '../../src/train/grpo.js';
import { TrainModel } from '../../src/train/model.js';
import { runPretraining } from '../../src/train/pretrain.js';
import { tokenizerCodec } from '../../src/train/rollout.js';
import { readRunConfig } from '../../src/train/run-config.js';
import { runSft, tokenizeExample } from '../../src/train/sft.js';
import { tempDir, tinyDense, tinyV3, writeTinyTokenizer } from './helpers.js';
import { runFixture } from './run-fixture.js';

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));
const self = fileURLToPath(import.meta.url);
const CHILD = 'FRUGAL_RESUME_FUZZ_CHILD';

// ------------------------------------------------------------------------------------ fixtures

/** A pre-training run of `steps` tiny steps, checkpointing every step. */
function pretrainFixture(steps: number, extra: Record<string, unknown> = {}) {
  return runFixture({ schedule: { type: 'cosine', warmup: 2, steps }, batch_size: 2, seq_len: 16, checkpoint_every: 1, keep_checkpoints: 2, eval_every: 4, ...extra });
}

/** A tiny DeepSeek-V3 base model, its tokenizer, and sft.json / distill.json for it (40 steps each). */
function stageFixture(): string {
  const dir = tempDir('fuzz-stage');
  const tokenizerPath = writeTinyTokenizer(dir);
  const eos = Tokenizer.fromFile(tokenizerPath).tokenId('<|eos|>')!;
  const config = tinyV3({ eos_token_id: eos, max_position_embeddings: 1024 });
  writeModelDir(join(dir, 'base'), config, TrainModel.init(config, 1).tensors(), tokenizerPath);
  const write = (name: string, json: unknown) => writeFileSync(join(dir, name), JSON.stringify(json));
  write('sft.json', { from: 'base', data: { cold_start: { tasks: ['arithmetic'], count: 16, difficulties: [1] } }, steps: 40, batch_size: 2, max_len: 200, out_dir: 'sft', log_every: 1, checkpoint_every: 1 });
  const student = tinyDense('LlamaForCausalLM', { eos_token_id: eos, hidden_size: 16, num_hidden_layers: 1, max_position_embeddings: 1024 });
  write('student.json', hfConfigToObject(student));
  // the tiny teacher verifies nothing: the traces are given (distill reuses an existing traces file)
  mkdirSync(join(dir, 'distill'));
  writeChatJsonl(join(dir, 'distill', 'traces.jsonl'), coldStartExamples({ tasks: ['arithmetic'], count: 8, difficulties: [1], seed: 3 }));
  write('distill.json', { teacher: 'base', problems: 2, samples: 1, max_tokens: 4, student: { config: 'student.json' }, sft: { steps: 40, checkpoint_every: 1, batch_size: 2, max_len: 200 }, out_dir: 'distill' });
  return dir;
}

/** The GRPO child: 24 steps on two prompts, rewarded by the count of 't' in the completion. */
function grpoChild(dir: string): void {
  const base = loadModelDir(join(dir, 'base'));
  const tokenizer = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  const codec = tokenizerCodec(tokenizer, tokenizer.tokenId('<|eos|>'));
  const reward = (text: string) => {
    const score = (text.split('t').length - 1) / 4;
    return { accuracy: score, format: 0, score };
  };
  const prompts = (step: number) => [0, 1].map((i) => ({ tokens: codec.encode(`the cat ${step % 5} ${i}`), reward }));
  runGrpo(TrainModel.fromTensors(base.config, base.tensors), codec, prompts, {
    steps: 24, groupSize: 3, lr: 3e-3, beta: 0.02, epsilon: 0.2, mu: 2, lossType: 'grpo', scaleRewards: true, sample: { temperature: 1, topP: 1, maxTokens: 8 },
    refResetEvery: 7, weightDecay: 0.01, clip: 1, seed: 9, outDir: join(dir, 'grpo'), checkpointEvery: 1, logEvery: 1, tokenizerPath: join(dir, 'tokenizer.json'), print: () => {},
  });
}

// ------------------------------------------------------------------------------------ processes

interface Command {
  args: string[];
  env?: Record<string, string>;
}

const frugal = (...args: string[]): Command => ({ args: [bin, ...args] });
const grpoCommand = (dir: string): Command => ({ args: [self, dir], env: { [CHILD]: 'grpo' } });

function latestStep(outDir: string): number {
  const path = join(outDir, 'latest');
  if (!existsSync(path)) return 0;
  return Number(/step-(\d+)/.exec(readFileSync(path, 'utf8'))?.[1] ?? 0);
}

/** Runs a command; with `killAt`, SIGKILLs it `delayMs` after outDir's checkpoint reaches that step. */
function runCommand(command: Command, outDir: string, killAt?: { step: number; delayMs: number }): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, command.args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...command.env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const poll = killAt && setInterval(() => {
      if (latestStep(outDir) < killAt.step) return;
      clearInterval(poll);
      setTimeout(() => child.kill('SIGKILL'), killAt.delayMs);
    }, 2);
    child.on('close', (code, signal) => {
      if (poll) clearInterval(poll);
      resolve({ code, signal, stderr });
    });
  });
}

/** Kills the command `rounds` times at seeded moments (each after a further checkpoint), then runs it to the end. Returns the kills that landed. */
async function killAndFinish(command: Command, outDir: string, rng: Random, rounds: number): Promise<number> {
  let kills = 0;
  for (let round = 0; round < rounds; round++) {
    const r = await runCommand(command, outDir, { step: latestStep(outDir) + 1 + rng.int(3), delayMs: rng.int(40) });
    if (r.signal === 'SIGKILL') kills++;
    else assert.equal(r.code, 0, `round ${round}: ${r.stderr.slice(-1500)}`);
  }
  const last = await runCommand(command, outDir);
  assert.equal(last.code, 0, last.stderr.slice(-1500));
  return kills;
}

// ------------------------------------------------------------------------------------ comparisons

const TIMING_FIELDS = ['tokens_per_second', 'seconds', 'rollout_seconds'];

function logEntries(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    for (const field of TIMING_FIELDS) delete entry[field];
    return entry;
  });
}

/** The final checkpoint and log of a killed-and-resumed run equal the uninterrupted run's; the chart was rewritten from the log. */
function assertSameRun(reference: string, resumed: string, chart: string, label: string): void {
  const a = loadCheckpoint(reference);
  const b = loadCheckpoint(resumed);
  for (const file of ['model.safetensors', 'optimizer.safetensors']) {
    assert.ok(readFileSync(join(a.dir, file)).equals(readFileSync(join(b.dir, file))), `${label}: ${file} differs from the uninterrupted run's`);
  }
  const { extra: _a, ...stateA } = a.state;
  const { extra: _b, ...stateB } = b.state;
  assert.deepEqual(stateB, stateA, `${label}: trainer state`);
  const logA = logEntries(join(reference, 'log.jsonl'));
  const logB = logEntries(join(resumed, 'log.jsonl'));
  assert.deepEqual(logB, logA, `${label}: log.jsonl (no duplicated or missing steps, the same values)`);
  const stepEntries = logB.filter((e) => e['type'] === undefined || e['type'] === 'step').map((e) => e['step']);
  assert.deepEqual(stepEntries, Array.from({ length: a.state.step }, (_, i) => i + 1), `${label}: every step logged once`);
  assert.equal(readFileSync(join(resumed, chart), 'utf8'), readFileSync(join(reference, chart), 'utf8'), `${label}: ${chart}`);
  assert.deepEqual(readdirSync(join(resumed, 'checkpoints')).filter((n) => n.endsWith('.partial')), [], `${label}: no half-written checkpoint left`);
}

// ------------------------------------------------------------------------------------ tests

if (process.env[CHILD] === 'grpo') {
  grpoChild(process.argv[2]!);
} else {
  registerTests();
}

function registerTests(): void {
  test('SIGKILL at seeded moments of frugal train, sft, distill and GRPO: each resumes bit for bit, one log entry per step', { timeout: 240_000 }, async () => {
    const rng = new Random(20240607);
    const pre = [pretrainFixture(12), pretrainFixture(12)];
    assert.equal((await runCommand(frugal('train', '--config', pre[0]!.configPath), pre[0]!.run.outDir)).code, 0);
    const trainKills = await killAndFinish(frugal('train', '--config', pre[1]!.configPath), pre[1]!.run.outDir, rng, 4);
    assertSameRun(pre[0]!.run.outDir, pre[1]!.run.outDir, 'loss.svg', 'train');

    const stages = [stageFixture(), stageFixture()];
    const kills: Record<string, number> = { train: trainKills };
    for (const [name, outDir, chart] of [['sft', 'sft', 'loss.svg'], ['distill', join('distill', 'student'), 'loss.svg'], ['grpo', 'grpo', 'reward.svg']] as const) {
      const command = (dir: string) => (name === 'grpo' ? grpoCommand(dir) : frugal(name, '--config', join(dir, `${name}.json`)));
      const reference = await runCommand(command(stages[0]!), join(stages[0]!, outDir));
      assert.equal(reference.code, 0, reference.stderr.slice(-1500));
      kills[name] = await killAndFinish(command(stages[1]!), join(stages[1]!, outDir), rng, 4);
      assertSameRun(join(stages[0]!, outDir), join(stages[1]!, outDir), chart, name);
    }
    console.log(`# kills that landed: ${JSON.stringify(kills)}`);
    assert.ok(Object.values(kills).reduce((a, b) => a + b, 0) >= 8, 'most kills landed before the runs finished');
  });

  test('a pre-training run that dies before its first checkpoint leaves one start entry in the log, not one per attempt', () => {
    const f = pretrainFixture(6, { checkpoint_every: 0, eval_every: 0 });
    for (let attempt = 0; attempt < 2; attempt++) {
      const dying = (line: string) => {
        if (line.startsWith('step 2/')) throw new Error('simulated crash');
      };
      assert.throws(() => runPretraining(f.run, { progress: dying, workers: 1 }), /simulated crash/);
    }
    runPretraining(f.run, { progress: () => {}, workers: 1 });
    const types = logEntries(join(f.run.outDir, 'log.jsonl')).map((e) => `${e['type']}:${e['step']}`);
    assert.deepEqual(types, ['start:0', 'step:1', 'step:2', 'step:3', 'step:4', 'step:5', 'step:6', 'eval:6']);
  });

  test('corrupt checkpoints, logs and configs: errors name the file and field, flipped bytes are never trained on', () => {
    const f = pretrainFixture(8);
    runPretraining(f.run, { stopAtStep: 4, progress: () => {}, workers: 1 });
    const copy = (name: string) => {
      const dir = join(f.dir, name);
      cpSync(f.run.outDir, dir, { recursive: true });
      return { out: dir, step: join(dir, 'checkpoints', 'step-00000004') };
    };
    const flip = (path: string, fromEnd: number) => {
      const bytes = readFileSync(path);
      bytes[bytes.length - fromEnd]! ^= 0x10;
      writeFileSync(path, bytes);
    };
    const flippedModel = copy('flip-model');
    flip(join(flippedModel.step, 'model.safetensors'), 5000);
    assert.throws(() => loadCheckpoint(flippedModel.out), /model\.safetensors: tensor '[^']+' \(bytes \d+\.\.\d+\) does not match its SHA-256 in .*trainer_state\.json/);
    const flippedMoments = copy('flip-optimizer');
    flip(join(flippedMoments.step, 'optimizer.safetensors'), 5000);
    assert.throws(() => loadCheckpoint(flippedMoments.out), /optimizer\.safetensors: tensor 'exp_avg[^']*' \(bytes \d+\.\.\d+\) does not match/);
    const truncated = copy('truncated');
    truncateSync(join(truncated.step, 'model.safetensors'), statSync(join(truncated.step, 'model.safetensors')).size - 100);
    assert.throws(() => loadCheckpoint(truncated.out), /model\.safetensors: data at byte \d+: .*truncated/);
    const noSlots = copy('no-slots');
    const statePath = join(noSlots.step, 'trainer_state.json');
    const { optimizerSlots: _slots, ...withoutSlots } = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
    writeFileSync(statePath, JSON.stringify(withoutSlots));
    assert.throws(() => loadCheckpoint(noSlots.out), /trainer_state\.json: field 'optimizerSlots' must be a list/);
    writeFileSync(statePath, '');
    assert.throws(() => loadCheckpoint(noSlots.out), /trainer_state\.json: not valid JSON/);
    // another model config in the run's out_dir
    const wider = runFixture({ ...f.json, model: { ...(f.json['model'] as object), hidden_size: 48 } }, {}, f.dir);
    assert.throws(() => runPretraining(wider.run, { progress: () => {}, workers: 1 }), /cannot resume from .*step-00000004: its config\.json differs/);
    // an empty run config
    writeFileSync(join(f.dir, 'empty.json'), '');
    assert.throws(() => readRunConfig(join(f.dir, 'empty.json')), /empty\.json: field '\(file\)': not valid JSON/);
    // a torn last log line: skipped with a warning naming the line; the resumed log holds each step once
    const runFixture8 = pretrainFixture(8);
    runPretraining(runFixture8.run, { stopAtStep: 4, progress: () => {}, workers: 1 });
    const logPath = join(runFixture8.run.outDir, 'log.jsonl');
    writeFileSync(logPath, `${readFileSync(logPath, 'utf8')}{"type":"step","step":5,"lo`);
    const lines: string[] = [];
    runPretraining(runFixture8.run, { progress: (l) => lines.push(l), workers: 1 });
    assert.ok(lines.some((l) => /log\.jsonl:7: not a JSON line .*skipped/.test(l)), lines.join('\n'));
    const steps = logEntries(logPath).filter((e) => e['type'] === 'step').map((e) => e['step']);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('SFT refuses to resume a checkpoint of another model or seed in its out_dir (GRPO runs the same check)', () => {
    const dir = stageFixture();
    const tokenizer = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    const codec = tokenizerCodec(tokenizer, tokenizer.tokenId('<|eos|>'));
    const examples = coldStartExamples({ tasks: ['arithmetic'], count: 4, difficulties: [1], seed: 1 }).map((e) => tokenizeExample(e, 'r1-chat', codec));
    const base = loadModelDir(join(dir, 'base'));
    const options = { lr: 1e-3, minLr: 1e-4, warmup: 1, steps: 4, batchSize: 2, weightDecay: 0, clip: 1, maxLen: 200, seed: 1, outDir: join(dir, 'mixed'), checkpointEvery: 1, logEvery: 1, print: () => {}, workers: 1 };
    runSft(TrainModel.fromTensors(base.config, base.tensors), examples, { ...options, stopAt: 2 });
    const other = tinyV3({ eos_token_id: tokenizer.tokenId('<|eos|>'), max_position_embeddings: 1024, hidden_size: 48 });
    assert.throws(() => runSft(TrainModel.init(other, 1), examples, options), /cannot resume from .*step-00000002: its config\.json differs from the model being trained/);
    assert.throws(() => runSft(TrainModel.fromTensors(base.config, base.tensors), examples, { ...options, seed: 2 }), /trained with seed 1, the run says 2/);
  });

  test('a full disk during a checkpoint write: a clear error, `latest` still names the previous complete checkpoint, the rerun finishes bit for bit', async () => {
    const [reference, full] = [pretrainFixture(8), pretrainFixture(8)];
    runPretraining(reference.run, { progress: () => {} });
    runPretraining(full.run, { stopAtStep: 4, progress: () => {} });
    // EFBIG past 150 KiB per file (SIGXFSZ ignored): model.safetensors (~230 KiB) cannot be written
    const limited = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 150; exec "${process.execPath}" "${bin}" train --config "${full.configPath}"`], { encoding: 'utf8' });
    assert.equal(limited.status, 1, limited.stderr);
    assert.match(limited.stderr, /frugal train: cannot write checkpoint .*step-00000005 \(EFBIG[^)]*\); .*latest still names .*step-00000004\n/);
    assert.doesNotMatch(limited.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(loadCheckpoint(full.run.outDir).state.step, 4);
    assert.deepEqual(readdirSync(join(full.run.outDir, 'checkpoints')).filter((n) => !/^step-\d{8}$/.test(n)), [], 'the partial checkpoint was removed');
    runPretraining(full.run, { progress: () => {} });
    assertSameRun(reference.run.outDir, full.run.outDir, 'loss.svg', 'after a full disk');
  });

  test('a --no-resume run killed while replacing the checkpoint that `latest` names never leaves a mixed checkpoint', () => {
    const f = pretrainFixture(8, { checkpoint_every: 4 });
    runPretraining(f.run, { stopAtStep: 4, progress: () => {} });
    const old = loadCheckpoint(f.run.outDir);
    // the new run differs (another lr); its writes fail once a file passes 300 KiB: after
    // model.safetensors (~230 KiB) of its step-4 checkpoint, inside optimizer.safetensors (~460 KiB)
    writeFileSync(f.configPath, JSON.stringify({ ...f.json, optimizer: { lr: 0.02, weight_decay: 0.01, betas: [0.9, 0.95], clip: 1 } }));
    const killed = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 300; exec "${process.execPath}" "${bin}" train --no-resume --config "${f.configPath}"`], { encoding: 'utf8' });
    assert.notEqual(killed.status, 0, 'the write failed (EFBIG: Node ignores SIGXFSZ)');
    const now = loadCheckpoint(f.run.outDir); // checks every tensor against trainer_state.json
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const name = 'model.embed_tokens.weight';
    assert.ok(same(now.tensors.get(name)!.values, old.tensors.get(name)!.values), '`latest` still names the old, complete checkpoint');
    assert.ok(same(now.optimizer.params[0]!.m, old.optimizer.params[0]!.m), 'with its own optimizer state');
  });

  test('fp8_compare: a run killed between the FP32 reference\'s checkpoint and its own resumes', () => {
    const settings = { fp8: true, fp8_compare: true, keep_checkpoints: 1, eval_every: 0 };
    const [reference, crashed, ahead] = [pretrainFixture(6, settings), pretrainFixture(6, settings), pretrainFixture(6, settings)];
    runPretraining(reference.run, { progress: () => {} });
    runPretraining(crashed.run, { stopAtStep: 3, progress: () => {} });
    runPretraining(ahead.run, { stopAtStep: 4, progress: () => {} });
    // the state a kill leaves right after the reference's step-4 save: its step 4 beside its step 3, `latest` at 4
    const step4 = join('fp32-reference', 'checkpoints', 'step-00000004');
    cpSync(join(ahead.run.outDir, step4), join(crashed.run.outDir, step4), { recursive: true });
    writeFileSync(join(crashed.run.outDir, 'fp32-reference', 'latest'), 'checkpoints/step-00000004\n');
    runPretraining(crashed.run, { progress: () => {} });
    for (const sub of ['', 'fp32-reference']) {
      const a = loadCheckpoint(join(reference.run.outDir, sub));
      const b = loadCheckpoint(join(crashed.run.outDir, sub));
      assert.ok(readFileSync(join(a.dir, 'model.safetensors')).equals(readFileSync(join(b.dir, 'model.safetensors'))), `${sub || 'run'}: weights`);
    }
  });

  test('frugal sft --write-cold-start on a full disk leaves no partial JSONL (a later distill would train on the lines that made it)', () => {
    const dir = tempDir('fuzz-jsonl');
    const path = join(dir, 'cold.jsonl');
    const limited = spawnSync('bash', ['-c', `trap '' XFSZ; ulimit -f 16; exec "${process.execPath}" "${bin}" sft --write-cold-start "${path}" --tasks arithmetic --count 200`], { encoding: 'utf8' });
    assert.equal(limited.status, 1, limited.stderr);
    assert.match(limited.stderr, /EFBIG/);
    assert.equal(existsSync(path), false, 'no partial file');
  });
}
