import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random } from '../../src/autograd/random.js';
import { TrainModel } from '../../src/train/model.js';
import { EnginePolicy, completionLogProbs, inferenceModel, packSequences, sampleToken, streamRng } from '../../src/train/rollout.js';
import { tinyDense, tinyV3 } from './helpers.js';
import { DIGITS_ALPHABET, charCodec } from './rollout-codec.js';

const codec = charCodec(DIGITS_ALPHABET);

for (const [name, config] of [
  ['DeepSeek-V3 (MLA + MoE)', tinyV3({ vocab_size: codec.vocab, initializer_range: 0.2 })],
  ['Qwen2', tinyDense('Qwen2ForCausalLM', { vocab_size: codec.vocab, initializer_range: 0.2 })],
  ['Llama', tinyDense('LlamaForCausalLM', { vocab_size: codec.vocab, initializer_range: 0.2 })],
] as const) {
  test(`rollout: inference-engine log-probs of sampled completions equal TrainModel's (${name})`, () => {
    const model = TrainModel.init(config, 11);
    const policy = new EnginePolicy(inferenceModel(model), codec);
    const prompts = [codec.encode('3+4=?\n<think>\n'), codec.encode('12+9=?\n')];
    const sequences = [];
    const engine: number[][] = [];
    for (const [i, prompt] of prompts.entries()) {
      for (let k = 0; k < 2; k++) {
        const c = policy.complete(prompt, { temperature: 1, topP: 1, maxTokens: 12 }, streamRng(3, i, k));
        assert.ok(c.tokens.length > 0);
        sequences.push({ prompt, completion: c.tokens });
        engine.push(c.logprobs);
      }
    }
    const train = completionLogProbs(model, sequences);
    let worst = 0;
    for (let s = 0; s < sequences.length; s++) {
      assert.equal(train[s]!.length, engine[s]!.length);
      for (let t = 0; t < engine[s]!.length; t++) worst = Math.max(worst, Math.abs(train[s]![t]! - engine[s]![t]!));
    }
    console.log(`${name}: max |Δ log p| engine vs TrainModel = ${worst.toExponential(2)}`);
    assert.ok(worst < 5e-5, `max |Δ log p| = ${worst}`);
  });
}

test('rollout: a snapshot is frozen: updating the TrainModel does not change the inference model', () => {
  const model = TrainModel.init(tinyDense('Qwen2ForCausalLM', { vocab_size: codec.vocab }), 2);
  const lm = inferenceModel(model);
  const prompt = Int32Array.from(codec.encode('1+1='));
  const before = lm.forward(prompt, lm.newCache(16));
  for (const p of model.parameterList) p.value.fill(0.5);
  const after = lm.forward(prompt, lm.newCache(16));
  assert.deepEqual(after, before);
});

test('rollout: packSequences right-pads and points completion rows at the positions that predict them', () => {
  const p = packSequences([{ prompt: [5, 6], completion: [7, 8, 9] }, { prompt: [1], completion: [2] }]);
  assert.equal(p.seq, 4);
  assert.deepEqual([...p.ids], [5, 6, 7, 8, 1, 0, 0, 0]);
  assert.deepEqual([...p.targets], [6, 7, 8, 9, 2, 0, 0, 0]);
  assert.deepEqual(p.rows.map((r) => [...r]), [[1, 2, 3], [4]]);
});

test('rollout: sampleToken: greedy is argmax, top-p keeps the nucleus, temperature sharpens', () => {
  const logits = Float32Array.from([0, 2, 1, -1]);
  assert.equal(sampleToken(logits, 0, 1, new Random(1)), 1);
  const rng = new Random(5);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, 1, 0.6, rng)]!++;
  // p = softmax = [.087, .644, .237, .032]: the 0.6 nucleus is token 1 alone.
  assert.deepEqual(counts, [0, 4000, 0, 0]);
  const counts2 = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts2[sampleToken(logits, 1, 1, rng)]!++;
  const p = [0, 2, 1, -1].map((x) => Math.exp(x));
  const z = p.reduce((a, b) => a + b, 0);
  counts2.forEach((c, i) => assert.ok(Math.abs(c / 20000 - p[i]! / z) < 0.015, `token ${i}: ${c / 20000} vs ${p[i]! / z}`));
});
