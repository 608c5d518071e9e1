/**
 * Grouped-query self-attention with rotary positions and an f32 KV cache, as in Llama and Qwen2:
 * q = x·Wqᵀ (+bq), k = x·Wkᵀ (+bk), v = x·Wvᵀ (+bv); RoPE on q and k; causal softmax attention
 * over the cached keys; out = o·Woᵀ. New keys and values are computed straight into the cache.
 */
import type { Backend, RopeParams } from '../tensor/backend.js';
import type { KvCache } from '../models/model.js';
import { type Linear, linearForward, linearParameters } from './linear.js';

export interface AttentionConfig {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Rotated values per head (the first ropeDim of each head); headDim for Llama/Qwen2. */
  readonly ropeDim: number;
  /** 'interleaved' for GGUF llama (ggml NORM), 'neox' for Qwen2 and HF-layout Llama. */
  readonly ropeStyle: 'interleaved' | 'neox';
  readonly invFreq: Float32Array;
  readonly ropeAttentionFactor: number;
  /** Softmax scale, usually headDim^-0.5. */
  readonly scale: number;
}

export interface AttentionWeights {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
}

/** Checks that the projection shapes agree with the head layout and the hidden size. */
export function checkAttentionShapes(config: AttentionConfig, w: AttentionWeights, hidden: number): void {
  const qDim = config.heads * config.headDim;
  const kvDim = config.kvHeads * config.headDim;
  if (config.heads % config.kvHeads !== 0) throw new Error(`head count ${config.heads} is not a multiple of kv head count ${config.kvHeads}`);
  if (config.ropeDim > config.headDim || config.ropeDim % 2 !== 0) throw new Error(`rope dimension ${config.ropeDim} does not fit head dimension ${config.headDim}`);
  if (config.invFreq.length !== config.ropeDim / 2) throw new Error(`rope table has ${config.invFreq.length} frequencies, expected ${config.ropeDim / 2}`);
  const expect = (name: string, l: Linear, rows: number, cols: number): void => {
    if (l.weight.rows !== rows || l.weight.cols !== cols) {
      throw new Error(`attention ${name} weight is [${l.weight.rows}, ${l.weight.cols}], expected [${rows}, ${cols}]`);
    }
  };
  expect('q', w.q, qDim, hidden);
  expect('k', w.k, kvDim, hidden);
  expect('v', w.v, kvDim, hidden);
  expect('output', w.o, hidden, qDim);
}

/**
 * One sequence's keys and values for every layer: [layers][tokens, kvHeads, headDim] f32.
 * Storage grows (doubling, up to `capacity`) as tokens arrive, so a cache for a long context
 * costs memory only for the tokens it holds.
 */
export class DenseKvCache implements KvCache {
  readonly capacity: number;
  keys: Float32Array[];
  values: Float32Array[];
  private used = 0;
  private allocated: number;

  constructor(layers: number, capacity: number, readonly kvDim: number, initial = 256) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error(`cache capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.allocated = Math.min(capacity, initial);
    this.keys = Array.from({ length: layers }, () => new Float32Array(this.allocated * kvDim));
    this.values = Array.from({ length: layers }, () => new Float32Array(this.allocated * kvDim));
  }

  get length(): number {
    return this.used;
  }

  get bytes(): number {
    return this.keys.length * 2 * this.allocated * this.kvDim * 4;
  }

  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.used) {
      throw new Error(`cannot truncate a cache of ${this.used} tokens to ${length}`);
    }
    this.used = length;
  }

  /** Makes room for `tokens` tokens in total (growing the storage, keeping what is cached). */
  reserve(tokens: number): void {
    if (tokens > this.capacity) throw new Error(`KV cache full: ${tokens} tokens exceed capacity ${this.capacity}`);
    if (tokens <= this.allocated) return;
    const size = Math.min(this.capacity, Math.max(tokens, 2 * this.allocated));
    const grow = (old: Float32Array): Float32Array => {
      const next = new Float32Array(size * this.kvDim);
      next.set(old.subarray(0, this.used * this.kvDim));
      return next;
    };
    this.keys = this.keys.map(grow);
    this.values = this.values.map(grow);
    this.allocated = size;
  }

  /** Marks `count` more tokens as cached (after every layer has written them). */
  advance(count: number): void {
    if (this.used + count > this.allocated) throw new Error(`KV cache: ${this.used} + ${count} tokens exceed the reserved ${this.allocated}`);
    this.used += count;
  }
}

/** Scratch for `m` tokens. */
export interface AttentionScratch {
  q: Float32Array;
  mixed: Float32Array;
}

export function attentionScratch(config: AttentionConfig, m: number): AttentionScratch {
  const qDim = config.heads * config.headDim;
  return { q: new Float32Array(m * qDim), mixed: new Float32Array(m * qDim) };
}

/**
 * out[m, hidden] = attention over x[m, hidden] at absolute positions `positions` (startPos ..
 * startPos + m - 1), writing keys/values into rows startPos .. startPos + m - 1 of `keys`/`values`.
 */
export function attentionForward(
  backend: Backend, out: Float32Array, x: Float32Array, m: number, startPos: number, positions: Int32Array,
  config: AttentionConfig, w: AttentionWeights, keys: Float32Array, values: Float32Array, scratch: AttentionScratch,
): void {
  const { heads, kvHeads, headDim } = config;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  if ((startPos + m) * kvDim > keys.length) throw new Error(`KV cache full: position ${startPos + m} exceeds capacity ${keys.length / kvDim}`);
  const q = scratch.q.subarray(0, m * qDim);
  const k = keys.subarray(startPos * kvDim, (startPos + m) * kvDim);
  const v = values.subarray(startPos * kvDim, (startPos + m) * kvDim);
  linearForward(backend, q, x, m, w.q);
  linearForward(backend, k, x, m, w.k);
  linearForward(backend, v, x, m, w.v);
  const rope = (data: Float32Array, n: number): void => {
    const params: RopeParams = {
      tokens: m, heads: n, tokenStride: n * headDim, headStride: headDim, offset: 0, ropeDim: config.ropeDim,
      positions, invFreq: config.invFreq, style: config.ropeStyle, attentionFactor: config.ropeAttentionFactor,
    };
    backend.rope(data, params);
  };
  rope(q, heads);
  rope(k, kvHeads);
  const mixed = scratch.mixed.subarray(0, m * qDim);
  backend.attention(mixed, q, keys, values, {
    queries: m, heads, kvHeads, headDimK: headDim, headDimV: headDim, startPos, scale: config.scale,
    kTokenStride: kvDim, kHeadStride: headDim, vTokenStride: kvDim, vHeadStride: headDim,
  });
  linearForward(backend, out, mixed, m, w.o);
}

export function attentionParameters(w: AttentionWeights): number {
  return linearParameters(w.q) + linearParameters(w.k) + linearParameters(w.v) + linearParameters(w.o);
}
