/**
 * Tiny random-weight DeepSeek-V3 models for tests: weights generated in the HF layout (names and
 * PyTorch shapes of ../shared/spec/formats-and-api.md §3.4, f32), then
 *  - written as a `deepseek2` GGUF the way llama.cpp's converter does (stacked experts, either the
 *    legacy attn_kv_b or the split attn_k_b / attn_v_b layout, `blk.N.nextn.*` MTP tensors), with a
 *    real tokenizer and every key llama.cpp needs (../shared/spec/llama-cpp-oracle.md);
 *  - or written as an HF checkpoint (config.json + model.safetensors), optionally with the linear
 *    weights in FP8 e4m3 plus `weight_scale_inv` 128x128 block scales, like the released V3/R1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GgufValue, gguf } from '../formats/gguf-value.js';
import { type GgufTensorInput, writeGguf } from '../formats/gguf-write.js';
import type { DType } from '../tensor/dtype.js';
import { dequantizeFp8BlockScaled, quantizeFp8BlockScaled } from '../tensor/quant/index.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import type { HfTensorSource } from './deepseek-v3-hf.js';
import { SeededRandom, type TinyTokenizerName, ggufTensor, tinyTokenizerMetadata } from './tiny.js';

export type HfTensors = Map<string, { shape: number[]; values: Float32Array }>;

export interface TinyDeepseekOptions {
  /** Embedded tokenizer (its size sets vocab_size). Default 'bytes' (256 tokens, fast). */
  tokenizer?: TinyTokenizerName;
  hiddenSize?: number;
  intermediateSize?: number;
  moeIntermediateSize?: number;
  layers?: number;
  firstKDenseReplace?: number;
  heads?: number;
  /** 0 = no query compression (V2-Lite style). */
  qLoraRank?: number;
  kvLoraRank?: number;
  qkNopeHeadDim?: number;
  qkRopeHeadDim?: number;
  vHeadDim?: number;
  routedExperts?: number;
  sharedExperts?: number;
  expertsPerToken?: number;
  nGroup?: number;
  topkGroup?: number;
  scoring?: 'sigmoid' | 'softmax';
  normTopkProb?: boolean;
  routedScalingFactor?: number;
  /** V3 router bias (e_score_correction_bias); default on for sigmoid scoring. */
  scoreBias?: boolean;
  contextLength?: number;
  /** rope_theta (default 10000; Kimi-K2, also `deepseek2` in GGUF: 50000). */
  ropeTheta?: number;
  /** YaRN factor (1 = no rope scaling). */
  yarnFactor?: number;
  yarnOriginalContext?: number;
  mscaleAllDim?: number;
  mtp?: boolean;
  rmsNormEps?: number;
  seed?: number;
}

export interface TinyDeepseekModel {
  readonly options: Required<TinyDeepseekOptions>;
  readonly vocabSize: number;
  readonly hfConfig: Record<string, unknown>;
  /** HF tensor name -> shape and f32 values. */
  readonly tensors: HfTensors;
}

/** V3-like defaults, scaled down: 3 layers (1 dense), 4 heads, 8 experts in 4 groups. */
export function tinyDeepseekModel(options: TinyDeepseekOptions = {}): TinyDeepseekModel {
  const o: Required<TinyDeepseekOptions> = {
    tokenizer: 'bytes', hiddenSize: 64, intermediateSize: 96, moeIntermediateSize: 32, layers: 3, firstKDenseReplace: 1,
    heads: 4, qLoraRank: 32, kvLoraRank: 32, qkNopeHeadDim: 32, qkRopeHeadDim: 16, vHeadDim: 32,
    routedExperts: 8, sharedExperts: 1, expertsPerToken: 3, nGroup: 4, topkGroup: 2, scoring: 'sigmoid',
    normTopkProb: true, routedScalingFactor: 2.5, scoreBias: options.scoring !== 'softmax', contextLength: 256, ropeTheta: 10000,
    yarnFactor: 4, yarnOriginalContext: 64, mscaleAllDim: 1, mtp: false, rmsNormEps: 1e-6, seed: 7,
    ...options,
  };
  const vocabSize = tinyTokenizerMetadata(o.tokenizer).vocabSize;
  const rng = new SeededRandom(o.seed);
  const d = o.hiddenSize;
  const H = o.heads;
  const qk = o.qkNopeHeadDim + o.qkRopeHeadDim;
  const tensors: HfTensors = new Map();
  const matrix = (name: string, rows: number, cols: number, gain = 1) =>
    tensors.set(name, { shape: [rows, cols], values: rng.normals(rows * cols, gain / Math.sqrt(cols)) });
  const vector = (name: string, n: number, std: number, mean: number) => tensors.set(name, { shape: [n], values: rng.normals(n, std, mean) });
  const ffn = (p: string, width: number) => {
    matrix(`${p}gate_proj.weight`, width, d);
    matrix(`${p}up_proj.weight`, width, d);
    matrix(`${p}down_proj.weight`, d, width);
  };
  const layer = (i: number) => {
    const p = `model.layers.${i}.`;
    const a = `${p}self_attn.`;
    vector(`${p}input_layernorm.weight`, d, 0.1, 1);
    if (o.qLoraRank > 0) {
      matrix(`${a}q_a_proj.weight`, o.qLoraRank, d);
      vector(`${a}q_a_layernorm.weight`, o.qLoraRank, 0.1, 1);
      matrix(`${a}q_b_proj.weight`, H * qk, o.qLoraRank, 2);
    } else {
      matrix(`${a}q_proj.weight`, H * qk, d, 2);
    }
    matrix(`${a}kv_a_proj_with_mqa.weight`, o.kvLoraRank + o.qkRopeHeadDim, d, 2);
    vector(`${a}kv_a_layernorm.weight`, o.kvLoraRank, 0.1, 1);
    matrix(`${a}kv_b_proj.weight`, H * (o.qkNopeHeadDim + o.vHeadDim), o.kvLoraRank);
    matrix(`${a}o_proj.weight`, d, H * o.vHeadDim);
    vector(`${p}post_attention_layernorm.weight`, d, 0.1, 1);
    const m = `${p}mlp.`;
    if (i < o.firstKDenseReplace) {
      ffn(m, o.intermediateSize);
      return;
    }
    matrix(`${m}gate.weight`, o.routedExperts, d, 2);
    if (o.scoreBias) vector(`${m}gate.e_score_correction_bias`, o.routedExperts, 0.1, 0);
    for (let e = 0; e < o.routedExperts; e++) ffn(`${m}experts.${e}.`, o.moeIntermediateSize);
    if (o.sharedExperts > 0) ffn(`${m}shared_experts.`, o.moeIntermediateSize * o.sharedExperts);
  };
  tensors.set('model.embed_tokens.weight', { shape: [vocabSize, d], values: rng.normals(vocabSize * d, 1) });
  for (let i = 0; i < o.layers; i++) layer(i);
  vector('model.norm.weight', d, 0.1, 1);
  matrix('lm_head.weight', vocabSize, d, 4);
  if (o.mtp) {
    const n = o.layers;
    const p = `model.layers.${n}.`;
    layer(n);
    vector(`${p}enorm.weight`, d, 0.1, 1);
    vector(`${p}hnorm.weight`, d, 0.1, 1);
    matrix(`${p}eh_proj.weight`, d, 2 * d);
    vector(`${p}shared_head.norm.weight`, d, 0.1, 1);
    // The released checkpoint stores copies of the main embedding and head here.
    tensors.set(`${p}embed_tokens.weight`, tensors.get('model.embed_tokens.weight')!);
    tensors.set(`${p}shared_head.head.weight`, tensors.get('lm_head.weight')!);
  }
  const v3 = o.scoring === 'sigmoid';
  const hfConfig: Record<string, unknown> = {
    architectures: [v3 ? 'DeepseekV3ForCausalLM' : 'DeepseekV2ForCausalLM'],
    model_type: v3 ? 'deepseek_v3' : 'deepseek_v2',
    vocab_size: vocabSize, hidden_size: d, intermediate_size: o.intermediateSize, moe_intermediate_size: o.moeIntermediateSize,
    num_hidden_layers: o.layers, first_k_dense_replace: o.firstKDenseReplace, moe_layer_freq: 1,
    num_attention_heads: H, num_key_value_heads: H,
    q_lora_rank: o.qLoraRank > 0 ? o.qLoraRank : null, kv_lora_rank: o.kvLoraRank,
    qk_nope_head_dim: o.qkNopeHeadDim, qk_rope_head_dim: o.qkRopeHeadDim, v_head_dim: o.vHeadDim,
    n_routed_experts: o.routedExperts, n_shared_experts: o.sharedExperts, num_experts_per_tok: o.expertsPerToken,
    n_group: o.nGroup, topk_group: o.topkGroup,
    topk_method: o.scoreBias ? 'noaux_tc' : o.nGroup > 1 ? 'group_limited_greedy' : 'greedy',
    scoring_func: o.scoring, norm_topk_prob: o.normTopkProb, routed_scaling_factor: o.routedScalingFactor,
    num_nextn_predict_layers: o.mtp ? 1 : 0,
    max_position_embeddings: o.contextLength, rope_theta: o.ropeTheta, rms_norm_eps: o.rmsNormEps,
    rope_scaling: o.yarnFactor > 1
      ? { type: 'yarn', factor: o.yarnFactor, original_max_position_embeddings: o.yarnOriginalContext, beta_fast: 32, beta_slow: 1, mscale: o.mscaleAllDim, mscale_all_dim: o.mscaleAllDim }
      : null,
    bos_token_id: 0, eos_token_id: 1, tie_word_embeddings: false, hidden_act: 'silu', torch_dtype: 'float32',
  };
  return { options: o, vocabSize, hfConfig, tensors };
}

// ---------------------------------------------------------------------------------------------
// FP8 (released V3/R1 checkpoints): the linear layers of attention, FFNs, experts and eh_proj.

/** Whether the released checkpoint stores this HF tensor in FP8 (embeddings, heads, norms, router stay BF16/F32). */
export function isFp8Tensor(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && /_proj(_with_mqa)?\.weight$/.test(name);
}

export interface Fp8Checkpoint {
  /** name -> e4m3 bytes and block scales (weight_scale_inv), for FP8 tensors. */
  readonly fp8: Map<string, { data: Uint8Array; scaleInv: Float32Array }>;
  /** Every tensor as f32, FP8 ones replaced by their dequantized values. */
  readonly dequantized: HfTensors;
}

export function fp8Checkpoint(tensors: HfTensors): Fp8Checkpoint {
  const fp8 = new Map<string, { data: Uint8Array; scaleInv: Float32Array }>();
  const dequantized: HfTensors = new Map();
  for (const [name, t] of tensors) {
    if (!isFp8Tensor(name, t.shape)) {
      dequantized.set(name, t);
      continue;
    }
    const [rows, cols] = t.shape as [number, number];
    const q = quantizeFp8BlockScaled(t.values, rows, cols);
    fp8.set(name, { data: q.data, scaleInv: q.blockScales });
    dequantized.set(name, { shape: t.shape, values: dequantizeFp8BlockScaled(q.data, q.blockScales, rows, cols) });
  }
  return { fp8, dequantized };
}

/** An in-memory HfTensorSource (FP8 tensors from `fp8`, the rest from `tensors`). */
export function memoryHfSource(tensors: HfTensors, fp8?: Fp8Checkpoint['fp8'], where = 'memory'): HfTensorSource {
  return {
    where,
    has: (name) => tensors.has(name),
    shape: (name) => tensors.get(name)?.shape,
    matrix(name): WeightMatrix {
      const t = tensors.get(name);
      if (!t || t.shape.length !== 2) throw new Error(`${where}: no matrix '${name}'`);
      const [rows, cols] = t.shape as [number, number];
      const q = fp8?.get(name);
      if (q) return { dtype: 'fp8_e4m3', rows, cols, data: q.data, blockScales: q.scaleInv };
      return { dtype: 'f32', rows, cols, data: new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength) };
    },
    values(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${where}: no tensor '${name}'`);
      return t.values;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// GGUF (llama.cpp's convert_hf_to_gguf.py DeepseekV2Model conventions)

export interface DeepseekGgufOptions {
  /** 'split' (attn_k_b / attn_v_b, newer converters; default) or 'kv_b' (legacy attn_kv_b). */
  layout?: 'split' | 'kv_b';
  /** Storage dtype of the matrices (norms, biases and the router stay f32). Default f32. */
  dtype?: DType;
  /** Write the MTP module as `blk.{n}.nextn.*` (when the model has one). Default true. */
  mtp?: boolean;
}

/** HF name within model.layers.N -> GGUF name within blk.N (`frugal import` reads it backwards). */
export const DEEPSEEK_LAYER_GGUF_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'self_attn.q_a_proj.weight': 'attn_q_a.weight',
  'self_attn.q_a_layernorm.weight': 'attn_q_a_norm.weight',
  'self_attn.q_b_proj.weight': 'attn_q_b.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.kv_a_proj_with_mqa.weight': 'attn_kv_a_mqa.weight',
  'self_attn.kv_a_layernorm.weight': 'attn_kv_a_norm.weight',
  'self_attn.kv_b_proj.weight': 'attn_kv_b.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'mlp.gate.weight': 'ffn_gate_inp.weight',
  'mlp.gate.e_score_correction_bias': 'exp_probs_b.bias',
  'mlp.shared_experts.gate_proj.weight': 'ffn_gate_shexp.weight',
  'mlp.shared_experts.up_proj.weight': 'ffn_up_shexp.weight',
  'mlp.shared_experts.down_proj.weight': 'ffn_down_shexp.weight',
  'enorm.weight': 'nextn.enorm.weight',
  'hnorm.weight': 'nextn.hnorm.weight',
  'eh_proj.weight': 'nextn.eh_proj.weight',
  'shared_head.norm.weight': 'nextn.shared_head_norm.weight',
  'shared_head.head.weight': 'nextn.shared_head_head.weight',
  'embed_tokens.weight': 'nextn.embed_tokens.weight',
};

/** GGUF metadata (without tokenizer keys) for a tiny model. */
export function deepseekGgufMetadata(model: TinyDeepseekModel, options: DeepseekGgufOptions = {}): [string, GgufValue][] {
  const o = model.options;
  const split = (options.layout ?? 'split') === 'split';
  const mtp = o.mtp && options.mtp !== false;
  const a = 'deepseek2';
  const qk = o.qkNopeHeadDim + o.qkRopeHeadDim;
  const entries: [string, GgufValue][] = [
    ['general.architecture', gguf.string(a)],
    ['general.name', gguf.string(`tiny-deepseek2-${options.dtype ?? 'f32'}-${split ? 'split' : 'kv_b'}`)],
    ['general.quantization_version', gguf.u32(2)],
    [`${a}.block_count`, gguf.u32(o.layers + (mtp ? 1 : 0))],
    [`${a}.context_length`, gguf.u32(o.contextLength)],
    [`${a}.embedding_length`, gguf.u32(o.hiddenSize)],
    [`${a}.feed_forward_length`, gguf.u32(o.intermediateSize)],
    [`${a}.attention.head_count`, gguf.u32(o.heads)],
    [`${a}.attention.head_count_kv`, gguf.u32(split ? 1 : o.heads)],
    [`${a}.attention.kv_lora_rank`, gguf.u32(o.kvLoraRank)],
    [`${a}.attention.key_length`, gguf.u32(split ? o.kvLoraRank + o.qkRopeHeadDim : qk)],
    [`${a}.attention.value_length`, gguf.u32(split ? o.kvLoraRank : o.vHeadDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(o.rmsNormEps)],
    [`${a}.rope.dimension_count`, gguf.u32(o.qkRopeHeadDim)],
    [`${a}.rope.freq_base`, gguf.f32(o.ropeTheta)],
    [`${a}.leading_dense_block_count`, gguf.u32(o.firstKDenseReplace)],
    [`${a}.expert_count`, gguf.u32(o.routedExperts)],
    [`${a}.expert_used_count`, gguf.u32(o.expertsPerToken)],
    [`${a}.expert_shared_count`, gguf.u32(o.sharedExperts)],
    [`${a}.expert_feed_forward_length`, gguf.u32(o.moeIntermediateSize)],
    [`${a}.expert_weights_scale`, gguf.f32(o.routedScalingFactor)],
    [`${a}.expert_weights_norm`, gguf.bool(o.normTopkProb)],
    [`${a}.expert_gating_func`, gguf.u32(o.scoring === 'sigmoid' ? 2 : 1)],
    [`${a}.vocab_size`, gguf.u32(model.vocabSize)],
  ];
  if (o.qLoraRank > 0) entries.push([`${a}.attention.q_lora_rank`, gguf.u32(o.qLoraRank)]);
  if (split) {
    entries.push([`${a}.attention.key_length_mla`, gguf.u32(qk)], [`${a}.attention.value_length_mla`, gguf.u32(o.vHeadDim)]);
  }
  if (o.nGroup > 1) {
    entries.push([`${a}.expert_group_count`, gguf.u32(o.nGroup)], [`${a}.expert_group_used_count`, gguf.u32(o.topkGroup)]);
  }
  if (o.yarnFactor > 1) {
    entries.push(
      [`${a}.rope.scaling.type`, gguf.string('yarn')],
      [`${a}.rope.scaling.factor`, gguf.f32(o.yarnFactor)],
      [`${a}.rope.scaling.original_context_length`, gguf.u32(o.yarnOriginalContext)],
      [`${a}.rope.scaling.yarn_log_multiplier`, gguf.f32(0.1 * o.mscaleAllDim)],
    );
  }
  if (mtp) entries.push([`${a}.nextn_predict_layers`, gguf.u32(1)]);
  return entries;
}

/** The tiny model's tensors under GGUF names (experts stacked, kv_b split when asked). */
export function deepseekGgufTensors(model: TinyDeepseekModel, options: DeepseekGgufOptions = {}, tensors: HfTensors = model.tensors): GgufTensorInput[] {
  const o = model.options;
  const dtype = options.dtype ?? 'f32';
  const split = (options.layout ?? 'split') === 'split';
  const mtp = o.mtp && options.mtp !== false;
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`tiny DeepSeek model has no tensor '${name}'`);
    return t;
  };
  const out: GgufTensorInput[] = [];
  const put = (name: string, shape: number[], values: Float32Array, keepF32 = false) => out.push(ggufTensor(name, shape, values, keepF32 ? 'f32' : dtype));
  put('token_embd.weight', get('model.embed_tokens.weight').shape, get('model.embed_tokens.weight').values);
  const H = o.heads;
  const nope = o.qkNopeHeadDim;
  const v = o.vHeadDim;
  const r = o.kvLoraRank;
  for (let i = 0; i < o.layers + (mtp ? 1 : 0); i++) {
    const hp = `model.layers.${i}.`;
    const gp = `blk.${i}.`;
    for (const [suffix, gname] of Object.entries(DEEPSEEK_LAYER_GGUF_NAMES)) {
      const t = tensors.get(hp + suffix);
      if (!t) continue;
      if (suffix === 'self_attn.kv_b_proj.weight' && split) continue;
      put(gp + gname, t.shape, t.values, suffix === 'mlp.gate.weight');
    }
    if (split) {
      const kvB = get(`${hp}self_attn.kv_b_proj.weight`).values;
      const kB = new Float32Array(H * r * nope);
      const vB = new Float32Array(H * v * r);
      for (let h = 0; h < H; h++) {
        const base = h * (nope + v);
        for (let i2 = 0; i2 < nope; i2++) for (let j = 0; j < r; j++) kB[(h * r + j) * nope + i2] = kvB[(base + i2) * r + j]!;
        vB.set(kvB.subarray((base + nope) * r, (base + nope + v) * r), h * v * r);
      }
      put(`${gp}attn_k_b.weight`, [H, r, nope], kB);
      put(`${gp}attn_v_b.weight`, [H, v, r], vB);
    }
    if (tensors.has(`${hp}mlp.experts.0.gate_proj.weight`)) {
      for (const [proj, gname] of [['gate_proj', 'ffn_gate_exps'], ['up_proj', 'ffn_up_exps'], ['down_proj', 'ffn_down_exps']] as const) {
        const first = get(`${hp}mlp.experts.0.${proj}.weight`);
        const stacked = new Float32Array(o.routedExperts * first.values.length);
        for (let e = 0; e < o.routedExperts; e++) stacked.set(get(`${hp}mlp.experts.${e}.${proj}.weight`).values, e * first.values.length);
        put(`${gp}${gname}.weight`, [o.routedExperts, ...first.shape], stacked);
      }
    }
  }
  put('output_norm.weight', get('model.norm.weight').shape, get('model.norm.weight').values);
  put('output.weight', get('lm_head.weight').shape, get('lm_head.weight').values);
  return out;
}

/** Writes the tiny model as a `deepseek2` GGUF loadable by this project and by llama.cpp. */
export function writeTinyDeepseekGguf(path: string, model: TinyDeepseekModel, options: DeepseekGgufOptions = {}, tensors?: HfTensors): void {
  const metadata = [...deepseekGgufMetadata(model, options), ...tinyTokenizerMetadata(model.options.tokenizer).entries];
  writeGguf(path, { metadata, tensors: deepseekGgufTensors(model, options, tensors) });
}

// ---------------------------------------------------------------------------------------------
// HF checkpoint (config.json + one model.safetensors)

/**
 * Writes config.json and the weights; with `fp8`, linear weights are F8_E4M3 + `weight_scale_inv`.
 * With `shards` > 1 the tensors are spread over model-0000i-of-0000n.safetensors files listed in
 * model.safetensors.index.json (a weight and its scale may land in different shards).
 */
export function writeTinyDeepseekHf(dir: string, model: TinyDeepseekModel, options: { fp8?: Fp8Checkpoint; shards?: number } = {}): void {
  mkdirSync(dir, { recursive: true });
  const config = { ...model.hfConfig };
  if (options.fp8) config['quantization_config'] = { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[] = [];
  const f32Bytes = (v: Float32Array) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  for (const [name, t] of model.tensors) {
    const q = options.fp8?.fp8.get(name);
    if (q) {
      entries.push({ name, dtype: 'F8_E4M3', shape: t.shape, bytes: q.data });
      const [rows, cols] = t.shape as [number, number];
      entries.push({ name: `${name}_scale_inv`, dtype: 'F32', shape: [Math.ceil(rows / 128), Math.ceil(cols / 128)], bytes: f32Bytes(q.scaleInv) });
    } else {
      entries.push({ name, dtype: 'F32', shape: t.shape, bytes: f32Bytes(t.values) });
    }
  }
  const shards = options.shards ?? 1;
  if (shards <= 1) {
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(entries));
    return;
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const mine = entries.filter((_, i) => i % shards === s);
    for (const e of mine) {
      weightMap[e.name] = file;
      totalSize += e.bytes.byteLength;
    }
    writeFileSync(join(dir, file), encodeSafetensors(mine));
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2));
}

/** safetensors bytes: u64 header length, JSON header padded with spaces to 8 bytes, data (F32 first, so it stays aligned). */
export function encodeSafetensors(entries: readonly { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  const ordered = [...entries].sort((a, b) => (a.dtype === b.dtype ? (a.name < b.name ? -1 : 1) : a.dtype === 'F32' ? -1 : b.dtype === 'F32' ? 1 : a.dtype < b.dtype ? -1 : 1));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const e of ordered) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.byteLength] };
    offset += e.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const e of ordered) {
    out.set(e.bytes, at);
    at += e.bytes.byteLength;
  }
  return out;
}
