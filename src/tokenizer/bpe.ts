/**
 * Byte-level BPE model (HF `tokenizers` BPE semantics, ../shared/spec/formats-and-api.md §4.1 step 5).
 * A piece becomes its UTF-8 bytes, one symbol each (the byte's stand-in token id); then the
 * adjacent pair with the lowest merge rank is merged (leftmost first among equals) until no pair
 * has a merge. Symbols are integer ids throughout; a merge table keyed by (left id, right id) gives
 * rank and result id packed in one number, so a smaller value always means a lower rank.
 * Results are cached per piece.
 */
import { BYTE_TO_CHAR, toByteLevel, utf8Encode } from './byte-level.js';

const ID_LIMIT = 1 << 21; // ids and ranks must stay below this (packing in a double stays exact)
/** Pieces longer than this (in bytes) use the heap-based merge instead of repeated scans. */
export const LINEAR_MERGE_LIMIT = 48;
const CACHE_LIMIT = 200_000;
/** Longer pieces (base64 blobs, long runs) are rarely repeated: not cached. */
const CACHE_MAX_PIECE = 256;
const NO_MERGE = -1;

export interface BpeOptions {
  /** Byte-level token string -> id. */
  readonly vocab: ReadonlyMap<string, number>;
  /** Merge pairs in rank order (rank = index). */
  readonly merges: readonly (readonly [string, string])[];
  /** Llama-3: a piece that is itself a vocabulary entry is emitted as is. */
  readonly ignoreMerges?: boolean;
  /** Id emitted for a byte with no vocabulary entry; without one such bytes are dropped (HF). */
  readonly unkId?: number;
}

export class BpeModel {
  readonly vocab: ReadonlyMap<string, number>;
  readonly ignoreMerges: boolean;
  private readonly merges: MergeTable;
  private readonly byteIds = new Int32Array(256);
  private readonly unkId: number;
  private readonly cache = new Map<string, number[]>();
  private bytes = new Uint8Array(256);
  private symbols = new Int32Array(256);

  constructor(options: BpeOptions) {
    this.vocab = options.vocab;
    this.ignoreMerges = options.ignoreMerges ?? false;
    this.unkId = options.unkId ?? -1;
    for (const id of options.vocab.values()) {
      if (!Number.isInteger(id) || id < 0 || id >= ID_LIMIT) throw new Error(`BPE vocab id ${id} out of range [0, ${ID_LIMIT})`);
    }
    if (options.merges.length >= ID_LIMIT) throw new Error(`too many merges (${options.merges.length})`);
    for (let byte = 0; byte < 256; byte++) this.byteIds[byte] = options.vocab.get(BYTE_TO_CHAR[byte]!) ?? -1;
    this.merges = new MergeTable(options.merges.length);
    options.merges.forEach(([left, right], rank) => {
      const a = options.vocab.get(left);
      const b = options.vocab.get(right);
      const merged = options.vocab.get(left + right);
      if (a === undefined || b === undefined || merged === undefined) {
        const missing = a === undefined ? left : b === undefined ? right : left + right;
        throw new Error(`merge #${rank} '${left} ${right}': token '${missing}' is not in the vocabulary`);
      }
      this.merges.set(a, b, rank * ID_LIMIT + merged); // a later duplicate wins, as in HF
    });
  }

  /** Appends the ids of one pre-tokenized piece (normalized text, not yet byte-level) to `out`. */
  encodePiece(piece: string, out: number[]): void {
    let ids = this.cache.get(piece);
    if (ids === undefined) {
      ids = this.encodeUncached(piece);
      if (piece.length <= CACHE_MAX_PIECE) {
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, ids);
      }
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  private encodeUncached(piece: string): number[] {
    if (this.ignoreMerges) {
      const whole = this.vocab.get(toByteLevel(piece));
      if (whole !== undefined) return [whole];
    }
    if (this.bytes.length < piece.length * 3) {
      this.bytes = new Uint8Array(piece.length * 3);
      this.symbols = new Int32Array(piece.length * 3);
    }
    const byteCount = utf8Encode(piece, this.bytes);
    const symbols = this.symbols;
    let n = 0;
    for (let i = 0; i < byteCount; i++) {
      const id = this.byteIds[this.bytes[i]!]!;
      if (id >= 0) symbols[n++] = id;
      else if (this.unkId >= 0) symbols[n++] = this.unkId;
    }
    if (n <= LINEAR_MERGE_LIMIT) return this.mergeLinear(symbols, n);
    return this.mergeWithHeap(symbols, n);
  }

  /** Value (rank-major) of merging a and b, or NO_MERGE. */
  private pairValue(a: number, b: number): number {
    return this.merges.get(a, b);
  }

  /** Repeated scans: O(n^2) but allocation-free, fastest for the short pieces that dominate text. */
  mergeLinear(symbols: Int32Array, count: number): number[] {
    let n = count;
    while (n > 1) {
      let best = NO_MERGE;
      let bestAt = -1;
      for (let i = 0; i + 1 < n; i++) {
        const value = this.pairValue(symbols[i]!, symbols[i + 1]!);
        if (value !== NO_MERGE && (best === NO_MERGE || value < best)) {
          best = value;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      symbols[bestAt] = best % ID_LIMIT;
      symbols.copyWithin(bestAt + 1, bestAt + 2, n);
      n--;
    }
    return Array.from(symbols.subarray(0, n));
  }

  /**
   * Linked-list merge driven by a binary heap of candidate pairs ordered by (value, position); stale
   * entries are skipped when popped. O(n log n) for long pieces (runs of letters, base64 ...).
   */
  mergeWithHeap(input: Int32Array, count: number): number[] {
    const symbols = Int32Array.from(input.subarray(0, count));
    const next = new Int32Array(count);
    const prev = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      next[i] = i + 1 < count ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new PairHeap(count);
    for (let i = 0; i + 1 < count; i++) {
      const value = this.pairValue(symbols[i]!, symbols[i + 1]!);
      if (value !== NO_MERGE) heap.push(value, i, i + 1);
    }
    while (heap.size > 0) {
      const value = heap.topValue;
      const left = heap.topLeft;
      const right = heap.topRight;
      heap.pop();
      // Stale if either end was merged away or the pair changed since it was queued.
      if (symbols[left]! < 0 || symbols[right]! < 0 || next[left] !== right) continue;
      if (this.pairValue(symbols[left]!, symbols[right]!) !== value) continue;
      symbols[left] = value % ID_LIMIT;
      symbols[right] = -1;
      const after = next[right]!;
      next[left] = after;
      if (after >= 0) prev[after] = left;
      const before = prev[left]!;
      if (before >= 0) {
        const v = this.pairValue(symbols[before]!, symbols[left]!);
        if (v !== NO_MERGE) heap.push(v, before, left);
      }
      if (after >= 0) {
        const v = this.pairValue(symbols[left]!, symbols[after]!);
        if (v !== NO_MERGE) heap.push(v, left, after);
      }
    }
    const out: number[] = [];
    for (let i = 0; i >= 0 && i < count; i = next[i]!) out.push(symbols[i]!);
    return out;
  }
}

/** Min-heap of (value, left, right), ordered by value then left position, in growable typed arrays. */
class PairHeap {
  private values: Float64Array;
  private lefts: Int32Array;
  private rights: Int32Array;
  size = 0;

  constructor(capacityHint: number) {
    const capacity = Math.max(16, capacityHint);
    this.values = new Float64Array(capacity);
    this.lefts = new Int32Array(capacity);
    this.rights = new Int32Array(capacity);
  }

  push(value: number, left: number, right: number): void {
    if (this.size === this.values.length) {
      const grow = <T extends Float64Array | Int32Array>(old: T): T => {
        const bigger = new (old.constructor as new (n: number) => T)(old.length * 2);
        bigger.set(old);
        return bigger;
      };
      this.values = grow(this.values);
      this.lefts = grow(this.lefts);
      this.rights = grow(this.rights);
    }
    const values = this.values;
    const lefts = this.lefts;
    const rights = this.rights;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pv = values[parent]!;
      if (pv < value || (pv === value && lefts[parent]! < left)) break;
      values[i] = pv;
      lefts[i] = lefts[parent]!;
      rights[i] = rights[parent]!;
      i = parent;
    }
    values[i] = value;
    lefts[i] = left;
    rights[i] = right;
  }

  /** Removes the top entry; read it first with topValue/topLeft/topRight. */
  pop(): void {
    const values = this.values;
    const lefts = this.lefts;
    const rights = this.rights;
    const n = --this.size;
    if (n === 0) return;
    const value = values[n]!;
    const left = lefts[n]!;
    const right = rights[n]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const r = child + 1;
      if (r < n && (values[r]! < values[child]! || (values[r] === values[child] && lefts[r]! < lefts[child]!))) child = r;
      const cv = values[child]!;
      if (value < cv || (value === cv && left < lefts[child]!)) break;
      values[i] = cv;
      lefts[i] = lefts[child]!;
      rights[i] = rights[child]!;
      i = child;
    }
    values[i] = value;
    lefts[i] = left;
    rights[i] = right;
  }

  get topValue(): number {
    return this.values[0]!;
  }

  get topLeft(): number {
    return this.lefts[0]!;
  }

  get topRight(): number {
    return this.rights[0]!;
  }
}

/**
 * Open-addressing hash table (left id, right id) -> packed merge value, in typed arrays: much
 * faster to build and probe than a Map keyed by non-small-integer numbers.
 */
class MergeTable {
  private readonly mask: number;
  private readonly lefts: Int32Array;
  private readonly rights: Int32Array;
  private readonly values: Float64Array;

  constructor(count: number) {
    let size = 16;
    while (size < count * 2) size *= 2;
    this.mask = size - 1;
    this.lefts = new Int32Array(size).fill(-1);
    this.rights = new Int32Array(size);
    this.values = new Float64Array(size);
  }

  private slot(a: number, b: number): number {
    return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  set(a: number, b: number, value: number): void {
    let i = this.slot(a, b) & this.mask;
    while (this.lefts[i] !== -1 && !(this.lefts[i] === a && this.rights[i] === b)) i = (i + 1) & this.mask;
    this.lefts[i] = a;
    this.rights[i] = b;
    this.values[i] = value;
  }

  get(a: number, b: number): number {
    let i = this.slot(a, b) & this.mask;
    for (;;) {
      const left = this.lefts[i]!;
      if (left === -1) return NO_MERGE;
      if (left === a && this.rights[i] === b) return this.values[i]!;
      i = (i + 1) & this.mask;
    }
  }
}
