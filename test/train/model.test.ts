// The training model and the inference engine are the same model: a checkpoint written from the
// training parameters loads unchanged in the inference engine and gives the same logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { noGrad } from '../../src/autograd/var.js';
import { Random } from '../../src/autograd/random.js';
import { TrainModel } from '../../src/train/model.js';
import { loadModelDir, readF32Tensors, writeModelDir } from '../../src/train/checkpoint.js';
import { writeSafetensors } from '../../src/formats/safetensors-write.js';
import { dequantize, quantize } from '../../src/tensor/quant/index.js';
import { join } from 'node:path';
import { loadDeepseekFromHf } from '../../src/models/deepseek-v3-hf.js';
import { loadModel } from '../../src/models/load.js';
import type { HfConfig } from '../../src/formats/hf-config.js';
import { tempDir, tinyDense, tinyV3 } from './helpers.js';

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let scaleMax = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scaleMax = Math.max(scaleMax, Math.abs(b[i]!));
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
  }
  return diff / scaleMax;
}

/** A model with some training-like perturbation: random routing biases so selection depends on them. */
function perturbedModel(config: HfConfig, seed: number): TrainModel {
  const model = TrainModel.init(config, seed);
  const rng = new Random(seed + 1);
  for (const b of model.routingBiases.values()) b.set(rng.normalArray(b.length, 0.05));
  // Larger weights than the init so the logits are far from uniform.
  for (const p of model.params.values()) if (p.rank === 2) for (let i = 0; i < p.size; i++) p.value[i]! *= 6;
  return model;
}

test('DeepSeek-V3 training forward == inference engine on the saved HF checkpoint (main and MTP logits)', () => {
  const variants: Record<string, unknown>[] = [
    {},
    { q_lora_rank: null, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 16, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 } },
    { first_k_dense_replace: 0, n_shared_experts: 0, tie_word_embeddings: true, norm_topk_prob: false, n_group: 1, topk_group: 1, num_experts_per_tok: 3 },
  ];
  for (const overrides of variants) {
    const config = tinyV3(overrides);
    const model = perturbedModel(config, 3);
    const dir = tempDir('train-model');
    writeModelDir(dir, config, model.tensors());
    const T = 12;
    const ids = new Random(9).intArray(T, config.vocab_size);
    const train = noGrad(() => model.logits(ids, 1, T)).value;
    const engine = loadDeepseekFromHf(dir);
    const { logits, hidden } = engine.forwardWithHidden(ids, engine.newCache(64), { allLogits: true });
    assert.ok(maxRelDiff(train, logits) < 2e-5, `main logits differ by ${maxRelDiff(train, logits)} (relative to max |logit|)`);
    const mtpTrain = noGrad(() => model.mtpLogits(ids, 1, T)).value;
    const mtpEngine = engine.mtpForward(hidden.subarray(0, (T - 1) * config.hidden_size), ids.subarray(1), engine.newMtpCache(64));
    assert.ok(maxRelDiff(mtpTrain, mtpEngine) < 2e-5, `MTP logits differ by ${maxRelDiff(mtpTrain, mtpEngine)}`);
  }
});

test('Llama and Qwen2 training forward == inference engine on the saved HF checkpoint', () => {
  for (const arch of ['LlamaForCausalLM', 'Qwen2ForCausalLM'] as const) {
    const config = tinyDense(arch);
    const model = perturbedModel(config, 5);
    const dir = tempDir('train-dense');
    writeModelDir(dir, config, model.tensors());
    const T = 10;
    const ids = new Random(2).intArray(T, config.vocab_size);
    const train = noGrad(() => model.logits(ids, 1, T)).value;
    const engine = loadModel(dir, { tokenizer: false }).model;
    const logits = engine.forward(ids, engine.newCache(64), { allLogits: true });
    assert.ok(maxRelDiff(train, logits) < 2e-5, `${arch} logits differ by ${maxRelDiff(train, logits)}`);
  }
});

test('checkpoint tensors round-trip through TrainModel.fromTensors; missing or misshapen tensors are named', () => {
  const config = tinyV3();
  const model = TrainModel.init(config, 1);
  const copy = TrainModel.fromTensors(config, model.tensors());
  for (const [name, p] of model.params) assert.deepEqual(copy.params.get(name)!.value, p.value);
  const tensors = model.tensors();
  tensors.delete('model.layers.1.mlp.experts.3.up_proj.weight');
  assert.throws(() => TrainModel.fromTensors(config, tensors), /model\.layers\.1\.mlp\.experts\.3\.up_proj\.weight' is missing/);
  const bad = model.tensors();
  bad.set('model.norm.weight', { shape: [31], values: new Float32Array(31) });
  assert.throws(() => TrainModel.fromTensors(config, bad), /model\.norm\.weight' has shape \[31\], expected \[32\]/);
  // A checkpoint directory round-trips exactly; BF16 tensors (downloaded checkpoints) are widened to f32.
  const dir = tempDir('train-roundtrip');
  writeModelDir(dir, config, model.tensors());
  const back = loadModelDir(dir);
  assert.equal(back.config.architecture, 'DeepseekV3ForCausalLM');
  for (const [name, t] of model.tensors()) assert.deepEqual(back.tensors.get(name)!.values, t.values, name);
  const w = model.params.get('model.layers.0.mlp.up_proj.weight')!;
  writeSafetensors(join(dir, 'bf16.safetensors'), [{ name: 'w', dtype: 'BF16' as const, shape: [...w.shape], data: quantize('bf16', w.value) }]);
  assert.deepEqual(readF32Tensors(join(dir, 'bf16.safetensors')).get('w')!.values, dequantize('bf16', quantize('bf16', w.value), w.size));
  writeSafetensors(join(dir, 'i32.safetensors'), [{ name: 'i', dtype: 'I32', shape: [1], data: new Uint8Array(4) }]);
  assert.throws(() => readF32Tensors(join(dir, 'i32.safetensors')), /tensor 'i' is I32; training reads F32, BF16 or F16 tensors/);
});
