/**
 * N-gram (prompt lookup) drafting: find the longest suffix of the context that occurred earlier
 * (the most recent occurrence among the longest), and propose the tokens that followed it. When
 * the earlier occurrence overlaps the suffix (a periodic tail such as "a b a b"), the proposal
 * continues the period. Deterministic: the draft distribution is a point mass.
 */
import type { DraftChooser, Drafter, DraftProposal } from './speculative-types.js';

export interface NgramOptions {
  /** Shortest suffix match that produces a proposal. Default 2. */
  minMatch?: number;
  /** Longest suffix compared (bounds the work per step). Default 16. */
  maxMatch?: number;
}

/**
 * Up to k tokens predicted to follow `context` (prompt + generated so far) by suffix lookup;
 * empty when no suffix of at least minMatch tokens occurred before.
 */
export function proposeNgram(context: ArrayLike<number>, k: number, options: NgramOptions = {}): number[] {
  const minMatch = options.minMatch ?? 2;
  const maxMatch = options.maxMatch ?? 16;
  if (!Number.isInteger(minMatch) || minMatch < 1) throw new Error(`ngram minMatch must be an integer >= 1, got ${minMatch}`);
  if (!Number.isInteger(maxMatch) || maxMatch < minMatch) throw new Error(`ngram maxMatch must be an integer >= minMatch (${minMatch}), got ${maxMatch}`);
  const n = context.length;
  if (k <= 0 || n < minMatch + 1) return [];
  const last = context[n - 1]!;
  let bestEnd = -1;
  let bestLength = 0;
  // e: end of an earlier occurrence of the suffix (context[e] matches context[n - 1]); scanning from
  // the most recent, a later candidate replaces the best only when strictly longer.
  for (let e = n - 2; e >= 0; e--) {
    if (context[e] !== last) continue;
    let length = 1;
    while (length < maxMatch && e - length >= 0 && context[e - length] === context[n - 1 - length]) length++;
    if (length > bestLength) {
      bestLength = length;
      bestEnd = e;
      if (length === maxMatch) break;
    }
  }
  if (bestLength < minMatch) return [];
  const proposal: number[] = [];
  for (let i = 0; i < k; i++) {
    const at = bestEnd + 1 + i;
    proposal.push(at < n ? context[at]! : proposal[at - n]!);
  }
  return proposal;
}

export class NgramDrafter implements Drafter {
  readonly kind = 'ngram';
  readonly needsHidden = false;
  constructor(private readonly options: NgramOptions = {}) {
    proposeNgram([], 1, options); // validates the options now
  }
  observe(): void {}
  propose(context: readonly number[], _feedLength: number, k: number, _choose?: DraftChooser): DraftProposal {
    const tokens = proposeNgram(context, k, this.options);
    return { tokens, q: tokens.map(() => null) };
  }
}
