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

interface TrieNode {
  id: number; // -1 where no token ends here
  children: Map<number, TrieNode> | undefined;
}

export class AddedTokenMatcher {
  /** Code-unit trie of all token contents. */
  private readonly root: TrieNode = { id: -1, children: undefined };
  /** Finds the next position whose code unit starts some token (a native scan, no per-char JS loop). */
  private readonly firstUnits: RegExp;
  readonly empty: boolean;

  constructor(tokens: readonly { content: string; id: number }[]) {
    for (const token of tokens) {
      if (token.content.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < token.content.length; i++) {
        const unit = token.content.charCodeAt(i);
        node.children ??= new Map();
        let child = node.children.get(unit);
        if (!child) node.children.set(unit, (child = { id: -1, children: undefined }));
        node = child;
      }
      if (node.id === -1) node.id = token.id; // the first token with this content wins
    }
    const firsts = [...(this.root.children?.keys() ?? [])];
    this.empty = firsts.length === 0;
    const units = firsts.map((unit) => `\\u${unit.toString(16).padStart(4, '0')}`).join('');
    this.firstUnits = new RegExp(units.length > 0 ? `[${units}]` : '[^\\s\\S]', 'g');
  }

  /** Id and length of the longest token starting at `at`, or undefined. */
  private longestAt(text: string, at: number): { id: number; length: number } | undefined {
    let node: TrieNode | undefined = this.root;
    let best: { id: number; length: number } | undefined;
    for (let i = at; i < text.length; i++) {
      node = node.children?.get(text.charCodeAt(i));
      if (!node) break;
      if (node.id !== -1) best = { id: node.id, length: i + 1 - at };
    }
    return best;
  }

  /** Splits `text` into plain-text sections and added-token ids, appending to `out`. */
  split(text: string, out: Section[]): void {
    if (this.empty) {
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
      const matched = this.longestAt(text, i);
      if (matched) {
        if (i > plainStart) out.push(text.slice(plainStart, i));
        out.push(matched.id);
        i += matched.length;
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

/** CONTROL in llama.cpp terms: marked special, or looking special. Not parsed when parseSpecial is false. */
export function isControlToken(token: AddedToken): boolean {
  return token.special || looksSpecial(token.content);
}
