/**
 * The prefix cache pools: the longest shared prefix is reused, the count per model holds, and the
 * byte budget shared by every model's pool drops the least recently used idle caches of any
 * model first (a cache bigger than the whole budget is not kept at all).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CausalLM } from '../../src/models/model.js';
import { CacheBudget, CachePool } from '../../src/server/cache-pool.js';
import { loadForServing, tinyModelFile } from './helpers.js';

let dir = '';
let model: CausalLM;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-cache-pool-'));
  model = loadForServing(tinyModelFile(dir, 256)).model;
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Leases a cache for `prompt`, fills it with the prompt (as a request would) and gives it back. */
function use(pool: CachePool, prompt: number[]): number {
  const lease = pool.acquire(Int32Array.from(prompt));
  const rest = Int32Array.from(prompt.slice(lease.cached));
  model.forward(rest, lease.slot.cache);
  lease.slot.tokens.push(...rest);
  pool.release(lease.slot);
  return lease.cached;
}

const prompt = (first: number, length: number): number[] => Array.from({ length }, (_, i) => 1 + ((first + i * 7) % 200));

test('a request reuses the idle cache with the longest shared prefix', () => {
  const pool = new CachePool(model, 256, 4);
  assert.equal(use(pool, prompt(0, 20)), 0);
  assert.equal(use(pool, prompt(50, 20)), 0);
  const again = [...prompt(0, 12), 9, 9, 9];
  assert.equal(use(pool, again), 12, 'the first 12 tokens come from the first cache');
  assert.equal(pool.idleCount, 2);
});

test('beyond the byte budget the least recently used idle caches of any pool are dropped', () => {
  const probe = new CachePool(model, 256, 8);
  use(probe, prompt(0, 16));
  const bytes = probe.idleBytes;
  assert.ok(bytes > 0);

  const budget = new CacheBudget(2 * bytes + bytes / 2);
  const a = new CachePool(model, 256, 8, budget);
  const b = new CachePool(model, 256, 8, budget);
  use(a, prompt(0, 16)); // oldest
  use(b, prompt(100, 16));
  assert.equal(budget.idleBytes, 2 * bytes);
  use(a, prompt(30, 16)); // a third cache: over budget, so the oldest (a's first) goes
  assert.equal(a.idleCount, 1);
  assert.equal(b.idleCount, 1);
  assert.ok(budget.idleBytes <= budget.maxBytes);
  assert.equal(use(a, prompt(0, 16)), 0, 'the dropped conversation is computed again');
  // that release dropped b's cache, now the least recently used of all
  assert.equal(b.idleCount, 0);
  assert.equal(a.idleCount, 2);
  assert.equal(use(a, [...prompt(30, 10), 5]), 10, 'the recently used caches stayed');
});

test('a budget of 0 keeps no idle cache; an unloaded model leaves the budget', () => {
  const none = new CacheBudget(0);
  const pool = new CachePool(model, 256, 8, none);
  use(pool, prompt(0, 8));
  assert.equal(pool.idleCount, 0);
  assert.equal(use(pool, prompt(0, 8)), 0);

  const budget = new CacheBudget(1 << 30);
  const gone = new CachePool(model, 256, 8, budget);
  use(gone, prompt(0, 8));
  gone.clear();
  assert.equal(budget.idleBytes, 0);
  assert.throws(() => new CacheBudget(Number.NaN), /byte count >= 0/);
});
