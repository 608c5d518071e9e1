/**
 * `frugal bench`: pp and tg rows with one rate per repetition (JSON and table), and refusals of
 * counts that cannot run (a context too small, -n 1, -r 0).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { benchModel } from '../../src/cli/bench.js';
import { loadModel } from '../../src/models/load.js';

function frugal(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('frugal bench: a pp and a tg row, one positive rate per repetition; mean and sd from them', () => {
  const r = frugal('bench', '-p', '32', '-n', '8', '-r', '2', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rows: { test: string; tokens: number; rates: number[]; mean: number; sd: number }[]; parameters: number };
  assert.deepEqual(out.rows.map((row) => row.test), ['pp32', 'tg8']);
  for (const row of out.rows) {
    assert.equal(row.rates.length, 2);
    assert.ok(row.rates.every((x) => Number.isFinite(x) && x > 0), `${row.test}: ${row.rates.join(', ')}`);
    assert.ok(Math.abs(row.mean - (row.rates[0]! + row.rates[1]!) / 2) < 1e-9 * row.mean);
    assert.ok(Math.abs(row.sd - Math.abs(row.rates[0]! - row.rates[1]!) / Math.SQRT2) < 1e-9 * row.mean + 1e-12);
  }
  assert.ok(out.parameters > 1e6);
  const table = frugal('bench', '-p', '16', '-n', '0', '-r', '1');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /\| pp16 \| [\d.]+ ± [\d.]+ \|/);
  assert.doesNotMatch(table.stdout, /tg/);
});

test('frugal bench refuses what cannot run', () => {
  const model = loadModel('models/frugal-r1-tiny.gguf', { tokenizer: false }).model;
  assert.throws(() => benchModel(model, model.info.contextLength + 1, 0, 1), /do not fit the model's context of 512/);
  const n1 = frugal('bench', '-n', '1');
  assert.equal(n1.code, 1);
  assert.match(n1.stderr, /-n must be 0 or at least 2/);
  const r0 = frugal('bench', '-r', '0');
  assert.equal(r0.code, 1);
  assert.match(r0.stderr, /-r must be an integer >= 1/);
  assert.equal(frugal('bench', '--model', 'no/such.gguf').code, 1);
});
