/** `frugal run --speculative mtp|ngram|off` end to end on a tiny random-weight deepseek2 GGUF with MTP. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../../src/models/deepseek-v3-tiny.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'frugal.js');
let dir = '';
let modelPath = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-spec-cli-'));
  modelPath = join(dir, 'ds.gguf');
  writeTinyDeepseekGguf(modelPath, tinyDeepseekModel({ mtp: true, seed: 8, contextLength: 128 }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function frugal(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, 'run', '--model', modelPath, ...args], { encoding: 'utf8', cwd: root, timeout: 60_000, env: { ...process.env, FRUGAL_BACKEND: 'ref' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('greedy output is the same with --speculative off, mtp and ngram; the stats line is printed', () => {
  const common = ['--prompt', 'abcabcabc', '--raw', '--temperature', '0', '--max-tokens', '16'];
  const plain = frugal([...common, '--speculative', 'off']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stderr, /speculative/);
  for (const [method, k] of [['mtp', '2'], ['ngram', '3']]) {
    const r = frugal([...common, '--speculative', method!, '--draft-tokens', k!]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, plain.stdout, method);
    assert.match(r.stderr, new RegExp(`speculative ${method} \\(k=${k}\\): accepted \\d+/\\d+ drafts \\([\\d.]+%\\), [\\d.]+ tokens per forward, [\\d.]+ tokens/s`));
  }
});

test('bad speculative flags are clear errors', () => {
  const r = frugal(['--prompt', 'x', '--speculative', 'medusa']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--speculative must be mtp, ngram or off, got 'medusa'/);
  assert.match(frugal(['--prompt', 'x', '--speculative', 'ngram', '--draft-tokens', '0']).stderr, /--draft-tokens must be >= 1/);
  assert.match(frugal(['--prompt', 'x', '--draft-tokens', '2']).stderr, /--draft-tokens needs --speculative mtp or ngram/);
});
