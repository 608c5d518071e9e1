/** The llama.cpp harness fails loudly: a missing or malformed model is an error (or a timeout), never a silent skip. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareLogProbs, logSoftmax, runLlamaCpp } from './llama-cpp.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-oracle-harness-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a missing model file is reported with its path', async () => {
  const path = join(dir, 'absent.gguf');
  await assert.rejects(runLlamaCpp({ modelPath: path, jobs: [{ kind: 'logprobs', tokens: [1] }] }, 60_000), (e: Error) => e.message.includes(path));
});

test('a malformed GGUF is an error or a timeout, and the worker is killed', async () => {
  const path = join(dir, 'bad.gguf');
  const bytes = Buffer.alloc(4096, 0xab);
  bytes.write('GGUF', 0, 'latin1');
  bytes.writeUInt32LE(3, 4);
  writeFileSync(path, bytes);
  await assert.rejects(runLlamaCpp({ modelPath: path, jobs: [{ kind: 'logprobs', tokens: [1] }] }, 30_000), (e: Error) => e.message.includes(path));
});

test('logSoftmax and compareLogProbs', () => {
  const lp = logSoftmax([1, 2, 3]);
  const z = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assert.ok(Math.abs(lp[2]! - (3 - z)) < 1e-12);
  const c = compareLogProbs([1, 2, 3], [[2, 3 - z + 0.01], [1, 2 - z]]);
  assert.ok(Math.abs(c.maxError - 0.01) < 1e-9);
  assert.equal(c.worstToken, 2);
  assert.equal(c.sameTop, true);
  assert.equal(compareLogProbs([1, 2, 3], [[1, 2 - z]]).sameTop, false);
});
