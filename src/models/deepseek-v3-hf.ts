/**
 * DeepSeek-V3 / R1 / V2 from a Hugging Face checkpoint: config.json + safetensors, FP8 block-scaled
 * weights included (../shared/spec/formats-and-api.md §3.3-3.4, model-and-training.md §1.4, §5.2).
 * HF tensor names, e.g. `model.layers.N.self_attn.kv_b_proj.weight`; the MTP module is the extra
 * layer `model.layers.{num_hidden_layers}`. The rope part stays in the checkpoint's interleaved
 * layout (no permutation), exactly like the GGUF path.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../formats/format-error.js';
import { V2_DEFAULTS, V3_DEFAULTS } from '../formats/hf-config.js';
import { type SafetensorsFile, openSafetensors } from '../formats/safetensors.js';
import { type MlaWeights, splitKvB } from '../nn/mla.js';
import type { MoeWeights, RouterConfig } from '../nn/moe.js';
import type { YarnScaling } from '../nn/rope.js';
import { yarnAttentionFactor, yarnSoftmaxScale } from '../nn/rope.js';
import type { Backend } from '../tensor/backend.js';
import { getBackend } from '../tensor/index.js';
import { dequantize, quantize } from '../tensor/quant/index.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import {
  type DeepseekConfig, type DeepseekLayerWeights, type DeepseekLoadOptions, type DeepseekMtpWeights, DeepseekModel,
} from './deepseek-v3.js';

export interface DeepseekHfLoadOptions extends DeepseekLoadOptions {
  /**
   * What to do with FP8 (e4m3 + weight_scale_inv) weights: keep them in fp8 (default), or
   * dequantize them at load time to f32 or bf16.
   */
  readonly fp8?: 'keep' | 'f32' | 'bf16';
}

/** Where HF-named tensors come from (a safetensors checkpoint, or memory in tests). */
export interface HfTensorSource {
  /** A short description for errors (the checkpoint directory). */
  readonly where: string;
  has(name: string): boolean;
  /** HF shape of the tensor, or undefined when absent. */
  shape(name: string): readonly number[] | undefined;
  /** A 2-D weight (FP8 weights paired with their `<name>_scale_inv`). */
  matrix(name: string): WeightMatrix;
  /** A tensor's values as f32. */
  values(name: string): Float32Array;
}

type Json = Record<string, unknown>;

function fail(where: string, field: string, problem: string): never {
  throw new FormatError(where, field, undefined, problem);
}

function num(cfg: Json, key: string, where: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    fail(where, `config.json '${key}'`, 'required field is missing');
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(where, `config.json '${key}'`, `expected a number, found ${JSON.stringify(v)}`);
  return v;
}

/** The model config of a DeepseekV3ForCausalLM / DeepseekV2ForCausalLM config.json object. */
export function deepseekConfigFromHf(cfg: Json, where = 'config.json'): DeepseekConfig {
  const archs = cfg['architectures'];
  const type = cfg['model_type'];
  if (type !== 'deepseek_v3' && type !== 'deepseek_v2') {
    fail(where, "config.json 'model_type'", `expected 'deepseek_v3' or 'deepseek_v2', found ${JSON.stringify(type)} (architectures ${JSON.stringify(archs)})`);
  }
  if (num(cfg, 'moe_layer_freq', where, 1) !== 1) fail(where, "config.json 'moe_layer_freq'", 'only 1 is supported');
  // Fields a config.json may omit take the HF config class's defaults (V3 and V2 differ).
  const d = type === 'deepseek_v3' ? V3_DEFAULTS : V2_DEFAULTS;
  const qkNope = num(cfg, 'qk_nope_head_dim', where);
  const qkRope = num(cfg, 'qk_rope_head_dim', where);
  const nExperts = num(cfg, 'n_routed_experts', where);
  const method = String(cfg['topk_method'] ?? d.topk_method);
  const nGroup = method === 'greedy' ? 1 : num(cfg, 'n_group', where, d.n_group);
  const scoring = String(cfg['scoring_func'] ?? d.scoring_func);
  if (scoring !== 'softmax' && scoring !== 'sigmoid') fail(where, "config.json 'scoring_func'", `unsupported '${scoring}'`);
  const normTopk = cfg['norm_topk_prob'] ?? d.norm_topk_prob;
  const router: RouterConfig = {
    nExperts, topK: num(cfg, 'num_experts_per_tok', where), nGroup, topkGroup: nGroup > 1 ? num(cfg, 'topk_group', where, d.topk_group) : 1,
    scoring, groupScore: method === 'group_limited_greedy' ? 'max' : 'top2sum',
    normTopkProb: normTopk === true, routedScalingFactor: num(cfg, 'routed_scaling_factor', where, d.routed_scaling_factor),
  };
  // transformers v5 writes rope_theta and the scaling together as `rope_parameters`.
  const params = cfg['rope_scaling'] === undefined && isJson(cfg['rope_parameters']) ? cfg['rope_parameters'] : undefined;
  const rs = (params ?? cfg['rope_scaling']) as Json | null | undefined;
  let yarn: YarnScaling | undefined;
  if (rs && (rs['type'] ?? rs['rope_type'] ?? 'default') !== 'default') {
    const kind = rs['type'] ?? rs['rope_type'];
    if (kind !== 'yarn') fail(where, `config.json '${params ? 'rope_parameters' : 'rope_scaling'}.type'`, `unsupported rope scaling ${JSON.stringify(kind)}`);
    const opt = (k: string): number | undefined => (typeof rs[k] === 'number' ? (rs[k] as number) : undefined);
    yarn = {
      type: 'yarn', factor: opt('factor') ?? 1, originalContext: opt('original_max_position_embeddings') ?? 4096,
      betaFast: opt('beta_fast') ?? 32, betaSlow: opt('beta_slow') ?? 1, mscale: opt('mscale') ?? 1, mscaleAllDim: opt('mscale_all_dim') ?? 0,
    };
  }
  return {
    vocabSize: num(cfg, 'vocab_size', where),
    hiddenSize: num(cfg, 'hidden_size', where),
    intermediateSize: num(cfg, 'intermediate_size', where),
    moeIntermediateSize: num(cfg, 'moe_intermediate_size', where),
    numLayers: num(cfg, 'num_hidden_layers', where),
    heads: num(cfg, 'num_attention_heads', where),
    qLoraRank: num(cfg, 'q_lora_rank', where, 0),
    kvLoraRank: num(cfg, 'kv_lora_rank', where),
    qkNopeHeadDim: qkNope,
    qkRopeHeadDim: qkRope,
    vHeadDim: num(cfg, 'v_head_dim', where),
    nRoutedExperts: nExperts,
    nSharedExperts: num(cfg, 'n_shared_experts', where, 0),
    firstKDenseReplace: num(cfg, 'first_k_dense_replace', where, d.first_k_dense_replace),
    router,
    rmsNormEps: num(cfg, 'rms_norm_eps', where, 1e-6),
    ropeTheta: cfg['rope_theta'] === undefined && params ? num(params, 'rope_theta', where, 10000) : num(cfg, 'rope_theta', where, 10000),
    yarn,
    ropeAttentionFactor: yarn && yarn.factor > 1 ? yarnAttentionFactor(yarn) : 1,
    softmaxScale: yarnSoftmaxScale(qkNope + qkRope, yarn && yarn.factor > 1 ? yarn : undefined),
    contextLength: num(cfg, 'max_position_embeddings', where),
    nextnLayers: num(cfg, 'num_nextn_predict_layers', where, d.num_nextn_predict_layers),
  };
}

/** Reads HF tensors with shape checks and the FP8 policy. */
class HfReader {
  constructor(readonly src: HfTensorSource, readonly backend: Backend, readonly fp8: 'keep' | 'f32' | 'bf16') {}

  private expectShape(name: string, expected: readonly number[]): void {
    const shape = this.src.shape(name);
    if (!shape) fail(this.src.where, `tensor '${name}'`, 'missing (required by the DeepSeek architecture)');
    if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
      fail(this.src.where, `tensor '${name}'`, `has shape [${shape.join(', ')}], expected [${expected.join(', ')}]`);
    }
  }

  matrix(name: string, rows: number, cols: number): WeightMatrix {
    this.expectShape(name, [rows, cols]);
    const w = this.src.matrix(name);
    if (w.dtype !== 'fp8_e4m3' || this.fp8 === 'keep') return w;
    const values = new Float32Array(rows * cols);
    this.backend.dequantizeRows(values, w, 0, rows);
    if (this.fp8 === 'f32') return { dtype: 'f32', rows, cols, data: new Uint8Array(values.buffer) };
    return { dtype: 'bf16', rows, cols, data: quantize('bf16', values) };
  }

  vector(name: string, n: number): Float32Array {
    this.expectShape(name, [n]);
    return this.src.values(name);
  }
}

function hfLayer(t: HfReader, cfg: DeepseekConfig, i: number): DeepseekLayerWeights {
  const p = `model.layers.${i}.`;
  const { hiddenSize: d, heads: H, qLoraRank: qr, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: v } = cfg;
  const qk = nope + rope;
  const a = `${p}self_attn.`;
  const q = qr > 0
    ? { qA: t.matrix(`${a}q_a_proj.weight`, qr, d), qANorm: t.vector(`${a}q_a_layernorm.weight`, qr), qB: t.matrix(`${a}q_b_proj.weight`, H * qk, qr) }
    : { q: t.matrix(`${a}q_proj.weight`, H * qk, d) };
  const { kUpT, vUp } = splitKvB(t.backend, t.matrix(`${a}kv_b_proj.weight`, H * (nope + v), r), cfg);
  const attn: MlaWeights = {
    ...q,
    kvA: t.matrix(`${a}kv_a_proj_with_mqa.weight`, r + rope, d),
    kvANorm: t.vector(`${a}kv_a_layernorm.weight`, r),
    kUpT, vUp,
    o: t.matrix(`${a}o_proj.weight`, d, H * v),
  };
  const base = { attnNorm: t.vector(`${p}input_layernorm.weight`, d), attn, ffnNorm: t.vector(`${p}post_attention_layernorm.weight`, d) };
  const m = `${p}mlp.`;
  const ffn = (prefix: string, width: number) => ({
    gate: t.matrix(`${prefix}gate_proj.weight`, width, d), up: t.matrix(`${prefix}up_proj.weight`, width, d), down: t.matrix(`${prefix}down_proj.weight`, d, width),
  });
  if (i < cfg.firstKDenseReplace) return { ...base, dense: ffn(m, cfg.intermediateSize) };
  const E = cfg.nRoutedExperts;
  const moe: MoeWeights = {
    router: t.matrix(`${m}gate.weight`, E, d),
    bias: t.src.has(`${m}gate.e_score_correction_bias`) ? t.vector(`${m}gate.e_score_correction_bias`, E) : undefined,
    experts: Array.from({ length: E }, (_, e) => ffn(`${m}experts.${e}.`, cfg.moeIntermediateSize)),
    shared: cfg.nSharedExperts > 0 ? ffn(`${m}shared_experts.`, cfg.moeIntermediateSize * cfg.nSharedExperts) : undefined,
  };
  return { ...base, moe };
}

/** Builds the model from a config.json object and a tensor source. */
export function deepseekFromHfTensors(configJson: Json, src: HfTensorSource, options: DeepseekHfLoadOptions = {}): DeepseekModel {
  const backend = options.backend ?? getBackend();
  const cfg = deepseekConfigFromHf(configJson, src.where);
  const t = new HfReader(src, backend, options.fp8 ?? 'keep');
  const d = cfg.hiddenSize;
  const vocab = cfg.vocabSize;
  const embed = t.matrix('model.embed_tokens.weight', vocab, d);
  const layers = Array.from({ length: cfg.numLayers }, (_, i) => hfLayer(t, cfg, i));
  // tie_word_embeddings: transformers ties the head to the embedding even when lm_head.weight is stored.
  const output = configJson['tie_word_embeddings'] !== true && src.has('lm_head.weight') ? t.matrix('lm_head.weight', vocab, d) : embed;
  const mtp: DeepseekMtpWeights[] = [];
  if (options.loadMtp !== false) {
    for (let k = 0; k < cfg.nextnLayers; k++) {
      const i = cfg.numLayers + k;
      const p = `model.layers.${i}.`;
      if (!src.has(`${p}eh_proj.weight`)) break;
      mtp.push({
        block: hfLayer(t, cfg, i),
        enorm: t.vector(`${p}enorm.weight`, d),
        hnorm: t.vector(`${p}hnorm.weight`, d),
        ehProj: t.matrix(`${p}eh_proj.weight`, d, 2 * d),
        headNorm: src.has(`${p}shared_head.norm.weight`) ? t.vector(`${p}shared_head.norm.weight`, d) : undefined,
        head: src.has(`${p}shared_head.head.weight`) ? t.matrix(`${p}shared_head.head.weight`, vocab, d) : undefined,
        embed: src.has(`${p}embed_tokens.weight`) ? t.matrix(`${p}embed_tokens.weight`, vocab, d) : undefined,
      });
    }
  }
  return new DeepseekModel(cfg, { embed, layers, norm: t.vector('model.norm.weight', d), output, mtp }, { ...options, backend });
}

// ---------------------------------------------------------------------------------------------
// Checkpoint directory

/**
 * The tensors of an HF checkpoint directory: `model.safetensors.index.json` (weight_map) when
 * present, else every `*.safetensors` file in it. FP8 weights are paired with `<name>_scale_inv`.
 */
export function safetensorsCheckpointSource(dir: string): HfTensorSource & { close(): void } {
  const indexPath = join(dir, 'model.safetensors.index.json');
  const files = new Map<string, SafetensorsFile>();
  const owner = new Map<string, SafetensorsFile>();
  const open = (name: string): SafetensorsFile => {
    let f = files.get(name);
    if (!f) files.set(name, (f = openSafetensors(join(dir, name))));
    return f;
  };
  try {
    if (existsSync(indexPath)) {
      const index = parseJson(indexPath) as { weight_map?: Record<string, string> };
      if (!index.weight_map || typeof index.weight_map !== 'object') fail(indexPath, 'weight_map', 'missing or not an object');
      for (const [tensor, file] of Object.entries(index.weight_map)) {
        if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) fail(indexPath, `weight_map['${tensor}']`, `bad shard name ${JSON.stringify(file)}`);
        if (!files.has(file) && !existsSync(join(dir, file))) fail(indexPath, `weight_map['${tensor}']`, `shard '${file}' does not exist in ${dir}`);
        const f = open(file);
        if (!f.tensor(tensor)) fail(f.path, `tensor '${tensor}'`, `listed in model.safetensors.index.json but not in the shard`);
        owner.set(tensor, f);
      }
    } else {
      const shards = readdirSync(dir).filter((n) => n.endsWith('.safetensors')).sort();
      if (shards.length === 0) fail(dir, 'checkpoint', 'no model.safetensors.index.json and no *.safetensors file');
      for (const shard of shards) for (const t of open(shard).tensors) owner.set(t.name, files.get(shard)!);
    }
  } catch (error) {
    for (const f of files.values()) f.close();
    throw error;
  }
  const info = (name: string) => {
    const f = owner.get(name);
    const t = f?.tensor(name);
    if (!f || !t) fail(dir, `tensor '${name}'`, 'missing from the checkpoint');
    return { f, t };
  };
  const f32 = (name: string): Float32Array => {
    const { f, t } = info(name);
    if (!t.computeDtype || t.computeDtype === 'fp8_e4m3' || t.computeDtype.startsWith('i')) fail(f.path, `tensor '${name}'`, `dtype ${t.dtype} cannot be read as values`);
    return dequantize(t.computeDtype, f.readTensorBytes(t), t.elements);
  };
  return {
    where: dir,
    has: (name) => owner.has(name),
    shape: (name) => owner.get(name)?.tensor(name)?.shape,
    matrix(name): WeightMatrix {
      const { f, t } = info(name);
      if (t.shape.length !== 2) fail(f.path, `tensor '${name}'`, `has shape [${t.shape.join(', ')}], expected a matrix`);
      const [rows, cols] = t.shape as [number, number];
      const dtype = t.computeDtype;
      if (dtype === 'fp8_e4m3') {
        const scaleName = `${name}_scale_inv`;
        if (!owner.has(scaleName)) fail(f.path, `tensor '${name}'`, `is F8_E4M3 but '${scaleName}' is missing`);
        const scales = f32(scaleName);
        const want = Math.ceil(rows / 128) * Math.ceil(cols / 128);
        if (scales.length !== want) fail(f.path, `tensor '${scaleName}'`, `has ${scales.length} values, expected ${want} (ceil(${rows}/128)·ceil(${cols}/128))`);
        return { dtype, rows, cols, data: f.readTensorBytes(t), blockScales: scales };
      }
      if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') fail(f.path, `tensor '${name}'`, `dtype ${t.dtype} is not supported for weights`);
      return { dtype, rows, cols, data: f.readTensorBytes(t) };
    },
    values: f32,
    close() {
      for (const f of files.values()) f.close();
    },
  };
}

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new FormatError(path, 'file', undefined, `cannot read (${error instanceof Error ? error.message : String(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FormatError(path, 'JSON', undefined, error instanceof Error ? error.message : String(error));
  }
}

/** Loads a DeepseekV3ForCausalLM / DeepseekV2ForCausalLM checkpoint directory (config.json + safetensors). */
export function loadDeepseekFromHf(dir: string, options: DeepseekHfLoadOptions = {}): DeepseekModel {
  const config = parseJson(join(dir, 'config.json'));
  if (!config || typeof config !== 'object' || Array.isArray(config)) fail(join(dir, 'config.json'), 'JSON', 'expected an object');
  const src = safetensorsCheckpointSource(dir);
  try {
    return deepseekFromHfTensors(config as Json, src, options);
  } finally {
    src.close();
  }
}
