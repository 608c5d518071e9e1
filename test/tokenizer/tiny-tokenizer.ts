/**
 * Builds small byte-level BPE tokenizer.json objects for tests: merges are learned greedily
 * (most frequent adjacent pair, ties by first occurrence) from a training text split by the
 * given pre-tokenizer steps.
 */
import { BYTE_TO_CHAR, toByteLevel } from '../../src/tokenizer/byte-level.js';
import { KNOWN_PATTERNS, PreTokenizer } from '../../src/tokenizer/pre-tokenizer.js';

export interface TinyTokenizerOptions {
  patterns?: readonly string[];
  merges?: number;
  ignoreMerges?: boolean;
  /** Whole words (byte-level spelling) added to the vocabulary without merges that build them. */
  extraVocab?: readonly string[];
  addedTokens?: readonly { content: string; special: boolean }[];
  normalizer?: unknown;
  mergesAsPairs?: boolean;
}

export function tinyTokenizerJson(training: string, options: TinyTokenizerOptions = {}): Record<string, unknown> {
  const patterns = options.patterns ?? KNOWN_PATTERNS['llama-bpe'];
  const pieces: string[] = [];
  new PreTokenizer(patterns.map((pattern) => ({ kind: 'split', pattern }))).split(training, pieces);
  const words = new Map<string, number>();
  for (const piece of pieces) {
    const word = toByteLevel(piece);
    words.set(word, (words.get(word) ?? 0) + 1);
  }
  let split = [...words].map(([word, count]) => ({ symbols: [...word], count }));
  const vocab = new Map<string, number>();
  for (const char of BYTE_TO_CHAR) vocab.set(char, vocab.size);
  const merges: [string, string][] = [];
  for (let round = 0; round < (options.merges ?? 200); round++) {
    const counts = new Map<string, number>();
    for (const { symbols, count } of split) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of counts) {
      if (count > bestCount) {
        best = key;
        bestCount = count;
      }
    }
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    split = split.map(({ symbols, count }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(symbols[i]!);
      }
      return { symbols: out, count };
    });
  }
  for (const word of options.extraVocab ?? []) if (!vocab.has(word)) vocab.set(word, vocab.size);
  const added = (options.addedTokens ?? []).map((token, index) => ({
    id: vocab.size + index,
    content: token.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: token.special,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: options.normalizer ?? null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...patterns.map((pattern) => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: options.ignoreMerges ?? false,
      vocab: Object.fromEntries(vocab),
      merges: options.mergesAsPairs ? merges : merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}
