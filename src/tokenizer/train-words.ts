/**
 * The counting pass of BPE training: texts -> (special tokens cut out) -> normalizer ->
 * pre-tokenizer pieces, counted; then each unique piece becomes a sequence of byte symbols.
 * Splitting uses the same AddedTokenMatcher and PreTokenizer as encoding, so training sees exactly
 * the pieces that encode() will later feed to the BPE model.
 */
import { AddedTokenMatcher, type Section } from './added-tokens.js';
import { BYTE_TO_CHAR, utf8Encode } from './byte-level.js';
import { normalizeLikeHf } from './normalize.js';
import { PreTokenizer, type PreTokenizerStep } from './pre-tokenizer.js';
import type { MergeWords } from './train-merges.js';
import type { Normalization } from './tokenizer.js';

export interface WordCounterOptions {
  readonly steps: readonly PreTokenizerStep[];
  readonly normalizer: Normalization;
  readonly specialTokens: readonly string[];
}

/** Lone surrogates become U+FFFD, as encode() does. */
function wellFormed(text: string): string {
  return /[\ud800-\udfff]/.test(text) ? (text as unknown as { toWellFormed(): string }).toWellFormed() : text;
}

/** Accumulates piece counts over any number of texts. */
export class WordCounter {
  readonly counts = new Map<string, number>();
  /** UTF-16 code units seen (before normalization). */
  characters = 0;
  private readonly preTokenizer: PreTokenizer;
  private readonly matcher: AddedTokenMatcher;
  private readonly normalizer: Normalization;
  private readonly pieces: string[] = [];
  private readonly sections: Section[] = [];

  constructor(options: WordCounterOptions) {
    this.preTokenizer = new PreTokenizer(options.steps);
    this.matcher = new AddedTokenMatcher(options.specialTokens.map((content, id) => ({ content, id })));
    this.normalizer = options.normalizer;
  }

  add(text: string): void {
    this.characters += text.length;
    const sections = this.sections;
    sections.length = 0;
    this.matcher.split(wellFormed(text), sections);
    const counts = this.counts;
    for (const section of sections) {
      if (typeof section === 'number') continue;
      const pieces = this.pieces;
      pieces.length = 0;
      this.preTokenizer.split(normalizeLikeHf(section, this.normalizer), pieces);
      for (const piece of pieces) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }
}

/**
 * The 256 byte stand-in characters in code point order (as HF's trainer orders its alphabet);
 * BASE_ALPHABET[i] is the text of symbol i, and SYMBOL_OF_BYTE[b] the symbol of byte b.
 */
export const BASE_ALPHABET: readonly string[] = [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
export const SYMBOL_OF_BYTE: Int32Array = Int32Array.from(BYTE_TO_CHAR, (char) => BASE_ALPHABET.indexOf(char));

/** Unique pieces -> byte-symbol words for the merge loop (in first-seen order). */
export function wordsFromCounts(counts: ReadonlyMap<string, number>): MergeWords {
  let total = 0;
  let longest = 0;
  for (const piece of counts.keys()) {
    total += piece.length * 3;
    if (piece.length > longest) longest = piece.length;
  }
  const symbols = new Int32Array(total);
  const start = new Int32Array(counts.size);
  const length = new Int32Array(counts.size);
  const frequency = new Float64Array(counts.size);
  const bytes = new Uint8Array(longest * 3);
  let w = 0;
  let offset = 0;
  for (const [piece, count] of counts) {
    const n = utf8Encode(piece, bytes);
    start[w] = offset;
    length[w] = n;
    frequency[w] = count;
    for (let i = 0; i < n; i++) symbols[offset + i] = SYMBOL_OF_BYTE[bytes[i]!]!;
    offset += n;
    w++;
  }
  return { symbols: symbols.subarray(0, offset), start, length, frequency };
}
