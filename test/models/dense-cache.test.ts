/** KV cache behaviour of the dense model: batched prefill vs decode, chunking, truncation, growth, errors. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DenseModel } from '../../src/models/llama.js';
import { loadQwen2 } from '../../src/models/qwen2.js';
import { ggufSource, loadModel } from '../../src/models/load.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import type { CausalLM } from '../../src/models/model.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let path = '';
let model: CausalLM;
before(() => {
  path = join(dir, 'qwen2.gguf');
  writeTinyDenseGguf(path, { architecture: 'qwen2', tokenizer: 'bytes', contextLength: 600, seed: 5 });
  model = loadModel(path).model;
});

const prompt = Int32Array.from([10, 200, 33, 47, 5, 99, 120, 250, 1, 0, 64, 65, 66, 67]);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('batched prefill equals token-by-token decode at every position', () => {
  const vocab = model.info.vocabSize;
  const batched = model.forward(prompt, model.newCache(), { allLogits: true });
  assert.equal(batched.length, prompt.length * vocab);
  const cache = model.newCache();
  for (let i = 0; i < prompt.length; i++) {
    const step = model.forward(prompt.subarray(i, i + 1), cache);
    assert.equal(step.length, vocab);
    const d = maxAbsDiff(step, batched.subarray(i * vocab, (i + 1) * vocab));
    assert.ok(d < 1e-4, `position ${i}: max difference ${d}`);
  }
  assert.equal(cache.length, prompt.length);
});

test('last-position logits equal the last row of allLogits; prefill then decode equals one batch', () => {
  const vocab = model.info.vocabSize;
  const all = model.forward(prompt, model.newCache(), { allLogits: true });
  const last = model.forward(prompt, model.newCache());
  assert.ok(maxAbsDiff(last, all.subarray((prompt.length - 1) * vocab)) < 1e-5);
  const cache = model.newCache();
  model.forward(prompt.subarray(0, 9), cache);
  const rest = model.forward(prompt.subarray(9), cache, { allLogits: true });
  assert.ok(maxAbsDiff(rest, all.subarray(9 * vocab)) < 1e-4);
});

test('chunked prefill (maxBatch 4) equals one batch', () => {
  const file = openGguf(path);
  let chunked: DenseModel;
  try {
    chunked = loadQwen2(ggufSource(file), { maxBatch: 4 });
  } finally {
    file.close();
  }
  const a = chunked.forward(prompt, chunked.newCache(), { allLogits: true });
  const b = model.forward(prompt, model.newCache(), { allLogits: true });
  assert.ok(maxAbsDiff(a, b) < 1e-4);
});

test('truncate forgets the tail: rerunning after truncation reproduces the logits', () => {
  const cache = model.newCache();
  const first = model.forward(prompt, cache);
  cache.truncate(5);
  assert.equal(cache.length, 5);
  model.forward(Int32Array.from([7, 7, 7]), cache);
  cache.truncate(5);
  const again = model.forward(prompt.subarray(5), cache);
  assert.ok(maxAbsDiff(first, again) < 1e-4);
  assert.throws(() => cache.truncate(cache.length + 1), /truncate/);
});

test('the cache grows past its first allocation and keeps what it holds', () => {
  const long = Int32Array.from({ length: 300 }, (_, i) => (i * 37) % 256);
  const oneShot = model.forward(long, model.newCache(), { allLogits: true });
  const cache = model.newCache();
  model.forward(long.subarray(0, 250), cache);
  const bytesBefore = cache.bytes;
  const tail = model.forward(long.subarray(250), cache, { allLogits: true });
  assert.ok(cache.bytes > bytesBefore, 'storage should have grown');
  assert.ok(maxAbsDiff(tail, oneShot.subarray(250 * 256)) < 1e-4);
});

test('bad calls fail clearly', () => {
  assert.throws(() => model.forward(Int32Array.from([256]), model.newCache()), /token id 256 .* outside the vocabulary/);
  assert.throws(() => model.forward(Int32Array.from([-1]), model.newCache()), /token id -1/);
  assert.throws(() => model.forward(new Int32Array(0), model.newCache()), /no tokens/);
  const small = model.newCache(4);
  assert.throws(() => model.forward(prompt, small), /exceed the cache capacity 4/);
  assert.equal(small.length, 0);
  assert.throws(() => model.newCache(601), /exceeds the model's context length 600/);
  assert.throws(() => model.forward(prompt, { length: 0, capacity: 10, bytes: 0, truncate() {} }), /not made by this model/);
});
