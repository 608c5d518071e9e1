/**
 * The engine on a real (tiny, random-weight) model: chunked prefill and KV-cache reuse must not
 * change what is generated.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, generate, type CacheSlot } from '../../src/generate/engine.js';
import { loadModel, type LoadedModel } from '../../src/models/load.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';

let dir = '';
let loaded: LoadedModel;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-engine-'));
  const path = join(dir, 'tiny.gguf');
  writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: 256, seed: 11 });
  loaded = loadModel(path);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const greedy = { temperature: 0 };

test('greedy generation equals a hand-written argmax loop', async () => {
  const { model, tokenizer } = loaded;
  const prompt = tokenizer!.encode('The quick brown fox', { addSpecialTokens: true });
  const r = await collect(generate(model, tokenizer!, { prompt, sampling: greedy, maxTokens: 16, stopTokenIds: [], thinking: 'off' }));
  const cache = model.newCache(64);
  let logits = model.forward(Int32Array.from(prompt), cache);
  const expected: number[] = [];
  for (let i = 0; i < 16; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
    expected.push(best);
    logits = model.forward(Int32Array.of(best), cache);
  }
  assert.deepEqual(r.tokens, expected);
  assert.equal(r.content, tokenizer!.decode(expected));
});

test('prefill chunk size does not change the output', async () => {
  const { model, tokenizer } = loaded;
  const prompt = tokenizer!.encode('A somewhat longer prompt, to be split into several prefill chunks.', { addSpecialTokens: true });
  const run = async (chunk: number) =>
    collect(generate(model, tokenizer!, { prompt, sampling: greedy, maxTokens: 10, prefillChunkSize: chunk, logprobs: true, stopTokenIds: [] }));
  const whole = await run(512);
  for (const chunk of [1, 7]) {
    const r = await run(chunk);
    assert.deepEqual(r.tokens, whole.tokens, `chunk ${chunk}`);
  }
});

test('a reused cache slot gives the same output as a fresh cache', async () => {
  const { model, tokenizer } = loaded;
  const slot: CacheSlot = { cache: model.newCache(256), tokens: [] };
  const first = tokenizer!.encode('User: hello. Assistant:', { addSpecialTokens: true });
  const a = await collect(generate(model, tokenizer!, { prompt: first, sampling: { seed: 3 }, maxTokens: 8, cacheSlot: slot, stopTokenIds: [] }));
  // the next turn extends the conversation but replaces the end of the first answer
  const second = [...first, ...a.tokens.slice(0, 3), ...tokenizer!.encode(' User: again. Assistant:')];
  const reused = await collect(generate(model, tokenizer!, { prompt: second, sampling: { seed: 4 }, maxTokens: 8, cacheSlot: slot, stopTokenIds: [] }));
  assert.equal(reused.done.usage.cachedTokens, first.length + 3);
  const fresh = await collect(generate(model, tokenizer!, { prompt: second, sampling: { seed: 4 }, maxTokens: 8, stopTokenIds: [] }));
  assert.deepEqual(reused.tokens, fresh.tokens);
  assert.equal(fresh.done.usage.cachedTokens, 0);
});
