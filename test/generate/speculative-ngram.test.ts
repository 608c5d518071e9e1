/** N-gram (prompt lookup) proposals: hand cases and a brute-force reference on random contexts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proposeNgram, NgramDrafter } from '../../src/generate/draft-ngram.js';
import { Rng } from '../../src/generate/rng.js';

/** Brute force: longest L (maxMatch..minMatch) whose suffix occurred earlier; most recent occurrence; copy what followed. */
function naive(context: number[], k: number, minMatch: number, maxMatch: number): number[] {
  const n = context.length;
  for (let L = maxMatch; L >= minMatch; L--) {
    if (L > n - 1) continue;
    const suffix = context.slice(n - L).join();
    for (let e = n - 2; e - L + 1 >= 0; e--) {
      if (context.slice(e - L + 1, e + 1).join() !== suffix) continue;
      const extended = [...context];
      for (let i = 0; i < k; i++) extended.push(extended[e + 1 + i]!);
      return extended.slice(n);
    }
  }
  return [];
}

test('hand cases: longest suffix match, most recent occurrence, periodic continuation', () => {
  // suffix "a b" occurred at 0..1, followed by c a b
  assert.deepEqual(proposeNgram([1, 2, 3, 1, 2], 3, { minMatch: 2 }), [3, 1, 2]);
  // two occurrences of "1 2": the longer match "5 1 2" wins over the more recent "1 2"
  assert.deepEqual(proposeNgram([5, 1, 2, 7, 1, 2, 8, 5, 1, 2], 2, { minMatch: 2 }), [7, 1]);
  // equal lengths: the most recent occurrence wins
  assert.deepEqual(proposeNgram([1, 2, 7, 1, 2, 8, 1, 2], 1, { minMatch: 2 }), [8]);
  // periodic tail: the proposal continues the period beyond the context
  assert.deepEqual(proposeNgram([9, 4, 4, 4], 5, { minMatch: 1 }), [4, 4, 4, 4, 4]);
  assert.deepEqual(proposeNgram([1, 2, 1, 2], 4, { minMatch: 2 }), [1, 2, 1, 2]);
  // no suffix of minMatch tokens occurred before
  assert.deepEqual(proposeNgram([1, 2, 3, 4, 2], 3, { minMatch: 2 }), []);
  assert.deepEqual(proposeNgram([1, 2, 3, 4, 2], 3, { minMatch: 1 }), [3, 4, 2]);
  assert.deepEqual(proposeNgram([], 3), []);
  assert.deepEqual(proposeNgram([1, 1, 1], 0), []);
});

test('matches a brute-force search on random contexts', () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 400; trial++) {
    const n = 1 + (rng.nextUint32() % 40);
    const alphabet = 2 + (rng.nextUint32() % 4);
    const context = Array.from({ length: n }, () => rng.nextUint32() % alphabet);
    const k = 1 + (rng.nextUint32() % 5);
    const minMatch = 1 + (rng.nextUint32() % 3);
    const maxMatch = minMatch + (rng.nextUint32() % 6);
    assert.deepEqual(proposeNgram(context, k, { minMatch, maxMatch }), naive(context, k, minMatch, maxMatch), `context ${context} k=${k} min=${minMatch} max=${maxMatch}`);
  }
});

test('bad options are clear errors', () => {
  assert.throws(() => proposeNgram([1, 2], 1, { minMatch: 0 }), /minMatch must be an integer >= 1/);
  assert.throws(() => new NgramDrafter({ minMatch: 3, maxMatch: 2 }), /maxMatch must be an integer >= minMatch/);
  const drafter = new NgramDrafter({ minMatch: 1 });
  assert.deepEqual(drafter.propose([3, 4, 3], 1, 2, () => { throw new Error('n-gram drafts never call the chooser'); }), { tokens: [4, 3], q: [null, null] });
});
