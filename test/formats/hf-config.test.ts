import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import { type HfConfig, hfConfigToJson, hfConfigToObject, parseHfConfig, readHfConfig, writeHfConfig } from '../../src/formats/hf-config.js';
import { tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

// Real configs, values from ../shared/spec/formats-and-api.md §3.3 and model-and-training.md §1.1.
const qwenDistill15B = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643, hidden_act: 'silu',
  hidden_size: 1536, initializer_range: 0.02, intermediate_size: 8960, max_position_embeddings: 131072, max_window_layers: 21,
  model_type: 'qwen2', num_attention_heads: 12, num_hidden_layers: 28, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 10000,
  sliding_window: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.44.0', use_cache: true,
  use_mrope: false, use_sliding_window: false, vocab_size: 151936,
};

const llamaDistill8B = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001,
  head_dim: 128, hidden_act: 'silu', hidden_size: 4096, initializer_range: 0.02, intermediate_size: 14336, max_position_embeddings: 131072,
  mlp_bias: false, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8, pretraining_tp: 1,
  rms_norm_eps: 1e-5, rope_scaling: { factor: 8.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 128256,
};

const deepseekR1 = {
  architectures: ['DeepseekV3ForCausalLM'], attention_bias: false, attention_dropout: 0.0,
  auto_map: { AutoConfig: 'configuration_deepseek.DeepseekV3Config', AutoModel: 'modeling_deepseek.DeepseekV3Model', AutoModelForCausalLM: 'modeling_deepseek.DeepseekV3ForCausalLM' },
  bos_token_id: 0, eos_token_id: 1, ep_size: 1, first_k_dense_replace: 3, hidden_act: 'silu', hidden_size: 7168, initializer_range: 0.02,
  intermediate_size: 18432, kv_lora_rank: 512, max_position_embeddings: 163840, model_type: 'deepseek_v3', moe_intermediate_size: 2048,
  moe_layer_freq: 1, n_group: 8, n_routed_experts: 256, n_shared_experts: 1, norm_topk_prob: true, num_attention_heads: 128,
  num_experts_per_tok: 8, num_hidden_layers: 61, num_key_value_heads: 128, num_nextn_predict_layers: 1, q_lora_rank: 1536,
  qk_nope_head_dim: 128, qk_rope_head_dim: 64,
  quantization_config: { activation_scheme: 'dynamic', fmt: 'e4m3', quant_method: 'fp8', weight_block_size: [128, 128] },
  rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 1.0, mscale_all_dim: 1.0, original_max_position_embeddings: 4096, type: 'yarn' },
  rope_theta: 10000, routed_scaling_factor: 2.5, scoring_func: 'sigmoid', tie_word_embeddings: false, topk_group: 4, topk_method: 'noaux_tc',
  torch_dtype: 'bfloat16', transformers_version: '4.46.3', use_cache: true, v_head_dim: 128, vocab_size: 129280,
};

const deepseekV2Lite = {
  architectures: ['DeepseekV2ForCausalLM'], attention_bias: false, attention_dropout: 0.0, aux_loss_alpha: 0.001, bos_token_id: 100000,
  eos_token_id: 100001, first_k_dense_replace: 1, hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 10944,
  kv_lora_rank: 512, max_position_embeddings: 163840, model_type: 'deepseek_v2', moe_intermediate_size: 1408, moe_layer_freq: 1,
  n_group: 1, n_routed_experts: 64, n_shared_experts: 2, norm_topk_prob: false, num_attention_heads: 16, num_experts_per_tok: 6,
  num_hidden_layers: 27, num_key_value_heads: 16, q_lora_rank: null, qk_nope_head_dim: 128, qk_rope_head_dim: 64, rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 0.707, mscale_all_dim: 0.707, original_max_position_embeddings: 4096, type: 'yarn' },
  rope_theta: 10000, routed_scaling_factor: 1.0, scoring_func: 'softmax', seq_aux: true, tie_word_embeddings: false, topk_group: 1,
  topk_method: 'greedy', torch_dtype: 'bfloat16', use_cache: true, v_head_dim: 128, vocab_size: 102400,
};

describe('HF config parsing', () => {
  it('R1-Distill-Qwen-1.5B', () => {
    const c = parseHfConfig(qwenDistill15B);
    assert.equal(c.architecture, 'Qwen2ForCausalLM');
    if (c.architecture !== 'Qwen2ForCausalLM') return;
    assert.deepEqual(
      [c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.vocab_size],
      [1536, 8960, 28, 12, 2, 128, 151936],
    );
    assert.deepEqual([c.rms_norm_eps, c.rope_theta, c.rope_scaling, c.tie_word_embeddings], [1e-6, 10000, null, false]);
    assert.deepEqual([c.use_sliding_window, c.sliding_window, c.max_window_layers], [false, 4096, 21]);
    assert.deepEqual([c.bos_token_id, c.eos_token_id, c.torch_dtype, c.max_position_embeddings], [151643, 151643, 'bfloat16', 131072]);
    const { torch_dtype: _, ...rest } = qwenDistill15B;
    assert.equal(parseHfConfig({ ...rest, dtype: 'float32' }).torch_dtype, 'float32');
    assert.equal(parseHfConfig(rest).torch_dtype, null);
  });

  it('R1-Distill-Llama-8B with llama3 rope scaling', () => {
    const c = parseHfConfig(llamaDistill8B);
    assert.equal(c.architecture, 'LlamaForCausalLM');
    if (c.architecture !== 'LlamaForCausalLM') return;
    assert.deepEqual([c.head_dim, c.num_key_value_heads, c.rms_norm_eps, c.rope_theta, c.attention_bias, c.mlp_bias], [128, 8, 1e-5, 500000, false, false]);
    assert.deepEqual(c.rope_scaling, { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
  });

  it('DeepSeek-R1 (V3 architecture, FP8)', () => {
    const c = parseHfConfig(deepseekR1);
    assert.equal(c.architecture, 'DeepseekV3ForCausalLM');
    if (c.architecture !== 'DeepseekV3ForCausalLM') return;
    assert.deepEqual(
      [c.q_lora_rank, c.kv_lora_rank, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.moe_intermediate_size],
      [1536, 512, 128, 64, 128, 2048],
    );
    assert.deepEqual(
      [c.n_routed_experts, c.n_shared_experts, c.num_experts_per_tok, c.n_group, c.topk_group, c.topk_method, c.scoring_func],
      [256, 1, 8, 8, 4, 'noaux_tc', 'sigmoid'],
    );
    assert.deepEqual([c.norm_topk_prob, c.routed_scaling_factor, c.first_k_dense_replace, c.num_nextn_predict_layers], [true, 2.5, 3, 1]);
    assert.deepEqual(c.rope_scaling, { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 });
    assert.deepEqual(c.quantization_config, { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] });
    assert.deepEqual([c.bos_token_id, c.eos_token_id, c.vocab_size, c.num_hidden_layers], [0, 1, 129280, 61]);
  });

  it('DeepSeek-V2-Lite (no query compression, softmax routing)', () => {
    const c = parseHfConfig(deepseekV2Lite);
    assert.equal(c.architecture, 'DeepseekV2ForCausalLM');
    if (c.architecture !== 'DeepseekV2ForCausalLM') return;
    assert.deepEqual([c.q_lora_rank, c.scoring_func, c.topk_method, c.n_shared_experts, c.num_experts_per_tok, c.norm_topk_prob], [null, 'softmax', 'greedy', 2, 6, false]);
    assert.equal(c.rope_scaling?.type, 'yarn');
    assert.equal(c.rope_scaling?.type === 'yarn' && c.rope_scaling.mscale_all_dim, 0.707);
    assert.equal(c.quantization_config, null);
    assert.equal(c.num_nextn_predict_layers, 0);
  });

  it('fills HF defaults for behavioural fields', () => {
    const minimal = { architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4 };
    const c = parseHfConfig(minimal);
    assert.equal(c.architecture, 'LlamaForCausalLM');
    if (c.architecture !== 'LlamaForCausalLM') return;
    assert.deepEqual(
      [c.model_type, c.num_key_value_heads, c.head_dim, c.rms_norm_eps, c.rope_theta, c.hidden_act, c.tie_word_embeddings, c.rope_scaling, c.bos_token_id, c.eos_token_id],
      ['llama', 4, 8, 1e-6, 10000, 'silu', false, null, 1, 2],
    );
    const v3 = parseHfConfig({
      model_type: 'deepseek_v3', vocab_size: 64, hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16, num_hidden_layers: 4,
      num_attention_heads: 4, q_lora_rank: 16, kv_lora_rank: 16, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 8,
      n_routed_experts: 16, n_shared_experts: 1, num_experts_per_tok: 2,
    });
    assert.equal(v3.architecture, 'DeepseekV3ForCausalLM');
    if (v3.architecture !== 'DeepseekV3ForCausalLM') return;
    assert.deepEqual([v3.n_group, v3.topk_group, v3.scoring_func, v3.topk_method, v3.routed_scaling_factor, v3.first_k_dense_replace, v3.norm_topk_prob], [8, 4, 'sigmoid', 'noaux_tc', 2.5, 3, true]);
  });

  it('round-trips through hfConfigToJson and writeHfConfig', () => {
    for (const json of [qwenDistill15B, llamaDistill8B, deepseekR1, deepseekV2Lite]) {
      const config = parseHfConfig(json);
      const text = hfConfigToJson(config);
      assert.deepEqual(parseHfConfig(JSON.parse(text)), config);
      const object = hfConfigToObject(config);
      assert.deepEqual(object.architectures, json.architectures);
      assert.deepEqual(Object.keys(object), [...Object.keys(object)].sort());
      // every field of the real file that we model keeps its value
      for (const [key, value] of Object.entries(json)) {
        if (key in object && key !== 'rope_scaling') assert.deepEqual(object[key], value, key);
      }
      const path = tmp.path(`${config.architecture}.json`);
      writeHfConfig(path, config);
      assert.equal(readFileSync(path, 'utf8'), text);
      assert.deepEqual(readHfConfig(path), config);
    }
    const ds = hfConfigToObject(parseHfConfig(deepseekR1));
    assert.deepEqual(ds.rope_scaling, { ...deepseekR1.rope_scaling, rope_type: 'yarn' });
  });
});

function expectError(json: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    parseHfConfig(json, 'models/x/config.json');
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FormatError, `expected a FormatError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith('models/x/config.json: '), caught.message);
  assert.match(caught.message, pattern);
}

describe('HF config errors', () => {
  const without = (json: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(json).filter(([k]) => k !== key));

  it('missing and ill-typed fields', () => {
    expectError(without(qwenDistill15B, 'hidden_size'), /hidden_size: required field is missing/);
    expectError({ ...qwenDistill15B, hidden_size: '1536' }, /hidden_size: expected an integer, found "1536"/);
    expectError({ ...qwenDistill15B, num_hidden_layers: 2.5 }, /num_hidden_layers: expected an integer, found 2.5/);
    expectError({ ...qwenDistill15B, vocab_size: 0 }, /vocab_size: 0 is below the minimum 1/);
    expectError({ ...qwenDistill15B, rms_norm_eps: -1 }, /rms_norm_eps: -1 must be positive/);
    expectError({ ...qwenDistill15B, tie_word_embeddings: 'no' }, /tie_word_embeddings: expected true or false/);
    expectError({ ...llamaDistill8B, eos_token_id: [1, 'x'] }, /eos_token_id: expected token ids/);
    expectError(without(deepseekR1, 'kv_lora_rank'), /kv_lora_rank: required field is missing/);
    expectError(without(deepseekV2Lite, 'q_lora_rank'), /q_lora_rank: required field is missing/);
    expectError([1], /config: not a JSON object/);
  });

  it('unknown architectures and inconsistent values', () => {
    expectError({ ...qwenDistill15B, architectures: ['MistralForCausalLM'] }, /architectures: unsupported architecture \["MistralForCausalLM"\]/);
    expectError(without({ ...qwenDistill15B, model_type: 'gpt2' }, 'architectures'), /architectures: missing, and model_type "gpt2" is not one of/);
    expectError({ ...qwenDistill15B, model_type: 'llama' }, /model_type: 'llama' does not match architecture Qwen2ForCausalLM/);
    expectError({ ...qwenDistill15B, num_key_value_heads: 5 }, /num_key_value_heads: 5 does not divide num_attention_heads 12/);
    expectError({ ...qwenDistill15B, hidden_size: 1537 }, /hidden_size: 1537 is not a multiple of num_attention_heads 12/);
    expectError({ ...deepseekR1, num_experts_per_tok: 300 }, /num_experts_per_tok: 300 is more than n_routed_experts 256/);
    expectError({ ...deepseekR1, n_group: 7 }, /n_group: 7 groups do not divide n_routed_experts 256/);
    expectError({ ...deepseekR1, topk_group: 9 }, /topk_group: 9 is more than n_group 8/);
    expectError({ ...deepseekR1, scoring_func: 'relu' }, /scoring_func: 'relu' is not one of 'softmax', 'sigmoid'/);
    expectError({ ...deepseekR1, first_k_dense_replace: 62 }, /first_k_dense_replace: 62 is more than num_hidden_layers 61/);
  });

  it('rope scaling and quantization', () => {
    expectError({ ...deepseekR1, rope_scaling: { type: 'su', factor: 2 } }, /rope_scaling.type: unsupported RoPE scaling 'su'/);
    expectError({ ...deepseekR1, rope_scaling: { factor: 2 } }, /rope_scaling.type: expected 'type' or 'rope_type'/);
    expectError({ ...deepseekR1, rope_scaling: { type: 'yarn', factor: 40 } }, /rope_scaling.original_max_position_embeddings: required field is missing/);
    expectError({ ...llamaDistill8B, rope_scaling: { ...llamaDistill8B.rope_scaling, high_freq_factor: 0.5 } }, /rope_scaling.high_freq_factor: 0.5 must exceed low_freq_factor 1/);
    expectError({ ...deepseekR1, rope_scaling: [1] }, /rope_scaling: expected an object/);
    expectError({ ...deepseekR1, quantization_config: { quant_method: 'gptq' } }, /quantization_config.quant_method: unsupported quantization "gptq"/);
    expectError({ ...deepseekR1, quantization_config: { ...deepseekR1.quantization_config, weight_block_size: [64, 64] } }, /weight_block_size: \[64, 64\] is not supported/);
    expectError({ ...deepseekR1, quantization_config: { ...deepseekR1.quantization_config, weight_block_size: [128] } }, /weight_block_size: expected two positive integers/);
    assert.equal(parseHfConfig({ ...llamaDistill8B, rope_scaling: { rope_type: 'default' } }).rope_scaling, null);
  });

  it('reading a file names it', () => {
    const path = tmp.path('broken-config.json');
    writeFileSync(path, '{"architectures": ');
    assert.throws(() => readHfConfig(path), (e: unknown) => e instanceof FormatError && e.message.startsWith(`${path}: config: not valid JSON`));
    const c: HfConfig = parseHfConfig(qwenDistill15B);
    assert.throws(() => writeHfConfig(tmp.path('bad.json'), { ...c, num_key_value_heads: 5 }), /num_key_value_heads: 5 does not divide/);
  });
});

describe('HF config fuzz', () => {
  it('any field replaced by junk parses or fails with a FormatError', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const junk: unknown[] = [null, '', 'x', -1, 0, 0.5, 1e308, 2 ** 60, true, false, [], [1, 2], {}, { type: 'yarn' }, { rope_type: 'llama3', factor: 'a' }];
    let failed = 0;
    for (let i = 0; i < 2000; i++) {
      const base = [qwenDistill15B, llamaDistill8B, deepseekR1, deepseekV2Lite][i % 4]! as Record<string, unknown>;
      const json: Record<string, unknown> = structuredClone(base);
      const keys = Object.keys(json);
      for (let m = 0; m < 1 + Math.floor(rand() * 3); m++) {
        const key = keys[Math.floor(rand() * keys.length)]!;
        if (rand() < 0.2) delete json[key];
        else json[key] = junk[Math.floor(rand() * junk.length)];
      }
      try {
        const config = parseHfConfig(json);
        assert.deepEqual(parseHfConfig(hfConfigToObject(config)), config);
      } catch (error) {
        assert.ok(error instanceof FormatError, `case ${i}: ${String(error)}`);
        failed++;
      }
    }
    assert.ok(failed > 500 && failed < 2000, `failed ${failed}`);
  });
});
