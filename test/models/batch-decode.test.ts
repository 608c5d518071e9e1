/**
 * Greedy decoding through forwardBatch, the way the server's scheduler runs it: an odd number of
 * sequences with histories of different lengths (one past the size where a sequence's attention
 * leaves the calling thread) decode together, sequences leave the batch as they finish, and every
 * sequence gets exactly the tokens (and, within float tolerance, the logits) that decoding it
 * alone with forward gives. llama and deepseek2 (absorbed MLA), ref and native backends.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/models/load.js';
import type { CausalLM, KvCache } from '../../src/models/model.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import { memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';
import { attentionIsSmall } from '../../src/nn/attention.js';
import type { Backend } from '../../src/tensor/backend.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';

const native = loadNativeBackend();
const backends: [string, Backend | undefined][] = [['ref', refBackend], ['native', native ?? undefined]];
const dir = mkdtempSync(join(tmpdir(), 'frugal-batch-decode-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BOUND = 1e-4;
/** History lengths: the 300-token one puts that sequence's attention past attentionIsSmall. */
const HISTORY_LENGTHS = [1, 7, 300, 3, 12, 5, 40];
/** Decode steps per sequence: they finish at different rounds. */
const STEPS = [6, 2, 5, 9, 1, 4, 7];

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

function history(length: number, seed: number, vocab: number): Int32Array {
  return Int32Array.from({ length }, (_, i) => (i * 37 + seed * 11 + 5) % vocab);
}

/** Greedy decoding of every sequence alone: its tokens and the logits of each step. */
function alone(model: CausalLM, prompt: Int32Array, steps: number): { tokens: number[]; logits: Float32Array[] } {
  const cache = model.newCache(512);
  let logits = model.forward(prompt, cache).slice();
  const tokens: number[] = [];
  const all: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const next = argmax(logits);
    tokens.push(next);
    all.push(logits);
    logits = model.forward(Int32Array.of(next), cache).slice();
  }
  return { tokens, logits: all };
}

/** The same decoding with the sequences stepped together by forwardBatch, leaving as they finish. */
function together(model: CausalLM, prompts: Int32Array[], steps: number[]): { tokens: number[][]; logits: Float32Array[][] } {
  const caches: KvCache[] = prompts.map(() => model.newCache(512));
  // the prompts themselves go in one batch too (chunks of different lengths)
  let logits = model.forwardBatch(prompts.map((tokens, i) => ({ tokens, cache: caches[i]! }))).map((l) => l.slice());
  const tokens: number[][] = prompts.map(() => []);
  const seen: Float32Array[][] = prompts.map(() => []);
  let running = prompts.map((_, i) => i);
  while (running.length > 0) {
    const feeds: { i: number; token: number }[] = [];
    running.forEach((i, k) => {
      const next = argmax(logits[k]!);
      tokens[i]!.push(next);
      seen[i]!.push(logits[k]!);
      if (tokens[i]!.length < steps[i]!) feeds.push({ i, token: next });
    });
    running = feeds.map((f) => f.i);
    if (running.length === 0) break;
    logits = model.forwardBatch(feeds.map((f) => ({ tokens: Int32Array.of(f.token), cache: caches[f.i]! }))).map((l) => l.slice());
  }
  return { tokens, logits: seen };
}

function checkDecoding(model: CausalLM, what: string): void {
  const prompts = HISTORY_LENGTHS.map((n, i) => history(n, i, model.info.vocabSize));
  const batched = together(model, prompts, STEPS);
  prompts.forEach((prompt, i) => {
    const expected = alone(model, prompt, STEPS[i]!);
    assert.deepEqual(batched.tokens[i], expected.tokens, `${what}: sequence ${i} tokens`);
    expected.logits.forEach((l, s) => {
      let diff = 0;
      for (let v = 0; v < l.length; v++) diff = Math.max(diff, Math.abs(l[v]! - batched.logits[i]![s]![v]!));
      assert.ok(diff < BOUND, `${what}: sequence ${i} step ${s} logits differ by ${diff}`);
    });
  });
}

for (const [backendName, backend] of backends) {
  const skip = backend ? false : 'native addon not built';
  test(`deepseek2 absorbed MLA (${backendName}): greedy decoding of 7 sequences together equals each alone`, { skip }, () => {
    const m = tinyDeepseekModel({ seed: 29, contextLength: 512 });
    const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { attention: 'absorbed', backend: backend! });
    const o = m.options;
    const width = o.kvLoraRank + o.qkRopeHeadDim;
    assert.ok(!attentionIsSmall(o.heads, 300, width, o.kvLoraRank), 'the long history leaves the calling thread');
    assert.ok(attentionIsSmall(o.heads, 50, width, o.kvLoraRank));
    checkDecoding(model, `deepseek2 ${backendName}`);
  });
  test(`llama (${backendName}): greedy decoding of 7 sequences together equals each alone`, { skip }, () => {
    const path = join(dir, 'llama.gguf');
    writeTinyDenseGguf(path, { architecture: 'llama', dtype: 'f32', tokenizer: 'bytes', contextLength: 512, hiddenSize: 128, heads: 4, kvHeads: 2, seed: 41 });
    assert.ok(!attentionIsSmall(4, 300, 32, 32), 'the long history leaves the calling thread');
    assert.ok(attentionIsSmall(4, 50, 32, 32));
    checkDecoding(loadModel(path, { backend: backend!, tokenizer: false }).model, `llama ${backendName}`);
  });
}
