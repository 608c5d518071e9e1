import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { plainValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { Tokenizer, TokenType, tokenizerGgufMetadata } from '../../src/tokenizer/index.js';
import { KNOWN_PATTERNS } from '../../src/tokenizer/pre-tokenizer.js';
import { buildCorpus } from './corpus.js';
import { tinyTokenizerJson } from './tiny-tokenizer.js';

const TRAINING = "Deep reasoning models think before they answer. 深度求索发布了推理模型。It's 2025; numbers 1234567 and code: x = f(y) + 42;\n".repeat(4);

function tiny(patterns: readonly string[], ignoreMerges = false): Tokenizer {
  const json = tinyTokenizerJson(TRAINING, {
    patterns,
    ignoreMerges,
    normalizer: patterns === KNOWN_PATTERNS.qwen2 ? { type: 'NFC' } : null,
    merges: 150,
    addedTokens: [
      { content: '<｜begin▁of▁sentence｜>', special: true },
      { content: '<｜end▁of▁sentence｜>', special: true },
      { content: '<｜User｜>', special: false }, // looks special: CONTROL in GGUF
      { content: '<think>', special: false }, // USER_DEFINED
    ],
  });
  return Tokenizer.fromJson(json, { bos_token: '<｜begin▁of▁sentence｜>', eos_token: '<｜end▁of▁sentence｜>', add_bos_token: true, chat_template: '{{ bos_token }}' });
}

function viaMetadata(tokenizer: Tokenizer, vocabSize?: number): { copy: Tokenizer; entries: Map<string, ReturnType<typeof tokenizerGgufMetadata>[number][1]> } {
  const entries = new Map(tokenizerGgufMetadata(tokenizer, { vocabSize }));
  const copy = Tokenizer.fromGgufMetadata((key) => {
    const value = entries.get(key);
    return value === undefined ? undefined : plainValue(value);
  });
  return { copy, entries };
}

const corpus = [...buildCorpus({ seed: 11, size: 300 }), '<｜User｜>hi<think>x</think><｜end▁of▁sentence｜>'];

describe('GGUF tokenizer metadata round trip', () => {
  for (const [pre, patterns, ignoreMerges] of [
    ['deepseek-v3', KNOWN_PATTERNS['deepseek-v3'], false],
    ['qwen2', KNOWN_PATTERNS.qwen2, false],
    ['llama-bpe', KNOWN_PATTERNS['llama-bpe'], true],
  ] as const) {
    it(`${pre}: tokenizerGgufMetadata -> fromGgufMetadata gives identical ids`, () => {
      const original = tiny(patterns, ignoreMerges);
      const { copy, entries } = viaMetadata(original, original.vocabSize + 5);
      assert.equal(plainValue(entries.get('tokenizer.ggml.pre')!), pre);
      assert.equal(copy.spec.ignoreMerges, ignoreMerges);
      for (const text of corpus) assert.deepEqual(copy.encode(text), original.encode(text), JSON.stringify(text));
      assert.deepEqual(copy.encode('x', { addSpecialTokens: true }), original.encode('x', { addSpecialTokens: true }));
      assert.equal(copy.bosId, original.bosId);
      assert.equal(copy.eosId, original.eosId);
      assert.equal(copy.chatTemplate, '{{ bos_token }}');
    });
  }

  it('writes llama.cpp token types and pads the token list to the model vocab size', () => {
    const original = tiny(KNOWN_PATTERNS['deepseek-v3']);
    const { copy, entries } = viaMetadata(original, original.vocabSize + 3);
    const tokens = plainValue(entries.get('tokenizer.ggml.tokens')!) as string[];
    const types = plainValue(entries.get('tokenizer.ggml.token_type')!) as number[];
    assert.equal(tokens.length, original.vocabSize + 3);
    assert.equal(tokens.at(-1), `[PAD${original.vocabSize + 2}]`);
    assert.equal(types.at(-1), TokenType.UNUSED);
    assert.equal(types[original.tokenId('<｜begin▁of▁sentence｜>')!], TokenType.CONTROL);
    assert.equal(types[original.tokenId('<｜User｜>')!], TokenType.CONTROL);
    assert.equal(types[original.tokenId('<think>')!], TokenType.USER_DEFINED);
    assert.equal(types[original.tokenId('Ġ')!], TokenType.NORMAL);
    assert.equal(entries.get('tokenizer.ggml.bos_token_id')!.type, 'u32');
    assert.equal(plainValue(entries.get('tokenizer.ggml.add_bos_token')!), true);
    assert.equal(copy.vocabSize, original.vocabSize + 3);
    assert.equal(copy.tokenText(original.vocabSize + 1), `[PAD${original.vocabSize + 1}]`);
    assert.equal(copy.decode([original.vocabSize + 1]), '');
  });

  it('loads from a .gguf file written to disk (Tokenizer.fromFile)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'frugal-tok-'));
    try {
      const original = tiny(KNOWN_PATTERNS['deepseek-v3']);
      const path = join(dir, 'tok.gguf');
      writeGguf(path, { metadata: tokenizerGgufMetadata(original), tensors: [] });
      const loaded = Tokenizer.fromFile(path);
      for (const text of corpus.slice(0, 50)) assert.deepEqual(loaded.encode(text), original.encode(text));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tokenizer whose regexes have no llama.cpp name unless told one', () => {
    const odd = Tokenizer.fromJson(tinyTokenizerJson(TRAINING, { patterns: ['\\p{L}+|\\s+'], merges: 10 }));
    assert.throws(() => tokenizerGgufMetadata(odd), /match no llama.cpp pre-tokenizer name/);
    assert.throws(() => tokenizerGgufMetadata(tiny(KNOWN_PATTERNS['deepseek-v3']), { pre: 'llama-bpe' }), /ignore_merges/);
    assert.throws(() => tokenizerGgufMetadata(tiny(KNOWN_PATTERNS['deepseek-v3']), { pre: 'qwen2' }), /normalizer NFC/);
  });
});
