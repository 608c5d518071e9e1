/**
 * Prefix cache: per model, a few KV caches kept between requests with the tokens they hold. A new
 * request takes the idle cache sharing the longest prefix with its prompt (only the rest is
 * computed: prompt_cache_hit_tokens), or a fresh one; least recently used caches are dropped
 * beyond the pool size.
 */
import type { CausalLM } from '../models/model.js';
import type { CacheSlot } from '../generate/engine.js';

export interface Lease {
  slot: CacheSlot;
  /** Prompt tokens already in the cache. */
  cached: number;
}

export class CachePool {
  private idle: { slot: CacheSlot; usedAt: number }[] = [];
  private clock = 0;

  constructor(
    private readonly model: CausalLM,
    /** Tokens each cache holds. */
    readonly capacity: number,
    /** Idle caches kept at most. */
    readonly maxIdle: number,
  ) {}

  /** An idle cache with the longest common prefix (at most prompt.length - 1 tokens), truncated to it. */
  acquire(prompt: Int32Array): Lease {
    let best = -1;
    let bestLength = -1;
    for (let i = 0; i < this.idle.length; i++) {
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
    this.idle.push({ slot, usedAt: ++this.clock });
    if (this.idle.length > this.maxIdle) {
      this.idle.sort((a, b) => a.usedAt - b.usedAt);
      this.idle.shift();
    }
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** Bytes held by the idle caches. */
  get idleBytes(): number {
    return this.idle.reduce((sum, e) => sum + e.slot.cache.bytes, 0);
  }

  clear(): void {
    this.idle = [];
  }
}
