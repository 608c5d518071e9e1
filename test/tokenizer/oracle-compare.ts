/**
 * Shared by the oracle tests (oracle.test.ts, oracle-llama3.test.ts): our Tokenizer against a
 * reference encoder over a corpus, and a copy of a tokenizer carried through GGUF metadata.
 */
import assert from 'node:assert/strict';
import { plainValue } from '../../src/formats/gguf-value.js';
import { Tokenizer, tokenizerGgufMetadata } from '../../src/tokenizer/index.js';

/** The part of an @lenml/tokenizers tokenizer the comparison uses. */
export interface Reference {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

/** Ids must equal the reference's (no added specials) and decode(ids) must give normalize(text). */
export function compareWithReference(ours: Tokenizer, reference: Reference, corpus: string[], normalize: (s: string) => string): void {
  const mismatches: string[] = [];
  const roundTrips: string[] = [];
  for (const text of corpus) {
    const ids = ours.encode(text);
    const expected = reference.encode(text, { add_special_tokens: false });
    if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
      mismatches.push(`${JSON.stringify(text)}: ours ${JSON.stringify(ids)} reference ${JSON.stringify(expected)}`);
    }
    if (ours.decode(ids) !== normalize(text)) roundTrips.push(JSON.stringify(text));
  }
  assert.deepEqual(mismatches.slice(0, 5), [], `${mismatches.length} of ${corpus.length} strings differ`);
  assert.deepEqual(roundTrips.slice(0, 5), [], `${roundTrips.length} strings do not round-trip`);
}

/** The tokenizer after a trip through GGUF metadata (as llama.cpp files carry it). */
export function throughGguf(tokenizer: Tokenizer): Tokenizer {
  const entries = new Map(tokenizerGgufMetadata(tokenizer));
  return Tokenizer.fromGgufMetadata((key) => {
    const value = entries.get(key);
    return value === undefined ? undefined : plainValue(value);
  });
}
