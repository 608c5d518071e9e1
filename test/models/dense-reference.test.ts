/**
 * The dense decoder (GGUF llama with permuted Q/K and adjacent-pair rope; qwen2 with biases and
 * half-split rope) against an independent scalar HF-semantics reference (./dense-naive.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/models/load.js';
import { type TinyDenseOptions, writeTinyDenseGguf } from '../../src/models/tiny.js';
import { naiveDenseLogits } from './dense-naive.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-ref-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tokens = [3, 141, 59, 26, 53, 58, 97, 93, 238, 46, 26, 43];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const cases: [string, TinyDenseOptions][] = [
  ['llama', { architecture: 'llama', tokenizer: 'bytes', seed: 11 }],
  ['qwen2', { architecture: 'qwen2', tokenizer: 'bytes', seed: 12 }],
  ['llama with llama3 rope scaling and tied embeddings', { architecture: 'llama', tokenizer: 'bytes', llama3RopeScaling: true, tiedEmbeddings: true, seed: 13 }],
  ['qwen2 with 1 kv head, 3 layers, rope theta 1e6', { architecture: 'qwen2', tokenizer: 'bytes', kvHeads: 1, layers: 3, ropeTheta: 1e6, seed: 14 }],
];

for (const [name, options] of cases) {
  test(`${name}: logits of every position match the scalar HF reference`, () => {
    const path = join(dir, `${name.replace(/\W+/g, '-')}.gguf`);
    const tiny = writeTinyDenseGguf(path, options);
    const { model } = loadModel(path);
    const logits = model.forward(Int32Array.from(tokens), model.newCache(), { allLogits: true });
    const expected = naiveDenseLogits(tiny, tokens);
    const vocab = model.info.vocabSize;
    assert.equal(vocab, 256);
    let worst = 0;
    let spread = 0;
    for (let p = 0; p < tokens.length; p++) {
      const row = logits.subarray(p * vocab, (p + 1) * vocab);
      worst = Math.max(worst, maxAbsDiff(row, expected[p]!));
      spread = Math.max(spread, Math.max(...expected[p]!) - Math.min(...expected[p]!));
    }
    assert.ok(spread > 5, `the reference logits should be far from uniform (spread ${spread})`);
    assert.ok(worst < 2e-4, `max |logit difference| ${worst}`);
  });
}
