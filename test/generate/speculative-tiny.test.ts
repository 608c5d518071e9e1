/**
 * Speculative decoding on tiny random-weight models (deepseek2 with MTP, qwen2): greedy output is
 * token-for-token the plain greedy output, and the KV caches left behind equal plain decoding's.
 * The ref backend is used where exact equality is asserted (its batched forward equals its
 * one-token forward bit for bit); the native backend is checked up to near-ties.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, generate, type CacheSlot } from '../../src/generate/engine.js';
import { generateSpeculative, type SpeculativeDoneEvent, type SpeculativeMethod } from '../../src/generate/speculative.js';
import { MtpDrafter } from '../../src/generate/draft-mtp.js';
import type { DraftChooser } from '../../src/generate/speculative-types.js';
import { Sampler } from '../../src/generate/sampling.js';
import { loadModel, type LoadedModel } from '../../src/models/load.js';
import { DeepseekModel } from '../../src/models/deepseek-v3.js';
import type { KvCache } from '../../src/models/model.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../../src/models/deepseek-v3-tiny.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { refBackend } from '../../src/tensor/ref.js';

let dir = '';
const models: Record<string, LoadedModel> = {};

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-spec-'));
  writeTinyDeepseekGguf(join(dir, 'ds.gguf'), tinyDeepseekModel({ mtp: true, seed: 5, contextLength: 256 }));
  writeTinyDenseGguf(join(dir, 'qwen.gguf'), { architecture: 'qwen2', tokenizer: 'bytes', contextLength: 256, seed: 3 });
  models.deepseek = loadModel(join(dir, 'ds.gguf'), { backend: refBackend });
  models.qwen2 = loadModel(join(dir, 'qwen.gguf'), { backend: refBackend });
  models.deepseekNative = loadModel(join(dir, 'ds.gguf'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const PROMPTS = ['The quick brown fox', 'abcabcabcabc', 'Hello, hello, hello'];
const greedy = { temperature: 0 };
const base = { sampling: greedy, maxTokens: 20, stopTokenIds: [], thinking: 'off' as const };

async function compare(name: string, method: SpeculativeMethod, ks: number[]): Promise<{ proposed: number; accepted: number }> {
  const { model, tokenizer } = models[name]!;
  const total = { proposed: 0, accepted: 0 };
  for (const text of PROMPTS) {
    const prompt = tokenizer!.encode(text, { addSpecialTokens: true });
    const plain = await collect(generate(model, tokenizer!, { prompt, ...base }));
    for (const k of ks) {
      const spec = await collect(generateSpeculative(model, tokenizer!, { prompt, ...base, speculative: { method, draftTokens: k, ngram: { minMatch: 1 } } }));
      assert.deepEqual(spec.tokens, plain.tokens, `${name} ${method} k=${k} '${text}'`);
      assert.equal(spec.content, plain.content);
      assert.equal(spec.done.finishReason, plain.done.finishReason);
      const s = (spec.done as SpeculativeDoneEvent).speculative;
      assert.ok(s.accepted <= s.proposed && s.forwards > 0 && s.tokensPerForward >= 1, JSON.stringify(s));
      total.proposed += s.proposed;
      total.accepted += s.accepted;
    }
  }
  return total;
}

test('greedy MTP drafting (k = 1..4) gives exactly the plain greedy tokens (deepseek2, ref backend)', async () => {
  const t = await compare('deepseek', 'mtp', [1, 2, 3, 4]);
  assert.ok(t.proposed > 0);
});

test('greedy n-gram drafting gives exactly the plain greedy tokens (qwen2 and deepseek2)', async () => {
  for (const name of ['qwen2', 'deepseek']) {
    const t = await compare(name, 'ngram', [1, 2, 3, 4]);
    assert.ok(t.accepted > 0 && t.accepted < t.proposed, `${name}: ${JSON.stringify(t)} (both outcomes exercised)`);
  }
});

test('native backend: greedy MTP output equals plain, unless a near-tie of the top logits flips', async () => {
  const { model, tokenizer } = models.deepseekNative!;
  for (const text of PROMPTS) {
    const prompt = tokenizer!.encode(text, { addSpecialTokens: true });
    const plain = await collect(generate(model, tokenizer!, { prompt, ...base, logprobs: true, topLogprobs: 2 }));
    const spec = await collect(generateSpeculative(model, tokenizer!, { prompt, ...base, speculative: { method: 'mtp', draftTokens: 3 } }));
    const i = spec.tokens.findIndex((t, j) => t !== plain.tokens[j]);
    if (i < 0) continue;
    const events = [];
    for await (const e of generate(model, tokenizer!, { prompt, ...base, logprobs: true, topLogprobs: 2 })) if (e.type === 'token') events.push(e);
    const top = events[i]!.topLogprobs!;
    assert.ok(Math.abs(top[0]!.logprob - top[1]!.logprob) < 1e-3, `'${text}': tokens differ at ${i} without a near-tie`);
  }
});

test('the KV cache after a speculative run equals plain decoding (continue and compare logits)', async () => {
  for (const [name, method] of [['qwen2', 'ngram'], ['deepseek', 'mtp'], ['deepseek', 'ngram']] as const) {
    const { model, tokenizer } = models[name]!;
    const prompt = tokenizer!.encode('abcabcabc', { addSpecialTokens: true });
    const slot: CacheSlot = { cache: model.newCache(128), tokens: [] };
    const r = await collect(generateSpeculative(model, tokenizer!, { prompt, ...base, maxTokens: 15, cacheSlot: slot, speculative: { method, draftTokens: 3, ngram: { minMatch: 1 } } }));
    const all = [...prompt, ...r.tokens];
    assert.equal(slot.cache.length, slot.tokens.length);
    assert.deepEqual(slot.tokens, all.slice(0, slot.tokens.length), `${name} ${method}: slot tokens`);
    // continue decoding the remaining tokens plus one more on the speculative cache
    const rest = Int32Array.from([...all.slice(slot.tokens.length), 7]);
    const continued = model.forward(rest, slot.cache, { allLogits: true });
    const fresh = model.newCache(128);
    const reference = model.forward(Int32Array.from([...all, 7]), fresh, { allLogits: true });
    assert.deepEqual(continued, reference.subarray(reference.length - continued.length), `${name} ${method}: logits after continuing`);
  }
});

test('MTP drafter: after speculation its cache equals one built from scratch from the main hidden states', () => {
  const model = models.deepseek!.model;
  assert.ok(model instanceof DeepseekModel);
  const tokens = Int32Array.from([1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53]);
  const all = model.forwardWithHidden(tokens, model.newCache(64), { allLogits: true }).hidden;
  const d = model.config.hiddenSize;
  const sampler = new Sampler(greedy);
  const V = model.info.vocabSize;
  const seen: Float32Array[] = [];
  const choose: DraftChooser = (logits) => {
    seen.push(logits.slice());
    return { id: new Sampler(greedy).distribution(logits).ids[0]!, q: sampler.distribution(logits) };
  };
  // speculative: prompt of 4, then steps accepting 2, 0 and 3 tokens with k = 3 chains in between
  const spec = new MtpDrafter(model, 64);
  spec.observe(tokens.subarray(0, 4), all.subarray(0, 4 * d));
  let at = 4;
  for (const accepted of [2, 0, 3]) {
    spec.propose(Array.from(tokens.subarray(0, at + 1)), 1, 3, choose);
    const n = 1 + accepted;
    spec.observe(tokens.subarray(at, at + n), all.subarray(at * d, (at + n) * d));
    at += n;
  }
  spec.propose(Array.from(tokens.subarray(0, at + 1)), 1, 1, choose);
  const fromSpec = seen.at(-1)!;
  const fresh = new MtpDrafter(model, 64);
  fresh.observe(tokens.subarray(0, at), all.subarray(0, at * d));
  fresh.propose(Array.from(tokens.subarray(0, at + 1)), 1, 1, choose);
  assert.equal(spec.cachedPositions, at);
  assert.equal(fresh.cachedPositions, at);
  assert.deepEqual(fromSpec, seen.at(-1)!);
  assert.equal(fromSpec.length, V);
});

test('MTP drafting on a model without MTP weights is a clear error', async () => {
  const { model, tokenizer } = models.qwen2!;
  await assert.rejects(collect(generateSpeculative(model, tokenizer!, { text: 'hi', ...base, speculative: { method: 'mtp' } })), /MTP drafting needs a deepseek2 model/);
  await assert.rejects(collect(generateSpeculative(model, tokenizer!, { text: 'hi', ...base, speculative: { method: 'ngram', draftTokens: 0 } })), /draftTokens must be an integer >= 1/);
});

test('MTP chaining feeds the module its own last output state, and every MTP call asks for the last row only', () => {
  const model = models.deepseek!.model;
  assert.ok(model instanceof DeepseekModel);
  const d = model.config.hiddenSize;
  const V = model.info.vocabSize;
  const calls: { hidden: Float32Array; allLogits: boolean | undefined; out: { logits: Float32Array; hidden: Float32Array } }[] = [];
  const wrapped = Object.create(model) as DeepseekModel;
  wrapped.mtpForwardWithHidden = (hidden: Float32Array, next: Int32Array, cache: KvCache, options?: { allLogits?: boolean }) => {
    const out = model.mtpForwardWithHidden(hidden, next, cache, options);
    calls.push({ hidden: hidden.slice(), allLogits: options?.allLogits, out });
    return out;
  };
  const tokens = Int32Array.from([1, 40, 41, 42, 43]);
  const h = model.forwardWithHidden(tokens, model.newCache(16), { allLogits: true }).hidden;
  const drafter = new MtpDrafter(wrapped, 16);
  drafter.observe(tokens.subarray(0, 4), h.subarray(0, 4 * d));
  const sampler = new Sampler(greedy);
  const proposal = drafter.propose(Array.from(tokens), 1, 3, (logits) => ({ id: sampler.distribution(logits).ids[0]!, q: sampler.distribution(logits) }));
  assert.equal(proposal.tokens.length, 3);
  assert.equal(calls.length, 3);
  assert.ok(calls.every((c) => c.allLogits === false && c.out.logits.length === V && c.out.hidden.length === d));
  assert.deepEqual(calls[0]!.hidden, h.slice(0, 4 * d)); // the main model's states of positions 0..3
  assert.deepEqual(calls[1]!.hidden, calls[0]!.out.hidden); // then the module's own last state
  assert.deepEqual(calls[2]!.hidden, calls[1]!.out.hidden);
  assert.equal(drafter.cachedPositions, 4, 'chained entries dropped after drafting');
});

for (const name of ['deepseek', 'deepseekNative']) {
  test(`mtpForwardWithHidden: the last row alone (allLogits false) gives the last row of the full call and the same cache (${name})`, () => {
    const model = models[name]!.model;
    assert.ok(model instanceof DeepseekModel);
    const d = model.config.hiddenSize;
    const V = model.info.vocabSize;
    const tokens = Int32Array.from([1, 40, 41, 42, 43, 44, 45, 46, 47]);
    const h = model.forwardWithHidden(tokens, model.newCache(16), { allLogits: true }).hidden;
    const exact = name === 'deepseek';
    const close = (a: Float32Array, b: Float32Array, what: string) => {
      if (exact) assert.deepEqual(a, b, what);
      else assert.ok(a.every((v, i) => Math.abs(v - b[i]!) < 1e-4), what);
    };
    // 1..4 rows take the few-token path, 6 the general one
    for (const [start, n] of [[0, 2], [2, 1], [3, 3], [6, 2]] as const) {
      const full = model.newMtpCache(16);
      const last = model.newMtpCache(16);
      if (start > 0) {
        model.mtpForward(h.subarray(0, start * d), tokens.subarray(1, start + 1), full);
        model.mtpForward(h.subarray(0, start * d), tokens.subarray(1, start + 1), last);
      }
      const a = model.mtpForwardWithHidden(h.subarray(start * d, (start + n) * d), tokens.subarray(start + 1, start + n + 1), full);
      const b = model.mtpForwardWithHidden(h.subarray(start * d, (start + n) * d), tokens.subarray(start + 1, start + n + 1), last, { allLogits: false });
      assert.equal(a.logits.length, n * V);
      assert.equal(a.hidden.length, n * d);
      close(b.logits, a.logits.subarray((n - 1) * V), `logits, rows ${start}..${start + n - 1}`);
      close(b.hidden, a.hidden.subarray((n - 1) * d), `states, rows ${start}..${start + n - 1}`);
      // the next call sees the same cache either way
      const after = [full, last].map((c) => model.mtpForward(h.subarray(0, d), tokens.subarray(0, 1), c));
      close(after[1]!, after[0]!, 'a call after them');
    }
  });
}
