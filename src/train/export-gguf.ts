/**
 * Export of a training checkpoint or a Hugging Face model directory (config.json, model.safetensors
 * or shards with their index, BF16/F32 or FP8 with block scales, tokenizer.json) to a GGUF
 * file that llama.cpp and our engine load: `deepseek2` for DeepseekV3ForCausalLM (split
 * attn_k_b/attn_v_b, stacked experts, the MTP module as `blk.{n}.nextn.*` with copies of the
 * embedding and head as in the released checkpoint), `llama` / `qwen2` for the dense models.
 * Tensor naming and layouts reuse the inference builders' converters (src/models/deepseek-v3-tiny.ts,
 * src/models/tiny.ts); the tokenizer is embedded with tokenizerGgufMetadata.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type GgufValue, gguf } from '../formats/gguf-value.js';
import { type GgufTensorInput, writeGguf } from '../formats/gguf-write.js';
import { llama3FreqFactors } from '../nn/rope.js';
import type { DeepseekConfig, HfConfig, LlamaConfig, Qwen2Config } from '../formats/hf-config.js';
import { type TinyDeepseekModel, deepseekGgufTensors } from '../models/deepseek-v3-tiny.js';
import { type TinyDenseModel, denseGgufTensors } from '../models/tiny.js';
import { Tokenizer, tokenizerGgufMetadata } from '../tokenizer/index.js';
import type { DType } from '../tensor/dtype.js';
import { openCheckpoint, readAllTensorsF32, resolveCheckpointDir } from '../formats/hf-checkpoint.js';
import { readHfConfig } from '../formats/hf-config.js';
import type { NamedTensor } from './model.js';

export type ExportType = 'f32' | 'f16' | 'q8_0';

export interface ExportResult {
  architecture: string;
  tensors: number;
  fileSize: number;
}

function deepseekMetadata(c: DeepseekConfig, name: string, mtp: boolean): [string, GgufValue][] {
  const a = 'deepseek2';
  const qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  const grouped = c.topk_method !== 'greedy' && c.n_group > 1;
  const entries: [string, GgufValue][] = [
    ['general.architecture', gguf.string(a)],
    ['general.name', gguf.string(name)],
    ['general.quantization_version', gguf.u32(2)],
    [`${a}.block_count`, gguf.u32(c.num_hidden_layers + (mtp ? 1 : 0))],
    [`${a}.context_length`, gguf.u32(c.max_position_embeddings)],
    [`${a}.embedding_length`, gguf.u32(c.hidden_size)],
    [`${a}.feed_forward_length`, gguf.u32(c.intermediate_size)],
    [`${a}.attention.head_count`, gguf.u32(c.num_attention_heads)],
    [`${a}.attention.head_count_kv`, gguf.u32(1)],
    [`${a}.attention.kv_lora_rank`, gguf.u32(c.kv_lora_rank)],
    [`${a}.attention.key_length`, gguf.u32(c.kv_lora_rank + c.qk_rope_head_dim)],
    [`${a}.attention.value_length`, gguf.u32(c.kv_lora_rank)],
    [`${a}.attention.key_length_mla`, gguf.u32(qk)],
    [`${a}.attention.value_length_mla`, gguf.u32(c.v_head_dim)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rms_norm_eps)],
    [`${a}.rope.dimension_count`, gguf.u32(c.qk_rope_head_dim)],
    [`${a}.rope.freq_base`, gguf.f32(c.rope_theta)],
    [`${a}.leading_dense_block_count`, gguf.u32(c.first_k_dense_replace)],
    [`${a}.expert_count`, gguf.u32(c.n_routed_experts)],
    [`${a}.expert_used_count`, gguf.u32(c.num_experts_per_tok)],
    [`${a}.expert_shared_count`, gguf.u32(c.n_shared_experts)],
    [`${a}.expert_feed_forward_length`, gguf.u32(c.moe_intermediate_size)],
    [`${a}.expert_weights_scale`, gguf.f32(c.routed_scaling_factor)],
    [`${a}.expert_weights_norm`, gguf.bool(c.norm_topk_prob)],
    [`${a}.expert_gating_func`, gguf.u32(c.scoring_func === 'sigmoid' ? 2 : 1)],
    [`${a}.vocab_size`, gguf.u32(c.vocab_size)],
  ];
  if (c.q_lora_rank !== null) entries.push([`${a}.attention.q_lora_rank`, gguf.u32(c.q_lora_rank)]);
  if (grouped) entries.push([`${a}.expert_group_count`, gguf.u32(c.n_group)], [`${a}.expert_group_used_count`, gguf.u32(c.topk_group)]);
  const rs = c.rope_scaling;
  if (rs !== null) {
    if (rs.type !== 'yarn') throw new Error(`export: rope_scaling '${rs.type}' cannot be exported for deepseek2 (only yarn)`);
    if (rs.mscale !== rs.mscale_all_dim) throw new Error(`export: rope_scaling.mscale ${rs.mscale} != mscale_all_dim ${rs.mscale_all_dim} has no llama.cpp equivalent`);
    entries.push(
      [`${a}.rope.scaling.type`, gguf.string('yarn')],
      [`${a}.rope.scaling.factor`, gguf.f32(rs.factor)],
      [`${a}.rope.scaling.original_context_length`, gguf.u32(rs.original_max_position_embeddings)],
      [`${a}.rope.scaling.yarn_log_multiplier`, gguf.f32(0.1 * rs.mscale_all_dim)],
    );
  }
  if (mtp) entries.push([`${a}.nextn_predict_layers`, gguf.u32(1)]);
  return entries;
}

function denseMetadata(c: LlamaConfig | Qwen2Config, name: string): [string, GgufValue][] {
  const a = c.architecture === 'LlamaForCausalLM' ? 'llama' : 'qwen2';
  const rs = c.rope_scaling;
  // llama3 scaling travels as the rope_freqs.weight tensor (denseRopeTensors), linear as llama.cpp's keys
  const scaling: [string, GgufValue][] = rs?.type === 'linear' ? [[`${a}.rope.scaling.type`, gguf.string('linear')], [`${a}.rope.scaling.factor`, gguf.f32(rs.factor)]] : [];
  if (rs !== null && !(rs.type === 'linear' || (rs.type === 'llama3' && a === 'llama'))) {
    throw new Error(`export: rope_scaling '${rs.type}' is not supported for ${a} export (llama3 for llama, linear)`);
  }
  return [
    ...scaling,
    ['general.architecture', gguf.string(a)],
    ['general.name', gguf.string(name)],
    ['general.quantization_version', gguf.u32(2)],
    [`${a}.block_count`, gguf.u32(c.num_hidden_layers)],
    [`${a}.context_length`, gguf.u32(c.max_position_embeddings)],
    [`${a}.embedding_length`, gguf.u32(c.hidden_size)],
    [`${a}.feed_forward_length`, gguf.u32(c.intermediate_size)],
    [`${a}.attention.head_count`, gguf.u32(c.num_attention_heads)],
    [`${a}.attention.head_count_kv`, gguf.u32(c.num_key_value_heads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rms_norm_eps)],
    [`${a}.rope.freq_base`, gguf.f32(c.rope_theta)],
    [`${a}.rope.dimension_count`, gguf.u32(c.head_dim)],
    [`${a}.vocab_size`, gguf.u32(c.vocab_size)],
  ];
}

/** Llama 3.1's rope scaling as llama.cpp stores it: per-frequency divisors in rope_freqs.weight. */
function denseRopeTensors(c: LlamaConfig | Qwen2Config): GgufTensorInput[] {
  const rs = c.rope_scaling;
  if (rs?.type !== 'llama3') return [];
  const factors = llama3FreqFactors(c.head_dim, c.rope_theta, {
    type: 'llama3', factor: rs.factor, lowFreqFactor: rs.low_freq_factor, highFreqFactor: rs.high_freq_factor, originalContext: rs.original_max_position_embeddings,
  });
  return [{ name: 'rope_freqs.weight', dims: [factors.length], dtype: 'f32', data: new Uint8Array(factors.buffer, factors.byteOffset, factors.byteLength) }];
}

/** Writes `tensors` (HF names, f32) of a model with `config` as a GGUF file with the tokenizer embedded. */
export function exportGguf(config: HfConfig, tensors: ReadonlyMap<string, NamedTensor>, tokenizer: Tokenizer, out: string, type: ExportType = 'f32', name = 'frugal-trained'): ExportResult {
  const dtype: DType = type;
  const tokenizerEntries = tokenizerGgufMetadata(tokenizer, { vocabSize: config.vocab_size });
  const hf = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const [n, t] of tensors) hf.set(n, { shape: t.shape, values: t.values });
  if (config.architecture === 'DeepseekV3ForCausalLM' || config.architecture === 'DeepseekV2ForCausalLM') {
    const c = config;
    const n = c.num_hidden_layers;
    const mtp = hf.has(`model.layers.${n}.eh_proj.weight`);
    if (!hf.has('lm_head.weight')) {
      if (!c.tie_word_embeddings) throw new Error('export: lm_head.weight is missing');
      hf.set('lm_head.weight', hf.get('model.embed_tokens.weight')!);
    }
    if (mtp) {
      // The released layout: the MTP layer carries copies of the shared embedding and head.
      if (!hf.has(`model.layers.${n}.embed_tokens.weight`)) hf.set(`model.layers.${n}.embed_tokens.weight`, hf.get('model.embed_tokens.weight')!);
      if (!hf.has(`model.layers.${n}.shared_head.head.weight`)) hf.set(`model.layers.${n}.shared_head.head.weight`, hf.get('lm_head.weight')!);
    }
    const shape = {
      options: {
        heads: c.num_attention_heads, qkNopeHeadDim: c.qk_nope_head_dim, vHeadDim: c.v_head_dim, kvLoraRank: c.kv_lora_rank,
        layers: n, mtp, routedExperts: c.n_routed_experts,
      },
    } as unknown as TinyDeepseekModel;
    const ggufTensors = deepseekGgufTensors(shape, { layout: 'split', dtype, mtp }, hf);
    const result = writeGguf(out, { metadata: [...deepseekMetadata(c, name, mtp), ...tokenizerEntries], tensors: ggufTensors });
    return { architecture: 'deepseek2', tensors: ggufTensors.length, fileSize: result.fileSize };
  }
  const c = config;
  const arch = c.architecture === 'LlamaForCausalLM' ? 'llama' : 'qwen2';
  const dense = {
    options: { architecture: arch, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, llama3RopeScaling: false, ropeTheta: c.rope_theta, dtype },
    headDim: c.head_dim, tensors: hf,
  } as unknown as TinyDenseModel;
  const ggufTensors = [...denseRopeTensors(c), ...denseGgufTensors(dense, dtype)];
  const result = writeGguf(out, { metadata: [...denseMetadata(c, name), ...tokenizerEntries], tensors: ggufTensors });
  return { architecture: arch, tensors: ggufTensors.length, fileSize: result.fileSize };
}

/** Exports a checkpoint directory (or a run directory's `latest`). */
export function exportCheckpoint(checkpoint: string, out: string, type: ExportType = 'f32'): ExportResult {
  const dir = resolveCheckpointDir(checkpoint);
  const tokenizerPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) throw new Error(`checkpoint ${dir}: tokenizer.json is missing (GGUF files embed the tokenizer)`);
  // our checkpoints and Hugging Face model directories alike: sharded, BF16, or FP8 with block scales
  const files = openCheckpoint(dir);
  let tensors: Map<string, NamedTensor>;
  try {
    tensors = readAllTensorsF32(files);
  } finally {
    files.close();
  }
  return exportGguf(readHfConfig(join(dir, 'config.json')), tensors, Tokenizer.fromFile(tokenizerPath), out, type);
}
