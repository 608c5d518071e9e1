/**
 * Grouped-query self-attention with rotary positions and an f32 KV cache, as in Llama and Qwen2:
 * q = x·Wqᵀ (+bq), k = x·Wkᵀ (+bk), v = x·Wvᵀ (+bv); RoPE on q and k; causal softmax attention
 * over the cached keys; out = o·Woᵀ. New keys and values are computed straight into the cache.
 */
import type { RmsNorm } from './rmsnorm.js';
import type { AttentionParams, Backend, RopeParams } from '../tensor/backend.js';
import { withSerialKernels } from '../tensor/index.js';
import type { KvCache } from '../models/model.js';
import { type Linear, linearForward, linearParameters } from './linear.js';

/**
 * Bytes of keys and values one attention call may read and still run on the calling thread:
 * the kernel otherwise wakes its thread pool, which costs microseconds on an idle machine and up
 * to a scheduler time slice on a busy one, more than the few microseconds of work of a decode
 * step over a short cache (the same budget as the native small-matmul rule: about 10 µs of one
 * thread's work).
 */
export const SERIAL_ATTENTION_BYTES = 256 * 1024;

/** Whether attention of `heads` heads over `keys` keys (K and V head sizes given) is small enough for the calling thread. */
export function attentionIsSmall(heads: number, keys: number, headDimK: number, headDimV: number): boolean {
  return heads * keys * (headDimK + headDimV) * 4 <= SERIAL_ATTENTION_BYTES;
}

/**
 * Runs `attend` for every segment (each one backend.attention call): the small ones together on
 * the calling thread (attentionIsSmall with its keys), the others with the kernel's thread pool.
 */
export function attendSegments<S extends { readonly startPos: number; readonly count: number }>(
  segments: readonly S[], heads: number, headDimK: number, headDimV: number, attend: (segment: S) => void,
): void {
  const small = (seg: S): boolean => attentionIsSmall(heads, seg.startPos + seg.count, headDimK, headDimV);
  if (segments.some(small)) {
    withSerialKernels(() => {
      for (const seg of segments) if (small(seg)) attend(seg);
    });
  }
  for (const seg of segments) if (!small(seg)) attend(seg);
}

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
  /** Qwen3: an RMSNorm of every query head and every key head [headDim], after the projections, before RoPE. */
  readonly qNorm?: RmsNorm;
  readonly kNorm?: RmsNorm;
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

  assign(source: KvCache): void {
    if (!(source instanceof DenseKvCache) || source.keys.length !== this.keys.length || source.kvDim !== this.kvDim) {
      throw new Error(`cannot copy a ${source.constructor.name} into a ${this.constructor.name} of ${this.keys.length} layers x ${this.kvDim}`);
    }
    const length = source.length;
    this.used = 0;
    this.reserve(length);
    const values = length * this.kvDim;
    source.keys.forEach((k, l) => this.keys[l]!.set(k.subarray(0, values)));
    source.values.forEach((v, l) => this.values[l]!.set(v.subarray(0, values)));
    this.used = length;
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
  k: Float32Array;
  v: Float32Array;
  mixed: Float32Array;
}

export function attentionScratch(config: AttentionConfig, m: number): AttentionScratch {
  const qDim = config.heads * config.headDim;
  const kvDim = config.kvHeads * config.headDim;
  return { q: new Float32Array(m * qDim), k: new Float32Array(m * kvDim), v: new Float32Array(m * kvDim), mixed: new Float32Array(m * qDim) };
}

/**
 * A run of consecutive rows of the activation matrix that belong to one sequence: rows
 * `row .. row + count - 1` sit at positions startPos .. startPos + count - 1 of that sequence and
 * attend to its own cache (`keys`/`values`, [tokens, kvHeads, headDim]).
 */
export interface AttentionSegment {
  readonly row: number;
  readonly count: number;
  readonly startPos: number;
  readonly keys: Float32Array;
  readonly values: Float32Array;
}

/**
 * out[m, hidden] = attention over x[m, hidden] at absolute positions `positions` (startPos ..
 * startPos + m - 1), writing keys/values into rows startPos .. startPos + m - 1 of `keys`/`values`.
 */
export function attentionForward(
  backend: Backend, out: Float32Array, x: Float32Array, m: number, startPos: number, positions: Int32Array,
  config: AttentionConfig, w: AttentionWeights, keys: Float32Array, values: Float32Array, scratch: AttentionScratch,
): void {
  attentionForwardSegments(backend, out, x, m, positions, config, w, [{ row: 0, count: m, startPos, keys, values }], scratch);
}

/**
 * Attention for several sequences at once: the q/k/v/o projections run once over all m rows of x
 * (each row rotated by its own entry of `positions`); each segment's new keys/values are written
 * into its own cache and its queries attend only to that cache.
 */
export function attentionForwardSegments(
  backend: Backend, out: Float32Array, x: Float32Array, m: number, positions: Int32Array,
  config: AttentionConfig, w: AttentionWeights, segments: readonly AttentionSegment[], scratch: AttentionScratch,
): void {
  const { heads, kvHeads, headDim } = config;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  for (const seg of segments) {
    if (seg.row < 0 || seg.count <= 0 || seg.row + seg.count > m) throw new Error(`attention segment rows [${seg.row}, ${seg.row + seg.count}) outside the ${m} rows`);
    if ((seg.startPos + seg.count) * kvDim > seg.keys.length || (seg.startPos + seg.count) * kvDim > seg.values.length) {
      throw new Error(`KV cache full: position ${seg.startPos + seg.count} exceeds capacity ${seg.keys.length / kvDim}`);
    }
  }
  const q = scratch.q.subarray(0, m * qDim);
  const k = scratch.k.subarray(0, m * kvDim);
  const v = scratch.v.subarray(0, m * kvDim);
  linearForward(backend, q, x, m, w.q);
  linearForward(backend, k, x, m, w.k);
  linearForward(backend, v, x, m, w.v);
  if (w.qNorm) backend.rmsNorm(q, q, w.qNorm.weight, m * heads, headDim, w.qNorm.eps);
  if (w.kNorm) backend.rmsNorm(k, k, w.kNorm.weight, m * kvHeads, headDim, w.kNorm.eps);
  const rope = (data: Float32Array, n: number): void => {
    const params: RopeParams = {
      tokens: m, heads: n, tokenStride: n * headDim, headStride: headDim, offset: 0, ropeDim: config.ropeDim,
      positions: positions.subarray(0, m), invFreq: config.invFreq, style: config.ropeStyle, attentionFactor: config.ropeAttentionFactor,
    };
    backend.rope(data, params);
  };
  rope(q, heads);
  rope(k, kvHeads);
  const mixed = scratch.mixed.subarray(0, m * qDim);
  for (const seg of segments) {
    seg.keys.set(k.subarray(seg.row * kvDim, (seg.row + seg.count) * kvDim), seg.startPos * kvDim);
    seg.values.set(v.subarray(seg.row * kvDim, (seg.row + seg.count) * kvDim), seg.startPos * kvDim);
  }
  const params: AttentionParams = {
    queries: 0, heads, kvHeads, headDimK: headDim, headDimV: headDim, startPos: 0, scale: config.scale,
    kTokenStride: kvDim, kHeadStride: headDim, vTokenStride: kvDim, vHeadStride: headDim,
  };
  const whole = segments.length === 1 && segments[0]!.row === 0 && segments[0]!.count === m;
  attendSegments(segments, heads, headDim, headDim, (seg) => {
    params.queries = seg.count;
    params.startPos = seg.startPos;
    const at = seg.row * qDim;
    const end = (seg.row + seg.count) * qDim;
    backend.attention(whole ? mixed : mixed.subarray(at, end), whole ? q : q.subarray(at, end), seg.keys, seg.values, params);
  });
  linearForward(backend, out, mixed, m, w.o);
}

export function attentionParameters(w: AttentionWeights): number {
  const norms = (w.qNorm?.weight.length ?? 0) + (w.kNorm?.weight.length ?? 0);
  return linearParameters(w.q) + linearParameters(w.k) + linearParameters(w.v) + linearParameters(w.o) + norms;
}
