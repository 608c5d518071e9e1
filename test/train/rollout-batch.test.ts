import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainModel } from '../../src/train/model.js';
import type { BatchItem, CausalLM, KvCache } from '../../src/models/model.js';
import { type Completion, EnginePolicy, type Policy, type SampleOptions, completeAll, inferenceModel, streamRng } from '../../src/train/rollout.js';
import { canCopyCache, completeBatched, copyCache } from '../../src/train/rollout-batch.js';
import { tinyDense, tinyV3 } from './helpers.js';
import { DIGITS_ALPHABET, charCodec } from './rollout-codec.js';

const codec = charCodec(DIGITS_ALPHABET);

/** A CausalLM that counts its calls (forwardBatch items included). */
function counting(lm: CausalLM): CausalLM & { forwards: number; batches: number; prefillTokens: number } {
  const counted = {
    info: lm.info, forwards: 0, batches: 0, prefillTokens: 0,
    newCache: (capacity?: number) => lm.newCache(capacity),
    forward(tokens: Int32Array, cache: Parameters<CausalLM['forward']>[1], options?: { allLogits?: boolean }) {
      counted.forwards++;
      if (tokens.length > 1) counted.prefillTokens += tokens.length;
      return lm.forward(tokens, cache, options);
    },
    forwardBatch(items: Parameters<CausalLM['forwardBatch']>[0]) {
      counted.batches++;
      for (const item of items) if (item.tokens.length > 1) counted.prefillTokens += item.tokens.length;
      return lm.forwardBatch(items);
    },
  };
  return counted;
}

function assertSameCompletions(batched: readonly Completion[], sequential: readonly Completion[], what: string): number {
  assert.equal(batched.length, sequential.length);
  let worst = 0;
  batched.forEach((b, i) => {
    const s = sequential[i]!;
    assert.deepEqual(b.tokens, s.tokens, `${what}: completion ${i} tokens`);
    assert.equal(b.text, s.text);
    assert.equal(b.finish, s.finish, `${what}: completion ${i} finish`);
    b.logprobs.forEach((lp, t) => { worst = Math.max(worst, Math.abs(lp - s.logprobs[t]!)); });
  });
  assert.ok(worst < 1e-4, `${what}: max |Δ log p| batched vs sequential = ${worst}`);
  return worst;
}

const models = [
  ['DeepSeek-V3 (MLA + MoE)', tinyV3({ vocab_size: codec.vocab, initializer_range: 0.2 })],
  ['Qwen2', tinyDense('Qwen2ForCausalLM', { vocab_size: codec.vocab, initializer_range: 0.2 })],
] as const;

for (const [name, config] of models) {
  test(`rollout-batch: completeMany equals complete token for token, greedy and sampled, with stop rules (${name})`, () => {
    const lm = inferenceModel(TrainModel.init(config, 11));
    const policy = new EnginePolicy(lm, codec, 5);
    // two GRPO-like groups of identical prompts, plus a lone prompt: 9 sequences through 5 places
    const a = codec.encode('3+4=?\n<think>\n');
    const b = codec.encode('12+9=?\n');
    const c = codec.encode('7');
    const prompts = [a, a, a, a, b, b, b, b, c];
    let worst = 0;
    const cases: [string, SampleOptions][] = [
      ['greedy', { temperature: 0, topP: 1, maxTokens: 14 }],
      ['T=1', { temperature: 1, topP: 1, maxTokens: 20 }],
      ['T=0.7 top-p 0.9 stop text', { temperature: 0.7, topP: 0.9, maxTokens: 30, stopText: '>' }],
    ];
    let stopped = 0;
    let lengths = new Set<number>();
    for (const [label, options] of cases) {
      const sequential = prompts.map((p, i) => policy.complete(p, options, streamRng(5, 2, i)));
      const batched = policy.completeMany(prompts, options, prompts.map((_, i) => streamRng(5, 2, i)));
      worst = Math.max(worst, assertSameCompletions(batched, sequential, `${name} ${label}`));
      stopped += batched.filter((x) => x.finish === 'stop').length;
      lengths = new Set([...lengths, ...batched.map((x) => x.tokens.length)]);
    }
    console.log(`${name}: max |Δ log p| batched vs sequential = ${worst.toExponential(2)}; ${stopped} stopped, lengths ${[...lengths].sort((x, y) => x - y).join(',')}`);
    // the cases exercise sequences leaving the batch at different steps
    assert.ok(stopped > 0 && lengths.size > 2, `stopped ${stopped}, lengths ${[...lengths]}`);
  });

  test(`rollout-batch: identical prompts are prefilled once and the copied caches decode like fresh ones (${name})`, () => {
    const lm = counting(inferenceModel(TrainModel.init(config, 4)));
    assert.ok(canCopyCache(lm));
    const prompt = codec.encode('5+5=?\n<think>\n');
    const options: SampleOptions = { temperature: 1, topP: 1, maxTokens: 8 };
    const out = completeBatched(lm, codec, [prompt, prompt, prompt, prompt, prompt, prompt], options, [0, 1, 2, 3, 4, 5].map((i) => streamRng(1, 0, i)), 4);
    // 4 places: the prompt runs once; the 2 later sequences copy the kept prefill
    assert.equal(lm.prefillTokens, prompt.length);
    assert.equal(lm.forwards, 0);
    const fresh = new EnginePolicy(inferenceModel(TrainModel.init(config, 4)), codec);
    assertSameCompletions(out, [0, 1, 2, 3, 4, 5].map((i) => fresh.complete(prompt, options, streamRng(1, 0, i))), `${name} shared prefill`);
    // a copy holds the same keys: the next-token logits after it equal the source's
    const source = lm.newCache(40);
    lm.forward(Int32Array.from(prompt), source);
    const copy = copyCache(lm, source);
    assert.equal(copy.length, source.length);
    assert.deepEqual(lm.forward(Int32Array.of(3), copy), lm.forward(Int32Array.of(3), source));
  });
}

/** A cache type copyCache does not know (wraps the model's own). */
class OpaqueCache implements KvCache {
  constructor(readonly inner: KvCache) {}
  get length(): number { return this.inner.length; }
  get capacity(): number { return this.inner.capacity; }
  get bytes(): number { return this.inner.bytes; }
  truncate(length: number): void { this.inner.truncate(length); }
}

test('rollout-batch: without a copyable cache every prompt is prefilled on its own, with the same completions', () => {
  const base = inferenceModel(TrainModel.init(tinyDense('LlamaForCausalLM', { vocab_size: codec.vocab, initializer_range: 0.2 }), 6));
  const inner = (cache: KvCache): KvCache => (cache as OpaqueCache).inner;
  const opaque = counting({
    info: base.info,
    newCache: (capacity?: number) => new OpaqueCache(base.newCache(capacity)),
    forward: (tokens, cache, options) => base.forward(tokens, inner(cache), options),
    forwardBatch: (items: readonly BatchItem[]) => base.forwardBatch(items.map((item) => ({ tokens: item.tokens, cache: inner(item.cache) }))),
  });
  assert.equal(canCopyCache(opaque), false);
  assert.throws(() => copyCache(opaque, opaque.newCache(4)), /cannot copy a OpaqueCache/);
  const prompt = codec.encode('2+2=?\n');
  const options: SampleOptions = { temperature: 1, topP: 1, maxTokens: 10 };
  const rngs = () => [0, 1, 2, 3, 4].map((i) => streamRng(2, 1, i));
  const out = completeBatched(opaque, codec, [prompt, prompt, prompt, prompt, prompt], options, rngs(), 3);
  assert.equal(opaque.prefillTokens, 5 * prompt.length);
  const reference = new EnginePolicy(base, codec);
  assertSameCompletions(out, rngs().map((rng) => reference.complete(prompt, options, rng)), 'opaque cache');
});

test('rollout-batch: completeAll loops over complete for policies without completeMany, in order', () => {
  const seen: number[][] = [];
  const fake: Policy = {
    complete(prompt, _options, rng) {
      seen.push([...prompt]);
      const token = Math.floor(rng.uniform() * 5);
      return { tokens: [token], logprobs: [0], text: String(token), finish: 'length' };
    },
  };
  const rngs = [1, 2, 3].map((i) => streamRng(9, 0, i));
  const out = completeAll(fake, [[1], [2], [3]], { temperature: 1, topP: 1, maxTokens: 1 }, rngs);
  assert.deepEqual(seen, [[1], [2], [3]]);
  assert.deepEqual(out.map((c) => c.tokens[0]), [1, 2, 3].map((i) => Math.floor(streamRng(9, 0, i).uniform() * 5)));
  assert.throws(() => completeAll(fake, [[1]], { temperature: 1, topP: 1, maxTokens: 1 }, []), /1 prompts but 0 rng streams/);
});

test('rollout-batch: prompts that leave no room are refused before anything runs', () => {
  const lm = counting(inferenceModel(TrainModel.init(tinyDense('LlamaForCausalLM', { vocab_size: codec.vocab, max_position_embeddings: 8 }), 1)));
  const options: SampleOptions = { temperature: 0, topP: 1, maxTokens: 4 };
  assert.throws(() => completeBatched(lm, codec, [[1, 2], Array(8).fill(1)], options, [streamRng(0, 0), streamRng(0, 1)]), /the prompt has 8 tokens, the context holds 8/);
  assert.throws(() => completeBatched(lm, codec, [[]], options, [streamRng(0, 0)]), /empty prompt/);
  assert.equal(lm.batches + lm.forwards, 0);
  // a prompt near the context end stops at the context (finish 'length'), like complete
  const policy = new EnginePolicy(lm, codec);
  const near = [1, 2, 3, 4, 5, 6];
  const [c] = policy.completeMany([near], options, [streamRng(0, 0)]);
  assert.deepEqual(c, policy.complete(near, options, streamRng(0, 0)));
  assert.equal(c!.tokens.length, 2);
});
