/**
 * Prefix cache: per model, a few KV caches kept between requests with the tokens they hold. A new
 * request takes the idle cache sharing the longest prefix with its prompt (only the rest is
 * computed: prompt_cache_hit_tokens), or a fresh one. Idle caches are kept up to a count per model
 * and, across every model's pool, up to a byte budget (CacheBudget): beyond either, the least
 * recently used idle caches are dropped.
 */
import type { CausalLM } from '../models/model.js';
import type { CacheSlot } from '../generate/engine.js';

export interface Lease {
  slot: CacheSlot;
  /** Prompt tokens already in the cache. */
  cached: number;
}

interface IdleSlot {
  slot: CacheSlot;
  usedAt: number;
}

/**
 * The byte budget the idle caches of all pools share (server option --cache-memory): after each
 * release, the least recently used idle caches of any pool are dropped until the idle caches
 * together hold at most maxBytes. Caches in use do not count.
 */
export class CacheBudget {
  private readonly pools = new Set<CachePool>();
  private clock = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes >= 0)) throw new Error(`the prompt cache budget must be a byte count >= 0, got ${maxBytes}`);
  }

  /** The next use stamp (one clock for every pool, so that least recently used is global). */
  stamp(): number {
    return ++this.clock;
  }

  join(pool: CachePool): void {
    this.pools.add(pool);
  }

  leave(pool: CachePool): void {
    this.pools.delete(pool);
  }

  /** Bytes held by the idle caches of every pool. */
  get idleBytes(): number {
    let total = 0;
    for (const pool of this.pools) total += pool.idleBytes;
    return total;
  }

  /** Drops least recently used idle caches (of any pool) until the budget holds. */
  trim(): void {
    let total = this.idleBytes;
    while (total > this.maxBytes) {
      let oldest: CachePool | undefined;
      let stamp = Infinity;
      for (const pool of this.pools) {
        const used = pool.oldestUse();
        if (used < stamp) {
          stamp = used;
          oldest = pool;
        }
      }
      if (!oldest) return;
      total -= oldest.dropOldest();
    }
  }
}

export class CachePool {
  private idle: IdleSlot[] = [];
  private clock = 0;

  constructor(
    private readonly model: CausalLM,
    /** Tokens each cache holds. */
    readonly capacity: number,
    /** Idle caches kept at most. */
    readonly maxIdle: number,
    /** The byte budget shared with other pools, if any. */
    private readonly budget?: CacheBudget,
  ) {
    budget?.join(this);
  }

  /**
   * An idle cache with the longest common prefix (at most prompt.length - 1 tokens), truncated to
   * it; with reusePrefix false, an empty one.
   */
  acquire(prompt: Int32Array, options: { reusePrefix?: boolean } = {}): Lease {
    let best = -1;
    let bestLength = -1;
    const candidates = options.reusePrefix === false ? 0 : this.idle.length;
    for (let i = 0; i < candidates; i++) {
      const tokens = this.idle[i]!.slot.tokens;
      const limit = Math.min(tokens.length, prompt.length - 1);
      let n = 0;
      while (n < limit && tokens[n] === prompt[n]) n++;
      if (n > bestLength) {
        best = i;
        bestLength = n;
      }
    }
    if (best >= 0 && bestLength > 0) {
      const { slot } = this.idle.splice(best, 1)[0]!;
      slot.cache.truncate(bestLength);
      slot.tokens.length = bestLength;
      return { slot, cached: bestLength };
    }
    // no useful prefix: recycle the least recently used idle cache, else allocate one
    if (this.idle.length >= this.maxIdle && this.idle.length > 0) {
      this.idle.sort((a, b) => a.usedAt - b.usedAt);
      const { slot } = this.idle.shift()!;
      slot.cache.truncate(0);
      slot.tokens.length = 0;
      return { slot, cached: 0 };
    }
    return { slot: { cache: this.model.newCache(this.capacity), tokens: [] }, cached: 0 };
  }

  /** Gives a cache back (its tokens must match what it holds; pass valid=false after a failure). */
  release(slot: CacheSlot, valid = true): void {
    if (!valid) {
      slot.cache.truncate(0);
      slot.tokens.length = 0;
    }
    this.idle.push({ slot, usedAt: this.budget ? this.budget.stamp() : ++this.clock });
    if (this.idle.length > this.maxIdle) this.dropOldest();
    this.budget?.trim();
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** Bytes held by the idle caches. */
  get idleBytes(): number {
    return this.idle.reduce((sum, e) => sum + e.slot.cache.bytes, 0);
  }

  /** The use stamp of its least recently used idle cache (Infinity when none is idle). */
  oldestUse(): number {
    return this.idle.reduce((least, e) => Math.min(least, e.usedAt), Infinity);
  }

  /** Drops its least recently used idle cache; returns the bytes it held (0 when none was idle). */
  dropOldest(): number {
    if (this.idle.length === 0) return 0;
    let at = 0;
    for (let i = 1; i < this.idle.length; i++) if (this.idle[i]!.usedAt < this.idle[at]!.usedAt) at = i;
    return this.idle.splice(at, 1)[0]!.slot.cache.bytes;
  }

  /** Drops every idle cache and leaves the shared budget (the model is unloaded). */
  clear(): void {
    this.idle = [];
    this.budget?.leave(this);
  }
}
