/**
 * `frugal run` and `frugal chat` end to end on a tiny random-weight GGUF (byte tokenizer), spawned
 * as the user would run them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { loadModel } from '../../src/models/load.js';
import { DEFAULT_MODEL, SHIPPED_MODEL_HINT } from '../../src/cli/chat.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'frugal.js');
let dir = '';
let modelPath = '';
let longModelPath = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-cli-'));
  modelPath = join(dir, 'tiny.gguf');
  writeTinyDenseGguf(modelPath, { architecture: 'qwen2', tokenizer: 'bytes', contextLength: 128, seed: 5 });
  longModelPath = join(dir, 'tiny-long.gguf');
  writeTinyDenseGguf(longModelPath, { architecture: 'llama', tokenizer: 'bytes', contextLength: 2048, seed: 6 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function frugal(args: string[], input = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', cwd: root, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Greedy decoding written out directly against the model (independent of the engine). */
function greedyReference(promptText: string, maxTokens: number): string {
  const { model, tokenizer } = loadModel(modelPath);
  const ids = tokenizer!.encode(promptText, { addSpecialTokens: true, parseSpecial: true });
  const cache = model.newCache();
  let logits = model.forward(Int32Array.from(ids), cache);
  const out: number[] = [];
  for (let step = 0; step < maxTokens; step++) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    if (best === tokenizer!.eosId) break;
    out.push(best);
    logits = model.forward(Int32Array.of(best), cache);
  }
  return tokenizer!.decode(out);
}

test('frugal run --raw at temperature 0 prints the greedy continuation and stats', () => {
  const r = frugal(['run', '--model', modelPath, '--prompt', 'Hello', '--raw', '--temperature', '0', '--max-tokens', '12']);
  assert.equal(r.code, 0, r.stderr);
  const expected = greedyReference('Hello', 12);
  assert.equal(r.stdout, expected.endsWith('\n') ? expected : `${expected}\n`);
  assert.match(r.stderr, /prompt \d+ tokens in \d+ ms, generated \d+ tokens at [\d.]+ tokens\/s/);
});

test('frugal run with the chat template starts inside the thought and honours --max-tokens', () => {
  const r = frugal(['run', '--model', modelPath, '--prompt', 'Hi', '--seed', '7', '--max-tokens', '5']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith('Thinking:\n'), JSON.stringify(r.stdout));
  assert.match(r.stderr, /generated 5 tokens \(5 reasoning\) at [\d.]+ tokens\/s \[length\]/);
  // same seed, same output
  const again = frugal(['run', '--model', modelPath, '--prompt', 'Hi', '--seed', '7', '--max-tokens', '5']);
  assert.equal(again.stdout, r.stdout);
  const hidden = frugal(['run', '--model', modelPath, '--prompt', 'Hi', '--seed', '7', '--max-tokens', '5', '--hide-thinking']);
  assert.equal(hidden.code, 0);
  assert.equal(hidden.stdout, '');
});

test('frugal run --reasoning-budget closes the thought and the answer follows', () => {
  // byte tokenizer: 3 sampled reasoning tokens, then "\n</think>" (9 tokens, reasoning) and "\n\n" (content)
  const r = frugal(['run', '--model', modelPath, '--prompt', 'Hi', '--seed', '7', '--max-tokens', '20', '--reasoning-budget', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Thinking:\n[^]*\n\nAnswer:\n/);
  assert.match(r.stderr, /generated 20 tokens \(12 reasoning\)/);
});

test('frugal run reports bad input clearly', () => {
  const missing = frugal(['run', '--model', join(dir, 'nope.gguf'), '--prompt', 'x']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /frugal run: model not found: .*nope\.gguf/);
  const defaultModel = frugal(['run', '--prompt', 'What is 2 + 3?', '--temperature', '0', '--max-tokens', '4']);
  assert.equal(defaultModel.code, 0, defaultModel.stderr);
  assert.match(defaultModel.stderr, /loaded .*models\/frugal-r1-tiny\.gguf/, 'without --model, run uses the shipped model');
  const noPrompt = frugal(['run', '--model', modelPath]);
  assert.equal(noPrompt.code, 1);
  assert.match(noPrompt.stderr, /--prompt TEXT is required/);
  const badFlag = frugal(['run', '--model', modelPath, '--prompt', 'x', '--top-p', '2']);
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /--top-p must be in \(0, 1\], got '2'/);
  const notNumber = frugal(['run', '--model', modelPath, '--prompt', 'x', '--max-tokens', 'lots']);
  assert.match(notNumber.stderr, /--max-tokens must be an integer, got 'lots'/);
});

test('frugal chat keeps the conversation over stdin, reuses the cache, /reset and /exit', () => {
  const r = frugal(['chat', '--model', modelPath, '--max-tokens', '4', '--seed', '1', '--collapse-thinking'], 'Hello\nAnd more\n/reset\nAgain\n/exit\nnever read\n');
  assert.equal(r.code, 0, r.stderr);
  const stats = r.stderr.split('\n').filter((l) => l.startsWith('prompt '));
  assert.equal(stats.length, 3, r.stderr);
  // the second turn's prompt extends the first: its shared prefix comes from the cache
  assert.match(stats[1]!, /\(\d+ cached\)/);
  const prompts = stats.map((l) => Number(/^prompt (\d+)/.exec(l)![1]));
  assert.ok(prompts[1]! > prompts[0]!, 'second prompt holds the history');
  assert.ok(prompts[2]! < prompts[1]!, 'after /reset the history is gone');
  assert.match(r.stdout, /\(conversation cleared\)/);
  assert.equal(r.stdout.match(/thought for 4 tokens/g)?.length, 3);
});

test('frugal chat without --model explains the missing default model', { skip: existsSync(DEFAULT_MODEL) }, () => {
  const r = frugal(['chat'], '');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /default model .*frugal-r1-tiny\.gguf does not exist yet; pass --model FILE/);
});

test('frugal chat on the shipped model says what it can answer; with --model it does not', { skip: !existsSync(DEFAULT_MODEL) }, () => {
  const shipped = frugal(['chat', '--max-tokens', '4'], '/exit\n');
  assert.equal(shipped.code, 0, shipped.stderr);
  assert.ok(shipped.stderr.includes(SHIPPED_MODEL_HINT), shipped.stderr);
  const other = frugal(['chat', '--model', modelPath, '--max-tokens', '4'], '/exit\n');
  assert.equal(other.code, 0, other.stderr);
  assert.ok(!other.stderr.includes('four kinds of question'), other.stderr);
});

/** Starts `frugal ARGS`, sends SIGINT once stdout shows `marker`, then writes `after` to stdin. */
function interrupted(args: string[], input: string, marker: string, after = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!sent && stdout.includes(marker)) {
        sent = true;
        child.kill('SIGINT');
        child.stdin.end(after);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.write(input);
  });
}

test('Ctrl-C (SIGINT) stops frugal run mid-generation with exit code 130', async () => {
  // --ignore-eos: the random model must not end by itself before the signal arrives (it did, at 26 tokens, on the emulated AVX-512 build)
  const r = await interrupted(['run', '--model', longModelPath, '--prompt', 'Hi', '--max-tokens', '100000', '--ignore-eos', '--seed', '1'], '', 'Thinking:');
  assert.equal(r.code, 130, r.stderr);
  const generated = Number(/generated (\d+) tokens/.exec(r.stderr)?.[1]);
  assert.ok(generated < 100000, r.stderr);
  assert.match(r.stderr, /\[abort\]/);
});

test('--ignore-eos runs to --max-tokens: the end-of-sequence token is never sampled', () => {
  // seed 1 ends at the end-of-sequence token after a few dozen tokens without the flag
  for (const seed of ['1', '2', '3']) {
    const r = frugal(['run', '--model', longModelPath, '--prompt', 'Hi', '--max-tokens', '400', '--ignore-eos', '--seed', seed]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /generated 400 tokens .*\[length\]/, r.stderr);
  }
});

test('Ctrl-C in frugal chat stops the answer and returns to the prompt', async () => {
  const r = await interrupted(['chat', '--model', longModelPath, '--max-tokens', '100000', '--ignore-eos', '--seed', '1'], 'Hello\n', 'Thinking:', '/reset\n');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\(stopped\)\n/);
  // the chat went on after the interrupted answer
  assert.match(r.stdout, /\(conversation cleared\)/);
  assert.match(r.stderr, /\[abort\]/);
});
