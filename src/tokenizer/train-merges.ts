/**
 * The merge loop of byte-level BPE training. Input: unique words (pre-tokenized pieces) as symbol
 * id sequences with their frequencies, and the text of every symbol. Output: the merges, in order.
 *
 * Each step merges the adjacent pair with the highest total count; ties go to the pair whose
 * (left text, right text) is lexicographically smallest (UTF-16 code unit order). Every occurrence
 * of the pair in a word is merged left to right, without overlap. A merge whose concatenated text
 * is already a token reuses that token's id (so the vocabulary grows by one per merge except then).
 *
 * Pair counts are kept incrementally: a pair hash table (count and the words holding it) and a
 * max-heap of (count, pair) with lazy invalidation. A merge only touches the words holding the
 * pair; pairs whose count grew in a step (those next to the new token) get a fresh heap entry, and
 * a popped entry whose count is stale goes back with its current count.
 */

export interface MergeWords {
  /** All words' symbols back to back; rewritten in place as merges shorten words. */
  readonly symbols: Int32Array;
  /** Start offset of word w in `symbols`. */
  readonly start: Int32Array;
  /** Current length of word w (shrinks as merges are applied). */
  readonly length: Int32Array;
  /** Occurrence count of word w in the training text. */
  readonly frequency: Float64Array;
}

export interface LearnedMerge {
  readonly left: number;
  readonly right: number;
  /** Id of the merged token (new, or an existing token with the same text). */
  readonly id: number;
  /** Total count of the pair when it was merged. */
  readonly count: number;
}

export interface LearnMergesOptions {
  /** Stop when this many new tokens have been created. */
  readonly newTokens: number;
  /** Stop when the best pair occurs fewer times than this (default 1). */
  readonly minFrequency?: number;
  /** Called after every merge with the number of new tokens so far. */
  readonly onMerge?: (newTokens: number, merges: number) => void;
}

/** Token ids must stay below this (a learned vocabulary this large is far beyond any use here). */
export const MAX_SYMBOLS = 0x200000;

/**
 * Open-addressing table of pairs (left, right) -> slot. Slots are handed out in order and never
 * freed, so a slot number names a pair for the whole run (counts drop to 0 instead).
 */
class PairTable {
  left = new Int32Array(1024);
  right = new Int32Array(1024);
  count = new Float64Array(1024);
  /** Words that contain (or once contained) the pair, possibly repeated. */
  words: (number[] | undefined)[] = [];
  size = 0;
  private buckets = new Int32Array(2048); // slot + 1, 0 = empty
  private mask = 2047;

  private static hash(left: number, right: number): number {
    return (Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  /** The pair's slot, created (count 0) if absent. */
  slot(left: number, right: number): number {
    let b = PairTable.hash(left, right) & this.mask;
    const buckets = this.buckets;
    for (;;) {
      const entry = buckets[b]!;
      if (entry === 0) break;
      const s = entry - 1;
      if (this.left[s] === left && this.right[s] === right) return s;
      b = (b + 1) & this.mask;
    }
    const s = this.size++;
    if (s === this.left.length) this.growSlots();
    this.left[s] = left;
    this.right[s] = right;
    this.count[s] = 0;
    buckets[b] = s + 1;
    if (this.size * 2 > this.mask) this.rehash();
    return s;
  }

  private growSlots(): void {
    const n = this.left.length * 2;
    const left = new Int32Array(n);
    left.set(this.left);
    const right = new Int32Array(n);
    right.set(this.right);
    const count = new Float64Array(n);
    count.set(this.count);
    this.left = left;
    this.right = right;
    this.count = count;
  }

  private rehash(): void {
    const capacity = (this.mask + 1) * 2;
    this.buckets = new Int32Array(capacity);
    this.mask = capacity - 1;
    for (let s = 0; s < this.size; s++) {
      let b = PairTable.hash(this.left[s]!, this.right[s]!) & this.mask;
      while (this.buckets[b] !== 0) b = (b + 1) & this.mask;
      this.buckets[b] = s + 1;
    }
  }

  addWord(slot: number, word: number): void {
    const list = this.words[slot];
    if (list === undefined) this.words[slot] = [word];
    else if (list[list.length - 1] !== word) list.push(word);
  }
}

/** Max-heap of pair slots by (count desc, left text asc, right text asc). */
class PairHeap {
  private slots: number[] = [];
  private counts: number[] = [];
  constructor(
    private readonly pairs: PairTable,
    private readonly texts: readonly string[],
  ) {}

  get size(): number {
    return this.slots.length;
  }

  /** Does entry (ca, sa) come before (cb, sb)? */
  private before(ca: number, sa: number, cb: number, sb: number): boolean {
    if (ca !== cb) return ca > cb;
    const pairs = this.pairs;
    const la = this.texts[pairs.left[sa]!]!;
    const lb = this.texts[pairs.left[sb]!]!;
    if (la !== lb) return la < lb;
    return this.texts[pairs.right[sa]!]! < this.texts[pairs.right[sb]!]!;
  }

  push(slot: number, count: number): void {
    const slots = this.slots;
    const counts = this.counts;
    let i = slots.length;
    slots.push(slot);
    counts.push(count);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(count, slot, counts[parent]!, slots[parent]!)) break;
      slots[i] = slots[parent]!;
      counts[i] = counts[parent]!;
      i = parent;
    }
    slots[i] = slot;
    counts[i] = count;
  }

  /** Removes the top entry into out = [slot, count]. */
  pop(out: [number, number]): void {
    const slots = this.slots;
    const counts = this.counts;
    out[0] = slots[0]!;
    out[1] = counts[0]!;
    const lastSlot = slots.pop()!;
    const lastCount = counts.pop()!;
    const n = slots.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(counts[child + 1]!, slots[child + 1]!, counts[child]!, slots[child]!)) child++;
      if (!this.before(counts[child]!, slots[child]!, lastCount, lastSlot)) break;
      slots[i] = slots[child]!;
      counts[i] = counts[child]!;
      i = child;
    }
    slots[i] = lastSlot;
    counts[i] = lastCount;
  }
}

/**
 * Runs merges over `words` (modified in place). `texts` holds the text of every symbol id in use
 * and is extended with new tokens; `ids` maps text -> id for all of them.
 */
export function learnMerges(words: MergeWords, texts: string[], ids: Map<string, number>, options: LearnMergesOptions): LearnedMerge[] {
  const minFrequency = Math.max(1, options.minFrequency ?? 1);
  const { symbols, start, length, frequency } = words;
  const wordCount = start.length;
  const pairs = new PairTable();

  for (let w = 0; w < wordCount; w++) {
    const base = start[w]!;
    const end = base + length[w]! - 1;
    const f = frequency[w]!;
    for (let i = base; i < end; i++) {
      const slot = pairs.slot(symbols[i]!, symbols[i + 1]!);
      pairs.count[slot]! += f;
      pairs.addWord(slot, w);
    }
  }
  const heap = new PairHeap(pairs, texts);
  for (let slot = 0; slot < pairs.size; slot++) heap.push(slot, pairs.count[slot]!);

  const merges: LearnedMerge[] = [];
  let mergedSlots = new Uint8Array(1024);
  const visited = new Int32Array(wordCount);
  let stamp = 0;
  let created = 0;
  const top: [number, number] = [0, 0];
  const touched: number[] = [];
  let touchedStamp = new Int32Array(1024);

  /** Adds delta to the pair's count; remembers pairs that grew (they need a fresh heap entry). */
  const change = (left: number, right: number, delta: number, word: number): void => {
    const slot = pairs.slot(left, right);
    pairs.count[slot]! += delta;
    if (delta > 0) {
      pairs.addWord(slot, word);
      if (slot >= touchedStamp.length) {
        const grown = new Int32Array(Math.max(slot + 1, touchedStamp.length * 2));
        grown.set(touchedStamp);
        touchedStamp = grown;
      }
      if (touchedStamp[slot] !== stamp) {
        touchedStamp[slot] = stamp;
        touched.push(slot);
      }
    }
  };

  while (created < options.newTokens && heap.size > 0) {
    heap.pop(top);
    const slot = top[0];
    const current = pairs.count[slot]!;
    if (current <= 0) continue;
    if (current !== top[1]) {
      heap.push(slot, current);
      continue;
    }
    if (current < minFrequency) break;
    const left = pairs.left[slot]!;
    const right = pairs.right[slot]!;
    const text = texts[left]! + texts[right]!;
    let id = ids.get(text);
    if (slot >= mergedSlots.length) {
      const grown = new Uint8Array(Math.max(slot + 1, mergedSlots.length * 2, 1024));
      grown.set(mergedSlots);
      mergedSlots = grown;
    }
    const repeat = mergedSlots[slot] === 1;
    if (id === undefined) {
      id = texts.length;
      if (id >= MAX_SYMBOLS) throw new Error(`BPE training: more than ${MAX_SYMBOLS} tokens`);
      texts.push(text);
      ids.set(text, id);
      created++;
    }
    if (!repeat) {
      mergedSlots[slot] = 1;
      merges.push({ left, right, id, count: current });
    }

    stamp++;
    const list = pairs.words[slot] ?? [];
    pairs.words[slot] = undefined;
    for (const w of list) {
      if (visited[w] === stamp) continue;
      visited[w] = stamp;
      const base = start[w]!;
      const end = base + length[w]!;
      const f = frequency[w]!;
      let out = base;
      let i = base;
      while (i < end) {
        if (i + 1 < end && symbols[i] === left && symbols[i + 1] === right) {
          if (out > base) {
            const previous = symbols[out - 1]!;
            change(previous, left, -f, w);
            change(previous, id, f, w);
          }
          if (i + 2 < end) {
            const next = symbols[i + 2]!;
            change(right, next, -f, w);
            change(id, next, f, w);
          }
          symbols[out++] = id;
          i += 2;
        } else {
          symbols[out++] = symbols[i]!;
          i++;
        }
      }
      length[w] = out - base;
    }
    pairs.count[slot] = 0;
    for (const grown of touched) {
      const count = pairs.count[grown]!;
      if (count > 0 && grown !== slot) heap.push(grown, count);
    }
    touched.length = 0;
    if (!repeat) options.onMerge?.(created, merges.length);
  }
  return merges;
}
