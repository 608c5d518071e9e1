/**
 * hiddenStates (what embeddings pool): the output head applied to them gives forward's logits at
 * every position, for a dense (llama) and a DeepSeek (MLA + MoE) model, and the cache advances
 * the same way (a following token's logits agree too).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CausalLM } from '../../src/models/model.js';
import { deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import { memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';
import { loadModel } from '../../src/models/load.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { getBackend } from '../../src/tensor/index.js';
import type { WeightMatrix } from '../../src/tensor/tensor.js';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function check(model: CausalLM, output: WeightMatrix, name: string): void {
  const tokens = Int32Array.from([5, 17, 200, 3, 99, 42, 7, 128, 64, 1].map((t) => t % model.info.vocabSize));
  const n = tokens.length;
  const cache = model.newCache(32);
  const states = model.hiddenStates!(tokens, cache);
  assert.equal(cache.length, n, `${name}: the cache holds the tokens`);
  const logits = new Float32Array(n * model.info.vocabSize);
  getBackend().matmul(logits, states, n, output);
  const reference = model.newCache(32);
  const expected = model.forward(tokens, reference, { allLogits: true });
  assert.ok(maxAbsDiff(logits, expected) < 1e-4, `${name}: head(hiddenStates) vs forward: ${maxAbsDiff(logits, expected)}`);
  const next = Int32Array.of(11);
  assert.ok(maxAbsDiff(model.forward(next, cache), model.forward(next, reference)) < 1e-4, `${name}: the next token after either`);
}

test('hiddenStates: the head on them gives forward\'s logits (llama and DeepSeek)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-hidden-'));
  try {
    const path = join(dir, 'llama.gguf');
    writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', seed: 4, layers: 2, hiddenSize: 32, heads: 4, kvHeads: 2, ffSize: 64 });
    const llama = loadModel(path, { tokenizer: false }).model as CausalLM & { weights: { output: WeightMatrix } };
    check(llama, llama.weights.output, 'llama');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const m = tinyDeepseekModel({});
  const deepseek = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors));
  check(deepseek, deepseek.weights.output, 'deepseek');
});
