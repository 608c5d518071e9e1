// The stages that sample many completions (GRPO rollouts, eval, rejection sampling) give the same
// results with batched decoding (EnginePolicy.completeMany) as one completion after another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Random } from '../../src/autograd/random.js';
import { rejectionSample } from '../../src/train/distill.js';
import { evaluate } from '../../src/train/eval.js';
import { rollOut } from '../../src/train/grpo.js';
import { TrainModel } from '../../src/train/model.js';
import { type Completion, EnginePolicy, type Policy, type SampleOptions, inferenceModel, streamRng } from '../../src/train/rollout.js';
import { getTask } from '../../src/train/tasks/registry.js';
import { promptText } from '../../src/train/cold-start.js';
import { tinyV3 } from './helpers.js';
import { charCodec } from './rollout-codec.js';

const problems = getTask('arithmetic').generate(3, { seed: 5, difficulty: 1, split: 'test' });
const alphabet = problems.map((p) => promptText(p.prompt, 'plain') + promptText(p.prompt, 'r1-zero') + p.answer).join('') + '0123456789</answer>think ';
const codec = charCodec(alphabet);

/** The engine policy seen through `complete` only (what the stages did before batching), counting calls. */
class OneByOne implements Policy {
  calls = 0;
  constructor(private readonly inner: EnginePolicy) {}
  complete(prompt: readonly number[], options: SampleOptions, rng: Random): Completion {
    this.calls++;
    return this.inner.complete(prompt, options, rng);
  }
}

function policies(seed: number): { batched: EnginePolicy; sequential: OneByOne } {
  const lm = inferenceModel(TrainModel.init(tinyV3({ vocab_size: codec.vocab, initializer_range: 0.2, max_position_embeddings: 512 }), seed));
  return { batched: new EnginePolicy(lm, codec, 7), sequential: new OneByOne(new EnginePolicy(lm, codec)) };
}

test('rollout-batch stages: GRPO rollOut samples each (prompt, i) with stream (seed, step, q·G + i), batched or not', () => {
  const { batched, sequential } = policies(3);
  const prompts = problems.map((p) => ({ tokens: codec.encode(promptText(p.prompt, 'plain')), reward: (text: string) => ({ accuracy: 0, format: 0, score: text.length }) }));
  const sample: SampleOptions = { temperature: 1, topP: 1, maxTokens: 16 };
  const a = rollOut(batched, prompts, 4, sample, 9, 2);
  const b = rollOut(sequential, prompts, 4, sample, 9, 2);
  assert.equal(sequential.calls, 12);
  assert.equal(a.length, 12);
  a.forEach((r, i) => {
    assert.deepEqual(r.prompt, prompts[Math.floor(i / 4)]!.tokens);
    assert.deepEqual(r.completion.tokens, b[i]!.completion.tokens, `rollout ${i}`);
    assert.equal(r.reward.score, r.completion.text.length);
    const direct = batched.complete(r.prompt, sample, streamRng(9, 2, i));
    assert.deepEqual(r.completion.tokens, direct.tokens, `rollout ${i} against its stream`);
  });
  // the group's samples differ from each other (distinct streams)
  assert.ok(new Set(a.slice(0, 4).map((r) => r.completion.text)).size > 1);
});

test('rollout-batch stages: eval and rejection sampling report the same with batched decoding', () => {
  const { batched, sequential } = policies(8);
  const o = { style: 'plain' as const, samples: 3, temperature: 0.8, topP: 0.95, maxTokens: 20, greedy: true, seed: 4 };
  const a = evaluate(batched, codec, problems, o);
  const b = evaluate(sequential, codec, problems, o);
  assert.equal(sequential.calls, problems.length * 4);
  assert.deepEqual(a, b);
  sequential.calls = 0;
  const r = { style: 'r1-zero' as const, samples: 4, temperature: 1, topP: 1, maxTokens: 24, keepPerPrompt: 2, seed: 2 };
  const ra = rejectionSample(batched, codec, problems, r);
  const rb = rejectionSample(sequential, codec, problems, r);
  assert.equal(sequential.calls, problems.length * 4);
  assert.deepEqual(ra, rb);
  assert.equal(ra.sampled, 12);
});
