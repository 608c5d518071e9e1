// `frugal recipe --quick` end to end, and the shipped models/frugal-r1-tiny.gguf.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openGguf } from '../../src/formats/gguf.js';
import { chatPromptTokens } from '../../src/generate/chat-prompt.js';
import { loadModel } from '../../src/models/load.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { renderR1Chat } from '../../src/tokenizer/chat-template.js';
import { renderChat } from '../../src/tokenizer/chat-template.js';
import { DEFAULT_RECIPE, QUICK_RECIPE, R1_JINJA_TEMPLATE, mergeRecipe } from '../../src/train/recipe.js';
import { rephrase } from '../../src/train/tasks/phrasing.js';
import { getTask } from '../../src/train/tasks/registry.js';
import { makeArithmeticProblem, makeCountdownProblem, makeLinearProblem, makeSortProblem } from '../../src/train/tasks/index.js';
import { SHIPPED_MODEL_EXAMPLES } from '../../src/cli/chat.js';
import { TaskRng } from '../../src/train/tasks/rng.js';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = join(root, 'bin', 'frugal.js');
const shipped = join(root, 'models', 'frugal-r1-tiny.gguf');

/** Greedy decoding through the engine from the chat prompt of one user message; returns the text. */
function greedyReply(path: string, question: string, maxTokens: number): { text: string; tokens: number } {
  const loaded = loadModel(path);
  assert.ok(loaded.tokenizer, `${path} embeds a tokenizer`);
  const tokenizer = loaded.tokenizer;
  const prompt = chatPromptTokens(tokenizer, [{ role: 'user', content: question }], loaded.chatTemplate !== undefined ? { template: loaded.chatTemplate } : {});
  const cache = loaded.model.newCache(prompt.length + maxTokens);
  let logits = loaded.model.forward(Int32Array.from(prompt), cache);
  const out: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
    if (best === tokenizer.eosId) break;
    out.push(best);
    logits = loaded.model.forward(Int32Array.of(best), cache);
  }
  return { text: tokenizer.decode(out), tokens: out.length };
}

test('the embedded Jinja chat template renders what the R1 template renders', () => {
  const conversations = [
    [{ role: 'user' as const, content: 'What is 2 + 3?' }],
    [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'hi' },
      { role: 'assistant' as const, content: '<think>\nx\n</think>\n\nhello' }, { role: 'user' as const, content: 'What is 7 * 8?' }],
  ];
  for (const messages of conversations) {
    const expected = renderR1Chat(messages, { addGenerationPrompt: true });
    const actual = renderChat(messages, { addGenerationPrompt: true, template: R1_JINJA_TEMPLATE, bosToken: '<｜begin▁of▁sentence｜>', eosToken: '<｜end▁of▁sentence｜>' });
    assert.equal(actual, expected);
  }
});

test('recipe config files: merged section by section, unknown fields named', () => {
  const merged = mergeRecipe(QUICK_RECIPE, { pretrain: { steps: 3 }, tasks: ['sort'] }, 'x.json');
  assert.equal(merged.pretrain.steps, 3);
  assert.equal(merged.pretrain.batchSize, QUICK_RECIPE.pretrain.batchSize);
  assert.deepEqual(merged.tasks, ['sort']);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { pretrian: {} }, 'x.json'), /x\.json: unknown field 'pretrian'/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { sft: { stepz: 1 } }, 'x.json'), /unknown field 'sft\.stepz'/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { lr: '1e-4' } }, 'x.json'), /x\.json: field 'rl\.lr' must be a finite number, found "1e-4"/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { enabled: 1 } }, 'x.json'), /field 'rl\.enabled' must be a boolean, found 1/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { oversample: 0 } }, 'x.json'), /field 'rl\.oversample' must be an integer >= 1, found 0/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { oversample: 1.5 } }, 'x.json'), /field 'rl\.oversample' must be an integer >= 1, found 1\.5/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { sft: { rephrased: 1.5 } }, 'x.json'), /field 'sft\.rephrased' must be a share between 0 and 1, found 1\.5/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { rephrased: -0.1 } }, 'x.json'), /field 'rl\.rephrased' must be a share between 0 and 1, found -0\.1/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { corpus: { copyDrills: -5 } }, 'x.json'), /field 'corpus\.copyDrills' must be an integer >= 0, found -5/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { pretrain: { steps: 2.5 } }, 'x.json'), /field 'pretrain\.steps' must be an integer >= 0, found 2\.5/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { groupSize: 1 } }, 'x.json'), /field 'rl\.groupSize' must be an integer >= 2, found 1/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { sft: { lr: 0 } }, 'x.json'), /field 'sft\.lr' must be > 0, found 0/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { beta: -0.1 } }, 'x.json'), /field 'rl\.beta' must be >= 0, found -0\.1/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rl: { temperature: 0 } }, 'x.json'), /field 'rl\.temperature' must be > 0, found 0/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rs: { samples: 0 } }, 'x.json'), /field 'rs\.samples' must be an integer >= 1, found 0/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rs: { lr: -1 } }, 'x.json'), /field 'rs\.lr' must be > 0, found -1/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rs: { rounds: 0 } }, 'x.json'), /field 'rs\.rounds' must be an integer >= 1, found 0/);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rs: { replay: -1 } }, 'x.json'), /field 'rs\.replay' must be an integer >= 0, found -1/);
  assert.equal(mergeRecipe(QUICK_RECIPE, { rs: { replay: 1 } }, 'x.json').rs.replay, 1);
  assert.throws(() => mergeRecipe(QUICK_RECIPE, { rs: { enabled: 'yes' } }, 'x.json'), /field 'rs\.enabled' must be a boolean, found "yes"/);
});

test('`npm run recipe` (the default recipe) is the shipped model\'s config, recipe/frugal-r1-tiny.json', () => {
  const path = join(root, 'recipe', 'frugal-r1-tiny.json');
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(mergeRecipe(DEFAULT_RECIPE, json, path), DEFAULT_RECIPE, 'the file changes nothing of the default');
  // and the file sets what matters for the shipped model, so that --config gives the same run from any base
  assert.deepEqual(mergeRecipe(QUICK_RECIPE, json, path).corpus, DEFAULT_RECIPE.corpus);
  assert.deepEqual(mergeRecipe(QUICK_RECIPE, json, path).pretrain, DEFAULT_RECIPE.pretrain);
  assert.equal(mergeRecipe(QUICK_RECIPE, json, path).rl.steps, DEFAULT_RECIPE.rl.steps);
  assert.deepEqual(mergeRecipe(QUICK_RECIPE, json, path).rs, DEFAULT_RECIPE.rs);
});

test('frugal recipe --quick: every stage, results table, a GGUF that generates; a second run skips every stage', () => {
  const out = join(tempDir('recipe'), 'run');
  const first = spawnSync(process.execPath, [cli, 'recipe', '--quick', '--out', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(first.status, 0, first.stderr);
  for (const stage of ['corpus', 'pretrain', 'sft', 'rl', 'rs', 'rs-2', 'student-base', 'distill', 'eval', 'export']) assert.ok(existsSync(join(out, stage, 'done.json')), `${stage} finished`);
  for (const file of ['corpus/corpus.jsonl', 'corpus/tokenizer.json', 'pretrain/loss.svg', 'sft/loss.svg', 'rl/reward.svg', 'eval/results.md']) {
    assert.ok(existsSync(join(out, file)), file);
  }
  // the copy drills are spread among the problems, not bunched at one end
  const corpus = readFileSync(join(out, 'corpus', 'corpus.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);
  const drillAt = corpus.flatMap((text, i) => (text.startsWith('Copy: ') ? [i] : []));
  assert.equal(drillAt.length, QUICK_RECIPE.corpus.copyDrills);
  assert.equal(corpus.length, QUICK_RECIPE.corpus.copyDrills + QUICK_RECIPE.tasks.length * QUICK_RECIPE.difficulties.length * QUICK_RECIPE.corpus.problemsPerCell);
  const half = corpus.length / 2;
  assert.ok(Math.abs(drillAt.filter((i) => i < half).length - drillAt.length / 2) <= 1, 'as many drills in each half of the corpus');
  const rows = JSON.parse(readFileSync(join(out, 'eval', 'results.json'), 'utf8')) as { model: string; problems: number; greedy: number }[];
  const distilled = JSON.parse(readFileSync(join(out, 'distill', 'done.json'), 'utf8')) as { kept: number; rs_traces: number };
  const rounds = ['rs', 'rs-2'].map((stage) => JSON.parse(readFileSync(join(out, stage, 'done.json'), 'utf8')) as { traces: number; from: string; round: number });
  // Round 2 samples from round 1's model when round 1 trained one, else from the GRPO model.
  assert.deepEqual(rounds.map((r) => r.round), [1, 2]);
  assert.equal(rounds[0]!.from, join(out, 'rl'));
  assert.equal(rounds[1]!.from, rounds[0]!.traces > 0 ? join(out, 'rs', 'sft') : join(out, 'rl'));
  // The quick models rarely solve anything; each rs round fine-tunes, and a student is trained (each then evaluated), only on verified traces.
  const rsRows = rounds.filter((r) => r.traces > 0).map((_, i) => (i === 0 ? 'sft+grpo+rs' : `sft+grpo+rs x${i + 1}`));
  // The student learns from the teacher's own verified samples and every rs round's traces.
  assert.equal(distilled.rs_traces, rounds.reduce((sum, r) => sum + r.traces, 0));
  assert.deepEqual(rows.map((r) => r.model), ['base (r1-zero prompt)', 'sft', 'sft+grpo', ...rsRows, ...(distilled.kept + distilled.rs_traces > 0 ? ['distilled student'] : [])]);
  for (const r of rows) assert.ok(r.problems === QUICK_RECIPE.eval.problemsPerCell && r.greedy >= 0 && r.greedy <= 1);
  // Model configs name the tokenizer's own EOS (stages that read a checkpoint fall back to it).
  const eos = Tokenizer.fromFile(join(out, 'corpus', 'tokenizer.json')).eosId;
  for (const stage of ['pretrain', 'student-base']) {
    const run = JSON.parse(readFileSync(join(out, stage, 'run.json'), 'utf8')) as { model: { eos_token_id: number } };
    assert.equal(run.model.eos_token_id, eos, `${stage} eos_token_id`);
  }
  const gguf = join(out, 'frugal-r1-quick.gguf');
  const file = openGguf(gguf);
  try {
    assert.equal(file.value('general.architecture'), 'deepseek2');
    assert.equal(file.value('deepseek2.nextn_predict_layers'), 1);
    assert.equal(file.value('tokenizer.chat_template'), R1_JINJA_TEMPLATE);
  } finally {
    file.close();
  }
  const reply = greedyReply(gguf, 'What is 2 + 3?', 8);
  assert.ok(reply.tokens > 0, 'the quick model generates');
  const second = spawnSync(process.execPath, [cli, 'recipe', '--quick', '--out', out], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(second.status, 0, second.stderr);
  assert.equal((second.stderr.match(/done already/g) ?? []).length, 10, second.stderr);

  // The wiring after a trained rs round, which the quick models (they solve nothing) never reach:
  // give round 1 a model (the GRPO checkpoint) and 3 traces, then rerun what comes after it.
  cpSync(join(out, 'rl'), join(out, 'rs', 'sft'), { recursive: true });
  const trace = (a: number): string => JSON.stringify({ messages: [{ role: 'user', content: `What is ${a} + 1?` }, { role: 'assistant', content: `<think>\n${a} + 1 = ${a + 1}.\n</think>\n\n<answer>${a + 1}</answer>` }] });
  writeFileSync(join(out, 'rs', 'traces.jsonl'), `${[1, 2, 3].map(trace).join('\n')}\n`);
  for (const stage of ['rs-2', 'distill', 'eval', 'export']) rmSync(join(out, stage), { recursive: true });
  const third = spawnSync(process.execPath, [cli, 'recipe', '--quick', '--out', out], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(third.status, 0, third.stderr);
  const round2 = JSON.parse(readFileSync(join(out, 'rs-2', 'done.json'), 'utf8')) as { from: string; traces: number };
  assert.equal(round2.from, join(out, 'rs', 'sft'), 'round 2 starts from round 1\'s model');
  const teacher = round2.traces > 0 ? join(out, 'rs-2', 'sft') : join(out, 'rs', 'sft');
  const distilled2 = JSON.parse(readFileSync(join(out, 'distill', 'done.json'), 'utf8')) as { teacher: string; rs_traces: number };
  assert.equal(distilled2.teacher, teacher, 'the last trained round teaches the student');
  assert.equal(distilled2.rs_traces, 3 + round2.traces, 'the student learns from every trained round\'s traces');
  const rows2 = (JSON.parse(readFileSync(join(out, 'eval', 'results.json'), 'utf8')) as { model: string }[]).map((r) => r.model);
  assert.deepEqual([...new Set(rows2)], ['base (r1-zero prompt)', 'sft', 'sft+grpo', 'sft+grpo+rs', ...(round2.traces > 0 ? ['sft+grpo+rs x2'] : []), 'distilled student']);
  const exported = JSON.parse(readFileSync(join(out, 'export', 'done.json'), 'utf8')) as { from: string };
  assert.equal(exported.from, teacher, 'the last trained round is the exported model');
});

test('shipped models/frugal-r1-tiny.gguf: deepseek2 with an MTP head, under 40 MB, thinks before answering', { skip: !existsSync(shipped) && 'models/frugal-r1-tiny.gguf is not in this checkout' }, () => {
  assert.ok(statSync(shipped).size < 40 * 1024 * 1024, `${statSync(shipped).size} bytes`);
  const file = openGguf(shipped);
  try {
    assert.equal(file.value('general.architecture'), 'deepseek2');
    assert.equal(file.value('deepseek2.nextn_predict_layers'), 1);
    const layers = file.value('deepseek2.block_count') as number;
    assert.ok(file.tensor(`blk.${layers - 1}.nextn.eh_proj.weight`), 'the MTP module is in the file');
  } finally {
    file.close();
  }
  const reply = greedyReply(shipped, 'What is 47 + 36?', 120);
  assert.match(reply.text, /<\/think>/, reply.text);
});

test('shipped model: arithmetic asked in other words ("42-61", "what\'s 12 + 7") is still read as arithmetic and often solved', { skip: !existsSync(shipped) && 'models/frugal-r1-tiny.gguf is not in this checkout' }, () => {
  // The recipe's SFT and GRPO reword half their questions (tasks/phrasing.ts). A model trained only
  // on "What is A op B?" (shipped until 2026-11-29) solved 0 of these 20; the one shipped on 2026-11-30 before the copy drills solved 11, the copy-drill model 12; this one (with rejection-sampling SFT) solves 13.
  const task = getTask('arithmetic');
  const wording = new TaskRng(7, 'shipped-model-test');
  let solved = 0;
  const misses: string[] = [];
  for (const problem of task.generate(20, { seed: 2024, difficulty: 1, split: 'test' })) {
    const asked = rephrase(problem, wording);
    const reply = greedyReply(shipped, asked.prompt, 200);
    if (task.verify(problem, `<think>\n${reply.text}`).correct) solved++;
    else misses.push(`${asked.prompt} -> ${reply.text.slice(-40)}`);
  }
  assert.ok(solved >= 6, `solved ${solved} of 20 reworded questions:\n${misses.join('\n')}`);
});

test('shipped model: the examples frugal chat shows it are ones it answers right', { skip: !existsSync(shipped) && 'models/frugal-r1-tiny.gguf is not in this checkout' }, () => {
  const problems = {
    arithmetic: makeArithmeticProblem('47', '+', '36'),
    linear: makeLinearProblem(2, 7, 0, 15),
    countdown: makeCountdownProblem([6, 21, 3], 30),
    sort: makeSortProblem(['river', 'cloud', 'stone']),
  };
  for (const [task, question] of Object.entries(SHIPPED_MODEL_EXAMPLES)) {
    const reply = greedyReply(shipped, question, 300);
    const verdict = getTask(task).verify(problems[task as keyof typeof problems], `<think>\n${reply.text}`);
    assert.ok(verdict.correct, `${question}: ${verdict.reason}\n${reply.text}`);
  }
});
