import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, selectTopInto, tokenLogprobs, resolveSamplingOptions } from '../../src/generate/sampling.js';
import { Rng } from '../../src/generate/rng.js';

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);
/** Logits whose softmax is exactly `probs`. */
const fromProbs = (probs: number[]): Float32Array => f32(probs.map(Math.log));

function softmax(xs: ArrayLike<number>, t = 1): number[] {
  const arr = Array.from(xs, (x) => x / t);
  const m = Math.max(...arr);
  const e = arr.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** The distribution as a map id -> probability. */
function dist(sampler: Sampler, logits: Float32Array): Map<number, number> {
  const d = sampler.distribution(logits);
  const m = new Map<number, number>();
  d.ids.forEach((id, j) => {
    if (d.probs[j]! > 0) m.set(id, d.probs[j]!);
  });
  return m;
}

function assertDist(actual: Map<number, number>, expected: Record<number, number>): void {
  const ids = Object.keys(expected).map(Number).sort((a, b) => a - b);
  assert.deepEqual([...actual.keys()].sort((a, b) => a - b), ids);
  for (const id of ids) assert.ok(Math.abs(actual.get(id)! - expected[id]!) < 1e-6, `p(${id}) = ${actual.get(id)} != ${expected[id]}`);
}

test('greedy picks the argmax, lowest id on ties', () => {
  const s = new Sampler({ temperature: 0, seed: 1 });
  assert.equal(s.sample(f32([0.1, 2, -1, 1.5])), 1);
  assert.equal(s.sample(f32([3, 1, 3, 0])), 0);
  assert.equal(s.sample(f32([-5, -Infinity, -4])), 2);
});

test('a temperature whose inverse overflows (1e-320) is greedy, not an error', () => {
  const s = new Sampler({ temperature: 1e-320, seed: 1 });
  assert.equal(s.sample(f32([0.1, 2, -1, 1.5])), 1);
  assertDist(dist(s, f32([3, 1, 3.5, 0])), { 2: 1 });
});

test('temperature scales the softmax', () => {
  const logits = f32([1, 2, 0.5, -1]);
  const expected = softmax(logits, 2);
  assertDist(dist(new Sampler({ temperature: 2, seed: 1 }), logits), Object.fromEntries(expected.map((p, i) => [i, p])));
});

test('top-k keeps the k largest and renormalizes', () => {
  const logits = f32([1, 3, 2, 0.5, 2.5]);
  const e3 = Math.exp(3);
  const e25 = Math.exp(2.5);
  assertDist(dist(new Sampler({ topK: 2, seed: 1 }), logits), { 1: e3 / (e3 + e25), 4: e25 / (e3 + e25) });
  // topK larger than the vocabulary keeps everything
  assert.equal(dist(new Sampler({ topK: 50, seed: 1 }), logits).size, 5);
});

test('top-p keeps the smallest set reaching p', () => {
  const logits = fromProbs([0.1, 0.5, 0.15, 0.25]);
  assertDist(dist(new Sampler({ topP: 0.7, seed: 1 }), logits), { 1: 0.5 / 0.75, 3: 0.25 / 0.75 });
  assertDist(dist(new Sampler({ topP: 0.8, seed: 1 }), logits), { 1: 0.5 / 0.9, 3: 0.25 / 0.9, 2: 0.15 / 0.9 });
  assertDist(dist(new Sampler({ topP: 0.3, seed: 1 }), logits), { 1: 1 });
});

test('top-p applies to the top-k renormalized distribution (HF order)', () => {
  const logits = fromProbs([0.4, 0.3, 0.2, 0.1]);
  // after top-3: 0.444, 0.333, 0.222 -> cumulative 0.444, 0.778 >= 0.75: two tokens
  assertDist(dist(new Sampler({ topK: 3, topP: 0.75, seed: 1 }), logits), { 0: 0.4 / 0.7, 1: 0.3 / 0.7 });
  // without top-k: 0.4, 0.7, 0.9 >= 0.75: three tokens
  assertDist(dist(new Sampler({ topP: 0.75, seed: 1 }), logits), { 0: 0.4 / 0.9, 1: 0.3 / 0.9, 2: 0.2 / 0.9 });
});

test('min-p keeps tokens at least minP times the top probability', () => {
  const logits = fromProbs([0.05, 0.5, 0.2, 0.13, 0.12]);
  assertDist(dist(new Sampler({ minP: 0.3, seed: 1 }), logits), { 1: 0.5 / 0.7, 2: 0.2 / 0.7 });
  // min-p is measured after temperature: at T=2 ratios become square roots (0.1 -> 0.32, 0.24 -> 0.49)
  const t2 = softmax(logits, 2);
  const kept = [0, 1, 2, 3, 4].filter((i) => t2[i]! >= 0.4 * t2[1]!);
  assert.deepEqual(kept, [1, 2, 3, 4]);
  const mass = kept.reduce((s, i) => s + t2[i]!, 0);
  assertDist(dist(new Sampler({ minP: 0.4, temperature: 2, seed: 1 }), logits), Object.fromEntries(kept.map((i) => [i, t2[i]! / mass])));
});

/** Independent reference: full sort, HF order temperature -> top-k -> top-p -> min-p. */
function referenceFilter(logits: Float32Array, o: { temperature: number; topK: number; topP: number; minP: number }): Map<number, number> {
  const p = softmax(logits, o.temperature);
  let order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
  if (o.topK > 0) order = order.slice(0, o.topK);
  if (o.topP < 1) {
    const mass = order.reduce((s, i) => s + p[i]!, 0);
    let cum = 0;
    let n = 0;
    while (n < order.length) {
      cum += p[order[n]!]!;
      n++;
      if (cum >= o.topP * mass) break;
    }
    order = order.slice(0, n);
  }
  if (o.minP > 0) order = order.filter((i) => p[i]! >= o.minP * p[order[0]!]!);
  const mass = order.reduce((s, i) => s + p[i]!, 0);
  return new Map(order.filter((i) => p[i]! > 0).map((i) => [i, p[i]! / mass]));
}

test('filters on a 5000-token vocabulary match a full-sort reference', () => {
  const rng = new Rng(7);
  const V = 5000;
  const logits = new Float32Array(V);
  for (let i = 0; i < V; i++) logits[i] = (rng.nextFloat() - 0.5) * 12;
  const cases = [
    { temperature: 1, topK: 0, topP: 0.95, minP: 0 },
    { temperature: 0.6, topK: 0, topP: 0.95, minP: 0 },
    { temperature: 1, topK: 0, topP: 0.5, minP: 0 },
    { temperature: 1, topK: 40, topP: 0.9, minP: 0 },
    { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
    { temperature: 1.5, topK: 0, topP: 0.9, minP: 0.2 },
    { temperature: 1, topK: 300, topP: 1, minP: 0.01 },
  ];
  // Also: a peaked distribution (one dominant token), integer logits with many ties, banned tokens.
  const peaked = logits.map((x, i) => (i === 1234 ? 30 : x));
  const ties = logits.map((x) => Math.round(x));
  const banned = logits.map((x, i) => (i % 3 === 0 ? -Infinity : x));
  for (const [name, values] of [['uniform', logits], ['peaked', peaked], ['ties', ties], ['banned', banned]] as const) {
    for (const o of cases) {
      const expected = referenceFilter(values, o);
      const actual = dist(new Sampler({ ...o, seed: 3 }), values);
      const what = `${name} ${JSON.stringify(o)}`;
      assert.equal(actual.size, expected.size, `candidate count for ${what}`);
      for (const [id, p] of expected) assert.ok(Math.abs(actual.get(id)! - p) < 1e-5, `${what}: p(${id})`);
    }
  }
});

test('repetition penalty divides positive and multiplies negative logits over the window', () => {
  const s = new Sampler({ repetitionPenalty: 2, repetitionWindow: 3, temperature: 0, seed: 1 });
  s.observeContext([0, 1, 0]);
  s.sample(f32([2, -1, 0.5, 3]));
  assert.deepEqual([...s.processedLogits], [1, -2, 0.5, 3]);
  // window of 3: after [0,1,0] + 2 + 3 the window is [0, 2, 3]; token 1 is no longer penalized
  s.accept(2);
  s.accept(3);
  s.sample(f32([2, -1, 0.5, 3]));
  assert.deepEqual([...s.processedLogits], [1, -1, 0.25, 1.5]);
  // a repeated token is penalized once, not per occurrence
  const once = new Sampler({ repetitionPenalty: 2, seed: 1 });
  once.observeContext([3, 3, 3]);
  once.sample(f32([2, -1, 0.5, 3]));
  assert.equal(once.processedLogits[3], 1.5);
});

test('frequency and presence penalties count generated tokens only', () => {
  const s = new Sampler({ frequencyPenalty: 0.5, presencePenalty: 1, temperature: 0, seed: 1 });
  s.observeContext([1, 1, 1]);
  s.accept(2);
  s.accept(2);
  s.accept(3);
  s.sample(f32([0, 0, 0, 0]));
  assert.deepEqual([...s.processedLogits], [0, 0, -2, -1.5]);
});

test('logit bias shifts and bans tokens', () => {
  const s = new Sampler({ temperature: 0, logitBias: { 2: 5 }, seed: 1 });
  assert.equal(s.sample(f32([1, 3, 0, 2])), 2);
  const banned = new Sampler({ temperature: 1, logitBias: new Map([[1, -Infinity]]), seed: 9 });
  for (let i = 0; i < 200; i++) assert.notEqual(banned.sample(f32([0, 8, 0, 0])), 1);
  assert.throws(() => new Sampler({ logitBias: { 9: 1 } }, 4), /logitBias token id 9/);
});

test('the same seed gives the same samples; another seed differs', () => {
  const logits = f32([0.5, 1, 0.2, 0.9, 0.1, 0.7]);
  const draw = (seed: number, opts = {}): number[] => {
    const s = new Sampler({ seed, ...opts });
    return Array.from({ length: 200 }, () => s.sample(logits));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.deepEqual(draw(42, { topP: 0.9, topK: 4 }), draw(42, { topP: 0.9, topK: 4 }));
  assert.notDeepEqual(draw(42), draw(43));
});

/** Pearson chi-square statistic of counts against expected probabilities. */
function chiSquare(counts: number[], probs: number[], n: number): number {
  return counts.reduce((s, c, i) => s + (c - n * probs[i]!) ** 2 / (n * probs[i]!), 0);
}

test('sampled frequencies match the softmax (chi-square)', () => {
  const logits = f32([0.3, 1.2, -0.5, 0.8, 0, 1.5]);
  const n = 6000;
  // 99.9% critical value of chi-square with 5 degrees of freedom
  const critical = 20.52;
  for (const seed of [1, 2, 3]) {
    const s = new Sampler({ seed });
    const counts = new Array(6).fill(0);
    for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
    const stat = chiSquare(counts, softmax(logits), n);
    assert.ok(stat < critical, `seed ${seed}: chi-square ${stat.toFixed(2)} >= ${critical}`);
  }
  // and against a wrong distribution it fails (the test can detect a bias)
  const s = new Sampler({ seed: 1 });
  const counts = new Array(6).fill(0);
  for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
  assert.ok(chiSquare(counts, softmax(logits, 1.3), n) > critical);
  // top-k sampling matches the renormalized top-k softmax (df 2, critical 13.82)
  const k = new Sampler({ seed: 5, topK: 3 });
  const kc = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const id = k.sample(logits);
    kc.set(id, (kc.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...kc.keys()].sort(), [1, 3, 5]);
  const kp = softmax(f32([1.2, 0.8, 1.5]));
  assert.ok(chiSquare([kc.get(1)!, kc.get(3)!, kc.get(5)!], kp, n) < 13.82);
});

test('tokenLogprobs reports the raw log-softmax and the top alternatives', () => {
  const logits = f32([0.3, 1.2, -0.5, 0.8, 2.0]);
  const p = softmax(logits);
  const lp = tokenLogprobs(logits, 3, 3);
  assert.ok(Math.abs(lp.logprob - Math.log(p[3]!)) < 1e-6);
  assert.deepEqual(lp.top.map((t) => t.id), [4, 1, 3]);
  for (const t of lp.top) assert.ok(Math.abs(t.logprob - Math.log(p[t.id]!)) < 1e-6);
});

test('selectTopInto matches a sort, ties by lower index', () => {
  const rng = new Rng(11);
  const values = Float32Array.from({ length: 1000 }, () => Math.floor(rng.nextFloat() * 50));
  const ref = [...values.keys()].sort((a, b) => values[b]! - values[a]! || a - b);
  for (const n of [1, 7, 100, 1000]) {
    const out = new Int32Array(n);
    selectTopInto(values, n, out);
    assert.deepEqual([...out], ref.slice(0, n));
  }
});

test('bad options are rejected with the option name', () => {
  assert.throws(() => resolveSamplingOptions({ temperature: -1 }), /temperature/);
  assert.throws(() => resolveSamplingOptions({ topP: 0 }), /topP/);
  assert.throws(() => resolveSamplingOptions({ topK: 1.5 }), /topK/);
  assert.throws(() => resolveSamplingOptions({ minP: 2 }), /minP/);
  assert.throws(() => resolveSamplingOptions({ repetitionPenalty: 0 }), /repetitionPenalty/);
  assert.throws(() => new Sampler({ seed: 1 }).sample(f32([0, Number.NaN])), /NaN/);
  assert.throws(() => new Sampler({ seed: 1 }).sample(f32([-Infinity, -Infinity])), /no finite/);
});

test('rng floats are uniform in [0, 1)', () => {
  const rng = new Rng(123);
  const bins = new Array(10).fill(0);
  const n = 10000;
  for (let i = 0; i < n; i++) {
    const x = rng.nextFloat();
    assert.ok(x >= 0 && x < 1);
    bins[Math.floor(x * 10)]++;
  }
  assert.ok(chiSquare(bins, new Array(10).fill(0.1), n) < 27.88); // df 9, 99.9%
});

test('ids beyond the tokenizer vocabulary (model padding rows) are never sampled', () => {
  const s = new Sampler({ temperature: 0, seed: 1 });
  s.limitVocabulary(3);
  assert.equal(s.sample(f32([0, 1, 2, 9, 9])), 2);
  const t = new Sampler({ seed: 1 });
  t.limitVocabulary(2);
  for (let i = 0; i < 100; i++) assert.ok(t.sample(f32([0, 0, 5, 5])) < 2);
});
