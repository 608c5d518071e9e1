/**
 * A `deepseek2`, `qwen2` or `llama` GGUF file back into a training model directory (config.json, model.safetensors
 * with HF tensor names in f32, tokenizer.json + tokenizer_config.json): the inverse of
 * export-gguf.ts, so that `frugal sft`, `frugal rl` and the other stages can go on from a shipped
 * or downloaded GGUF (quantized weights are dequantized). The MTP module's copies of the embedding
 * and the head (blk.N.nextn.embed_tokens / shared_head_head) are dropped: training shares them.
 * Llama's q/k rows are put back in HF order (llama.cpp's converter permutes them for its rope).
 */
import { join } from 'node:path';
import { type GgufFile, openGguf } from '../formats/gguf.js';
import { type HfConfig, parseHfConfig } from '../formats/hf-config.js';
import { deepseekConfigFromGguf } from '../models/deepseek-v3.js';
import { DEEPSEEK_LAYER_GGUF_NAMES } from '../models/deepseek-v3-tiny.js';
import { hfNameOfGgufDense } from '../models/load.js';
import { permuteRopeRows } from '../models/tiny.js';
import { dequantize } from '../tensor/quant/index.js';
import { Tokenizer } from '../tokenizer/index.js';
import { writeTokenizerFiles } from '../tokenizer/write-json.js';
import { writeModelDir } from './checkpoint.js';
import type { NamedTensor } from './model.js';

/** GGUF name within a block -> HF name within model.layers.N: the exporter's table read backwards. */
const BLOCK_NAMES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(DEEPSEEK_LAYER_GGUF_NAMES).map(([hf, gguf]) => [gguf, hf]));
/** In-block tensors that training does not keep (the MTP module's copies of shared ones). */
const SHARED_COPIES = new Set(['nextn.embed_tokens.weight', 'nextn.shared_head_head.weight']);

export interface ImportedModel {
  config: HfConfig;
  tensors: Map<string, NamedTensor>;
  tokenizer: Tokenizer;
}

function fail(file: GgufFile, what: string, problem: string): never {
  throw new Error(`${file.path}: ${what}: ${problem}`);
}

/** The HF config.json fields a deepseek2 GGUF describes. */
function configOf(file: GgufFile, tokenizer: Tokenizer, tied: boolean): HfConfig {
  const c = deepseekConfigFromGguf(file);
  const r = c.router;
  const yarn = c.yarn;
  const logMultiplier = file.metadata.get('deepseek2.rope.scaling.yarn_log_multiplier');
  const mscale = typeof logMultiplier?.value === 'number' ? logMultiplier.value / 0.1 : 1;
  return parseHfConfig({
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3',
    vocab_size: c.vocabSize, hidden_size: c.hiddenSize, intermediate_size: c.intermediateSize, moe_intermediate_size: c.moeIntermediateSize,
    num_hidden_layers: c.numLayers, first_k_dense_replace: c.firstKDenseReplace, num_attention_heads: c.heads, num_key_value_heads: c.heads,
    q_lora_rank: c.qLoraRank === 0 ? null : c.qLoraRank, kv_lora_rank: c.kvLoraRank,
    qk_nope_head_dim: c.qkNopeHeadDim, qk_rope_head_dim: c.qkRopeHeadDim, v_head_dim: c.vHeadDim,
    n_routed_experts: c.nRoutedExperts, n_shared_experts: c.nSharedExperts, num_experts_per_tok: r.topK,
    n_group: r.nGroup, topk_group: r.topkGroup, topk_method: r.scoring === 'sigmoid' ? 'noaux_tc' : 'greedy', scoring_func: r.scoring,
    norm_topk_prob: r.normTopkProb, routed_scaling_factor: r.routedScalingFactor, num_nextn_predict_layers: c.nextnLayers,
    max_position_embeddings: c.contextLength, rope_theta: c.ropeTheta, rms_norm_eps: c.rmsNormEps,
    rope_scaling: yarn ? {
      type: 'yarn', factor: yarn.factor, original_max_position_embeddings: yarn.originalContext, beta_fast: yarn.betaFast, beta_slow: yarn.betaSlow,
      mscale, mscale_all_dim: mscale,
    } : null,
    tie_word_embeddings: tied, bos_token_id: tokenizer.bosId ?? null, eos_token_id: tokenizer.eosId ?? null,
  }, `${file.path} (its deepseek2 metadata)`);
}

function f32Of(file: GgufFile, name: string): Float32Array {
  const info = file.tensor(name)!;
  const bytes = file.readTensorBytes(info);
  return info.dtype === 'f32' ? Float32Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, info.elements)) : dequantize(info.dtype, bytes, info.elements);
}

function importDense(file: GgufFile, arch: 'llama' | 'qwen2', tokenizer: Tokenizer): ImportedModel {
  const num = (key: string, fallback?: number): number => {
    const v = file.metadata.get(`${arch}.${key}`)?.value;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint') return Number(v);
    if (fallback !== undefined) return fallback;
    return fail(file, `metadata '${arch}.${key}'`, 'required key is missing');
  };
  if (file.tensor('rope_freqs.weight')) fail(file, "tensor 'rope_freqs.weight'", 'llama3 rope scaling cannot be turned back into config.json parameters');
  // as llama.cpp (and the engine, llama.ts) read it: the type defaults to linear, the factor may be the legacy rope.scale_linear, 0 or 1 is none
  const scaling = file.metadata.get(`${arch}.rope.scaling.type`)?.value ?? 'linear';
  const factor = num('rope.scaling.factor', num('rope.scale_linear', 0));
  const scaled = scaling !== 'none' && factor !== 0 && factor !== 1;
  if (scaled && scaling !== 'linear') fail(file, `metadata '${arch}.rope.scaling.type'`, `'${String(scaling)}' is not imported (linear or none)`);
  const heads = num('attention.head_count');
  const kvHeads = num('attention.head_count_kv', heads);
  const hidden = num('embedding_length');
  const headDim = num('attention.key_length', num('rope.dimension_count', hidden / heads));
  const config = parseHfConfig({
    architectures: [arch === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'], model_type: arch,
    vocab_size: num('vocab_size', tokenizer.vocabSize), hidden_size: hidden, intermediate_size: num('feed_forward_length'),
    num_hidden_layers: num('block_count'), num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: headDim,
    max_position_embeddings: num('context_length'), rms_norm_eps: num('attention.layer_norm_rms_epsilon'), rope_theta: num('rope.freq_base', 10000),
    rope_scaling: scaled ? { type: 'linear', factor } : null,
    tie_word_embeddings: file.tensor('output.weight') === undefined, bos_token_id: tokenizer.bosId ?? null, eos_token_id: tokenizer.eosId ?? null,
  }, `${file.path} (its ${arch} metadata)`);
  const tensors = new Map<string, NamedTensor>();
  for (const info of file.tensors) {
    const name = hfNameOfGgufDense(info.name);
    if (name === undefined) fail(file, `tensor '${info.name}'`, `not a tensor of the ${arch} layout`);
    const shape = [...info.dims].reverse();
    let values = f32Of(file, info.name);
    if (arch === 'llama' && /self_attn\.[qk]_proj\.(weight|bias)$/.test(name)) {
      values = permuteRopeRows(values, name.includes('q_proj') ? heads : kvHeads, shape[0]!, shape[1] ?? 1, true);
    }
    tensors.set(name, { shape, values });
  }
  return { config, tensors, tokenizer };
}

/** Reads a deepseek2, qwen2 or llama GGUF file as training tensors (HF names and shapes), its config and tokenizer. */
export function importGguf(path: string): ImportedModel {
  const file = openGguf(path);
  const arch = file.metadata.get('general.architecture')?.value;
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromGgufMetadata((key) => file.metadata.get(key)?.value);
  } catch (error) {
    return fail(file, 'tokenizer', (error as Error).message);
  }
  if (arch === 'llama' || arch === 'qwen2') return importDense(file, arch, tokenizer);
  if (arch !== 'deepseek2') fail(file, "metadata 'general.architecture'", `import takes deepseek2, qwen2 and llama files, found ${JSON.stringify(arch)}`);
  const tied = file.tensor('output.weight') === undefined;
  const config = configOf(file, tokenizer, tied);
  if (config.architecture !== 'DeepseekV3ForCausalLM') fail(file, 'config', 'not a DeepSeek-V3 model');
  const tensors = new Map<string, NamedTensor>();
  // GGUF ne lists the fastest dimension first; HF shapes list it last
  const put = (name: string, values: Float32Array, ne: readonly number[]): void => {
    tensors.set(name, { shape: [...ne].reverse(), values });
  };
  const heads = config.num_attention_heads;
  const nope = config.qk_nope_head_dim;
  const rank = config.kv_lora_rank;
  const v = config.v_head_dim;
  const kvB = new Map<number, { k?: Float32Array; v?: Float32Array }>();
  for (const info of file.tensors) {
    const name = info.name;
    if (name === 'token_embd.weight') put('model.embed_tokens.weight', f32Of(file, name), info.dims);
    else if (name === 'output_norm.weight') put('model.norm.weight', f32Of(file, name), info.dims);
    else if (name === 'output.weight') put('lm_head.weight', f32Of(file, name), info.dims);
    else {
      const m = /^blk\.(\d+)\.(.+)$/.exec(name);
      if (!m) fail(file, `tensor '${name}'`, 'not a tensor of the deepseek2 layout');
      const layer = Number(m[1]);
      const suffix = m[2]!;
      const prefix = `model.layers.${layer}.`;
      if (SHARED_COPIES.has(suffix)) continue;
      if (suffix === 'attn_k_b.weight' || suffix === 'attn_v_b.weight') {
        const entry = kvB.get(layer) ?? {};
        entry[suffix === 'attn_k_b.weight' ? 'k' : 'v'] = f32Of(file, name);
        kvB.set(layer, entry);
        continue;
      }
      const stacked = /^ffn_(gate|up|down)_exps\.weight$/.exec(suffix);
      if (stacked) {
        const [cols, rows, count] = info.dims as [number, number, number];
        const values = f32Of(file, name);
        for (let e = 0; e < count; e++) {
          tensors.set(`${prefix}mlp.experts.${e}.${stacked[1]}_proj.weight`, { shape: [rows, cols], values: values.slice(e * rows * cols, (e + 1) * rows * cols) });
        }
        continue;
      }
      const hf = BLOCK_NAMES[suffix];
      if (hf === undefined) fail(file, `tensor '${name}'`, 'has no training counterpart');
      put(prefix + hf, f32Of(file, name), info.dims);
    }
  }
  // attn_k_b [heads, rank, nope] and attn_v_b [heads, v, rank] are kv_b_proj [heads · (nope + v), rank] split by head
  for (const [layer, { k, v: vB }] of kvB) {
    if (!k || !vB) fail(file, `block ${layer}`, 'has only one of attn_k_b and attn_v_b');
    const kvBProj = new Float32Array(heads * (nope + v) * rank);
    for (let h = 0; h < heads; h++) {
      const base = h * (nope + v);
      for (let i = 0; i < nope; i++) for (let j = 0; j < rank; j++) kvBProj[(base + i) * rank + j] = k[(h * rank + j) * nope + i]!;
      kvBProj.set(vB.subarray(h * v * rank, (h + 1) * v * rank), (base + nope) * rank);
    }
    tensors.set(`model.layers.${layer}.self_attn.kv_b_proj.weight`, { shape: [heads * (nope + v), rank], values: kvBProj });
  }
  return { config, tensors, tokenizer };
}

/** Writes the imported model as a model directory that the training stages take as `from`. */
export function writeImportedModel(path: string, outDir: string): ImportedModel {
  const imported = importGguf(path);
  const tokenizerPath = join(outDir, 'tokenizer.json');
  writeTokenizerFiles(imported.tokenizer, tokenizerPath);
  writeModelDir(outDir, imported.config, imported.tensors);
  return imported;
}
