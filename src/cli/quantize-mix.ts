/**
 * Which type each weight matrix gets in llama-quantize's K-quant presets ("mixes"): Q2_K, Q3_K_S,
 * Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, and the fallback types for rows that do
 * not split into a type's blocks.
 *
 * Source of the rules (read, re-expressed here; no code copied): llama.cpp's src/llama-quant.cpp,
 * functions `llama_tensor_get_type` / `llama_tensor_get_type_impl`, `tensor_get_category`,
 * `init_quantize_state_counters`, `tensor_type_fallback` and `tensor_allows_quantization`, at the
 * llama.cpp commit bundled with node-llama-cpp here (its gitRelease.bundle, commit 80fb11a,
 * binaries tagged v0.4.0). The tests check our choices against that build's llama_model_quantize.
 *
 * What is implemented, for the tensors llama / qwen2 / deepseek2 models have, without an imatrix:
 * - categories by name, in llama.cpp's order: output.weight, token_embd.weight, attn_qkv, attn_kv_b,
 *   attn_v, attn_k, attn_q, attn_output, then names containing ffn_up / ffn_gate / ffn_down (so
 *   ffn_down_exps and ffn_down_shexp count as ffn_down);
 * - tensors are visited in llama.cpp's order (by layer number, then by name, non-layer tensors
 *   first), which fixes the attn_v counter: attn_v, attn_qkv and attn_kv_b all count as "attn_v",
 *   and a layer's rank among them is the counter; attn_qkv never reaches llama.cpp's own attn_qkv
 *   branch (the attn_v branch comes first), so it follows the attn_v rules here too;
 * - ffn_down's layer: parsed from the name when the model has experts (expert_count > 1),
 *   else the running count of ffn_down tensors; the number of layers is block_count (MTP layers
 *   included, as llama.cpp's n_layer_all);
 * - output.weight (and token_embd.weight when there is no output.weight: tied embeddings): Q8_0
 *   when its rows do not split into the preset's base blocks, else Q6_K;
 * - attn_v-like: Q2_K: Q4_K when n_head / n_head_kv >= 4, else Q3_K; Q3_K_M: Q5_K for the first
 *   two, Q4_K after; Q3_K_L: Q5_K; Q4_K_M / Q5_K_M: Q6_K where use_more_bits; Q4_K_S: Q5_K for
 *   the first four; 70B llama / qwen2 (80 layers; llama also needs n_head != n_head_kv): Q3_K / Q4_K
 *   become Q5_K; expert_count == 8: Q8_0;
 * - attn_k: Q8_0 when expert_count == 8;
 * - ffn_down: Q2_K: Q3_K; Q3_K_M: Q5_K for layers < n/16, else Q4_K; Q3_K_L: Q5_K; Q4_K_M /
 *   Q5_K_M: Q6_K where use_more_bits; Q4_K_S: Q5_K for layers < n/8;
 * - attn_output: expert_count == 8: Q5_K for Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M; otherwise Q2_K:
 *   Q3_K, Q3_K_M: Q4_K, Q3_K_L: Q5_K;
 * - fallback where rows do not split into the chosen type's blocks: Q2_K / Q3_K -> Q4_0, Q4_K ->
 *   Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; a 32-block type keeps itself; and when the
 *   fallback does not fit either (rows not a multiple of 32), F16.
 * Left out: imatrix-dependent rules, the IQ1/IQ2/IQ3 and IQ4 presets' mixes, Q2_K_S, MXFP4_MOE,
 * Falcon's rules (not an architecture here), --output-tensor-type / --token-embedding-type /
 * --tensor-type overrides, pruning; the Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/IQ4 names stay "one type for every
 * matrix" here (llama-quantize would also give their output.weight Q6_K, IQ4 also some Q5_K).
 */
import { LLAMA_FILE_TYPES } from '../formats/gguf-file-type.js';
import { type DType, dtypeInfo } from '../tensor/dtype.js';

/** llama-quantize's K-quant presets that this file knows, with their llama_ftype and base type. */
export const K_MIXES = {
  q2_k: { fileType: LLAMA_FILE_TYPES.q2_k, base: 'q2_k' },
  q3_k_s: { fileType: LLAMA_FILE_TYPES.q3_k_s, base: 'q3_k' },
  q3_k_m: { fileType: LLAMA_FILE_TYPES.q3_k_m, base: 'q3_k' },
  q3_k_l: { fileType: LLAMA_FILE_TYPES.q3_k_l, base: 'q3_k' },
  q4_k_s: { fileType: LLAMA_FILE_TYPES.q4_k_s, base: 'q4_k' },
  q4_k_m: { fileType: LLAMA_FILE_TYPES.q4_k_m, base: 'q4_k' },
  q5_k_s: { fileType: LLAMA_FILE_TYPES.q5_k_s, base: 'q5_k' },
  q5_k_m: { fileType: LLAMA_FILE_TYPES.q5_k_m, base: 'q5_k' },
  q6_k: { fileType: LLAMA_FILE_TYPES.q6_k, base: 'q6_k' },
} as const satisfies Record<string, { fileType: number; base: DType }>;
export type KMix = keyof typeof K_MIXES;

export function isKMix(name: string): name is KMix {
  return Object.hasOwn(K_MIXES, name);
}

/** What the rules need to know about the model (llama.cpp's hparams). */
export interface MixModelInfo {
  architecture: string;
  /** block_count (llama.cpp's n_layer_all, MTP layers included). */
  layers: number;
  /** expert_count, 0 without experts. */
  experts: number;
  /** n_head / n_head_kv of layer 0 (integer division; 0 when n_head_kv is 0). */
  gqa: number;
  /** llama.cpp's LLM_TYPE_70B (llama: 80 layers and n_head != n_head_kv, experts != 8; qwen2: 80 layers). */
  is70B: boolean;
}

type Value = unknown;
const first = (v: Value): number | undefined => {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return Number((v as ArrayLike<number | bigint>)[0]);
  return Number(v);
};

/** MixModelInfo from a GGUF's metadata (`value` reads a key). */
export function mixModelInfo(value: (key: string) => Value): MixModelInfo {
  const architecture = String(value('general.architecture') ?? '');
  const key = (k: string): number | undefined => first(value(`${architecture}.${k}`));
  const layers = key('block_count') ?? 0;
  const experts = key('expert_count') ?? 0;
  const heads = key('attention.head_count') ?? 0;
  const kvHeads = key('attention.head_count_kv') ?? heads;
  const gqa = kvHeads === 0 ? 0 : Math.floor(heads / kvHeads);
  const mainLayers = layers - (key('nextn_predict_layers') ?? 0);
  const is70B = mainLayers === 80 && ((architecture === 'llama' && experts !== 8 && heads !== kvHeads) || architecture === 'qwen2');
  return { architecture, layers, experts, gqa, is70B };
}

/** llama-quantize's choice of layers that keep more bits: the first and last eighth, and every third between (integer eighths). */
export function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor((7 * layers) / 8) || (layer - eighth) % 3 === 2;
}

/** Whether llama-quantize converts a tensor at all (the part of its checks that concerns our models). */
export function isQuantizable(info: { name: string; dims: readonly number[] }): boolean {
  const { name } = info;
  return info.dims.length >= 2 && name.endsWith('weight') && !name.includes('_norm.weight') && !name.includes('ffn_gate_inp.weight');
}

/**
 * The type llama.cpp takes instead of `target` when rows of `rowLength` do not split into its
 * blocks: Q2_K / Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; a type
 * with blocks of 32 or less keeps itself; F16 when the fallback does not fit either.
 */
export function fallbackType(rowLength: number, target: DType): DType {
  const fits = (t: DType): boolean => rowLength % dtypeInfo(t).blockElements === 0;
  if (fits(target)) return target;
  const table: Partial<Record<DType, DType>> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0', iq4_xs: 'iq4_nl' };
  const fallback = table[target] ?? target;
  return fits(fallback) ? fallback : 'f16';
}

type Category = 'output' | 'token_embd' | 'attn_v' | 'attn_k' | 'attn_q' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';

/** A tensor's category, by name and in llama.cpp's order (attn_qkv and attn_kv_b count as attn_v). */
function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  if (name.includes('attn_qkv.weight') || name.includes('attn_kv_b.weight') || name.includes('attn_v.weight')) return 'attn_v';
  if (name.includes('attn_k.weight')) return 'attn_k';
  if (name.includes('attn_q.weight')) return 'attn_q';
  if (name.includes('attn_output.weight')) return 'attn_output';
  if (name.includes('ffn_up')) return 'ffn_up';
  if (name.includes('ffn_gate')) return 'ffn_gate';
  if (name.includes('ffn_down')) return 'ffn_down';
  return 'other';
}

const layerOf = (name: string): number => {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : -1;
};

/** llama.cpp's tensor order (its weights map): by layer number (non-layer tensors first), then by name. */
export function llamaTensorOrder<T extends { name: string }>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) => layerOf(a.name) - layerOf(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The type each tensor wants under `mix` (before the block fallback; tensors that are not
 * converted are absent): llama-quantize's per-tensor choice, see the file comment.
 */
export function mixTypes(mix: KMix, tensors: readonly { name: string; dims: readonly number[] }[], model: MixModelInfo): Map<string, DType> {
  const base: DType = K_MIXES[mix].base;
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const attnVCount = tensors.filter((t) => category(t.name) === 'attn_v').length;
  const n = model.layers;
  const eight = model.experts === 8;
  let attnV = 0;
  let ffnDown = 0;
  const out = new Map<string, DType>();
  for (const t of llamaTensorOrder(tensors)) {
    if (!isQuantizable(t)) continue;
    const cat = category(t.name);
    let type: DType = base;
    if (cat === 'output' || (tied && cat === 'token_embd')) {
      type = t.dims[0]! % dtypeInfo(base).blockElements !== 0 ? 'q8_0' : 'q6_k';
    } else if (cat === 'attn_v') {
      const i = attnV++;
      if (mix === 'q2_k') type = model.gqa >= 4 ? 'q4_k' : 'q3_k';
      else if (mix === 'q3_k_m') type = i < 2 ? 'q5_k' : 'q4_k';
      else if (mix === 'q3_k_l') type = 'q5_k';
      else if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(i, attnVCount)) type = 'q6_k';
      else if (mix === 'q4_k_s' && i < 4) type = 'q5_k';
      if (model.is70B && (type === 'q3_k' || type === 'q4_k')) type = 'q5_k';
      if (eight) type = 'q8_0';
    } else if (cat === 'attn_k') {
      if (eight) type = 'q8_0';
    } else if (cat === 'ffn_down') {
      const i = model.experts > 1 ? layerOf(t.name) : ffnDown;
      ffnDown++;
      if (mix === 'q2_k') type = 'q3_k';
      else if (mix === 'q3_k_m') type = i < Math.floor(n / 16) ? 'q5_k' : 'q4_k';
      else if (mix === 'q3_k_l') type = 'q5_k';
      else if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(i, n)) type = 'q6_k';
      else if (mix === 'q4_k_s' && i < Math.floor(n / 8)) type = 'q5_k';
    } else if (cat === 'attn_output') {
      if (eight) {
        if (mix === 'q2_k' || mix === 'q3_k_s' || mix === 'q3_k_m' || mix === 'q4_k_s' || mix === 'q4_k_m') type = 'q5_k';
      } else if (mix === 'q2_k') type = 'q3_k';
      else if (mix === 'q3_k_m') type = 'q4_k';
      else if (mix === 'q3_k_l') type = 'q5_k';
    }
    out.set(t.name, type);
  }
  return out;
}
