/**
 * forwardBatch (continuous batching) gives the same last-position logits as separate forward
 * calls and leaves every cache in the same state, for llama, qwen2 and deepseek2 tiny models on
 * the ref and native backends: items of different lengths at different positions, a prefill
 * chunk alongside single decode tokens.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/models/load.js';
import { DenseModel } from '../../src/models/llama.js';
import type { CausalLM, KvCache } from '../../src/models/model.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import { memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';
import type { Backend } from '../../src/tensor/backend.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';

const native = loadNativeBackend();
const backends: [string, Backend | undefined][] = [['ref', refBackend], ['native', native ?? undefined]];
const dir = mkdtempSync(join(tmpdir(), 'frugal-batch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Bound on |logit difference| between batched and separate runs (logits span about ±20). */
const BOUND = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const ids = (...values: number[]): Int32Array => Int32Array.from(values);

/** Histories already cached per sequence, and what each sequence feeds in the batch. */
const HISTORIES = [ids(3, 141, 59, 26, 53), ids(5, 17, 200, 3, 99, 42, 7, 128, 64), ids(), ids(11)];
const FEEDS = [ids(9), ids(1, 2, 77), ids(8, 30, 31, 32, 33, 34), ids(250)];
const NEXT = [ids(12), ids(13), ids(14, 15), ids(16)];

function prefilled(model: CausalLM): KvCache[] {
  return HISTORIES.map((h) => {
    const cache = model.newCache(64);
    if (h.length > 0) model.forward(h, cache);
    return cache;
  });
}

/** Runs the batch and the separate calls on two identically prefilled sets of caches and compares. */
function checkAgainstSeparate(model: CausalLM, what: string): void {
  const separate = prefilled(model);
  const batched = prefilled(model);
  const expected = FEEDS.map((t, i) => model.forward(t, separate[i]!));
  const got = model.forwardBatch(FEEDS.map((tokens, i) => ({ tokens, cache: batched[i]! })));
  assert.equal(got.length, FEEDS.length);
  got.forEach((logits, i) => {
    assert.equal(logits.length, model.info.vocabSize);
    const diff = maxAbsDiff(logits, expected[i]!);
    assert.ok(diff < BOUND, `${what}: item ${i} logits differ by ${diff}`);
  });
  batched.forEach((c, i) => assert.equal(c.length, separate[i]!.length, `${what}: item ${i} cache length`));
  // The caches hold the same keys/values: continuing (one by one, then batched) agrees.
  const nextSeparate = NEXT.map((t, i) => model.forward(t, separate[i]!));
  const nextBatched = NEXT.map((t, i) => model.forward(t, batched[i]!));
  nextBatched.forEach((l, i) => assert.ok(maxAbsDiff(l, nextSeparate[i]!) < BOUND, `${what}: item ${i} after the batch`));
  const again = model.forwardBatch([2, 0, 3].map((i) => ({ tokens: ids(40 + i), cache: batched[i]! })));
  [2, 0, 3].forEach((i, k) => {
    const ref = model.forward(ids(40 + i), separate[i]!);
    assert.ok(maxAbsDiff(again[k]!, ref) < BOUND, `${what}: second batch, item ${i}`);
  });
}

for (const [backendName, backend] of backends) {
  const skip = backend ? false : 'native addon not built';
  for (const architecture of ['llama', 'qwen2'] as const) {
    test(`${architecture} (${backendName}): forwardBatch matches separate forward calls`, { skip }, () => {
      const path = join(dir, `${architecture}.gguf`);
      writeTinyDenseGguf(path, { architecture, dtype: architecture === 'llama' ? 'f32' : 'q8_0', tokenizer: 'bytes', seed: 31 });
      const model = loadModel(path, { backend: backend!, tokenizer: false }).model;
      checkAgainstSeparate(model, `${architecture} ${backendName}`);
      // A small maxBatch splits the batch into groups and runs the 6-token item on its own.
      assert.ok(model instanceof DenseModel);
      checkAgainstSeparate(new DenseModel(model.config, model.weights, { backend: backend!, maxBatch: 4 }), `${architecture} ${backendName} maxBatch 4`);
    });
  }
  for (const attention of ['absorbed', 'plain'] as const) {
    test(`deepseek2 ${attention} MLA (${backendName}): forwardBatch matches separate forward calls`, { skip }, () => {
      const m = tinyDeepseekModel({ seed: 23 });
      const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { attention, backend: backend! });
      checkAgainstSeparate(model, `deepseek2 ${attention} ${backendName}`);
    });
  }
}

test('forwardBatch rejects empty items, a shared cache and a foreign cache, changing no cache', () => {
  const path = join(dir, 'errors.gguf');
  writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', seed: 3 });
  const model = loadModel(path, { backend: refBackend, tokenizer: false }).model;
  const a = model.newCache(16);
  const b = model.newCache(16);
  assert.throws(() => model.forwardBatch([{ tokens: ids(1), cache: a }, { tokens: ids(), cache: b }]), /item 1 has no tokens/);
  assert.throws(() => model.forwardBatch([{ tokens: ids(1), cache: a }, { tokens: ids(2), cache: a }]), /item 1 uses a cache/);
  const m = tinyDeepseekModel({ seed: 2 });
  const other = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend: refBackend });
  assert.throws(() => model.forwardBatch([{ tokens: ids(1), cache: other.newCache(16) }]), /not made by this model/);
  assert.throws(() => other.forwardBatch([{ tokens: ids(1), cache: a }]), /not made by this DeepSeek model/);
  assert.throws(() => model.forwardBatch([{ tokens: ids(1), cache: a }, { tokens: ids(1, 2, 3), cache: model.newCache(2) }]), /capacity/);
  assert.equal(a.length, 0);
  assert.equal(b.length, 0);
  assert.deepEqual(model.forwardBatch([]), []);
});
