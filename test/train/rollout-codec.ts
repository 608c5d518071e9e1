// A character-level Codec for the R1-stage tests: tiny vocabularies keep the test models small.
import type { Codec } from '../../src/train/rollout.js';

/** Id 0 is EOS; then one id per character of `alphabet`. */
export function charCodec(alphabet: string): Codec & { vocab: number } {
  const chars = [...new Set([...alphabet])];
  const index = new Map(chars.map((c, i) => [c, i + 1]));
  return {
    vocab: chars.length + 1,
    eosId: 0,
    encode(text) {
      return [...text].map((c) => {
        const id = index.get(c);
        if (id === undefined) throw new Error(`charCodec: character ${JSON.stringify(c)} is not in the alphabet`);
        return id;
      });
    },
    decode: (ids) => ids.filter((id) => id !== 0).map((id) => chars[id - 1] ?? '?').join(''),
  };
}

export const DIGITS_ALPHABET = '0123456789+=?\n<>/thinkasw ';
