/**
 * The dense decoder shared by Llama and Qwen2 (GGUF architectures `llama` and `qwen2`):
 * token embedding; per layer h += Attention(RMSNorm(h)), h += SwiGLU(RMSNorm(h)); final RMSNorm;
 * output projection (or the tied embedding). Qwen2 differs only by q/k/v biases and NEOX RoPE
 * (./qwen2.ts); Qwen3 has no biases but RMSNorms each query and key head before RoPE, and may
 * have a head size other than hidden / heads. GGUF llama files hold Q/K rows permuted by the converter so that adjacent pairs
 * rotate (ggml NORM = 'interleaved'); HF Llama checkpoints rotate half-split pairs ('neox').
 *
 * Weights stay in their storage dtype; all math goes through the backend, into scratch buffers
 * sized for the largest chunk seen and reused across calls.
 */
import type { Backend } from '../tensor/backend.js';
import { getBackend } from '../tensor/index.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { type BatchItem, type CausalLM, type KvCache, type ModelInfo, checkBatchItems } from './model.js';
import {
  type AttentionConfig, type AttentionScratch, type AttentionWeights, DenseKvCache,
  type AttentionSegment, attentionForwardSegments, attentionParameters, attentionScratch, checkAttentionShapes,
} from '../nn/attention.js';
import { type Linear, linear, linearForward } from '../nn/linear.js';
import { type RmsNorm, rmsNorm, rmsNormForward } from '../nn/rmsnorm.js';
import { type RopeScaling, ropeTables } from '../nn/rope.js';
import { type SwiGlu, type SwiGluScratch, swiGlu, swiGluForward, swiGluParameters, swiGluScratch } from '../nn/swiglu.js';
import type { ArchitectureSummary, ModelSource } from './load.js';

export type DenseArchitecture = 'llama' | 'qwen2' | 'qwen3';

export interface DenseConfig {
  readonly architecture: DenseArchitecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffSize: number;
  readonly rmsNormEps: number;
  readonly contextLength: number;
  readonly ropeDim: number;
  readonly ropeBase: number;
  readonly ropeScaling: RopeScaling;
  readonly ropeStyle: 'interleaved' | 'neox';
  /** q/k/v projections carry biases (Qwen2). */
  readonly attentionBias: boolean;
  /** Per-head RMSNorm of queries and keys before RoPE (Qwen3: attn_q_norm / attn_k_norm, [headDim]). */
  readonly qkNorm: boolean;
}

export interface DenseLayer {
  readonly attnNorm: RmsNorm;
  /** With Qwen3's per-head query / key norms (qNorm, kNorm) when config.qkNorm. */
  readonly attention: AttentionWeights;
  readonly ffnNorm: RmsNorm;
  readonly ffn: SwiGlu;
}

export interface DenseWeights {
  readonly embedding: WeightMatrix;
  readonly layers: readonly DenseLayer[];
  readonly outputNorm: RmsNorm;
  /** The output projection; the embedding itself when tied. */
  readonly output: WeightMatrix;
  readonly tiedOutput: boolean;
}

function positiveInt(value: number | undefined, what: string, origin: string): number {
  if (value === undefined || !Number.isInteger(value) || value <= 0) {
    throw new Error(`${origin}: ${what} must be a positive integer, got ${value === undefined ? 'nothing' : value}`);
  }
  return value;
}

/** Reads the `{arch}.*` GGUF keys (../shared/spec/formats-and-api.md §2.2-2.3). */
export function denseConfigFromGguf(source: ModelSource, architecture: DenseArchitecture): DenseConfig {
  const a = architecture;
  const origin = source.path;
  const num = (key: string) => source.number(`${a}.${key}`);
  const hiddenSize = positiveInt(num('embedding_length'), `${a}.embedding_length`, origin);
  const heads = positiveInt(num('attention.head_count'), `${a}.attention.head_count`, origin);
  const kvHeads = positiveInt(num('attention.head_count_kv') ?? heads, `${a}.attention.head_count_kv`, origin);
  const headDim = positiveInt(num('attention.key_length') ?? hiddenSize / heads, `${a}.attention.key_length (or embedding_length / head_count)`, origin);
  const valueLength = num('attention.value_length');
  if (valueLength !== undefined && valueLength !== headDim) {
    throw new Error(`${origin}: ${a}.attention.value_length ${valueLength} differs from key_length ${headDim} (not supported for ${a})`);
  }
  const ropeDim = positiveInt(num('rope.dimension_count') ?? headDim, `${a}.rope.dimension_count`, origin);
  const ropeBase = num('rope.freq_base') ?? 10000;
  const embedding = source.tensorShape('token_embd.weight');
  const vocabSize = positiveInt(num('vocab_size') ?? embedding?.[1], `${a}.vocab_size (or token_embd rows)`, origin);
  const contextLength = positiveInt(num('context_length'), `${a}.context_length`, origin);
  return {
    architecture: a,
    vocabSize,
    hiddenSize,
    layers: positiveInt(num('block_count'), `${a}.block_count`, origin),
    heads,
    kvHeads,
    headDim,
    ffSize: positiveInt(num('feed_forward_length'), `${a}.feed_forward_length`, origin),
    rmsNormEps: num('attention.layer_norm_rms_epsilon') ?? 1e-5,
    contextLength,
    ropeDim,
    ropeBase,
    ropeScaling: ggufRopeScaling(source, a, ropeDim, contextLength),
    ropeStyle: a === 'llama' ? 'interleaved' : 'neox',
    attentionBias: a === 'qwen2',
    qkNorm: a === 'qwen3',
  };
}

/**
 * GGUF rope scaling as llama.cpp reads it (llama-model.cpp load_hparams, llama-context.cpp):
 *  - `rope_freqs.weight` (llama3) divides each frequency; a linear factor, if any, applies on top;
 *  - `{arch}.rope.scaling.type` defaults to linear, so a factor without a type key scales linearly;
 *    the factor is `rope.scaling.factor`, else the legacy `rope.scale_linear`; 0 or 1 means none;
 *  - YaRN's original context defaults to context_length; its beta_fast / beta_slow stay 32 / 1 in a
 *    GGUF (llama.cpp reads `rope.scaling.yarn_beta_*` only for other architectures), while an HF
 *    checkpoint's config.json values (presented under those keys) are used as HF does, as is its
 *    cos/sin factor (transformers' attention_factor, presented as `rope.scaling.attn_factor`).
 */
function ggufRopeScaling(source: ModelSource, a: string, ropeDim: number, contextLength: number): RopeScaling {
  const type = source.string(`${a}.rope.scaling.type`) ?? 'linear';
  const factor = source.number(`${a}.rope.scaling.factor`) ?? source.number(`${a}.rope.scale_linear`) ?? 0;
  const scaled = type !== 'none' && factor !== 0 && factor !== 1;
  if (source.hasTensor('rope_freqs.weight')) {
    const factors = source.vector('rope_freqs.weight', ropeDim / 2);
    if (!scaled) return { type: 'freq_factors', factors };
    if (type !== 'linear') throw new Error(`${source.path}: rope scaling '${type}' together with rope_freqs.weight is not supported for ${a}`);
    return { type: 'freq_factors', factors: Float32Array.from(factors, (f) => f * factor) };
  }
  if (!scaled) return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor };
  if (type === 'yarn') {
    const hf = source.format === 'hf';
    const attentionFactor = hf ? source.number(`${a}.rope.scaling.attn_factor`) : undefined;
    return {
      type: 'yarn', factor, originalContext: source.number(`${a}.rope.scaling.original_context_length`) ?? contextLength,
      betaFast: (hf ? source.number(`${a}.rope.scaling.yarn_beta_fast`) : undefined) ?? 32,
      betaSlow: (hf ? source.number(`${a}.rope.scaling.yarn_beta_slow`) : undefined) ?? 1,
      ...(attentionFactor !== undefined ? { attentionFactor } : {}),
    };
  }
  throw new Error(`${source.path}: unsupported rope scaling type '${type}' for ${a}`);
}

/** Loads and shape-checks every tensor (GGUF names; see ModelSource for HF checkpoints). */
export function loadDenseWeights(config: DenseConfig, source: ModelSource): DenseWeights {
  const { hiddenSize: d, heads, kvHeads, headDim, ffSize, vocabSize, rmsNormEps: eps } = config;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const proj = (name: string, rows: number, cols: number, bias: boolean): Linear =>
    linear(source.matrix(`${name}.weight`, rows, cols), bias ? source.vector(`${name}.bias`, rows) : undefined);
  const layers: DenseLayer[] = [];
  for (let i = 0; i < config.layers; i++) {
    const p = `blk.${i}`;
    layers.push({
      attnNorm: rmsNorm(source.vector(`${p}.attn_norm.weight`, d), eps),
      attention: {
        q: proj(`${p}.attn_q`, qDim, d, config.attentionBias),
        k: proj(`${p}.attn_k`, kvDim, d, config.attentionBias),
        v: proj(`${p}.attn_v`, kvDim, d, config.attentionBias),
        o: proj(`${p}.attn_output`, d, qDim, false),
        ...(config.qkNorm ? {
          qNorm: rmsNorm(source.vector(`${p}.attn_q_norm.weight`, headDim), eps),
          kNorm: rmsNorm(source.vector(`${p}.attn_k_norm.weight`, headDim), eps),
        } : {}),
      },
      ffnNorm: rmsNorm(source.vector(`${p}.ffn_norm.weight`, d), eps),
      ffn: swiGlu(proj(`${p}.ffn_gate`, ffSize, d, false), proj(`${p}.ffn_up`, ffSize, d, false), proj(`${p}.ffn_down`, d, ffSize, false)),
    });
  }
  const embedding = source.matrix('token_embd.weight', vocabSize, d);
  const tiedOutput = !source.hasTensor('output.weight');
  return {
    embedding,
    layers,
    outputNorm: rmsNorm(source.vector('output_norm.weight', d), eps),
    output: tiedOutput ? embedding : source.matrix('output.weight', vocabSize, d),
    tiedOutput,
  };
}

interface Scratch {
  tokens: number;
  hidden: Float32Array;
  normed: Float32Array;
  delta: Float32Array;
  positions: Int32Array;
  attention: AttentionScratch;
  ffn: SwiGluScratch;
}

export interface DenseModelOptions {
  backend?: Backend;
  /** Most tokens run through the layers at once; longer inputs go in chunks. Default 512. */
  maxBatch?: number;
}

export class DenseModel implements CausalLM {
  readonly info: ModelInfo;
  readonly attention: AttentionConfig;
  private readonly backend: Backend;
  private readonly maxBatch: number;
  private scratch: Scratch | undefined;

  constructor(readonly config: DenseConfig, readonly weights: DenseWeights, options: DenseModelOptions = {}) {
    this.backend = options.backend ?? getBackend();
    this.maxBatch = options.maxBatch ?? 512;
    const rope = ropeTables(config.ropeDim, config.ropeBase, config.ropeScaling);
    this.attention = {
      heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, ropeDim: config.ropeDim,
      ropeStyle: config.ropeStyle, invFreq: rope.invFreq, ropeAttentionFactor: rope.attentionFactor,
      scale: 1 / Math.sqrt(config.headDim),
    };
    if (weights.layers.length !== config.layers) throw new Error(`model has ${weights.layers.length} layers, config says ${config.layers}`);
    for (const layer of weights.layers) checkAttentionShapes(this.attention, layer.attention, config.hiddenSize);
    let parameters = weights.embedding.rows * weights.embedding.cols + config.hiddenSize;
    if (!weights.tiedOutput) parameters += weights.output.rows * weights.output.cols;
    for (const layer of weights.layers) {
      parameters += 2 * config.hiddenSize + attentionParameters(layer.attention) + swiGluParameters(layer.ffn);
    }
    this.info = {
      architecture: config.architecture,
      vocabSize: config.vocabSize,
      contextLength: config.contextLength,
      parameterCount: parameters,
      cacheValuesPerToken: config.layers * 2 * config.kvHeads * config.headDim,
    };
  }

  newCache(capacity?: number): DenseKvCache {
    const cap = capacity ?? this.config.contextLength;
    if (cap > this.config.contextLength) throw new Error(`cache capacity ${cap} exceeds the model's context length ${this.config.contextLength}`);
    return new DenseKvCache(this.config.layers, cap, this.config.kvHeads * this.config.headDim);
  }

  private scratchFor(m: number): Scratch {
    if (this.scratch && this.scratch.tokens >= m) return this.scratch;
    const d = this.config.hiddenSize;
    const ffn = this.weights.layers[0]?.ffn;
    this.scratch = {
      tokens: m,
      hidden: new Float32Array(m * d),
      normed: new Float32Array(m * d),
      delta: new Float32Array(m * d),
      positions: new Int32Array(m),
      attention: attentionScratch(this.attention, m),
      ffn: ffn ? swiGluScratch(ffn, m) : { gate: new Float32Array(0), up: new Float32Array(0) },
    };
    return this.scratch;
  }

  private checkCache(cache: KvCache, what: string): DenseKvCache {
    if (!(cache instanceof DenseKvCache) || cache.keys.length !== this.config.layers || cache.kvDim !== this.config.kvHeads * this.config.headDim) {
      throw new Error(`${what}: the cache was not made by this model (use model.newCache())`);
    }
    return cache;
  }

  private checkTokens(tokens: Int32Array, what: string): void {
    const vocab = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!(t >= 0 && t < vocab)) throw new Error(`${what}: token id ${t} at index ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }

  forward(tokens: Int32Array, cache: KvCache, options: { allLogits?: boolean } = {}): Float32Array {
    const n = tokens.length;
    const vocab = this.config.vocabSize;
    const allLogits = options.allLogits ?? false;
    const logits = new Float32Array(allLogits ? n * vocab : vocab);
    this.runChunks(tokens, cache, 'forward', (hidden, start, m) => {
      if (allLogits) this.project(logits.subarray(start * vocab, (start + m) * vocab), hidden, m);
      else if (start + m === n) this.project(logits, hidden.subarray((m - 1) * this.config.hiddenSize), 1);
    });
    return logits;
  }

  hiddenStates(tokens: Int32Array, cache: KvCache): Float32Array {
    const d = this.config.hiddenSize;
    const out = new Float32Array(tokens.length * d);
    this.runChunks(tokens, cache, 'hiddenStates', (hidden, start, m) => {
      rmsNormForward(this.backend, out.subarray(start * d, (start + m) * d), hidden.subarray(0, m * d), m, this.weights.outputNorm);
    });
    return out;
  }

  /** Runs `tokens` into the cache in chunks of maxBatch rows; `chunk` gets each chunk's hidden states (before the final norm). */
  private runChunks(tokens: Int32Array, cache: KvCache, what: string, chunk: (hidden: Float32Array, start: number, m: number) => void): void {
    const c = this.checkCache(cache, what);
    const n = tokens.length;
    if (n === 0) throw new Error(`${what}: no tokens`);
    this.checkTokens(tokens, what);
    if (c.length + n > c.capacity) {
      throw new Error(`${what}: ${n} tokens after ${c.length} cached exceed the cache capacity ${c.capacity}`);
    }
    c.reserve(c.length + n);
    for (let start = 0; start < n; start += this.maxBatch) {
      const m = Math.min(this.maxBatch, n - start);
      chunk(this.runLayers(tokens.subarray(start, start + m), [{ cache: c, count: m }]).hidden, start, m);
    }
  }

  /**
   * Several sequences in one pass: all items' tokens go through every weight matmul together
   * (one read of the weights for the whole batch); each item attends to its own cache. Returns
   * each item's last-position logits [vocab] and advances each cache like forward would.
   */
  forwardBatch(items: readonly BatchItem[]): Float32Array[] {
    checkBatchItems(items, 'forwardBatch');
    const caches = items.map((item, i) => this.checkCache(item.cache, `forwardBatch item ${i}`));
    items.forEach((item, i) => {
      this.checkTokens(item.tokens, `forwardBatch item ${i}`);
      const c = caches[i]!;
      if (c.length + item.tokens.length > c.capacity) {
        throw new Error(`forwardBatch item ${i}: ${item.tokens.length} tokens after ${c.length} cached exceed the cache capacity ${c.capacity}`);
      }
    });
    const vocab = this.config.vocabSize;
    const d = this.config.hiddenSize;
    const logits = new Float32Array(items.length * vocab);
    const results = items.map((_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
    // Items that fit together within maxBatch tokens run as one pass; a longer item runs alone.
    let group: number[] = [];
    let groupTokens = 0;
    const flush = (): void => {
      if (group.length === 0) return;
      const ids = new Int32Array(groupTokens);
      let offset = 0;
      for (const i of group) {
        ids.set(items[i]!.tokens, offset);
        offset += items[i]!.tokens.length;
        caches[i]!.reserve(caches[i]!.length + items[i]!.tokens.length);
      }
      const s = this.runLayers(ids, group.map((i) => ({ cache: caches[i]!, count: items[i]!.tokens.length })));
      // One output projection for the group's last positions.
      const last = new Float32Array(group.length * d);
      offset = 0;
      group.forEach((i, k) => {
        offset += items[i]!.tokens.length;
        last.set(s.hidden.subarray((offset - 1) * d, offset * d), k * d);
      });
      const out = new Float32Array(group.length * vocab);
      this.project(out, last, group.length);
      group.forEach((i, k) => results[i]!.set(out.subarray(k * vocab, (k + 1) * vocab)));
      group = [];
      groupTokens = 0;
    };
    items.forEach((item, i) => {
      const n = item.tokens.length;
      if (n > this.maxBatch) {
        results[i]!.set(this.forward(item.tokens, caches[i]!));
        return;
      }
      if (groupTokens + n > this.maxBatch) flush();
      group.push(i);
      groupTokens += n;
    });
    flush();
    return results;
  }

  /**
   * Embeds `ids` (the segments' tokens one after another), runs every layer (appending each
   * segment to its cache, which must have room reserved) and leaves the final hidden states in
   * scratch.hidden.
   */
  private runLayers(ids: Int32Array, segments: readonly { cache: DenseKvCache; count: number }[]): Scratch {
    const b = this.backend;
    const m = ids.length;
    const d = this.config.hiddenSize;
    const s = this.scratchFor(m);
    const hidden = s.hidden.subarray(0, m * d);
    const normed = s.normed.subarray(0, m * d);
    const delta = s.delta.subarray(0, m * d);
    const positions = s.positions.subarray(0, m);
    let row = 0;
    for (const seg of segments) {
      for (let i = 0; i < seg.count; i++) positions[row + i] = seg.cache.length + i;
      row += seg.count;
    }
    if (row !== m) throw new Error(`runLayers: segments cover ${row} tokens, got ${m}`);
    b.embeddingGather(hidden, this.weights.embedding, ids);
    for (let l = 0; l < this.weights.layers.length; l++) {
      const layer = this.weights.layers[l]!;
      const attentionSegments: AttentionSegment[] = [];
      row = 0;
      for (const seg of segments) {
        attentionSegments.push({ row, count: seg.count, startPos: seg.cache.length, keys: seg.cache.keys[l]!, values: seg.cache.values[l]! });
        row += seg.count;
      }
      rmsNormForward(b, normed, hidden, m, layer.attnNorm);
      attentionForwardSegments(b, delta, normed, m, positions, this.attention, layer.attention, attentionSegments, s.attention);
      b.add(hidden, hidden, delta, m * d);
      rmsNormForward(b, normed, hidden, m, layer.ffnNorm);
      swiGluForward(b, delta, normed, m, layer.ffn, s.ffn);
      b.add(hidden, hidden, delta, m * d);
    }
    for (const seg of segments) seg.cache.advance(seg.count);
    return s;
  }

  /** logits[m, vocab] = output(RMSNorm(hidden[m, d])). */
  private project(out: Float32Array, hidden: Float32Array, m: number): void {
    const d = this.config.hiddenSize;
    const normed = this.scratchFor(m).normed.subarray(0, m * d);
    rmsNormForward(this.backend, normed, hidden.subarray(0, m * d), m, this.weights.outputNorm);
    linearForward(this.backend, out, normed, m, { weight: this.weights.output });
  }
}

/** Builds a llama model from a GGUF (or HF-mapped) source. */
export function loadLlama(source: ModelSource, options: DenseModelOptions & { ropeStyle?: 'interleaved' | 'neox' } = {}): DenseModel {
  const base = denseConfigFromGguf(source, 'llama');
  const config = options.ropeStyle ? { ...base, ropeStyle: options.ropeStyle } : base;
  return new DenseModel(config, loadDenseWeights(config, source), options);
}

/** `frugal info` lines for a dense model, from its metadata. */
export function describeDense(source: ModelSource, architecture: DenseArchitecture): ArchitectureSummary {
  const c = denseConfigFromGguf(source, architecture);
  const scaling = c.ropeScaling.type === 'none' ? '' : `, ${c.ropeScaling.type} scaling`;
  return {
    cacheValuesPerToken: c.layers * 2 * c.kvHeads * c.headDim,
    lines: [
      `layers: ${c.layers}, hidden ${c.hiddenSize}, feed-forward ${c.ffSize}, vocab ${c.vocabSize}`,
      `attention: ${c.heads} heads, ${c.kvHeads} kv heads, head dim ${c.headDim}${c.attentionBias ? ', q/k/v bias' : ''}${c.qkNorm ? ', q/k norm' : ''}`,
      `rope: ${c.ropeStyle}, dim ${c.ropeDim}, base ${c.ropeBase}${scaling}`,
    ],
  };
}
