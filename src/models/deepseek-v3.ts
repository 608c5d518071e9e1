/**
 * DeepSeek-V3 / R1 (and V2 / V2-Lite): MLA attention, DeepSeekMoE feed-forward, optional MTP
 * module (../shared/spec/model-and-training.md §1-5, formats-and-api.md §2.4). GGUF arch `deepseek2`.
 *
 *   h = Emb(tokens)
 *   per layer: h += MLA(RMSNorm(h)); h += FFN(RMSNorm(h))   (dense SwiGLU for the first
 *              first_k_dense_replace layers, MoE after)
 *   logits = lm_head(RMSNorm(h))
 *
 * This file holds the config, the model and the GGUF loader; the HF safetensors loader is in
 * ./deepseek-v3-hf.ts.
 */
import { smallMatmul } from '../nn/small-matmul.js';
import { type GgufFile, ggufBool, ggufNumber, ggufString } from '../formats/gguf.js';
import { FormatError } from '../formats/format-error.js';
import {
  type MlaConfig, type MlaFusedWeights, type MlaMode, type MlaWeights, type MlaSegment, MlaLayerCache, fuseMlaWeights, mergedKvUp, splitKvB,
  mhaCacheWidth, mlaCacheWidth, mlaFusedWeightValues, mlaForwardFused, mlaForwardSegments,
} from '../nn/mla.js';
import {
  type FfnWeights, type MoeFusedWeights, type MoeWeights, type RouterConfig, ffnForward, fuseMoe, moeForward, moeForwardFused, moeFusedValues,
} from '../nn/moe.js';
import { mlaForwardBatch } from '../nn/mla-batch.js';
import { type MtpWeights, mtpForwardStates } from '../nn/mtp.js';
import { ScratchBuffers } from '../nn/scratch.js';
import { type YarnScaling, yarnGetMscale, yarnInvFreq, baseInvFreqF64 } from '../nn/rope.js';
import type { Backend } from '../tensor/backend.js';
import { getBackend, withSerialKernels } from '../tensor/index.js';
import { byteSize } from '../tensor/dtype.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { type BatchItem, type CausalLM, type KvCache, type ModelInfo, checkBatchItems } from './model.js';

export interface DeepseekConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  /** Dense FFN width (first_k_dense_replace layers). */
  readonly intermediateSize: number;
  /** Width of one routed expert. */
  readonly moeIntermediateSize: number;
  /** Main decoder layers (MTP blocks not included). */
  readonly numLayers: number;
  readonly heads: number;
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly qkNopeHeadDim: number;
  readonly qkRopeHeadDim: number;
  readonly vHeadDim: number;
  readonly nRoutedExperts: number;
  readonly nSharedExperts: number;
  readonly firstKDenseReplace: number;
  readonly router: RouterConfig;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly yarn?: YarnScaling;
  /** Factor on rope cos/sin (1 for DeepSeek-V3 and V2-Lite). */
  readonly ropeAttentionFactor: number;
  /** qk_head_dim^-0.5 · mscale². */
  readonly softmaxScale: number;
  readonly contextLength: number;
  /** MTP modules (num_nextn_predict_layers). */
  readonly nextnLayers: number;
}

export interface DeepseekLayerWeights {
  readonly attnNorm: Float32Array;
  readonly attn: MlaWeights;
  readonly ffnNorm: Float32Array;
  readonly dense?: FfnWeights;
  readonly moe?: MoeWeights;
}

export interface DeepseekMtpWeights extends MtpWeights {
  readonly block: DeepseekLayerWeights;
}

export interface DeepseekWeights {
  readonly embed: WeightMatrix;
  readonly layers: readonly DeepseekLayerWeights[];
  readonly norm: Float32Array;
  readonly output: WeightMatrix;
  readonly mtp: readonly DeepseekMtpWeights[];
}

export interface DeepseekOptions {
  /** 'absorbed' (default, decoding form) or 'plain' (materialised per-head K/V). */
  readonly attention?: MlaMode;
  readonly backend?: Backend;
}

export interface DeepseekLoadOptions extends DeepseekOptions {
  /** Load the MTP module when the file has one (default true). */
  readonly loadMtp?: boolean;
}

export function mlaConfigOf(cfg: DeepseekConfig): MlaConfig {
  return {
    hiddenSize: cfg.hiddenSize, heads: cfg.heads, qLoraRank: cfg.qLoraRank, kvLoraRank: cfg.kvLoraRank,
    qkNopeHeadDim: cfg.qkNopeHeadDim, qkRopeHeadDim: cfg.qkRopeHeadDim, vHeadDim: cfg.vHeadDim,
    rmsNormEps: cfg.rmsNormEps,
    invFreq: cfg.yarn ? yarnInvFreq(cfg.qkRopeHeadDim, cfg.ropeTheta, cfg.yarn) : Float32Array.from(baseInvFreqF64(cfg.qkRopeHeadDim, cfg.ropeTheta)),
    ropeAttentionFactor: cfg.ropeAttentionFactor, softmaxScale: cfg.softmaxScale,
  };
}

/** A sequence's cache: per layer, (kv_lora_rank + qk_rope_head_dim) f32 values per token. */
export class DeepseekCache implements KvCache {
  length = 0;
  readonly layers: MlaLayerCache[];
  constructor(readonly capacity: number, layers: number, cfg: DeepseekConfig) {
    this.layers = Array.from({ length: layers }, () => new MlaLayerCache(capacity, cfg));
  }
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) throw new Error(`cannot truncate a cache of ${this.length} tokens to ${length}`);
    this.length = length;
  }
  get bytes(): number {
    return this.layers.reduce((sum, l) => sum + l.rows.byteLength, 0);
  }
  assign(source: KvCache): void {
    if (!(source instanceof DeepseekCache) || source.layers.length !== this.layers.length) {
      throw new Error(`cannot copy a ${source.constructor.name} into a ${this.constructor.name} of ${this.layers.length} layers`);
    }
    const length = source.length;
    if (length > this.capacity) throw new Error(`cannot copy ${length} cached tokens into a cache of capacity ${this.capacity}`);
    source.layers.forEach((layer, l) => {
      const target = this.layers[l]!;
      if (target.width !== layer.width) throw new Error(`cannot copy a cache: layer ${l} stores ${layer.width} values per token, this one ${target.width}`);
      target.reserve(length);
      target.rows.set(layer.rows.subarray(0, length * layer.width));
    });
    this.length = length;
  }
  /** Values stored per token in each layer. */
  get valuesPerTokenPerLayer(): number {
    return this.layers[0]?.width ?? 0;
  }
}

export interface DeepseekDescription {
  readonly architecture: 'deepseek2';
  readonly layers: number;
  readonly denseLayers: number;
  readonly moeLayers: number;
  readonly hiddenSize: number;
  readonly heads: number;
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly routedExperts: number;
  readonly sharedExperts: number;
  readonly expertsPerToken: number;
  readonly mlaCacheValuesPerTokenPerLayer: number;
  readonly mhaCacheValuesPerTokenPerLayer: number;
  readonly parameters: number;
  readonly activeParametersPerToken: number;
  readonly mtpModules: number;
  readonly mtpParameters: number;
  /** Human-readable lines for `frugal info`. */
  readonly lines: readonly string[];
}

function elementsOf(w: WeightMatrix | Float32Array | undefined): number {
  if (!w) return 0;
  return w instanceof Float32Array ? w.length : w.rows * w.cols;
}

function ffnParams(f: FfnWeights | undefined): number {
  return f ? elementsOf(f.gate) + elementsOf(f.up) + elementsOf(f.down) : 0;
}

function attnParams(a: MlaWeights): number {
  return [a.qA, a.qANorm, a.qB, a.q, a.kvA, a.kvANorm, a.o].reduce((s, w) => s + elementsOf(w), 0)
    + a.kUpT.reduce((s, w) => s + elementsOf(w), 0) + a.vUp.reduce((s, w) => s + elementsOf(w), 0);
}

/** [all parameters, parameters active for one token] of a decoder block. */
function layerParams(l: DeepseekLayerWeights, topK: number): [number, number] {
  const common = elementsOf(l.attnNorm) + elementsOf(l.ffnNorm) + attnParams(l.attn) + ffnParams(l.dense);
  if (!l.moe) return [common, common];
  const shared = elementsOf(l.moe.router) + elementsOf(l.moe.bias) + ffnParams(l.moe.shared);
  const experts = l.moe.experts.map(ffnParams);
  const all = experts.reduce((a, b) => a + b, 0);
  const perExpert = experts.length ? all / experts.length : 0;
  return [common + shared + all, common + shared + topK * perExpert];
}

/**
 * Largest fused MLA weights, and largest stacked MoE copies, kept per layer (f32 values, 16 MiB
 * each): they pay off where kernel calls, not weight reads, bound a decode step (small models); a
 * large model keeps only its own weights.
 */
const FUSED_WEIGHT_VALUES = 4 << 20;

/**
 * Most rows that take the stacked MoE weights: decode steps, batches and prompt chunks up to 64
 * rows (past that, a matmul costs its arithmetic, not its call). A 50-token prompt of the shipped
 * model then runs its experts in one moeExperts call per layer instead of one matmul pair per
 * expert and one axpy per token and expert (300 calls): 3.3 -> 2.6 ms.
 */
const STACKED_FFN_TOKENS = 64;

/**
 * Largest stacked MoE matrix (f32 values, 256 KiB: what the native matvec still runs on one thread;
 * a larger one would go to the thread pool, which costs more than the call it saves).
 */
const STACKED_MATRIX_VALUES = 64 << 10;

/**
 * A batched step of at most SERIAL_BATCH_ROWS rows of a model of at most SERIAL_BATCH_PARAMETERS
 * parameters runs every kernel on the calling thread: each of its matmuls is then a few µs of one
 * thread's work, less than waking the pool costs (and on a busy machine a woken worker that gets
 * descheduled holds the caller up for a time slice). Measured on the shipped 1.6M-parameter model,
 * 8 rows: the 1024-row head 25 µs serial against 24 µs with the pool on an idle machine, 200 µs
 * with the pool under load. Prompts too, up to 64 rows (a 2-vCPU AVX2 VM, interleaved): 26 rows
 * 972 µs serial against 1,186 with the pool, 33 rows 1,251 / 1,328, 64 rows 2,058 / 2,211; at
 * 128 rows the pool wins (4,739 / 5,759).
 */
const SERIAL_BATCH_ROWS = 64;
const SERIAL_BATCH_PARAMETERS = 4_000_000;

export class DeepseekModel implements CausalLM {
  readonly info: ModelInfo;
  readonly mla: MlaConfig;
  readonly attention: MlaMode;
  private readonly backend: Backend;
  private readonly plainKvUp: (Float32Array | undefined)[];
  /** Work buffers of forward / forwardBatch / mtpForward (never handed out). */
  private readonly scratch = new ScratchBuffers();
  /** Per layer (MTP blocks after the main ones): fused MLA weights, null where not used; built on first use. */
  private readonly fusedWeights: (MlaFusedWeights | null | undefined)[];
  /** Per layer, like fusedWeights: the MoE layer's stacked weights. */
  private readonly stackedFfn: (MoeFusedWeights | null | undefined)[];

  constructor(readonly config: DeepseekConfig, readonly weights: DeepseekWeights, options: DeepseekOptions = {}) {
    if (weights.layers.length !== config.numLayers) {
      throw new Error(`DeepSeek model has ${weights.layers.length} layers of weights, config says ${config.numLayers}`);
    }
    this.backend = options.backend ?? getBackend();
    this.attention = options.attention ?? 'absorbed';
    this.mla = mlaConfigOf(config);
    this.plainKvUp = new Array(config.numLayers + weights.mtp.length).fill(undefined);
    this.fusedWeights = new Array(config.numLayers + weights.mtp.length).fill(undefined);
    this.stackedFfn = new Array(config.numLayers + weights.mtp.length).fill(undefined);
    this.info = {
      architecture: 'deepseek2',
      vocabSize: weights.output.rows,
      contextLength: config.contextLength,
      parameterCount: this.describe().parameters,
      cacheValuesPerToken: config.numLayers * mlaCacheWidth(config),
    };
  }

  newCache(capacity = this.config.contextLength): DeepseekCache {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`cache capacity must be a positive integer, got ${capacity}`);
    return new DeepseekCache(Math.min(capacity, this.config.contextLength), this.config.numLayers, this.config);
  }

  /** A cache for the MTP module's own decoder block. */
  newMtpCache(capacity = this.config.contextLength): DeepseekCache {
    if (this.weights.mtp.length === 0) throw new Error('this model has no MTP module');
    return new DeepseekCache(Math.min(capacity, this.config.contextLength), 1, this.config);
  }

  forward(tokens: Int32Array, cache: KvCache, options: { allLogits?: boolean } = {}): Float32Array {
    return this.forwardWithHidden(tokens, cache, options).logits;
  }

  /**
   * forward, also returning the final-normalized hidden states (all positions when allLogits,
   * else the last) that the MTP module consumes.
   */
  forwardWithHidden(tokens: Int32Array, cache: KvCache, options: { allLogits?: boolean } = {}): { logits: Float32Array; hidden: Float32Array } {
    return this.serialWhenSmall(tokens.length, () => this.forwardOn(tokens, cache, options));
  }

  /**
   * Runs a step of `rows` rows with every kernel on the calling thread when the model is small
   * enough (SERIAL_BATCH_ROWS, SERIAL_BATCH_PARAMETERS): a decode step, a speculative verify and an
   * MTP draft of the shipped model then pay no pool wake-up (its 1024-row head went to the pool).
   */
  private serialWhenSmall<T>(rows: number, body: () => T): T {
    return rows <= SERIAL_BATCH_ROWS && this.info.parameterCount <= SERIAL_BATCH_PARAMETERS ? withSerialKernels(body) : body();
  }

  hiddenStates(tokens: Int32Array, cache: KvCache): Float32Array {
    return this.serialWhenSmall(tokens.length, () => this.statesOn(tokens, cache, tokens.length));
  }

  private forwardOn(tokens: Int32Array, cache: KvCache, options: { allLogits?: boolean }): { logits: Float32Array; hidden: Float32Array } {
    const rows = options.allLogits ? tokens.length : 1;
    const hidden = this.statesOn(tokens, cache, rows);
    const logits = new Float32Array(rows * this.info.vocabSize);
    smallMatmul(this.backend, logits, hidden, rows, this.weights.output);
    return { logits, hidden };
  }

  /** Runs `tokens` into the cache; the final-normalized hidden states of the last `rows` of them. */
  private statesOn(tokens: Int32Array, cache: KvCache, rows: number): Float32Array {
    const c = this.checkCache(cache, this.config.numLayers);
    const n = tokens.length;
    if (n === 0) throw new Error('forward needs at least one token');
    const d = this.config.hiddenSize;
    this.checkTokens(tokens);
    if (c.length + n > c.capacity) throw new Error(`cache full: ${c.length} + ${n} tokens exceed its capacity of ${c.capacity}`);
    const x = this.scratch.f32('model.x', n * d);
    this.backend.embeddingGather(x, this.weights.embed, tokens);
    for (let l = 0; l < this.config.numLayers; l++) this.blockOne(l, this.weights.layers[l]!, x, n, c.length, c.layers[l]!);
    c.length += n;
    const hidden = x.slice((n - rows) * d);
    this.backend.rmsNorm(hidden, hidden, this.weights.norm, rows, d, this.config.rmsNormEps);
    return hidden;
  }

  /**
   * MTP draft logits [n, vocab] (module 0): hidden = the main model's final-normalized states
   * [n, hidden] at n consecutive positions, nextTokens = the tokens following them. Appends to mtpCache.
   */
  mtpForward(hidden: Float32Array, nextTokens: Int32Array, mtpCache: KvCache): Float32Array {
    return this.mtpForwardWithHidden(hidden, nextTokens, mtpCache, { allLogits: true }).logits;
  }

  /**
   * mtpForward, also returning the module's output states (after shared_head.norm), which
   * chained drafting feeds back as the next `hidden`. With allLogits (default): logits [n, vocab]
   * and states [n, hidden] of every row; else of the last row only ([vocab], [hidden]): every row
   * still enters the MTP cache, but the module's single block then runs its queries, FFN and head
   * for the last row alone (a drafter needs no more, and the result is the same).
   */
  mtpForwardWithHidden(hidden: Float32Array, nextTokens: Int32Array, mtpCache: KvCache, options: { allLogits?: boolean } = { allLogits: true }): { logits: Float32Array; hidden: Float32Array } {
    const mtp = this.weights.mtp[0];
    if (!mtp) throw new Error('this model has no MTP module');
    const c = this.checkCache(mtpCache, 1);
    const n = nextTokens.length;
    this.checkTokens(nextTokens);
    if (c.length + n > c.capacity) throw new Error(`MTP cache full: ${c.length} + ${n} tokens exceed its capacity of ${c.capacity}`);
    const index = this.config.numLayers;
    const out = this.serialWhenSmall(n, () => mtpForwardStates({
      backend: this.backend, hiddenSize: this.config.hiddenSize, rmsNormEps: this.config.rmsNormEps,
      embed: this.weights.embed, outputNorm: this.weights.norm, output: this.weights.output,
      block: (x, tokens, outRows) => this.blockOne(index, mtp.block, x, tokens, c.length, c.layers[0]!, outRows),
      scratch: this.scratch,
    }, mtp, hidden, nextTokens, options.allLogits === false ? 1 : n));
    c.length += n;
    return { logits: out.logits, hidden: out.states };
  }

  /**
   * Several sequences in one pass: all items' tokens share every weight matmul (MoE routed per
   * token), each item attends to its own cache. Returns each item's last-position logits [vocab]
   * and advances each cache like forward would.
   */
  forwardBatch(items: readonly BatchItem[]): Float32Array[] {
    checkBatchItems(items, 'forwardBatch');
    const rows = items.reduce((sum, item) => sum + item.tokens.length, 0);
    const serial = rows <= SERIAL_BATCH_ROWS && this.info.parameterCount <= SERIAL_BATCH_PARAMETERS;
    return serial ? withSerialKernels(() => this.forwardBatchOn(items)) : this.forwardBatchOn(items);
  }

  private forwardBatchOn(items: readonly BatchItem[]): Float32Array[] {
    const caches = items.map((item, i) => {
      const c = this.checkCache(item.cache, this.config.numLayers);
      this.checkTokens(item.tokens);
      if (c.length + item.tokens.length > c.capacity) {
        throw new Error(`forwardBatch item ${i}: cache full: ${c.length} + ${item.tokens.length} tokens exceed its capacity of ${c.capacity}`);
      }
      return c;
    });
    const d = this.config.hiddenSize;
    const vocab = this.info.vocabSize;
    const n = items.reduce((sum, item) => sum + item.tokens.length, 0);
    const ids = new Int32Array(n);
    const rows: number[] = [];
    let row = 0;
    for (const item of items) {
      rows.push(row);
      ids.set(item.tokens, row);
      row += item.tokens.length;
    }
    const x = this.scratch.f32('model.x', n * d);
    this.backend.embeddingGather(x, this.weights.embed, ids);
    const segments = items.map((item, i) => ({ row: rows[i]!, count: item.tokens.length, startPos: caches[i]!.length, cache: caches[i]!.layers[0]! }));
    for (let l = 0; l < this.config.numLayers; l++) {
      segments.forEach((segment, i) => { segment.cache = caches[i]!.layers[l]!; });
      this.blockBatch(l, this.weights.layers[l]!, x, n, segments);
    }
    items.forEach((item, i) => { caches[i]!.length += item.tokens.length; });
    const last = this.scratch.f32('model.last', items.length * d);
    items.forEach((item, i) => last.set(x.subarray((rows[i]! + item.tokens.length - 1) * d, (rows[i]! + item.tokens.length) * d), i * d));
    this.backend.rmsNorm(last, last, this.weights.norm, items.length, d, this.config.rmsNormEps);
    const logits = new Float32Array(items.length * vocab);
    smallMatmul(this.backend, logits, last, items.length, this.weights.output);
    return items.map((_, i) => logits.subarray(i * vocab, (i + 1) * vocab));
  }

  /**
   * block() for forwardBatch's rows of several sequences: absorbed attention through
   * mlaForwardBatch (fewer kernel calls), with the layer's fused weights when forward uses them.
   */
  private blockBatch(index: number, layer: DeepseekLayerWeights, x: Float32Array, tokens: number, segments: readonly MlaSegment[]): void {
    if (this.attention !== 'absorbed') return this.block(index, layer, x, tokens, segments);
    const fused = this.fusedWeightsOf(index, layer) ?? undefined;
    this.residualBlock(index, layer, x, tokens, (h) => mlaForwardBatch(this.backend, this.mla, layer.attn, h, tokens, segments, this.scratch, fused));
  }

  /**
   * block() for `tokens` rows of ONE sequence at positions startPos.. (forward and the MTP
   * module), with the fused MLA weights when the layer has them (mlaForwardFused). Every row
   * enters the cache; with outRows < tokens only the last outRows rows of x are sure to be
   * brought through the block (what a last layer needs when only its last outputs are read).
   */
  private blockOne(index: number, layer: DeepseekLayerWeights, x: Float32Array, tokens: number, startPos: number, cache: MlaLayerCache, outRows = tokens): void {
    const fused = this.fusedWeightsOf(index, layer);
    if (!fused) return this.block(index, layer, x, tokens, [{ row: 0, count: tokens, startPos, cache }]);
    this.residualBlock(index, layer, x, tokens, (h) => mlaForwardFused(this.backend, this.mla, layer.attn, fused, h, tokens, startPos, cache, this.scratch, outRows), outRows);
  }

  /** The fused MLA weights of a layer (absorbed attention, f32 weights, small enough), built on first use; null when not used. */
  private fusedWeightsOf(index: number, layer: DeepseekLayerWeights): MlaFusedWeights | null {
    let fused = this.fusedWeights[index];
    if (fused === undefined) {
      const values = this.attention === 'absorbed' ? mlaFusedWeightValues(this.mla, layer.attn) : undefined;
      const fits = values !== undefined && values <= FUSED_WEIGHT_VALUES;
      fused = this.fusedWeights[index] = fits ? fuseMlaWeights(this.backend, this.mla, layer.attn) : null;
    }
    return fused;
  }

  /** One pre-norm decoder block, in place on x [tokens, hidden]; each segment's rows attend to its own cache. */
  private block(index: number, layer: DeepseekLayerWeights, x: Float32Array, tokens: number, segments: readonly MlaSegment[]): void {
    const kvUp = this.attention === 'plain' ? (this.plainKvUp[index] ??= mergedKvUp(this.backend, layer.attn, this.mla)) : undefined;
    this.residualBlock(index, layer, x, tokens, (h) => mlaForwardSegments(this.backend, this.mla, layer.attn, h, tokens, segments, this.attention, kvUp, this.scratch));
  }

  /**
   * The frame every block variant shares, in place on x [tokens, hidden]: h = RMSNorm(x), then
   * x += attend(h) and x += FFN(RMSNorm(x)) over the last outRows rows (attend returns those rows).
   */
  private residualBlock(index: number, layer: DeepseekLayerWeights, x: Float32Array, tokens: number, attend: (h: Float32Array) => Float32Array, outRows = tokens): void {
    const b = this.backend;
    const d = this.config.hiddenSize;
    const h = this.scratch.f32('block.h', tokens * d);
    b.rmsNorm(h, x, layer.attnNorm, tokens, d, this.config.rmsNormEps);
    const a = attend(h);
    const xs = outRows === tokens ? x : x.subarray((tokens - outRows) * d, tokens * d);
    b.add(xs, xs, a, outRows * d);
    this.feedForward(index, layer, xs, outRows === tokens ? h : h.subarray(0, outRows * d), outRows);
  }

  /** The block's second half, in place on x [tokens, hidden]: x += FFN(RMSNorm(x)), h a work buffer of the same size. */
  private feedForward(index: number, layer: DeepseekLayerWeights, x: Float32Array, h: Float32Array, tokens: number): void {
    const b = this.backend;
    const d = this.config.hiddenSize;
    b.rmsNorm(h, x, layer.ffnNorm, tokens, d, this.config.rmsNormEps);
    const stacked = tokens <= STACKED_FFN_TOKENS ? this.stackedFfnOf(index, layer) : null;
    let f: Float32Array;
    if (layer.moe) {
      f = stacked ? moeForwardFused(b, this.config.router, layer.moe, stacked, h, tokens, this.scratch) : moeForward(b, this.config.router, layer.moe, h, tokens, this.scratch);
    } else if (layer.dense) {
      f = ffnForward(b, layer.dense, h, tokens, this.scratch);
    } else {
      throw new Error(`layer ${index} has neither a dense FFN nor experts`);
    }
    b.add(x, x, f, tokens * d);
  }

  /**
   * The stacked weights of a MoE layer (moe.ts: f32, each stacked matrix at most
   * STACKED_MATRIX_VALUES), built on first use; null when not used. A dense FFN is not stacked: its
   * matrices are already large enough that one call more costs nothing measurable.
   */
  private stackedFfnOf(index: number, layer: DeepseekLayerWeights): MoeFusedWeights | null {
    let stacked = this.stackedFfn[index];
    if (stacked === undefined) {
      const moe = layer.moe;
      const values = moe ? moeFusedValues(moe) : undefined;
      const largest = moe ? Math.max(moe.router.rows + 2 * (moe.shared?.gate.rows ?? 0), ...moe.experts.map((e) => 2 * e.gate.rows)) * moe.router.cols : 0;
      const fits = moe !== undefined && values !== undefined && values <= FUSED_WEIGHT_VALUES && largest <= STACKED_MATRIX_VALUES;
      stacked = this.stackedFfn[index] = fits ? fuseMoe(this.backend, moe) : null;
    }
    return stacked;
  }

  private checkTokens(tokens: Int32Array): void {
    for (const t of tokens) {
      if (t < 0 || t >= this.weights.embed.rows) throw new Error(`token id ${t} outside the vocabulary of ${this.weights.embed.rows}`);
    }
  }

  private checkCache(cache: KvCache, layers: number): DeepseekCache {
    if (!(cache instanceof DeepseekCache) || cache.layers.length !== layers || cache.layers[0]!.width !== mlaCacheWidth(this.config)) {
      throw new Error('this cache was not made by this DeepSeek model (use model.newCache() / newMtpCache())');
    }
    return cache;
  }

  describe(): DeepseekDescription {
    const cfg = this.config;
    const w = this.weights;
    let all = elementsOf(w.embed) + elementsOf(w.norm) + elementsOf(w.output);
    let active = all;
    for (const l of w.layers) {
      const [a, b] = layerParams(l, cfg.router.topK);
      all += a;
      active += b;
    }
    let mtpParameters = 0;
    for (const m of w.mtp) {
      mtpParameters += layerParams(m.block, cfg.router.topK)[0] + elementsOf(m.enorm) + elementsOf(m.hnorm) + elementsOf(m.ehProj)
        + elementsOf(m.headNorm) + elementsOf(m.head) + elementsOf(m.embed);
    }
    const mla = mlaCacheWidth(cfg);
    const mha = mhaCacheWidth(cfg);
    const moeLayers = w.layers.filter((l) => l.moe).length;
    const fmt = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${n}`);
    const lines = [
      `architecture: deepseek2 (MLA + DeepSeekMoE${w.mtp.length ? ' + MTP' : ''})`,
      `layers: ${cfg.numLayers} (${cfg.numLayers - moeLayers} dense, ${moeLayers} MoE), hidden ${cfg.hiddenSize}, heads ${cfg.heads}`,
      `MLA: q_lora_rank ${cfg.qLoraRank || 'none'}, kv_lora_rank ${cfg.kvLoraRank}, head dims nope ${cfg.qkNopeHeadDim} + rope ${cfg.qkRopeHeadDim}, v ${cfg.vHeadDim}`,
      `cache values per token per layer: ${mla} (MLA latent ${cfg.kvLoraRank} + rope key ${cfg.qkRopeHeadDim}) vs ${mha} for full MHA (${(mha / mla).toFixed(1)}x)`,
      `experts: ${cfg.nRoutedExperts} routed (${cfg.router.topK} per token, ${cfg.router.scoring}, groups ${cfg.router.nGroup}/${cfg.router.topkGroup} kept), ${cfg.nSharedExperts} shared`,
      `parameters: ${fmt(all)} total, ${fmt(active)} active per token${w.mtp.length ? `, MTP module ${fmt(mtpParameters)}` : ''}`,
    ];
    return {
      architecture: 'deepseek2', layers: cfg.numLayers, denseLayers: cfg.numLayers - moeLayers, moeLayers,
      hiddenSize: cfg.hiddenSize, heads: cfg.heads, qLoraRank: cfg.qLoraRank, kvLoraRank: cfg.kvLoraRank,
      routedExperts: cfg.nRoutedExperts, sharedExperts: cfg.nSharedExperts, expertsPerToken: cfg.router.topK,
      mlaCacheValuesPerTokenPerLayer: mla, mhaCacheValuesPerTokenPerLayer: mha,
      parameters: all, activeParametersPerToken: active, mtpModules: w.mtp.length, mtpParameters, lines,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes from the config alone (for `frugal info` without reading weights)

/** Parameter counts implied by a config: [total, active per token, MTP module] (main model excludes MTP). */
export function deepseekParameterCounts(cfg: DeepseekConfig, options: { tiedEmbeddings?: boolean } = {}): { total: number; active: number; mtp: number } {
  const d = cfg.hiddenSize;
  const H = cfg.heads;
  const qk = cfg.qkNopeHeadDim + cfg.qkRopeHeadDim;
  const attn = (cfg.qLoraRank > 0 ? d * cfg.qLoraRank + cfg.qLoraRank + cfg.qLoraRank * H * qk : d * H * qk)
    + d * (cfg.kvLoraRank + cfg.qkRopeHeadDim) + cfg.kvLoraRank + H * (cfg.qkNopeHeadDim + cfg.vHeadDim) * cfg.kvLoraRank + H * cfg.vHeadDim * d;
  const norms = 2 * d;
  const dense = 3 * d * cfg.intermediateSize;
  const expert = 3 * d * cfg.moeIntermediateSize;
  const moeFixed = cfg.nRoutedExperts * d + cfg.nSharedExperts * expert + (cfg.router.scoring === 'sigmoid' ? cfg.nRoutedExperts : 0);
  const denseLayers = Math.min(cfg.firstKDenseReplace, cfg.numLayers);
  const moeLayers = cfg.numLayers - denseLayers;
  const embed = cfg.vocabSize * d;
  const head = options.tiedEmbeddings ? 0 : cfg.vocabSize * d;
  const base = embed + head + d + cfg.numLayers * (attn + norms) + denseLayers * dense + moeLayers * moeFixed;
  const moeBlock = attn + norms + moeFixed + cfg.nRoutedExperts * expert;
  return {
    total: base + moeLayers * cfg.nRoutedExperts * expert,
    active: base + moeLayers * cfg.router.topK * expert,
    mtp: cfg.nextnLayers * (moeBlock + 2 * d + 2 * d * d + d),
  };
}

/** `frugal info` lines for a config (no weights read): MLA vs MHA cache, experts, total and active parameters. */
export function describeDeepseekConfig(cfg: DeepseekConfig): { cacheValuesPerToken: number; lines: string[] } {
  const mla = mlaCacheWidth(cfg);
  const mha = mhaCacheWidth(cfg);
  const p = deepseekParameterCounts(cfg);
  const dense = Math.min(cfg.firstKDenseReplace, cfg.numLayers);
  const fmt = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(2)}K` : `${n}`);
  const r = cfg.router;
  return {
    cacheValuesPerToken: cfg.numLayers * mla,
    lines: [
      `layers: ${cfg.numLayers} (${dense} dense, ${cfg.numLayers - dense} MoE)${cfg.nextnLayers ? ` + ${cfg.nextnLayers} MTP` : ''}, hidden ${cfg.hiddenSize}, heads ${cfg.heads}, vocab ${cfg.vocabSize}`,
      `MLA: q_lora_rank ${cfg.qLoraRank || 'none'}, kv_lora_rank ${cfg.kvLoraRank}, head dims nope ${cfg.qkNopeHeadDim} + rope ${cfg.qkRopeHeadDim}, v ${cfg.vHeadDim}; softmax scale ${cfg.softmaxScale.toPrecision(6)}${cfg.yarn ? ` (YaRN x${cfg.yarn.factor})` : ''}`,
      `MLA cache: ${mla} values per token per layer (latent ${cfg.kvLoraRank} + rope key ${cfg.qkRopeHeadDim}) vs ${mha} for full MHA (${(mha / mla).toFixed(1)}x smaller)`,
      `experts: ${cfg.nRoutedExperts} routed, ${r.topK} per token (${r.scoring}${r.nGroup > 1 ? `, best ${r.topkGroup} of ${r.nGroup} groups` : ''}${r.normTopkProb ? ', normalized' : ''}, x${r.routedScalingFactor}), ${cfg.nSharedExperts} shared`,
      `parameters (from the config): ${fmt(p.total)} total, ${fmt(p.active)} active per token${p.mtp ? `, MTP module ${fmt(p.mtp)}` : ''}`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Softmax scale and rope factor

/**
 * The rope cos/sin factor and the softmax scale llama.cpp uses for deepseek2
 * (src/models/deepseek2.cpp, llama-context.cpp): with the YaRN log multiplier m (=
 * mscale_all_dim), rope factor = 1 and scale = qk^-0.5 · mscale(s, m)²; without the key, both the
 * rope factor and the scale's mscale become mscale(s, 1). HF gives the same numbers for V3 / V2-Lite.
 */
export function deepseekAttentionScales(qkHeadDim: number, yarn: YarnScaling | undefined, logMultiplier: number | undefined): {
  ropeAttentionFactor: number; softmaxScale: number;
} {
  const base = 1 / Math.sqrt(qkHeadDim);
  if (!yarn || yarn.factor <= 1) return { ropeAttentionFactor: 1, softmaxScale: base };
  const m = logMultiplier ?? 0;
  const rope = m !== 0 ? 1 : yarnGetMscale(yarn.factor, 1);
  const mscale = rope * (1 + 0.1 * m * Math.log(yarn.factor));
  return { ropeAttentionFactor: rope, softmaxScale: base * mscale * mscale };
}

// ---------------------------------------------------------------------------------------------
// GGUF

function ggufFail(file: GgufFile, field: string, problem: string): never {
  throw new FormatError(file.path, field, undefined, problem);
}

function needNumber(file: GgufFile, key: string): number {
  const v = ggufNumber(file, key);
  if (v === undefined) ggufFail(file, `metadata '${key}'`, 'required key is missing');
  return v;
}

/** The model config a `deepseek2` GGUF describes. */
export function deepseekConfigFromGguf(file: GgufFile): DeepseekConfig {
  const arch = ggufString(file, 'general.architecture');
  if (arch !== 'deepseek2') ggufFail(file, "metadata 'general.architecture'", `expected 'deepseek2', found '${arch}'`);
  const k = (name: string): string => `deepseek2.${name}`;
  const opt = (name: string): number | undefined => ggufNumber(file, k(name));
  const need = (name: string): number => needNumber(file, k(name));
  const blocks = need('block_count');
  const nextn = opt('nextn_predict_layers') ?? 0;
  const hidden = need('embedding_length');
  const heads = need('attention.head_count');
  const ropeDim = need('rope.dimension_count');
  const kvLora = need('attention.kv_lora_rank');
  const split = opt('attention.key_length_mla') !== undefined;
  const qk = split ? need('attention.key_length_mla') : (opt('attention.key_length') ?? hidden / heads);
  const v = split ? (opt('attention.value_length_mla') ?? qk) : (opt('attention.value_length') ?? hidden / heads);
  if (qk <= ropeDim) ggufFail(file, `metadata '${k(split ? 'attention.key_length_mla' : 'attention.key_length')}'`, `head size ${qk} leaves no room beside the ${ropeDim} rope dims`);
  const gating = opt('expert_gating_func') ?? 1;
  if (gating !== 1 && gating !== 2) ggufFail(file, `metadata '${k('expert_gating_func')}'`, `unsupported gating function ${gating} (1 softmax, 2 sigmoid)`);
  const nExperts = need('expert_count');
  const nGroup = Math.max(opt('expert_group_count') ?? 1, 1);
  const scalingType = ggufString(file, k('rope.scaling.type')) ?? 'none';
  const theta = opt('rope.freq_base') ?? 10000;
  const contextLength = need('context_length');
  let yarn: YarnScaling | undefined;
  if (scalingType === 'yarn') {
    const factor = opt('rope.scaling.factor') ?? 1;
    yarn = {
      type: 'yarn', factor, originalContext: opt('rope.scaling.original_context_length') ?? contextLength,
      betaFast: opt('rope.scaling.yarn_beta_fast') ?? 32, betaSlow: opt('rope.scaling.yarn_beta_slow') ?? 1,
    };
  } else if (scalingType !== 'none') {
    ggufFail(file, `metadata '${k('rope.scaling.type')}'`, `rope scaling '${scalingType}' is not supported for deepseek2`);
  }
  const logMul = opt('rope.scaling.yarn_log_multiplier');
  const scales = deepseekAttentionScales(qk, yarn, logMul === undefined ? undefined : logMul / 0.1);
  const scaleAttn = opt('rope.scaling.attn_factor') ?? 1;
  const expertScale = opt('expert_weights_scale') ?? 1;
  return {
    vocabSize: opt('vocab_size') ?? (file.value('tokenizer.ggml.tokens') as readonly string[] | undefined)?.length ?? 0,
    hiddenSize: hidden,
    intermediateSize: opt('feed_forward_length') ?? 0,
    moeIntermediateSize: opt('expert_feed_forward_length') ?? 0,
    numLayers: blocks - nextn,
    heads,
    qLoraRank: opt('attention.q_lora_rank') ?? 0,
    kvLoraRank: kvLora,
    qkNopeHeadDim: qk - ropeDim,
    qkRopeHeadDim: ropeDim,
    vHeadDim: v,
    nRoutedExperts: nExperts,
    nSharedExperts: opt('expert_shared_count') ?? 0,
    firstKDenseReplace: opt('leading_dense_block_count') ?? 0,
    router: {
      nExperts, topK: need('expert_used_count'), nGroup, topkGroup: nGroup > 1 ? need('expert_group_used_count') : 1,
      scoring: gating === 2 ? 'sigmoid' : 'softmax', groupScore: 'top2sum',
      normTopkProb: ggufBool(file, k('expert_weights_norm')) ?? false,
      routedScalingFactor: expertScale === 0 ? 1 : expertScale,
    },
    rmsNormEps: need('attention.layer_norm_rms_epsilon'),
    ropeTheta: theta,
    yarn,
    ropeAttentionFactor: scales.ropeAttentionFactor * scaleAttn,
    softmaxScale: scales.softmaxScale * scaleAttn * scaleAttn,
    contextLength,
    nextnLayers: nextn,
  };
}

/** Reads tensors by GGUF name, checking shapes (HF order [rows, cols]) and naming the tensor on error. */
class GgufTensors {
  constructor(readonly file: GgufFile) {}

  has(name: string): boolean {
    return this.file.tensor(name) !== undefined;
  }

  private info(name: string) {
    const info = this.file.tensor(name);
    if (!info) ggufFail(this.file, `tensor '${name}'`, 'missing (required by the deepseek2 architecture)');
    return info;
  }

  private checkDims(name: string, dims: readonly number[], expected: readonly number[]): void {
    const trimmed = [...dims];
    while (trimmed.length > expected.length && trimmed[trimmed.length - 1] === 1) trimmed.pop();
    if (trimmed.length !== expected.length || trimmed.some((d, i) => d !== expected[i])) {
      ggufFail(this.file, `tensor '${name}'`, `has ne [${dims.join(', ')}], expected [${expected.join(', ')}]`);
    }
  }

  /** A matrix of HF shape [rows, cols] (GGUF ne [cols, rows]). */
  matrix(name: string, rows: number, cols: number): WeightMatrix {
    const info = this.info(name);
    this.checkDims(name, info.dims, [cols, rows]);
    return { dtype: info.dtype, rows, cols, data: this.file.readTensorBytes(info) };
  }

  vector(name: string, n: number): Float32Array {
    const info = this.info(name);
    this.checkDims(name, info.dims, [n]);
    const bytes = this.file.readTensorBytes(info);
    if (info.dtype === 'f32') return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    const out = new Float32Array(n);
    getBackend().dequantizeRows(out, { dtype: info.dtype, rows: 1, cols: n, data: bytes }, 0, 1);
    return out;
  }

  /** A stack ne [cols, rows, count] (HF [count, rows, cols]) as `count` views sharing one buffer. */
  stack(name: string, count: number, rows: number, cols: number): WeightMatrix[] {
    const info = this.info(name);
    this.checkDims(name, info.dims, [cols, rows, count]);
    const data = this.file.readTensorBytes(info);
    const each = rows * byteSize(info.dtype, cols);
    return Array.from({ length: count }, (_, e) => ({ dtype: info.dtype, rows, cols, data: data.subarray(e * each, (e + 1) * each) }));
  }
}

function ggufLayer(t: GgufTensors, cfg: DeepseekConfig, i: number, backend: Backend): DeepseekLayerWeights {
  const p = `blk.${i}.`;
  const { hiddenSize: d, heads: H, qLoraRank: qr, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: v } = cfg;
  const qk = nope + rope;
  const q = qr > 0
    ? { qA: t.matrix(`${p}attn_q_a.weight`, qr, d), qANorm: t.vector(`${p}attn_q_a_norm.weight`, qr), qB: t.matrix(`${p}attn_q_b.weight`, H * qk, qr) }
    : { q: t.matrix(`${p}attn_q.weight`, H * qk, d) };
  let kUpT: WeightMatrix[];
  let vUp: WeightMatrix[];
  if (t.has(`${p}attn_k_b.weight`) || !t.has(`${p}attn_kv_b.weight`)) {
    kUpT = t.stack(`${p}attn_k_b.weight`, H, r, nope);
    vUp = t.stack(`${p}attn_v_b.weight`, H, v, r);
  } else {
    ({ kUpT, vUp } = splitKvB(backend, t.matrix(`${p}attn_kv_b.weight`, H * (nope + v), r), cfg));
  }
  const attn: MlaWeights = {
    ...q,
    kvA: t.matrix(`${p}attn_kv_a_mqa.weight`, r + rope, d),
    kvANorm: t.vector(`${p}attn_kv_a_norm.weight`, r),
    kUpT, vUp,
    o: t.matrix(`${p}attn_output.weight`, d, H * v),
  };
  const base = { attnNorm: t.vector(`${p}attn_norm.weight`, d), attn, ffnNorm: t.vector(`${p}ffn_norm.weight`, d) };
  if (i < cfg.firstKDenseReplace) {
    const f = cfg.intermediateSize;
    return { ...base, dense: { gate: t.matrix(`${p}ffn_gate.weight`, f, d), up: t.matrix(`${p}ffn_up.weight`, f, d), down: t.matrix(`${p}ffn_down.weight`, d, f) } };
  }
  const E = cfg.nRoutedExperts;
  const f = cfg.moeIntermediateSize;
  const gates = t.stack(`${p}ffn_gate_exps.weight`, E, f, d);
  const ups = t.stack(`${p}ffn_up_exps.weight`, E, f, d);
  const downs = t.stack(`${p}ffn_down_exps.weight`, E, d, f);
  const fs = f * cfg.nSharedExperts;
  const moe: MoeWeights = {
    router: t.matrix(`${p}ffn_gate_inp.weight`, E, d),
    bias: t.has(`${p}exp_probs_b.bias`) ? t.vector(`${p}exp_probs_b.bias`, E) : undefined,
    experts: gates.map((gate, e) => ({ gate, up: ups[e]!, down: downs[e]! })),
    shared: cfg.nSharedExperts > 0
      ? { gate: t.matrix(`${p}ffn_gate_shexp.weight`, fs, d), up: t.matrix(`${p}ffn_up_shexp.weight`, fs, d), down: t.matrix(`${p}ffn_down_shexp.weight`, d, fs) }
      : undefined,
  };
  return { ...base, moe };
}


/** Loads a `deepseek2` GGUF (legacy attn_kv_b or split attn_k_b / attn_v_b layout; MTP blocks `blk.N.nextn.*`). */
export function loadDeepseekFromGguf(file: GgufFile, options: DeepseekLoadOptions = {}): DeepseekModel {
  const backend = options.backend ?? getBackend();
  const cfg = deepseekConfigFromGguf(file);
  const t = new GgufTensors(file);
  const d = cfg.hiddenSize;
  const embedInfo = file.tensor('token_embd.weight');
  const vocab = embedInfo?.dims[1] ?? cfg.vocabSize;
  const embed = t.matrix('token_embd.weight', vocab, d);
  const layers = Array.from({ length: cfg.numLayers }, (_, i) => ggufLayer(t, cfg, i, backend));
  const output = t.has('output.weight') ? t.matrix('output.weight', vocab, d) : embed;
  const mtp: DeepseekMtpWeights[] = [];
  if (options.loadMtp !== false) {
    for (let m = 0; m < cfg.nextnLayers; m++) {
      const i = cfg.numLayers + m;
      const p = `blk.${i}.nextn.`;
      if (!t.has(`${p}eh_proj.weight`)) break;
      mtp.push({
        block: ggufLayer(t, cfg, i, backend),
        enorm: t.vector(`${p}enorm.weight`, d),
        hnorm: t.vector(`${p}hnorm.weight`, d),
        ehProj: t.matrix(`${p}eh_proj.weight`, d, 2 * d),
        headNorm: t.has(`${p}shared_head_norm.weight`) ? t.vector(`${p}shared_head_norm.weight`, d) : undefined,
        head: t.has(`${p}shared_head_head.weight`) ? t.matrix(`${p}shared_head_head.weight`, vocab, d) : undefined,
        embed: t.has(`${p}embed_tokens.weight`) ? t.matrix(`${p}embed_tokens.weight`, vocab, d) : undefined,
      });
    }
  }
  return new DeepseekModel({ ...cfg, vocabSize: vocab }, { embed, layers, norm: t.vector('output_norm.weight', d), output, mtp }, { ...options, backend });
}
