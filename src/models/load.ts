/**
 * Model loading: a `.gguf` file or an HF checkpoint directory (config.json + safetensors) becomes
 * a CausalLM (plus its tokenizer and chat template when the files carry them).
 *
 * Every architecture reads its weights through a ModelSource, which speaks GGUF names and keys:
 * a dense HF checkpoint is presented under the names and keys llama.cpp's converter would give it
 * (openHfSource below), so one loader per architecture serves both formats. DeepSeek HF
 * checkpoints go through ./deepseek-v3-hf.ts. Architectures register in `architectures` below
 * by their GGUF `general.architecture` name.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type GgufFile, type GgufTensorInfo, openGguf, readExpertMatrix, readF32, readWeightMatrix } from '../formats/gguf.js';
import { type GgufPlainValue, plainValue } from '../formats/gguf-value.js';
import { modelDirectory, openCheckpoint, readTensorF32, readWeight } from '../formats/hf-checkpoint.js';
import { type HfArchitecture, type LlamaConfig, type Qwen2Config, readHfConfig } from '../formats/hf-config.js';
import type { SafetensorsTensorInfo } from '../formats/safetensors.js';
import { mhaCacheWidth } from '../nn/mla.js';
import { llama3FreqFactors, yarnAttentionFactor } from '../nn/rope.js';
import type { Backend } from '../tensor/backend.js';
import { MATMUL_DTYPES } from '../tensor/ref/checks.js';
import type { DType } from '../tensor/dtype.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { Tokenizer, tokenizerGgufMetadata } from '../tokenizer/index.js';
import { deepseekConfigFromGguf, describeDeepseekConfig, loadDeepseekFromGguf } from './deepseek-v3.js';
import { deepseekConfigFromHf, loadDeepseekFromHf } from './deepseek-v3-hf.js';
import { describeDense, loadLlama } from './llama.js';
import type { CausalLM } from './model.js';
import { loadQwen2, loadQwen3 } from './qwen2.js';

/** One stored tensor: name, dtype, shape in ggml order (dims[0] = contiguous), bytes. */
export interface TensorSummary {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly byteLength: number;
}

/** Weights and GGUF-style metadata of one model, whatever the file format. */
export interface ModelSource {
  /** The file or directory, for error messages. */
  readonly path: string;
  readonly format: 'gguf' | 'hf';
  /** The open GGUF file (format 'gguf' only), for loaders that need more than this interface. */
  readonly gguf?: GgufFile;
  /** The parsed config.json object (format 'hf' only). */
  readonly hfConfig?: Record<string, unknown>;
  value(key: string): GgufPlainValue | undefined;
  /** A numeric key (any integer or float type), or undefined; throws when the key holds something else. */
  number(key: string): number | undefined;
  string(key: string): string | undefined;
  bool(key: string): boolean | undefined;
  keys(): string[];
  hasTensor(name: string): boolean;
  /** ggml-order dims of a tensor, or undefined when it is absent. */
  tensorShape(name: string): readonly number[] | undefined;
  /** A [rows, cols] weight in its storage dtype; throws naming the tensor and file when missing or misshapen. */
  matrix(name: string, rows: number, cols: number): WeightMatrix;
  /** Expert `expert` ([rows, cols]) of a 3-D stack ne = [cols, rows, experts]. */
  expertMatrix(name: string, expert: number, rows: number, cols: number): WeightMatrix;
  /** A tensor of exactly `length` values (any shape), dequantized to f32. */
  vector(name: string, length: number): Float32Array;
  tensors(): TensorSummary[];
  /** Releases the open files (tensors already read stay valid). */
  close(): void;
}

export class ModelFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ModelFileError';
  }
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** Weights must be in a dtype the kernels multiply with; say so at load time, naming the tensor. */
function checkComputable(file: string, name: string, dtype: DType): void {
  if (!MATMUL_DTYPES.has(dtype)) {
    throw new ModelFileError(file, `tensor '${name}' is stored as ${dtype}, which the compute kernels do not support (supported: ${[...MATMUL_DTYPES].join(', ')})`);
  }
}

/** The ModelSource of an open GGUF file. */
export function ggufSource(file: GgufFile): ModelSource {
  const need = (name: string): GgufTensorInfo => {
    const info = file.tensor(name);
    if (!info) throw new ModelFileError(file.path, `tensor '${name}' is missing`);
    return info;
  };
  const number = (key: string): number | undefined => {
    const v = file.value(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw new ModelFileError(file.path, `metadata '${key}' should be a number, found ${typeof v === 'object' ? 'an array' : typeof v}`);
  };
  return {
    path: file.path,
    format: 'gguf',
    gguf: file,
    value: (key) => file.value(key),
    number,
    string: (key) => {
      const v = file.value(key);
      if (v === undefined || typeof v === 'string') return v;
      throw new ModelFileError(file.path, `metadata '${key}' should be a string, found ${typeof v}`);
    },
    bool: (key) => {
      const v = file.value(key);
      if (v === undefined || typeof v === 'boolean') return v;
      throw new ModelFileError(file.path, `metadata '${key}' should be a bool, found ${typeof v}`);
    },
    keys: () => [...file.metadata.keys()],
    hasTensor: (name) => file.tensor(name) !== undefined,
    tensorShape: (name) => file.tensor(name)?.dims,
    matrix(name, rows, cols) {
      const info = need(name);
      const [ne0, ne1 = 1, ...rest] = info.dims;
      if (ne0 !== cols || ne1 !== rows || rest.some((d) => d !== 1)) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)} (ggml order), expected ${shapeText([cols, rows])}`);
      }
      checkComputable(file.path, name, info.dtype);
      return readWeightMatrix(file, name);
    },
    expertMatrix(name, expert, rows, cols) {
      const info = need(name);
      if (info.dims.length !== 3 || info.dims[0] !== cols || info.dims[1] !== rows) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)} (ggml order), expected [${cols}, ${rows}, experts]`);
      }
      checkComputable(file.path, name, info.dtype);
      return readExpertMatrix(file, name, expert);
    },
    vector(name, length) {
      const info = need(name);
      if (info.elements !== length) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)}, expected ${length} values`);
      }
      if (info.dtype !== 'f32') return readF32(file, name);
      // f32 as stored: a view of the mapping when the file is mapped (readTensorBytes is 4-byte aligned).
      const bytes = file.readTensorBytes(info);
      return new Float32Array(bytes.buffer, bytes.byteOffset, length);
    },
    tensors: () => file.tensors.map((t) => ({ name: t.name, dtype: t.dtype, dims: t.dims, byteLength: t.byteLength })),
    close: () => file.close(),
  };
}

export interface LoadOptions {
  backend?: Backend;
  /** Most tokens per batched forward pass (longer prompts run in chunks). */
  maxBatch?: number;
}

/** What `frugal info` shows about an architecture, computed from metadata alone (no weights read). */
export interface ArchitectureSummary {
  /** Values the KV cache holds per token, all layers together (f32 each). */
  readonly cacheValuesPerToken: number;
  /**
   * Values per token of a plain cache (full keys and values for every head) when the
   * architecture's own cache is smaller (MLA keeps a shared latent instead); absent otherwise.
   */
  readonly plainCacheValuesPerToken?: number;
  /** Extra lines, e.g. the layer layout or the MLA cache shape. */
  readonly lines: string[];
}

/** How one architecture is built from a source, and what it adds to `frugal info`. */
export interface Architecture {
  load(source: ModelSource, options: LoadOptions & { ropeStyle?: 'interleaved' | 'neox' }): CausalLM;
  describe(source: ModelSource): ArchitectureSummary;
}

export const architectures: Record<string, Architecture> = {
  llama: { load: loadLlama, describe: (source) => describeDense(source, 'llama') },
  qwen2: { load: loadQwen2, describe: (source) => describeDense(source, 'qwen2') },
  qwen3: { load: loadQwen3, describe: (source) => describeDense(source, 'qwen3') },
  deepseek2: {
    load(source, options) {
      if (!source.gguf) throw new ModelFileError(source.path, 'deepseek2 loads from GGUF files or DeepSeek HF checkpoint directories');
      return loadDeepseekFromGguf(source.gguf, options);
    },
    describe(source) {
      const c = source.gguf ? deepseekConfigFromGguf(source.gguf)
        : source.hfConfig ? deepseekConfigFromHf(source.hfConfig, join(source.path, 'config.json'))
        : undefined;
      if (!c) throw new ModelFileError(source.path, 'no deepseek2 configuration found');
      return { ...describeDeepseekConfig(c), plainCacheValuesPerToken: c.numLayers * mhaCacheWidth(c) };
    },
  },
};

/** The architecture registered under `name`, or an error listing those that are. */
export function architecture(name: string | undefined, origin: string): Architecture {
  if (name === undefined) throw new ModelFileError(origin, `no architecture given (general.architecture is missing)`);
  const arch = Object.hasOwn(architectures, name) ? architectures[name] : undefined;
  if (!arch) throw new ModelFileError(origin, `unsupported architecture '${name}' (supported: ${Object.keys(architectures).join(', ')})`);
  return arch;
}

export interface LoadedModel {
  readonly model: CausalLM;
  readonly tokenizer?: Tokenizer;
  readonly chatTemplate?: string;
  /**
   * The weights and metadata the model was built from (GGUF keys and names, also for dense HF
   * checkpoints; undefined for DeepSeek HF checkpoints, which load through their own reader).
   * Closed: its tensor index and metadata remain readable.
   */
  readonly source: ModelSource | undefined;
  /** GGUF-style metadata (`general.architecture`, `{arch}.*`, `tokenizer.*`), plain values. */
  readonly metadata: ReadonlyMap<string, GgufPlainValue>;
  readonly architecture: Architecture;
}

export interface LoadModelOptions extends LoadOptions {
  /** Load the tokenizer too (default true); a file without one loads with tokenizer undefined. */
  tokenizer?: boolean;
}

/** Opens a model's metadata and tensor index without reading weights (close it when done). */
export function openModelSource(path: string): ModelSource {
  if (!existsSync(path)) throw new Error(`model not found: ${path}`);
  if (statSync(path).isDirectory()) return openHfSource(path);
  return ggufSource(openGguf(path));
}

/**
 * Loads a `.gguf` file, or an HF checkpoint directory (config.json + model.safetensors or a
 * sharded model.safetensors.index.json, tokenizer.json).
 */
export function loadModel(path: string, options: LoadModelOptions = {}): LoadedModel {
  if (!existsSync(path)) throw new Error(`model not found: ${path}`);
  if (statSync(path).isDirectory()) return loadHfModel(modelDirectory(path), options);
  return loadGgufModel(path, options);
}

function loadGgufModel(path: string, options: LoadModelOptions): LoadedModel {
  const file = openGguf(path);
  try {
    const source = ggufSource(file);
    const name = source.string('general.architecture');
    const arch = architecture(name, path);
    const model = arch.load(source, options);
    let tokenizer: Tokenizer | undefined;
    if (options.tokenizer !== false && file.value('tokenizer.ggml.model') !== undefined) {
      try {
        tokenizer = Tokenizer.fromGgufMetadata((key) => file.value(key));
      } catch (error) {
        throw new ModelFileError(path, `tokenizer: ${(error as Error).message}`);
      }
      if (tokenizer.vocabSize > model.info.vocabSize) {
        throw new ModelFileError(path, `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.info.vocabSize} logits`);
      }
    }
    const metadata = new Map<string, GgufPlainValue>();
    for (const key of file.metadata.keys()) metadata.set(key, file.value(key)!);
    const chatTemplate = tokenizer?.chatTemplate ?? source.string('tokenizer.chat_template');
    return { model, tokenizer, chatTemplate, source, metadata, architecture: arch };
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// HF checkpoints: config.json + safetensors, presented under GGUF names and keys.

/** HF <-> GGUF tensor names of the dense architectures (llama.cpp's tensor_mapping). */
const DENSE_FIXED_NAMES: [string, string][] = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];
const DENSE_LAYER_NAMES: [string, string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'], ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.weight', 'attn_k.weight'], ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.weight', 'attn_v.weight'], ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['self_attn.q_norm.weight', 'attn_q_norm.weight'], ['self_attn.k_norm.weight', 'attn_k_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

/** HF tensor name -> GGUF name for the dense architectures, or undefined for other names. */
export function ggufNameOfHfDense(hfName: string): string | undefined {
  const fixed = DENSE_FIXED_NAMES.find(([hf]) => hf === hfName);
  if (fixed) return fixed[1];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const part = m ? DENSE_LAYER_NAMES.find(([hf]) => hf === m[2]) : undefined;
  return m && part ? `blk.${m[1]}.${part[1]}` : undefined;
}

/** GGUF tensor name -> HF name for the dense architectures, or undefined for other names. */
export function hfNameOfGgufDense(ggufName: string): string | undefined {
  const fixed = DENSE_FIXED_NAMES.find(([, g]) => g === ggufName);
  if (fixed) return fixed[0];
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const part = m ? DENSE_LAYER_NAMES.find(([, g]) => g === m[2]) : undefined;
  return m && part ? `model.layers.${m[1]}.${part[0]}` : undefined;
}

const HF_DENSE: Partial<Record<HfArchitecture, 'llama' | 'qwen2'>> = { LlamaForCausalLM: 'llama', Qwen2ForCausalLM: 'qwen2' };

/** The GGUF keys llama.cpp's converter would write for a dense HF config. */
function denseKeysOfHfConfig(config: LlamaConfig | Qwen2Config, a: 'llama' | 'qwen2', where: string): Map<string, GgufPlainValue> {
  if (config.architecture === 'LlamaForCausalLM') {
    for (const field of ['attention_bias', 'mlp_bias'] as const) {
      if (config[field]) throw new ModelFileError(where, `${field}: true is not supported (Llama checkpoints with biases on the ${field === 'mlp_bias' ? 'MLP' : 'attention'} projections)`);
    }
  }
  // Qwen2 with use_sliding_window: layers from max_window_layers on attend only to the last
  // sliding_window positions. Within that many tokens every layer sees the whole sequence, so
  // the model is exact up to there: cap the context instead of refusing the checkpoint.
  let context = config.max_position_embeddings;
  if (config.architecture === 'Qwen2ForCausalLM' && config.use_sliding_window && config.sliding_window !== null
    && config.max_window_layers < config.num_hidden_layers) {
    context = Math.min(context, config.sliding_window);
  }
  const keys = new Map<string, GgufPlainValue>([
    ['general.architecture', a],
    [`${a}.block_count`, config.num_hidden_layers],
    [`${a}.context_length`, context],
    [`${a}.embedding_length`, config.hidden_size],
    [`${a}.feed_forward_length`, config.intermediate_size],
    [`${a}.attention.head_count`, config.num_attention_heads],
    [`${a}.attention.head_count_kv`, config.num_key_value_heads],
    [`${a}.attention.key_length`, config.head_dim],
    [`${a}.attention.value_length`, config.head_dim],
    [`${a}.attention.layer_norm_rms_epsilon`, config.rms_norm_eps],
    [`${a}.rope.freq_base`, config.rope_theta],
    [`${a}.rope.dimension_count`, config.head_dim],
    [`${a}.vocab_size`, config.vocab_size],
  ]);
  const scaling = config.rope_scaling;
  if (scaling && scaling.type === 'linear') {
    keys.set(`${a}.rope.scaling.type`, 'linear');
    keys.set(`${a}.rope.scaling.factor`, scaling.factor);
  } else if (scaling && scaling.type === 'yarn') {
    keys.set(`${a}.rope.scaling.type`, 'yarn');
    keys.set(`${a}.rope.scaling.factor`, scaling.factor);
    keys.set(`${a}.rope.scaling.original_context_length`, scaling.original_max_position_embeddings);
    keys.set(`${a}.rope.scaling.yarn_beta_fast`, scaling.beta_fast);
    keys.set(`${a}.rope.scaling.yarn_beta_slow`, scaling.beta_slow);
    // transformers' attention_factor (cos/sin multiplier), by the rule DeepSeek's YaRN uses too;
    // transformers takes the mscale ratio only when both mscale and mscale_all_dim are non-zero
    keys.set(`${a}.rope.scaling.attn_factor`, yarnAttentionFactor({
      type: 'yarn', factor: scaling.factor, originalContext: scaling.original_max_position_embeddings,
      ...(scaling.attention_factor !== undefined ? { attentionFactor: scaling.attention_factor } : {}),
      ...(scaling.mscale && scaling.mscale_all_dim ? { mscale: scaling.mscale, mscaleAllDim: scaling.mscale_all_dim } : {}),
    }));
  } else if (scaling && scaling.type === 'dynamic') {
    // Dynamic NTK recomputes the frequencies only for sequences longer than
    // max_position_embeddings (the context limit here): within it, RoPE is unscaled.
  } else if (scaling && scaling.type !== 'llama3') {
    throw new ModelFileError(where, `rope_scaling type '${scaling.type}' is not supported`);
  }
  return keys;
}

/**
 * A dense HF checkpoint as a ModelSource: GGUF keys derived from config.json, tensors under their
 * GGUF names (unpermuted: HF Llama must run with NEOX rope), llama3 rope scaling as the
 * `rope_freqs.weight` the converter would compute, tokenizer keys from tokenizer.json.
 */
function openHfSource(dir: string): ModelSource {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new ModelFileError(dir, 'no config.json in this directory');
  const config = readHfConfig(configPath);
  const hfConfig = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  const a = HF_DENSE[config.architecture];
  const dense = config as LlamaConfig | Qwen2Config;
  // DeepSeek checkpoints: metadata and tensor index only (they load through ./deepseek-v3-hf.ts).
  const keys = a ? denseKeysOfHfConfig(dense, a, configPath)
    : new Map<string, GgufPlainValue>([['general.architecture', 'deepseek2'], ['deepseek2.context_length', config.max_position_embeddings]]);
  const tokenizerPath = join(dir, 'tokenizer.json');
  let tokenizer: Tokenizer | undefined;
  const tokenizerKeys = (): void => {
    if (tokenizer || !existsSync(tokenizerPath)) return;
    tokenizer = Tokenizer.fromFile(tokenizerPath);
    for (const [k, v] of tokenizerGgufMetadata(tokenizer)) keys.set(k, plainValue(v));
  };
  const checkpoint = openCheckpoint(dir);
  const where = checkpoint.indexPath ?? checkpoint.files[0] ?? dir;
  const hfName = new Map<string, string>();
  for (const name of checkpoint.tensorNames()) {
    const g = ggufNameOfHfDense(name);
    if (g) hfName.set(g, name);
  }
  let ropeFreqs: Float32Array | undefined;
  const scaling = dense.rope_scaling;
  if (a && scaling && scaling.type === 'llama3') {
    ropeFreqs = llama3FreqFactors(dense.head_dim, dense.rope_theta, {
      type: 'llama3', factor: scaling.factor, lowFreqFactor: scaling.low_freq_factor,
      highFreqFactor: scaling.high_freq_factor, originalContext: scaling.original_max_position_embeddings,
    });
  }
  // With tie_word_embeddings, transformers ties lm_head to the embedding even when the checkpoint
  // also holds an lm_head.weight (tie_weights runs after loading): the embedding is the head.
  if (a && config.tie_word_embeddings) hfName.delete('output.weight');
  if (a && !config.tie_word_embeddings && !hfName.has('output.weight') && hfName.has('token_embd.weight')) {
    throw new ModelFileError(where, "tensor 'lm_head.weight' is missing (tie_word_embeddings is false)");
  }
  const need = (name: string): SafetensorsTensorInfo => {
    const hf = hfName.get(name);
    const info = hf === undefined ? undefined : checkpoint.tensor(hf);
    if (!info) throw new ModelFileError(where, `tensor '${hfNameOf(name)}' is missing`);
    return info;
  };
  const hfNameOf = (name: string): string => hfName.get(name) ?? hfNameOfGgufDense(name) ?? name;
  const get = (key: string): GgufPlainValue | undefined => {
    if (key.startsWith('tokenizer.')) tokenizerKeys();
    return keys.get(key);
  };
  const typed = <T>(key: string, type: string): T | undefined => {
    const v = get(key);
    if (v !== undefined && typeof v !== type) throw new ModelFileError(configPath, `${key} should be a ${type}`);
    return v as T | undefined;
  };
  return {
    path: dir,
    format: 'hf',
    hfConfig,
    value: get,
    number: (key) => typed<number>(key, 'number'),
    string: (key) => typed<string>(key, 'string'),
    bool: (key) => typed<boolean>(key, 'boolean'),
    keys: () => {
      tokenizerKeys();
      return [...keys.keys()];
    },
    hasTensor: (name) => (name === 'rope_freqs.weight' ? ropeFreqs !== undefined : hfName.has(name)),
    tensorShape: (name) => {
      if (name === 'rope_freqs.weight') return ropeFreqs ? [ropeFreqs.length] : undefined;
      const hf = hfName.get(name);
      const info = hf === undefined ? undefined : checkpoint.tensor(hf);
      return info ? [...info.shape].reverse() : undefined;
    },
    matrix(name, rows, cols) {
      const info = need(name);
      const [r, c = undefined, ...rest] = info.shape;
      if (r !== rows || c !== cols || rest.length > 0) {
        throw new ModelFileError(where, `tensor '${info.name}' has shape [${info.shape.join(', ')}], expected [${rows}, ${cols}]`);
      }
      if (info.computeDtype) checkComputable(where, info.name, info.computeDtype);
      return readWeight(checkpoint, info.name);
    },
    expertMatrix(name) {
      throw new ModelFileError(where, `tensor '${name}': expert stacks are not part of dense checkpoints`);
    },
    vector(name, length) {
      if (name === 'rope_freqs.weight' && ropeFreqs) {
        if (ropeFreqs.length !== length) throw new ModelFileError(where, `rope frequency table has ${ropeFreqs.length} values, expected ${length}`);
        return ropeFreqs;
      }
      const info = need(name);
      if (info.elements !== length) throw new ModelFileError(where, `tensor '${info.name}' has shape [${info.shape.join(', ')}], expected ${length} values`);
      return readTensorF32(checkpoint, info.name);
    },
    tensors: () => checkpoint.tensorNames().map((name) => {
      const info = checkpoint.tensor(name)!;
      return { name, dtype: info.computeDtype ?? 'f32', dims: [...info.shape].reverse(), byteLength: info.byteLength };
    }),
    close: () => checkpoint.close(),
  };
}

function isDeepseekHf(dir: string): boolean {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) return false;
  const architecture = readHfConfig(configPath).architecture;
  return architecture === 'DeepseekV3ForCausalLM' || architecture === 'DeepseekV2ForCausalLM';
}

function loadHfModel(dir: string, options: LoadModelOptions): LoadedModel {
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizer = options.tokenizer !== false && existsSync(tokenizerPath) ? Tokenizer.fromFile(tokenizerPath) : undefined;
  // transformers >= 4.43 saves the template as chat_template.jinja, which wins over tokenizer_config.json's.
  const jinjaPath = join(dir, 'chat_template.jinja');
  const chatTemplate = existsSync(jinjaPath) ? readFileSync(jinjaPath, 'utf8') : tokenizer?.chatTemplate;
  if (isDeepseekHf(dir)) {
    const model = loadDeepseekFromHf(dir, options);
    const metadata = new Map<string, GgufPlainValue>([['general.architecture', 'deepseek2']]);
    return { model, tokenizer, chatTemplate, source: undefined, metadata, architecture: architectures.deepseek2! };
  }
  const source = openHfSource(dir);
  try {
    const name = source.string('general.architecture')!;
    const arch = architecture(name, dir);
    // HF Llama q/k rows are not permuted: rotate half-split pairs, as the HF modeling code does.
    const model = arch.load(source, { ...options, ropeStyle: 'neox' });
    if (tokenizer && tokenizer.vocabSize > model.info.vocabSize) {
      throw new ModelFileError(dir, `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.info.vocabSize} logits`);
    }
    const metadata = new Map<string, GgufPlainValue>();
    for (const key of source.keys()) metadata.set(key, source.value(key)!);
    return { model, tokenizer, chatTemplate, source, metadata, architecture: arch };
  } finally {
    source.close();
  }
}
