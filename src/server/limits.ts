/**
 * Rate limits: token buckets per client (an API key, a user, or an IP address) for requests per
 * minute and tokens per minute, and a cap on concurrent generations per client. The maps are
 * bounded: buckets that refilled completely are dropped.
 */
import { ApiError } from './errors.js';

export interface LimitOptions {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrentPerClient?: number;
}

class Bucket {
  level: number;
  at: number;

  constructor(readonly capacity: number, now: number) {
    this.level = capacity;
    this.at = now;
  }

  refill(now: number): void {
    this.level = Math.min(this.capacity, this.level + ((now - this.at) / 60_000) * this.capacity);
    this.at = now;
  }

  /** Seconds until `amount` will be available. */
  wait(amount: number): number {
    return Math.ceil(((amount - this.level) / this.capacity) * 60);
  }
}

const MAX_CLIENTS = 10_000;

export class RateLimiter {
  private readonly requests = new Map<string, Bucket>();
  private readonly tokens = new Map<string, Bucket>();
  private readonly running = new Map<string, number>();

  constructor(readonly options: LimitOptions = {}) {}

  /**
   * Admits one request of `client` expected to use `tokens` tokens; throws 429 with Retry-After
   * otherwise. The returned function must be called when the generation ends (with the tokens
   * actually used, to settle the difference).
   */
  admit(client: string, tokens: number): (usedTokens?: number) => void {
    const now = Date.now();
    const { requestsPerMinute: rpm, tokensPerMinute: tpm, concurrentPerClient: cap } = this.options;
    const running = this.running.get(client) ?? 0;
    if (cap !== undefined && running >= cap) {
      throw new ApiError(429, `too many concurrent requests for this client (limit ${cap}); wait for one to finish`, null, 'rate_limit_exceeded', 1);
    }
    const reqBucket = rpm === undefined ? undefined : this.bucket(this.requests, client, rpm, now);
    const tokBucket = tpm === undefined ? undefined : this.bucket(this.tokens, client, tpm, now);
    if (reqBucket && reqBucket.level < 1) {
      throw new ApiError(429, `rate limit reached: ${rpm} requests per minute`, null, 'rate_limit_exceeded', reqBucket.wait(1));
    }
    const charge = Math.min(tokens, tokBucket?.capacity ?? tokens);
    if (tokBucket && tokBucket.level < charge) {
      throw new ApiError(429, `rate limit reached: ${tpm} tokens per minute`, null, 'rate_limit_exceeded', tokBucket.wait(charge));
    }
    if (reqBucket) reqBucket.level -= 1;
    if (tokBucket) tokBucket.level -= charge;
    this.running.set(client, running + 1);
    let released = false;
    return (used?: number) => {
      if (released) return;
      released = true;
      const n = (this.running.get(client) ?? 1) - 1;
      if (n <= 0) this.running.delete(client);
      else this.running.set(client, n);
      if (tokBucket && used !== undefined) tokBucket.level = Math.min(tokBucket.capacity, tokBucket.level + charge - used);
    };
  }

  runningFor(client: string): number {
    return this.running.get(client) ?? 0;
  }

  private bucket(map: Map<string, Bucket>, client: string, capacity: number, now: number): Bucket {
    let b = map.get(client);
    if (b) b.refill(now);
    else {
      if (map.size >= MAX_CLIENTS) {
        for (const [k, v] of map) {
          v.refill(now);
          if (v.level >= v.capacity) map.delete(k);
        }
        if (map.size >= MAX_CLIENTS) map.delete(map.keys().next().value!);
      }
      b = new Bucket(capacity, now);
      map.set(client, b);
    }
    return b;
  }
}
