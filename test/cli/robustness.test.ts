/**
 * Bad input to every `frugal` command gives a short error naming the flag, file or config field
 * and a non-zero exit code: no stack trace, no hang, no silent success. Each case spawns the CLI
 * (a few at a time) and must finish well within its timeout; a path under /proc stands for an
 * output directory the system refuses (Node 20's recursive mkdirSync loops forever on it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { writeImportedModel } from '../../src/train/import-gguf.js';
import { runFixture } from '../train/run-fixture.js';

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));
const shipped = fileURLToPath(new URL('../../../models/frugal-r1-tiny.gguf', import.meta.url));
const CASE_TIMEOUT_MS = 20_000;
const PARALLEL = 4;
/** A directory the system will not create (mkdir answers ENOENT although /proc exists). */
const refused = '/proc/frugal-robustness/out';
const hasProc = existsSync('/proc/self');

const dir = mkdtempSync(join(tmpdir(), 'frugal-robustness-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => join(dir, name);

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function frugal(args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: CASE_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `jobs` with at most PARALLEL at a time, results in order. */
async function runAll<T>(jobs: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]!();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return results;
}

/** [args, expected exit code (not 0), a substring of stderr]. */
type BadInputCase = [string[], number, string];

function writeJson(name: string, value: unknown): string {
  writeFileSync(at(name), JSON.stringify(value));
  return at(name);
}

before(() => {
  mkdirSync(at('a-directory'));
  writeFileSync(at('empty.txt'), '');
  writeFileSync(at('text.gguf'), 'hello, this is text and not a GGUF file\n');
  writeFileSync(at('corpus.txt'), 'the cat sat on the mat. the dog sat on the log.\n');
  writeImportedModel(shipped, at('model'));
  mkdirSync(at('run'));
  runFixture({ out_dir: refused }, {}, at('run'));
  const sft = { from: at('model'), data: { cold_start: { tasks: ['arithmetic'], count: 4 } }, steps: 1, batch_size: 2 };
  writeJson('sft-refused.json', { ...sft, out_dir: refused });
  writeJson('sft-jsonl-dir.json', { ...sft, out_dir: at('sft-out'), data: { jsonl: [at('a-directory')] } });
  writeJson('rl-refused.json', { from: at('model'), steps: 1, prompts_per_step: 1, group_size: 2, max_tokens: 4, out_dir: refused });
  writeJson('distill-refused.json', { teacher: at('model'), problems: 2, samples: 1, max_tokens: 4, student: { from: at('model') }, sft: { steps: 1 }, out_dir: refused });
});

function badInputCases(): BadInputCase[] {
  const cases: BadInputCase[] = [
    // tokenizer train: flag values, empty input, an output under a file
    [['tokenizer', 'train', '--input', at('corpus.txt'), '--vocab-size', '300', '--min-frequency', '0', '--out', at('t1.json')], 2, "--min-frequency: '0' is not a positive integer"],
    [['tokenizer', 'train', '--input', at('empty.txt'), '--vocab-size', '300', '--out', at('t2.json')], 1, '--input: nothing to train on'],
    [['tokenizer', 'train', '--input', at('corpus.txt'), '--vocab-size', '300', '--out', join(at('text.gguf'), 't.json')], 1, `--out: ${at('text.gguf')} is not a directory`],
    // sft --write-cold-start: flag values and output path
    [['sft', '--write-cold-start', at('cs1.jsonl'), '--count', 'abc'], 1, "--count: 'abc' is not an integer >= 1"],
    [['sft', '--write-cold-start', at('cs2.jsonl'), '--count', '2', '--seed', '1.5'], 1, "--seed: '1.5' is not an integer >= 0"],
    [['sft', '--write-cold-start', at('cs3.jsonl'), '--count', '2', '--seed', 'abc'], 1, "--seed: 'abc' is not an integer >= 0"],
    [['sft', '--write-cold-start', at('a-directory'), '--count', '2'], 1, `--write-cold-start: ${at('a-directory')} is a directory`],
    [['sft', '--config', at('sft-jsonl-dir.json')], 1, `field 'data.jsonl': ${at('a-directory')} is a directory`],
    // logits: more tokens than the context
    [['logits', '--model', shipped, '--tokens', Array.from({ length: 600 }, () => '1').join(',')], 1, "--tokens: 600 tokens do not fit the model's context length"],
    // eval --json: checked before the evaluation runs
    [['eval', '--model', shipped, '--task', 'arithmetic', '--limit', '1', '--samples', '0', '--max-tokens', '2', '--json', at('a-directory')], 2, `--json: ${at('a-directory')} is a directory`],
    [['eval', '--model', shipped, '--task', 'arithmetic', '--limit', '1', '--samples', '0', '--max-tokens', '2', '--json', join(at('missing-dir'), 'e.json')], 2, '--json: the directory'],
    // quantize / import / export: input and output paths
    [['quantize'], 2, 'expected IN.gguf OUT.gguf TYPE, got 0 arguments'],
    [['quantize', at('nope.gguf'), at('q.gguf'), 'q8_0'], 1, `IN.gguf: file not found: ${at('nope.gguf')}`],
    [['quantize', shipped, at('a-directory'), 'q8_0'], 1, `OUT.gguf: ${at('a-directory')} is a directory`],
    [['import', '--gguf', at('nope.gguf'), '--out', at('imported')], 1, `--gguf: file not found: ${at('nope.gguf')}`],
    [['import', '--gguf', shipped, '--out', join(at('text.gguf'), 'sub')], 1, `--out: ${at('text.gguf')} is not a directory`],
    [['export', '--checkpoint', at('model'), '--out', at('a-directory')], 1, `--out: ${at('a-directory')} is a directory`],
    // serve: flag values that Number() would have read as numbers, a model file that is not one, a database that is not one
    [['serve', '--port', '', '--db', at('s.db')], 1, "--port must be an integer >= 0, got ''"],
    [['serve', '--port', '0x50', '--db', at('s.db')], 1, "--port must be an integer >= 0, got '0x50'"],
    [['serve', '--model', at('text.gguf'), '--port', '0', '--db', at('s.db')], 1, '--model: '],
    [['serve', '--model', shipped, '--port', '0', '--db', at('text.gguf')], 1, `--db ${at('text.gguf')}: file is not a database`],
    // admin: no action, a database that is not one
    [['admin', '--db', at('a.db')], 2, 'no action given'],
    [['admin', '--db', at('text.gguf'), 'status'], 1, `--db ${at('text.gguf')}: file is not a database`],
    // admin delete-user: no name, a name nobody has
    [['admin', '--db', at('users.db'), 'delete-user'], 1, 'delete-user needs a user name'],
    [['admin', '--db', at('users.db'), 'delete-user', 'nobody'], 1, "no user 'nobody'"],
    // bench: an empty count is not 0
    [['bench', '--model', shipped, '-p', '', '-n', '0'], 1, "-p must be an integer >= 0, got ''"],
  ];
  if (!hasProc) return cases;
  return [
    ...cases,
    // output directories the system refuses: an error naming the flag or field, not a hang
    [['tokenizer', 'train', '--input', at('corpus.txt'), '--vocab-size', '300', '--out', join(refused, 't.json')], 1, '--out: cannot create directory /proc/frugal-robustness'],
    [['import', '--gguf', shipped, '--out', refused], 1, '--out: cannot create directory /proc/frugal-robustness'],
    [['recipe', '--quick', '--out', refused], 1, '--out: cannot create directory /proc/frugal-robustness'],
    [['train', '--config', join(at('run'), 'run.json')], 1, "field 'out_dir': cannot create directory /proc/frugal-robustness"],
    [['sft', '--config', at('sft-refused.json')], 1, "field 'out_dir': cannot create directory /proc/frugal-robustness"],
    [['rl', '--config', at('rl-refused.json')], 1, "field 'out_dir': cannot create directory /proc/frugal-robustness"],
    [['distill', '--config', at('distill-refused.json')], 1, "field 'out_dir': cannot create directory /proc/frugal-robustness"],
  ];
}

test('bad input: the exit code and a message naming the flag, file or field; no stack trace, no hang', async () => {
  const cases = badInputCases();
  const outcomes = await runAll(cases.map(([args]) => () => frugal(args)));
  const failures: string[] = [];
  cases.forEach(([args, code, message], i) => {
    const r = outcomes[i]!;
    const problems = [
      r.signal !== null ? `killed by ${r.signal} (a hang?)` : '',
      r.code !== code ? `exit code ${r.code}, expected ${code}` : '',
      !r.stderr.includes(message) ? `stderr lacks ${JSON.stringify(message)}` : '',
      /\n\s+at /.test(r.stderr) ? 'stack trace on stderr' : '',
    ].filter(Boolean);
    if (problems.length > 0) failures.push(`frugal ${args.join(' ').slice(0, 160)}: ${problems.join('; ')}\n  stderr: ${r.stderr.trim().slice(0, 300)}`);
  });
  assert.deepEqual(failures, []);
});

test('--help prints the usage on stdout and exits 0 for every command', async () => {
  const commands = ['run', 'chat', 'logits', 'info', 'tokenize', 'tokenizer', 'train', 'sft', 'rl', 'distill', 'eval', 'export', 'import', 'quantize', 'bench', 'recipe', 'serve', 'admin'];
  const outcomes = await runAll(commands.map((command) => () => frugal([command, '--help'])));
  const failures = commands.filter((command, i) => outcomes[i]!.code !== 0 || !/usage: frugal/.test(outcomes[i]!.stdout));
  assert.deepEqual(failures, [], 'commands whose --help fails');
});
