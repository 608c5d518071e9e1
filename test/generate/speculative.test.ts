/**
 * Speculative decoding with fake models and drafters: the acceptance rule reproduces the target
 * distribution (chi-square, and a wrong rule fails the same check), the whole loop samples
 * sequences from the plain sampler's distribution (penalties and top-k included), and stops,
 * maxTokens, EOS and the reasoning budget end the output exactly as plain decoding does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collect, generate, type GenerationRequest } from '../../src/generate/engine.js';
import type { GenerationEvent } from '../../src/generate/events.js';
import { Rng } from '../../src/generate/rng.js';
import type { CandidateDistribution } from '../../src/generate/sampling.js';
import { generateSpeculative, type Drafter, type SpeculativeDoneEvent } from '../../src/generate/speculative.js';
import { probabilityOf, sampleFrom, verifyDraft } from '../../src/generate/speculative-sampling.js';
import type { CausalLM, KvCache, ModelInfo } from '../../src/models/model.js';
import { FakeCache, FakeTokenizer, oneHot } from './fakes.js';

/** A model whose logits at each position are next(context up to and including it); honours allLogits. */
class RowModel implements CausalLM {
  readonly info: ModelInfo;
  forwards = 0;
  constructor(vocabSize: number, private readonly next: (context: readonly number[]) => Float32Array) {
    this.info = { architecture: 'fake', vocabSize, contextLength: 4096, parameterCount: 0, cacheValuesPerToken: 1 };
  }
  newCache(capacity = 4096): KvCache {
    return new FakeCache(capacity);
  }
  forward(tokens: Int32Array, cache: KvCache, options: { allLogits?: boolean } = {}): Float32Array {
    const c = cache as FakeCache;
    if (c.length + tokens.length > c.capacity) throw new Error('fake cache overflow');
    this.forwards++;
    const V = this.info.vocabSize;
    const rows = options.allLogits ? tokens.length : 1;
    const out = new Float32Array(rows * V);
    for (const t of tokens) c.tokens.push(t);
    for (let r = 0; r < rows; r++) out.set(this.next(c.tokens.slice(0, c.tokens.length - rows + r + 1)), r * V);
    return out;
  }
  forwardBatch(items: readonly { tokens: Int32Array; cache: KvCache }[]): Float32Array[] {
    return items.map((item) => this.forward(item.tokens, item.cache));
  }
}

function chiSquare(counts: number[], probs: number[], n: number): number {
  let chi = 0;
  for (let i = 0; i < probs.length; i++) {
    const expected = probs[i]! * n;
    if (expected === 0) {
      if (counts[i]! > 0) return Infinity;
      continue;
    }
    chi += (counts[i]! - expected) ** 2 / expected;
  }
  return chi;
}

const dist = (probs: number[]): CandidateDistribution => ({ ids: Int32Array.from(probs.keys()), probs: Float64Array.from(probs) });

test('acceptance rule: emitted tokens follow p for a sampled q and a point-mass q; always-accept does not', () => {
  const p = [0.1, 0.4, 0, 0.3, 0.2];
  const qs = [[0.5, 0.1, 0.2, 0.1, 0.1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]];
  const rng = new Rng(12345);
  const uniform = (): number => rng.nextFloat();
  const N = 40000;
  for (const qProbs of qs) {
    const q = dist(qProbs);
    const pointMass = qProbs.filter((x) => x > 0).length === 1;
    const right = new Array(5).fill(0);
    const wrong = new Array(5).fill(0);
    for (let i = 0; i < N; i++) {
      const x = sampleFrom(q, uniform());
      right[verifyDraft(dist(p), x, pointMass ? null : q, uniform).token]++;
      wrong[x]++;
    }
    // df = 3 (four tokens with mass); the 99.9% quantile is 16.3
    const chi = chiSquare(right, p, N);
    assert.ok(chi < 16.3, `q=${qProbs}: chi-square ${chi.toFixed(2)}, counts ${right}`);
    assert.ok(chiSquare(wrong, p, N) > 100, 'always accepting must fail the same check');
  }
  // probabilityOf on sparse candidate lists
  assert.equal(probabilityOf({ ids: Int32Array.of(7, 3), probs: Float64Array.of(0.75, 0.25) }, 3), 0.25);
  assert.equal(probabilityOf({ ids: Int32Array.of(7, 3), probs: Float64Array.of(0.75, 0.25) }, 1), 0);
});

test('greedy verdicts: accept exactly the argmax, correct to it, and draw no random numbers', () => {
  const p = dist([0, 0, 1, 0]);
  const never = (): number => {
    throw new Error('greedy drew a random number');
  };
  assert.deepEqual(verifyDraft(p, 2, null, never), { token: 2, accepted: true });
  assert.deepEqual(verifyDraft(p, 1, null, never), { token: 2, accepted: false });
  assert.deepEqual(verifyDraft(p, 3, dist([0, 0, 0, 1]), never), { token: 2, accepted: false });
});

/** Logits of the fake target: a fixed function of the context. */
const V = 4;
const targetLogits = (context: readonly number[]): Float32Array => {
  const last = context.at(-1)!;
  return Float32Array.from({ length: V }, (_, t) => Math.sin(3 * t + 7 * last + context.length) * 1.5);
};

/** A drafter whose draft logits disagree with the target (reversed), sampled through the loop's chooser. */
const disagreeingDrafter = (): Drafter => ({
  kind: 'test',
  needsHidden: false,
  observe() {},
  propose(context, _feed, k, choose) {
    const ctx = [...context];
    const tokens: number[] = [];
    const q: CandidateDistribution[] = [];
    for (let j = 0; j < k; j++) {
      const pick = choose(targetLogits(ctx).reverse());
      tokens.push(pick.id);
      q.push(pick.q);
      ctx.push(pick.id);
    }
    return { tokens, q };
  },
});

test('the speculative loop samples token sequences from the plain sampler distribution (penalty, top-k)', async () => {
  const tok = new FakeTokenizer([]);
  assert.equal(tok.pieces.length, V);
  const model = new RowModel(V, targetLogits);
  const T = 0.9;
  const presence = 0.8;
  const topK = 3;
  // independent computation of p(a, b): presence penalty on generated tokens, temperature, top-3
  const stepProbs = (context: number[], generated: number[]): number[] => {
    const z = Array.from(targetLogits(context), (v, t) => v - (generated.includes(t) ? presence : 0));
    const kept = [...z.keys()].sort((a, b) => z[b]! - z[a]! || a - b).slice(0, topK);
    const w = z.map((v, t) => (kept.includes(t) ? Math.exp(v / T) : 0));
    const s = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / s);
  };
  const prompt = [1, 3];
  const expected: number[] = [];
  const p1 = stepProbs(prompt, []);
  for (let a = 0; a < V; a++) {
    const p2 = stepProbs([...prompt, a], [a]);
    for (let b = 0; b < V; b++) {
      const p3 = stepProbs([...prompt, a, b], [a, b]);
      for (let c = 0; c < V; c++) expected.push(p1[a]! * p2[b]! * p3[c]!);
    }
  }
  const N = 6000;
  const counts = new Array(V * V * V).fill(0);
  let proposed = 0;
  let accepted = 0;
  for (let seed = 0; seed < N; seed++) {
    const r = await collect(generateSpeculative(model, tok, {
      prompt, maxTokens: 4, stopTokenIds: [], thinking: 'off',
      sampling: { temperature: T, presencePenalty: presence, topK, seed },
      speculative: { drafter: disagreeingDrafter(), draftTokens: 2 },
    }));
    // the first three tokens: the first from the prefill logits, the next two verified drafts or corrections
    assert.equal(r.tokens.length, 4);
    counts[(r.tokens[0]! * V + r.tokens[1]!) * V + r.tokens[2]!]++;
    proposed += (r.done as SpeculativeDoneEvent).speculative.proposed;
    accepted += (r.done as SpeculativeDoneEvent).speculative.accepted;
  }
  // 27 cells have mass (top-3 three times): df = 26, the 99.9% quantile is 54.1
  const chi = chiSquare(counts, expected, N);
  assert.ok(chi < 54.1, `chi-square ${chi.toFixed(2)}; counts ${counts}`);
  assert.ok(accepted > 0 && accepted < proposed, `acceptance ${accepted}/${proposed}: both branches exercised`);
});

// --- stops, maxTokens, EOS, reasoning budget inside accepted drafts --------------------------

const tok = new FakeTokenizer(['\n', '\n\n', 'A:', 'U:', 'Let', ' me', ' think', '.', 'The', ' answer', ' is', ' 4', '!', 'x', ' ']);
const id = (piece: string): number => tok.tokenId(piece)!;
const ids = (...pieces: string[]): number[] => pieces.map(id);
const prompt = ids('<bos>', 'U:', 'x', 'A:', '<think>', '\n');
const script = ids('Let', ' me', ' think', '.', '\n', '</think>', '\n\n', 'The', ' answer', ' is', ' 4', '!', '<eos>');
const scripted = (): RowModel => new RowModel(tok.pieces.length, (context) => {
  const k = context.length - prompt.length;
  return oneHot(tok.pieces.length, k < script.length ? script[k]! : id('x'));
});

/** Proposes the script's continuation (all accepted); with `wrongAt`, that draft position is wrong. */
const oracle = (wrongAt = -1): Drafter => ({
  kind: 'oracle',
  needsHidden: false,
  observe() {},
  propose(context, _feed, k) {
    const tokens: number[] = [];
    for (let j = 0; j < k; j++) {
      const at = context.length - prompt.length + j;
      tokens.push(j === wrongAt ? id('x') : at < script.length ? script[at]! : id('x'));
    }
    return { tokens, q: tokens.map(() => null) };
  },
});

const strip = (events: GenerationEvent[]): unknown[] =>
  events.map((e) => (e.type === 'done' ? { finishReason: e.finishReason, stopString: e.stopString, stopToken: e.stopToken, usage: e.usage } : e));

async function events(gen: AsyncIterable<GenerationEvent>): Promise<GenerationEvent[]> {
  const out: GenerationEvent[] = [];
  for await (const e of gen) out.push(e);
  return out;
}

test('stop strings, maxTokens, EOS and the reasoning budget inside accepted drafts end output exactly as plain decoding', async () => {
  const cases: [string, Partial<GenerationRequest>][] = [
    ['EOS', {}],
    ['stop string', { stop: [' answer is'] }],
    ['stop string spanning tokens in the thought', { stop: ['me thi'] }],
    ['maxTokens', { maxTokens: 6 }],
    ['maxTokens 1', { maxTokens: 1 }],
    ['reasoning budget', { reasoningBudget: 2 }],
    ['logprobs', { logprobs: true, topLogprobs: 2, maxTokens: 9 }],
  ];
  for (const [name, extra] of cases) {
    const request = { prompt, sampling: { temperature: 0 }, ...extra };
    const plain = strip(await events(generate(scripted(), tok, request)));
    for (const wrongAt of [-1, 1]) {
      for (const k of [2, 4]) {
        const model = scripted();
        const spec = await events(generateSpeculative(model, tok, { ...request, speculative: { drafter: oracle(wrongAt), draftTokens: k } }));
        assert.deepEqual(strip(spec), plain, `${name}, k=${k}, wrongAt=${wrongAt}`);
        const s = (spec.at(-1) as SpeculativeDoneEvent).speculative;
        if (wrongAt < 0 && name === 'EOS') {
          assert.equal(s.accepted, s.proposed, 'an oracle drafter is always right');
          assert.ok(model.forwards < script.length - 1, `fewer forwards (${model.forwards}) than plain decoding`);
        }
      }
    }
  }
});

test('a sampled run is reproducible from its seed', async () => {
  const model = new RowModel(V, targetLogits);
  const tok4 = new FakeTokenizer([]);
  const run = () => collect(generateSpeculative(model, tok4, { prompt: [1], maxTokens: 12, stopTokenIds: [], thinking: 'off', sampling: { seed: 9 }, speculative: { drafter: disagreeingDrafter(), draftTokens: 3 } }));
  assert.deepEqual((await run()).tokens, (await run()).tokens);
});
