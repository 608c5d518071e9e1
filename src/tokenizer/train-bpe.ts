/**
 * Byte-level BPE training (HF `tokenizers` BpeTrainer semantics, deterministic): texts are split
 * around special tokens, normalized and pre-tokenized exactly as encode() does, unique pieces are
 * counted, and merges are learned over their UTF-8 bytes (src/tokenizer/train-merges.ts). The
 * result is a Hugging Face tokenizer.json object: the 256 byte symbols first (ids 0..255, in code
 * point order of their stand-in characters), then the learned tokens in merge order, then the
 * special tokens as added_tokens at the end of the vocabulary.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { KNOWN_PATTERNS } from './pre-tokenizer.js';
import type { TokenizerConfigJson } from './load-json.js';
import { R1_BOS, R1_EOS } from './chat-template.js';
import type { Normalization } from './tokenizer.js';
import { learnMerges, MAX_SYMBOLS } from './train-merges.js';
import { BASE_ALPHABET, WordCounter, wordsFromCounts } from './train-words.js';

export type TrainPreTokenizer = 'deepseek-v3' | 'qwen2' | 'llama3';

/** A special token: its text, and whether HF should treat it as `special` (skipped by skip_special_tokens). */
export type SpecialTokenSpec = string | { readonly content: string; readonly special: boolean };

export interface TrainProgress {
  readonly phase: 'count' | 'merge' | 'done';
  /** Characters (UTF-16 code units) read so far. */
  readonly characters: number;
  /** Unique pre-tokenized pieces. */
  readonly words: number;
  /** Merges learned so far, and tokens in the vocabulary so far (specials included). */
  readonly merges: number;
  readonly vocabSize: number;
  readonly targetVocabSize: number;
}

export interface TrainBpeOptions {
  /** Total vocabulary size, special tokens included; at least 256 + specials. */
  readonly vocabSize: number;
  readonly specialTokens: readonly SpecialTokenSpec[];
  /** Pairs seen fewer times than this are never merged (default 2). */
  readonly minFrequency?: number;
  readonly preTokenizer: TrainPreTokenizer;
  readonly onProgress?: (progress: TrainProgress) => void;
}

/** The DeepSeek-R1 special tokens, with the `special` flags of DeepSeek's own tokenizer.json. */
export const R1_SPECIAL_TOKENS: readonly { content: string; special: boolean }[] = [
  { content: R1_BOS, special: true },
  { content: R1_EOS, special: true },
  { content: '<｜▁pad▁｜>', special: true },
  { content: '<think>', special: false },
  { content: '</think>', special: false },
  { content: '<｜fim▁hole｜>', special: false },
  { content: '<｜fim▁begin｜>', special: false },
  { content: '<｜fim▁end｜>', special: false },
  { content: '<｜User｜>', special: false },
  { content: '<｜Assistant｜>', special: false },
  { content: '<|EOT|>', special: true },
  { content: '<｜tool▁calls▁begin｜>', special: false },
  { content: '<｜tool▁calls▁end｜>', special: false },
  { content: '<｜tool▁call▁begin｜>', special: false },
  { content: '<｜tool▁call▁end｜>', special: false },
  { content: '<｜tool▁outputs▁begin｜>', special: false },
  { content: '<｜tool▁outputs▁end｜>', special: false },
  { content: '<｜tool▁output▁begin｜>', special: false },
  { content: '<｜tool▁output▁end｜>', special: false },
  { content: '<｜tool▁sep｜>', special: false },
];

interface Preset {
  readonly patterns: readonly string[];
  readonly normalizer: Normalization;
  readonly ignoreMerges: boolean;
  /** DeepSeek-V3's file writes CR and LF inside its regexes as the characters themselves. */
  readonly rawLineBreaks: boolean;
  /** ByteLevel settings as the family's own tokenizer.json has them (pre-tokenizer, post-processor, decoder). */
  readonly byteLevel: readonly [ByteLevelFlags, ByteLevelFlags, ByteLevelFlags];
}

type ByteLevelFlags = { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };

const byteLevel = (add_prefix_space: boolean, trim_offsets: boolean, use_regex: boolean): ByteLevelFlags => ({ type: 'ByteLevel', add_prefix_space, trim_offsets, use_regex });
const DEEPSEEK_BYTE_LEVEL = [byteLevel(false, true, false), byteLevel(true, false, true), byteLevel(true, true, true)] as const;

const PRESETS: Record<TrainPreTokenizer, Preset> = {
  'deepseek-v3': { patterns: KNOWN_PATTERNS['deepseek-v3'], normalizer: 'none', ignoreMerges: false, rawLineBreaks: true, byteLevel: DEEPSEEK_BYTE_LEVEL },
  qwen2: { patterns: KNOWN_PATTERNS.qwen2, normalizer: 'NFC', ignoreMerges: false, rawLineBreaks: false, byteLevel: [byteLevel(false, false, false), byteLevel(false, false, false), byteLevel(false, false, false)] },
  llama3: { patterns: KNOWN_PATTERNS['llama-bpe'], normalizer: 'none', ignoreMerges: true, rawLineBreaks: false, byteLevel: DEEPSEEK_BYTE_LEVEL },
};

/** `\r` / `\n` escapes -> the characters (the patterns contain no escaped backslash before r or n). */
function withRawLineBreaks(pattern: string): string {
  return pattern.replace(/\\([rn])/g, (_, letter: string) => (letter === 'r' ? '\r' : '\n'));
}

export const TRAIN_PRE_TOKENIZERS = Object.keys(PRESETS) as TrainPreTokenizer[];

/** A Hugging Face tokenizer.json as written by trainBpe (the fields other tools read). */
export interface TrainedTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: { id: number; content: string; single_word: false; lstrip: false; rstrip: false; normalized: false; special: boolean }[];
  normalizer: { type: 'NFC' } | null;
  pre_tokenizer: { type: 'Sequence'; pretokenizers: Record<string, unknown>[] };
  post_processor: Record<string, unknown>;
  decoder: Record<string, unknown>;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: false;
    byte_fallback: false;
    /** Written only when true (Llama-3 style); DeepSeek-V3 and Qwen2 files have no such field. */
    ignore_merges?: true;
    vocab: Record<string, number>;
    merges: string[];
  };
}

function normalizeSpecials(specials: readonly SpecialTokenSpec[]): { content: string; special: boolean }[] {
  if (!Array.isArray(specials)) throw new Error('trainBpe: specialTokens must be an array');
  const seen = new Set<string>();
  return specials.map((spec, index) => {
    const token = typeof spec === 'string' ? { content: spec, special: true } : spec;
    if (typeof token?.content !== 'string' || token.content.length === 0) throw new Error(`trainBpe: specialTokens[${index}] is empty or not a string`);
    if (seen.has(token.content)) throw new Error(`trainBpe: special token ${JSON.stringify(token.content)} is listed twice`);
    seen.add(token.content);
    return { content: token.content, special: token.special !== false };
  });
}

function checkOptions(options: TrainBpeOptions, specialCount: number): Preset {
  const preset = PRESETS[options.preTokenizer];
  if (!preset) throw new Error(`trainBpe: unknown preTokenizer ${JSON.stringify(options.preTokenizer)} (supported: ${TRAIN_PRE_TOKENIZERS.join(', ')})`);
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize)) throw new Error(`trainBpe: vocabSize must be an integer, got ${String(vocabSize)}`);
  if (vocabSize < 256 + specialCount) {
    throw new Error(`trainBpe: vocabSize ${vocabSize} is too small: it must hold the 256 byte tokens and ${specialCount} special tokens (at least ${256 + specialCount})`);
  }
  if (vocabSize - specialCount > MAX_SYMBOLS) throw new Error(`trainBpe: vocabSize ${vocabSize} is too large (at most ${MAX_SYMBOLS + specialCount})`);
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new Error(`trainBpe: minFrequency must be an integer >= 1, got ${String(minFrequency)}`);
  return preset;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<string> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * Trains a byte-level BPE tokenizer and returns its tokenizer.json object. The vocabulary has
 * exactly `vocabSize` entries unless the texts run out of pairs seen `minFrequency` times (then
 * fewer: check `Object.keys(model.vocab).length + added_tokens.length`).
 */
export async function trainBpe(texts: Iterable<string> | AsyncIterable<string>, options: TrainBpeOptions): Promise<TrainedTokenizerJson> {
  if (typeof texts === 'string') throw new Error('trainBpe: texts must be an iterable of strings, not a single string (wrap it in an array)');
  const specials = normalizeSpecials(options.specialTokens);
  const preset = checkOptions(options, specials.length);
  const steps = preset.patterns.map((pattern) => ({ kind: 'split' as const, pattern }));
  const counter = new WordCounter({ steps, normalizer: preset.normalizer, specialTokens: specials.map((s) => s.content) });
  const progress = (phase: TrainProgress['phase'], merges: number, vocab: number): void =>
    options.onProgress?.({ phase, characters: counter.characters, words: counter.counts.size, merges, vocabSize: vocab + specials.length, targetVocabSize: options.vocabSize });

  let index = 0;
  let lastReport = Date.now();
  const add = (text: unknown): void => {
    if (typeof text !== 'string') throw new Error(`trainBpe: text #${index} is ${text === null ? 'null' : typeof text}, not a string`);
    counter.add(text);
    index++;
    if (options.onProgress && Date.now() - lastReport > 250) {
      lastReport = Date.now();
      progress('count', 0, 256);
    }
  };
  if (isAsyncIterable(texts)) for await (const text of texts) add(text);
  else for (const text of texts) add(text);
  progress('count', 0, 256);

  const words = wordsFromCounts(counter.counts);
  const tokenTexts = [...BASE_ALPHABET];
  const ids = new Map(tokenTexts.map((text, id) => [text, id]));
  const newTokens = options.vocabSize - specials.length - 256;
  let lastMergeReport = Date.now();
  const merges = learnMerges(words, tokenTexts, ids, {
    newTokens,
    minFrequency: options.minFrequency ?? 2,
    onMerge: (created, count) => {
      if (options.onProgress && (created === newTokens || Date.now() - lastMergeReport > 250)) {
        lastMergeReport = Date.now();
        progress('merge', count, 256 + created);
      }
    },
  });
  progress('done', merges.length, tokenTexts.length);
  return tokenizerJson(tokenTexts, merges.map((m) => `${tokenTexts[m.left]} ${tokenTexts[m.right]}`), specials, preset);
}

function tokenizerJson(tokens: readonly string[], merges: string[], specials: readonly { content: string; special: boolean }[], preset: Preset): TrainedTokenizerJson {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  const added_tokens = specials.map((token, i) => {
    if (Object.hasOwn(vocab, token.content)) throw new Error(`special token ${JSON.stringify(token.content)} is also a learned token`);
    return { id: tokens.length + i, content: token.content, single_word: false as const, lstrip: false as const, rstrip: false as const, normalized: false as const, special: token.special };
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: preset.normalizer === 'NFC' ? { type: 'NFC' } : null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...preset.patterns.map((pattern) => ({
          type: 'Split',
          pattern: { Regex: preset.rawLineBreaks ? withRawLineBreaks(pattern) : pattern },
          behavior: 'Isolated',
          invert: false,
        })),
        { ...preset.byteLevel[0] },
      ],
    },
    post_processor: { ...preset.byteLevel[1] },
    decoder: { ...preset.byteLevel[2] },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ...(preset.ignoreMerges ? { ignore_merges: true as const } : {}),
      vocab,
      merges,
    },
  };
}

/**
 * The tokenizer_config.json to write beside a trained tokenizer.json: BOS/EOS are the first two
 * special tokens when those are the R1 ones (BOS prepended by add_special_tokens, as for R1).
 */
export function trainedTokenizerConfig(json: TrainedTokenizerJson): TokenizerConfigJson {
  const contents = new Set(json.added_tokens.map((t) => t.content));
  const hasBos = contents.has(R1_BOS);
  const hasEos = contents.has(R1_EOS);
  return {
    add_bos_token: hasBos,
    add_eos_token: false,
    bos_token: hasBos ? R1_BOS : null,
    eos_token: hasEos ? R1_EOS : null,
    pad_token: hasEos ? R1_EOS : null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 131072,
    unk_token: null,
    tokenizer_class: 'LlamaTokenizerFast',
  };
}

/**
 * Writes a trained tokenizer.json to `tokenizerPath` and its tokenizer_config.json beside it
 * (atomically, creating the directory), so that Tokenizer.fromFile(tokenizerPath) loads both.
 */
export function writeTrainedTokenizer(tokenizerPath: string, json: TrainedTokenizerJson): { tokenizerPath: string; configPath: string } {
  const configPath = join(dirname(tokenizerPath), 'tokenizer_config.json');
  mkdirSync(dirname(tokenizerPath), { recursive: true });
  for (const [path, value] of [[tokenizerPath, json], [configPath, trainedTokenizerConfig(json)]] as const) {
    const bytes = Buffer.from(`${JSON.stringify(value, null, 1)}\n`, 'utf8');
    writeFileAtomic(path, (write) => write(bytes));
  }
  return { tokenizerPath, configPath };
}
