// End to end through the CLI: sft (cold start) -> rl -> eval -> distill on a tiny model, a few steps each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { writeModelDir } from '../../src/train/checkpoint.js';
import { TrainModel } from '../../src/train/model.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { hfConfigToObject } from '../../src/formats/hf-config.js';
import { tempDir, tinyDense, writeTinyTokenizer } from './helpers.js';

async function quiet(argv: string[]): Promise<{ code: number; err: string; out: string }> {
  const errors: string[] = [];
  const outs: string[] = [];
  const [e, l, w] = [console.error, console.log, process.stderr.write.bind(process.stderr)];
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  console.log = (...a: unknown[]) => outs.push(a.join(' '));
  process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), err: errors.join('\n'), out: outs.join('\n') };
  } finally {
    [console.error, console.log, process.stderr.write] = [e, l, w];
  }
}

test('cli: frugal sft -> rl -> eval -> distill on a tiny model; config errors name the field', async () => {
  const dir = tempDir('stages');
  const tokPath = writeTinyTokenizer(dir);
  const eos = Tokenizer.fromFile(tokPath).tokenId('<|eos|>')!;
  const config = tinyDense('Qwen2ForCausalLM', { eos_token_id: eos, max_position_embeddings: 1024, num_hidden_layers: 1 });
  writeModelDir(join(dir, 'base'), config, TrainModel.init(config, 1).tensors(), tokPath);
  const write = (name: string, json: unknown) => writeFileSync(join(dir, name), JSON.stringify(json));

  write('sft.json', { from: 'base', data: { cold_start: { tasks: ['arithmetic'], count: 8, difficulties: [1] } }, steps: 2, batch_size: 2, max_len: 200, out_dir: 'sft', log_every: 1 });
  let r = await quiet(['sft', '--config', join(dir, 'sft.json')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /sft step 2\/2 {2}loss \d/);
  assert.ok(existsSync(join(dir, 'sft', 'loss.svg')) && existsSync(join(dir, 'sft', 'latest')));

  write('rl.json', { from: 'sft', tasks: ['arithmetic'], difficulties: [1], steps: 2, prompts_per_step: 1, oversample: 2, group_size: 2, max_tokens: 8, mu: 2, out_dir: 'rl', lr: 1e-4 });
  r = await quiet(['rl', '--config', join(dir, 'rl.json')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /rl step 2\/2 {2}reward [\d.]+ {2}acc [\d.]+ {2}format [\d.]+ {2}len [\d.]+/);
  const log = readFileSync(join(dir, 'rl', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log.length, 2);
  for (const key of ['reward', 'accuracy', 'format', 'response_length', 'kl', 'entropy', 'clip_fraction']) assert.equal(typeof log[1][key], 'number', key);
  assert.match(r.err, /groups [01]\/1/); // oversample 2: two prompts rolled out, at most one group trained
  for (const entry of log) assert.ok(entry.groups_trained <= 1, `groups_trained ${entry.groups_trained}`);

  const jsonPath = join(dir, 'eval.json');
  r = await quiet(['eval', '--model', join(dir, 'rl', 'checkpoints', 'step-00000002'), '--task', 'arithmetic', '--samples', '2', '--limit', '2', '--max-tokens', '6', '--json', jsonPath]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /pass@1\s+pass@k\s+greedy\s+format/);
  const report = JSON.parse(readFileSync(jsonPath, 'utf8'));
  assert.equal(report.reports[0].problems, 2);
  assert.equal(report.reports[0].meanResponseLength, 6);
  // the run directory itself names its newest checkpoint (the 'latest' pointer): same report
  const runJson = join(dir, 'eval-run.json');
  r = await quiet(['eval', '--model', join(dir, 'rl'), '--task', 'arithmetic', '--samples', '2', '--limit', '2', '--max-tokens', '6', '--json', runJson]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(readFileSync(runJson, 'utf8')).reports, report.reports);
  // --rephrase: the same problems asked in other words
  const rephrasedJson = join(dir, 'eval-rephrased.json');
  r = await quiet(['eval', '--model', join(dir, 'rl'), '--task', 'arithmetic', '--samples', '0', '--limit', '2', '--max-tokens', '6', '--rephrase', '--json', rephrasedJson]);
  assert.equal(r.code, 0, r.err);
  const rephrased = JSON.parse(readFileSync(rephrasedJson, 'utf8'));
  assert.equal(rephrased.rephrased, true);
  const asked = rephrased.reports[0].perProblem as { id: string; prompt: string }[];
  assert.deepEqual(asked.map((p) => p.id), report.reports[0].perProblem.map((p: { id: string }) => p.id));
  asked.forEach((p, i) => assert.notEqual(p.prompt, report.reports[0].perProblem[i].prompt));

  const student = tinyDense('LlamaForCausalLM', { eos_token_id: eos, hidden_size: 16, num_hidden_layers: 1, max_position_embeddings: 1024 });
  write('student.json', hfConfigToObject(student));
  // A teacher that solves nothing yields no traces: a clear error.
  write('distill.json', { teacher: 'rl', tasks: ['arithmetic'], difficulties: [1], problems: 2, samples: 1, max_tokens: 4, student: { config: 'student.json' }, sft: { steps: 1 }, out_dir: 'distill' });
  r = await quiet(['distill', '--config', join(dir, 'distill.json')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no verified traces/);

  write('bad.json', { from: 'base', data: { cold_start: { tasks: ['arithmetic'] } }, steps: 2, batch_size: 0, out_dir: 'x' });
  r = await quiet(['sft', '--config', join(dir, 'bad.json')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /bad\.json: field 'batch_size': 0 is outside/);
  write('bad.json', { from: 'sft', steps: 2, out_dir: 'x', loss_type: 'ppo' });
  r = await quiet(['rl', '--config', join(dir, 'bad.json')]);
  assert.match(r.err, /field 'loss_type': expected one of grpo, dr_grpo, token/);
  write('bad.json', { from: 'sft', steps: 2, out_dir: 'x', group_size: 1 });
  r = await quiet(['rl', '--config', join(dir, 'bad.json')]);
  assert.match(r.err, /field 'group_size': 1 is outside \[2/);
  write('bad.json', { from: 'sft', steps: 2, out_dir: 'x', oversample: 0 });
  r = await quiet(['rl', '--config', join(dir, 'bad.json')]);
  assert.match(r.err, /field 'oversample': 0 is outside \[1/);
  write('bad.json', { from: 'sft', steps: 2, out_dir: 'x', tmperature: 1 });
  r = await quiet(['rl', '--config', join(dir, 'bad.json')]);
  assert.match(r.err, /field 'tmperature': unknown field/);
  r = await quiet(['eval', '--model', join(dir, 'base'), '--task', 'chess']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown task "chess"/);
});
