import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-write.js';
import { FormatError } from './format-error.js';

/**
 * Hugging Face `config.json` for the four architectures of the R1 family
 * (../shared/spec/formats-and-api.md §3.3, model-and-training.md §1.1), parsed into typed objects
 * that keep the real field names. Shape-defining fields are required; behavioural fields take the
 * defaults of the HF config classes when absent. Anything missing, ill-typed or inconsistent is a
 * FormatError naming the file and field.
 */

export type HfArchitecture = 'DeepseekV3ForCausalLM' | 'DeepseekV2ForCausalLM' | 'Qwen2ForCausalLM' | 'LlamaForCausalLM';

export const MODEL_TYPES: Readonly<Record<HfArchitecture, string>> = {
  DeepseekV3ForCausalLM: 'deepseek_v3',
  DeepseekV2ForCausalLM: 'deepseek_v2',
  Qwen2ForCausalLM: 'qwen2',
  LlamaForCausalLM: 'llama',
};

export interface YarnRopeScaling {
  readonly type: 'yarn';
  readonly factor: number;
  readonly original_max_position_embeddings: number;
  readonly beta_fast: number;
  readonly beta_slow: number;
  readonly mscale: number;
  readonly mscale_all_dim: number;
  /** Explicit cos/sin factor (transformers `attention_factor`), overriding the mscale rule. */
  readonly attention_factor?: number;
}

export interface Llama3RopeScaling {
  readonly type: 'llama3';
  readonly factor: number;
  readonly low_freq_factor: number;
  readonly high_freq_factor: number;
  readonly original_max_position_embeddings: number;
}

export interface LinearRopeScaling {
  readonly type: 'linear' | 'dynamic';
  readonly factor: number;
}

export type RopeScaling = YarnRopeScaling | Llama3RopeScaling | LinearRopeScaling;

export interface Fp8QuantizationConfig {
  readonly quant_method: 'fp8';
  readonly fmt: 'e4m3';
  readonly activation_scheme: 'dynamic' | 'static';
  readonly weight_block_size: readonly [number, number];
}

interface CommonConfig {
  readonly model_type: string;
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads: number;
  readonly max_position_embeddings: number;
  readonly rms_norm_eps: number;
  readonly rope_theta: number;
  readonly rope_scaling: RopeScaling | null;
  readonly hidden_act: string;
  readonly tie_word_embeddings: boolean;
  readonly attention_dropout: number;
  readonly initializer_range: number;
  readonly bos_token_id: number | null;
  readonly eos_token_id: number | readonly number[] | null;
  readonly torch_dtype: string | null;
}

export interface LlamaConfig extends CommonConfig {
  readonly architecture: 'LlamaForCausalLM';
  readonly head_dim: number;
  readonly attention_bias: boolean;
  readonly mlp_bias: boolean;
}

/** Qwen2 always has biases on q/k/v (and none elsewhere). */
export interface Qwen2Config extends CommonConfig {
  readonly architecture: 'Qwen2ForCausalLM';
  readonly head_dim: number;
  readonly use_sliding_window: boolean;
  readonly sliding_window: number | null;
  readonly max_window_layers: number;
}

interface DeepseekFields extends CommonConfig {
  readonly attention_bias: boolean;
  readonly moe_intermediate_size: number;
  /** null: no query compression (plain q_proj), as in V2-Lite. */
  readonly q_lora_rank: number | null;
  readonly kv_lora_rank: number;
  readonly qk_nope_head_dim: number;
  readonly qk_rope_head_dim: number;
  readonly v_head_dim: number;
  readonly n_routed_experts: number;
  readonly n_shared_experts: number;
  readonly num_experts_per_tok: number;
  readonly n_group: number;
  readonly topk_group: number;
  readonly topk_method: string;
  readonly scoring_func: 'softmax' | 'sigmoid';
  readonly norm_topk_prob: boolean;
  readonly routed_scaling_factor: number;
  readonly first_k_dense_replace: number;
  readonly moe_layer_freq: number;
  readonly num_nextn_predict_layers: number;
  readonly aux_loss_alpha: number;
  readonly seq_aux: boolean;
  readonly quantization_config: Fp8QuantizationConfig | null;
}

export interface DeepseekV3Config extends DeepseekFields {
  readonly architecture: 'DeepseekV3ForCausalLM';
}

export interface DeepseekV2Config extends DeepseekFields {
  readonly architecture: 'DeepseekV2ForCausalLM';
}

export type DeepseekConfig = DeepseekV3Config | DeepseekV2Config;
export type HfConfig = DeepseekV3Config | DeepseekV2Config | Qwen2Config | LlamaConfig;

// ---------------------------------------------------------------------------------------------
// Field readers

type Json = Record<string, unknown>;

class Fields {
  constructor(readonly source: string, readonly json: Json, readonly prefix = '') {}

  fail(key: string, problem: string): never {
    throw new FormatError(this.source, `${this.prefix}${key}`, undefined, problem);
  }

  private get(key: string): unknown {
    return Object.hasOwn(this.json, key) ? this.json[key] : undefined;
  }

  /** A field that may be absent (undefined) or null (null). */
  private raw(key: string, fallback: unknown): unknown {
    const v = this.get(key);
    if (v === undefined) {
      if (fallback === REQUIRED) this.fail(key, 'required field is missing');
      return fallback;
    }
    return v;
  }

  int(key: string, fallback: number | typeof REQUIRED = REQUIRED, min = 1): number {
    return this.checkInt(key, this.raw(key, fallback), min);
  }

  intOrNull(key: string, fallback: number | null | typeof REQUIRED = REQUIRED, min = 1): number | null {
    const v = this.raw(key, fallback);
    return v === null ? null : this.checkInt(key, v, min);
  }

  private checkInt(key: string, v: unknown, min: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, `expected an integer, found ${describe(v)}`);
    if ((v as number) < min) this.fail(key, `${v as number} is below the minimum ${min}`);
    return v as number;
  }

  number(key: string, fallback: number | typeof REQUIRED = REQUIRED, positive = false): number {
    const v = this.raw(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `expected a finite number, found ${describe(v)}`);
    if (positive && (v as number) <= 0) this.fail(key, `${v as number} must be positive`);
    return v as number;
  }

  bool(key: string, fallback: boolean | typeof REQUIRED = REQUIRED): boolean {
    const v = this.raw(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, found ${describe(v)}`);
    return v as boolean;
  }

  string<T extends string>(key: string, fallback: T | typeof REQUIRED = REQUIRED, allowed?: readonly T[]): T {
    const v = this.raw(key, fallback);
    if (typeof v !== 'string') this.fail(key, `expected a string, found ${describe(v)}`);
    if (allowed && !allowed.includes(v as T)) this.fail(key, `'${v as string}' is not one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
    return v as T;
  }

  stringOrNull(key: string, fallback: string | null = null): string | null {
    const v = this.raw(key, fallback);
    if (v !== null && typeof v !== 'string') this.fail(key, `expected a string or null, found ${describe(v)}`);
    return v as string | null;
  }

  object(key: string): Fields | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!isObject(v)) this.fail(key, `expected an object, found ${describe(v)}`);
    return new Fields(this.source, v as Json, `${this.prefix}${key}.`);
  }

  tokenIds(key: string, fallback: number | null): number | readonly number[] | null {
    const v = this.raw(key, fallback);
    if (v === null) return null;
    if (Array.isArray(v)) {
      if (v.some((x) => !Number.isSafeInteger(x) || x < 0)) this.fail(key, `expected token ids, found ${describe(v)}`);
      return [...v] as number[];
    }
    return this.checkInt(key, v, 0);
  }
}

const REQUIRED = Symbol('required');

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Parsing

export function readHfConfig(path: string): HfConfig {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== undefined) throw error;
    throw new FormatError(path, 'config', undefined, `not valid JSON (${(error as Error).message})`);
  }
  return parseHfConfig(json, path);
}

const ARCHITECTURES = Object.keys(MODEL_TYPES) as HfArchitecture[];

export function parseHfConfig(json: unknown, source = 'config.json'): HfConfig {
  if (!isObject(json)) throw new FormatError(source, 'config', undefined, 'not a JSON object');
  const f = new Fields(source, json);
  const architecture = pickArchitecture(f);
  const modelType = f.string('model_type', MODEL_TYPES[architecture]);
  if (modelType !== MODEL_TYPES[architecture]) f.fail('model_type', `'${modelType}' does not match architecture ${architecture} (expected '${MODEL_TYPES[architecture]}')`);
  switch (architecture) {
    case 'LlamaForCausalLM': return parseLlama(f);
    case 'Qwen2ForCausalLM': return parseQwen2(f);
    default: return parseDeepseek(f, architecture);
  }
}

function pickArchitecture(f: Fields): HfArchitecture {
  const listed = f.json.architectures;
  if (listed === undefined || listed === null) {
    const byType = ARCHITECTURES.find((a) => MODEL_TYPES[a] === f.json.model_type);
    if (byType) return byType;
    return f.fail('architectures', `missing, and model_type ${describe(f.json.model_type)} is not one of ${Object.values(MODEL_TYPES).join(', ')}`);
  }
  if (!Array.isArray(listed) || listed.some((a) => typeof a !== 'string')) return f.fail('architectures', `expected a list of names, found ${describe(listed)}`);
  const found = (listed as string[]).find((a): a is HfArchitecture => (ARCHITECTURES as string[]).includes(a));
  if (!found) return f.fail('architectures', `unsupported architecture ${describe(listed)} (supported: ${ARCHITECTURES.join(', ')})`);
  return found;
}

interface CommonDefaults {
  max_position_embeddings: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  /**
   * YaRN's original_max_position_embeddings when rope_scaling omits it: transformers' generic
   * rule (max_position_embeddings) for dense models; DeepSeek configs must give it.
   */
  yarn_original_required?: boolean;
}

function parseCommon(f: Fields, d: CommonDefaults): CommonConfig {
  const num_attention_heads = f.int('num_attention_heads');
  // transformers: `if num_key_value_heads is None: num_key_value_heads = num_attention_heads`
  const num_key_value_heads = f.intOrNull('num_key_value_heads', num_attention_heads) ?? num_attention_heads;
  if (num_attention_heads % num_key_value_heads !== 0) {
    f.fail('num_key_value_heads', `${num_key_value_heads} does not divide num_attention_heads ${num_attention_heads}`);
  }
  const max_position_embeddings = f.int('max_position_embeddings', d.max_position_embeddings);
  return {
    model_type: f.string('model_type'),
    vocab_size: f.int('vocab_size'),
    hidden_size: f.int('hidden_size'),
    intermediate_size: f.int('intermediate_size'),
    num_hidden_layers: f.int('num_hidden_layers'),
    num_attention_heads,
    num_key_value_heads,
    max_position_embeddings,
    rms_norm_eps: f.number('rms_norm_eps', 1e-6, true),
    ...parseRope(f, d.yarn_original_required ? REQUIRED : max_position_embeddings),
    // Every architecture here gates its MLP with SiLU; refuse anything else rather than compute it wrongly.
    hidden_act: f.string('hidden_act', 'silu', ['silu', 'swish']),
    tie_word_embeddings: f.bool('tie_word_embeddings', false),
    attention_dropout: f.number('attention_dropout', 0),
    initializer_range: f.number('initializer_range', 0.02),
    bos_token_id: f.intOrNull('bos_token_id', d.bos_token_id, 0),
    eos_token_id: f.tokenIds('eos_token_id', d.eos_token_id),
    // newer transformers write `dtype` instead of `torch_dtype`
    torch_dtype: f.json.torch_dtype === undefined && f.json.dtype !== undefined ? f.stringOrNull('dtype') : f.stringOrNull('torch_dtype'),
  };
}

function withModelType(f: Fields, architecture: HfArchitecture): Fields {
  return isObject(f.json) && f.json.model_type === undefined ? new Fields(f.source, { ...f.json, model_type: MODEL_TYPES[architecture] }) : f;
}

function parseLlama(input: Fields): LlamaConfig {
  const f = withModelType(input, 'LlamaForCausalLM');
  const common = parseCommon(f, { max_position_embeddings: 2048, bos_token_id: 1, eos_token_id: 2 });
  const head_dim = headDim(f, common);
  return { architecture: 'LlamaForCausalLM', ...common, head_dim, attention_bias: f.bool('attention_bias', false), mlp_bias: f.bool('mlp_bias', false) };
}

function parseQwen2(input: Fields): Qwen2Config {
  const f = withModelType(input, 'Qwen2ForCausalLM');
  const common = parseCommon(f, { max_position_embeddings: 32768, bos_token_id: null, eos_token_id: null });
  return {
    architecture: 'Qwen2ForCausalLM',
    ...common,
    head_dim: headDim(f, common),
    use_sliding_window: f.bool('use_sliding_window', false),
    sliding_window: f.intOrNull('sliding_window', 4096),
    max_window_layers: f.int('max_window_layers', 28, 0),
  };
}

function headDim(f: Fields, c: CommonConfig): number {
  if (f.json.head_dim !== undefined && f.json.head_dim !== null) return f.int('head_dim');
  if (c.hidden_size % c.num_attention_heads !== 0) f.fail('hidden_size', `${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads} (and head_dim is not given)`);
  return c.hidden_size / c.num_attention_heads;
}

/** Defaults of the HF DeepseekV3Config / DeepseekV2Config classes for fields a config.json may omit. */
export const V3_DEFAULTS = {
  max_position_embeddings: 4096, bos_token_id: 0, eos_token_id: 1, routed_scaling_factor: 2.5, topk_method: 'noaux_tc',
  n_group: 8, topk_group: 4, first_k_dense_replace: 3, norm_topk_prob: true, scoring_func: 'sigmoid', num_nextn_predict_layers: 1,
} as const;
export const V2_DEFAULTS = {
  max_position_embeddings: 2048, bos_token_id: 100000, eos_token_id: 100001, routed_scaling_factor: 1, topk_method: 'greedy',
  n_group: 1, topk_group: 1, first_k_dense_replace: 0, norm_topk_prob: false, scoring_func: 'softmax', num_nextn_predict_layers: 0,
} as const;
const TOPK_METHODS = ['greedy', 'gready', 'group_limited_greedy', 'noaux_tc'] as const;

function parseDeepseek(input: Fields, architecture: 'DeepseekV3ForCausalLM' | 'DeepseekV2ForCausalLM'): DeepseekConfig {
  const f = withModelType(input, architecture);
  const d = architecture === 'DeepseekV3ForCausalLM' ? V3_DEFAULTS : V2_DEFAULTS;
  const common = parseCommon(f, { ...d, yarn_original_required: true });
  const n_routed_experts = f.int('n_routed_experts');
  const n_group = f.intOrNull('n_group', d.n_group) ?? 1;
  const topk_group = f.intOrNull('topk_group', d.topk_group) ?? 1;
  const num_experts_per_tok = f.int('num_experts_per_tok');
  const first_k_dense_replace = f.int('first_k_dense_replace', d.first_k_dense_replace, 0);
  if (num_experts_per_tok > n_routed_experts) f.fail('num_experts_per_tok', `${num_experts_per_tok} is more than n_routed_experts ${n_routed_experts}`);
  if (n_routed_experts % n_group !== 0) f.fail('n_group', `${n_group} groups do not divide n_routed_experts ${n_routed_experts}`);
  if (topk_group > n_group) f.fail('topk_group', `${topk_group} is more than n_group ${n_group}`);
  if (first_k_dense_replace > common.num_hidden_layers) f.fail('first_k_dense_replace', `${first_k_dense_replace} is more than num_hidden_layers ${common.num_hidden_layers}`);
  const config: DeepseekFields = {
    ...common,
    attention_bias: f.bool('attention_bias', false),
    moe_intermediate_size: f.int('moe_intermediate_size'),
    q_lora_rank: f.intOrNull('q_lora_rank'),
    kv_lora_rank: f.int('kv_lora_rank'),
    qk_nope_head_dim: f.int('qk_nope_head_dim'),
    qk_rope_head_dim: f.int('qk_rope_head_dim'),
    v_head_dim: f.int('v_head_dim'),
    n_routed_experts,
    n_shared_experts: f.intOrNull('n_shared_experts', REQUIRED, 0) ?? 0,
    num_experts_per_tok,
    n_group,
    topk_group,
    topk_method: f.string('topk_method', d.topk_method, TOPK_METHODS),
    scoring_func: f.string('scoring_func', d.scoring_func, ['softmax', 'sigmoid'] as const),
    norm_topk_prob: f.bool('norm_topk_prob', d.norm_topk_prob),
    routed_scaling_factor: f.number('routed_scaling_factor', d.routed_scaling_factor, true),
    first_k_dense_replace,
    moe_layer_freq: f.int('moe_layer_freq', 1),
    num_nextn_predict_layers: f.int('num_nextn_predict_layers', d.num_nextn_predict_layers, 0),
    aux_loss_alpha: f.number('aux_loss_alpha', 0.001),
    seq_aux: f.bool('seq_aux', true),
    quantization_config: parseQuantization(f),
  };
  if (config.qk_rope_head_dim % 2 !== 0) f.fail('qk_rope_head_dim', `${config.qk_rope_head_dim} must be even (RoPE rotates pairs)`);
  return { architecture, ...config } as DeepseekConfig;
}

/**
 * rope_theta and rope_scaling; configs saved by transformers v5 hold both in `rope_parameters`
 * ({rope_type, rope_theta, ...scaling fields}) instead.
 */
function parseRope(f: Fields, maxPositions: number | typeof REQUIRED): { rope_theta: number; rope_scaling: RopeScaling | null } {
  const params = f.json.rope_scaling === undefined && f.json.rope_parameters !== undefined ? f.object('rope_parameters') : null;
  if (!params) return { rope_theta: f.number('rope_theta', 10000, true), rope_scaling: parseRopeScaling(f, 'rope_scaling', maxPositions) };
  return {
    rope_theta: f.json.rope_theta !== undefined ? f.number('rope_theta', 10000, true) : params.number('rope_theta', 10000, true),
    rope_scaling: parseRopeScaling(f, 'rope_parameters', maxPositions),
  };
}

function parseRopeScaling(parent: Fields, field: string, maxPositions: number | typeof REQUIRED): RopeScaling | null {
  const f = parent.object(field);
  if (!f) return null;
  const kind: unknown = f.json.rope_type ?? f.json.type ?? (field === 'rope_parameters' ? 'default' : undefined);
  if (typeof kind !== 'string') f.fail('type', `expected 'type' or 'rope_type' to name the scaling, found ${describe(kind)}`);
  const key = f.json.rope_type !== undefined ? 'rope_type' : 'type';
  switch (kind) {
    case 'default': return null;
    case 'yarn':
      return {
        type: 'yarn',
        factor: f.number('factor', REQUIRED, true),
        // transformers: `rope_scaling.get("original_max_position_embeddings") or max_position_embeddings`
        original_max_position_embeddings: f.int('original_max_position_embeddings', maxPositions),
        beta_fast: f.number('beta_fast', 32, true),
        beta_slow: f.number('beta_slow', 1, true),
        mscale: f.number('mscale', 1),
        mscale_all_dim: f.number('mscale_all_dim', 0),
        ...(f.json.attention_factor !== undefined && f.json.attention_factor !== null ? { attention_factor: f.number('attention_factor', REQUIRED, true) } : {}),
      };
    case 'llama3': {
      const scaling: Llama3RopeScaling = {
        type: 'llama3',
        factor: f.number('factor', REQUIRED, true),
        low_freq_factor: f.number('low_freq_factor', REQUIRED, true),
        high_freq_factor: f.number('high_freq_factor', REQUIRED, true),
        original_max_position_embeddings: f.int('original_max_position_embeddings'),
      };
      if (scaling.high_freq_factor <= scaling.low_freq_factor) f.fail('high_freq_factor', `${scaling.high_freq_factor} must exceed low_freq_factor ${scaling.low_freq_factor}`);
      return scaling;
    }
    case 'linear':
    case 'dynamic':
      return { type: kind, factor: f.number('factor', REQUIRED, true) };
    default:
      return f.fail(key, `unsupported RoPE scaling '${kind as string}' (supported: yarn, llama3, linear, dynamic)`);
  }
}

function parseQuantization(parent: Fields): Fp8QuantizationConfig | null {
  const f = parent.object('quantization_config');
  if (!f) return null;
  const method = f.json.quant_method;
  if (method !== 'fp8') f.fail('quant_method', `unsupported quantization ${describe(method)} (only 'fp8' block quantization is supported)`);
  const raw = f.json.weight_block_size ?? [128, 128];
  if (!Array.isArray(raw) || raw.length !== 2 || raw.some((b) => !Number.isSafeInteger(b) || b <= 0)) {
    f.fail('weight_block_size', `expected two positive integers, found ${describe(raw)}`);
  }
  const block = raw as [number, number];
  if (block[0] !== 128 || block[1] !== 128) f.fail('weight_block_size', `[${block.join(', ')}] is not supported (only [128, 128])`);
  return {
    quant_method: 'fp8',
    fmt: f.string('fmt', 'e4m3', ['e4m3'] as const),
    activation_scheme: f.string('activation_scheme', 'dynamic', ['dynamic', 'static'] as const),
    weight_block_size: [block[0], block[1]],
  };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The config as a plain JSON object with HF field names (keys sorted, as transformers writes them). */
export function hfConfigToObject(config: HfConfig): Record<string, unknown> {
  const { architecture, rope_scaling, ...fields } = config as HfConfig & { quantization_config?: Fp8QuantizationConfig | null };
  const out: Record<string, unknown> = { ...fields, architectures: [architecture] };
  out.rope_scaling = rope_scaling === null ? null : { ...rope_scaling, rope_type: rope_scaling.type };
  if ('quantization_config' in out && out.quantization_config === null) delete out.quantization_config;
  if (out.quantization_config) out.quantization_config = { ...(out.quantization_config as object), weight_block_size: [...(config as DeepseekConfig).quantization_config!.weight_block_size] };
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** config.json text for our own checkpoints (2-space indent, trailing newline). */
export function hfConfigToJson(config: HfConfig): string {
  return `${JSON.stringify(hfConfigToObject(config), null, 2)}\n`;
}

export function writeHfConfig(path: string, config: HfConfig): void {
  parseHfConfig(hfConfigToObject(config), path); // refuse to write a config we could not read back
  writeFileAtomic(path, (write) => write(Buffer.from(hfConfigToJson(config), 'utf8')));
}
