/**
 * Added tokens (HF `added_tokens`, llama.cpp CONTROL / USER_DEFINED tokens): spans of the input
 * equal to a token's content become that token directly, before normalization and BPE. Matching is
 * leftmost-longest, like the Aho-Corasick automaton HF uses.
 */

export interface AddedToken {
  readonly id: number;
  readonly content: string;
  /** HF `special`: skipped by decode({ skipSpecialTokens: true }). */
  readonly special: boolean;
  /** HF `normalized`: matched against normalized text instead of the raw input. */
  readonly normalized: boolean;
}

/** A section of input: plain text to normalize and BPE, or the id of a matched added token. */
export type Section = string | number;

export class AddedTokenMatcher {
  /** First UTF-16 code unit -> candidates, longest first. */
  private readonly byFirst = new Map<number, { content: string; id: number }[]>();
  /** Finds the next position whose code unit starts some token (a native scan, no per-char JS loop). */
  private readonly firstUnits: RegExp;

  constructor(tokens: readonly { content: string; id: number }[]) {
    for (const token of tokens) {
      if (token.content.length === 0) continue;
      const first = token.content.charCodeAt(0);
      let list = this.byFirst.get(first);
      if (!list) this.byFirst.set(first, (list = []));
      list.push(token);
    }
    for (const list of this.byFirst.values()) list.sort((a, b) => b.content.length - a.content.length);
    const units = [...this.byFirst.keys()].map((unit) => `\\u${unit.toString(16).padStart(4, '0')}`).join('');
    this.firstUnits = new RegExp(units.length > 0 ? `[${units}]` : '[^\\s\\S]', 'g');
  }

  get empty(): boolean {
    return this.byFirst.size === 0;
  }

  /** Splits `text` into plain-text sections and added-token ids, appending to `out`. */
  split(text: string, out: Section[]): void {
    if (this.byFirst.size === 0) {
      if (text.length > 0) out.push(text);
      return;
    }
    let plainStart = 0;
    let i = 0;
    const firstUnits = this.firstUnits;
    while (i < text.length) {
      firstUnits.lastIndex = i;
      if (firstUnits.exec(text) === null) break;
      i = firstUnits.lastIndex - 1;
      const candidates = this.byFirst.get(text.charCodeAt(i));
      let matched: { content: string; id: number } | undefined;
      if (candidates) {
        for (const candidate of candidates) {
          if (text.startsWith(candidate.content, i)) {
            matched = candidate;
            break;
          }
        }
      }
      if (matched) {
        if (i > plainStart) out.push(text.slice(plainStart, i));
        out.push(matched.id);
        i += matched.content.length;
        plainStart = i;
      } else {
        i++;
      }
    }
    if (plainStart < text.length) out.push(plainStart === 0 ? text : text.slice(plainStart));
  }
}

/** llama.cpp's converter marks these CONTROL even when HF says `special: false` (`<|...|>`, `<｜...｜>`). */
export function looksSpecial(content: string): boolean {
  return (content.startsWith('<|') && content.endsWith('|>')) || (content.startsWith('<\uff5c') && content.endsWith('\uff5c>'));
}
