/**
 * The recipe's rs stage (R1's rejection sampling + SFT on a model's own traces) on a scripted
 * policy: each cell's problems are sampled the stated number of times, at most 2 distinct verified
 * traces are kept per problem and written out, and the model is fine-tuned on exactly those; with
 * no verified trace nothing is fine-tuned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Random } from '../../src/autograd/random.js';
import { coldStartExamples, promptText } from '../../src/train/cold-start.js';
import { TrainModel } from '../../src/train/model.js';
import { rejectionSamplingSft } from '../../src/train/recipe.js';
import type { Codec, Completion, Policy, SampleOptions } from '../../src/train/rollout.js';
import { getTask, verifyProblem } from '../../src/train/tasks/registry.js';
import type { Problem } from '../../src/train/tasks/types.js';
import { tempDir, tinyDense } from './helpers.js';

/** A lossless codec that numbers characters as it meets them (EOS 0), within a 256-id vocabulary. */
function growingCodec(): Codec {
  const ids = new Map<string, number>();
  const chars: string[] = [];
  return {
    eosId: 0,
    encode: (text) => [...text].map((c) => {
      let id = ids.get(c);
      if (id === undefined) {
        if (chars.length === 255) throw new Error('growingCodec: more than 255 characters');
        chars.push(c);
        id = chars.length;
        ids.set(c, id);
      }
      return id;
    }),
    decode: (list) => list.filter((id) => id !== 0).map((id) => chars[id - 1]!).join(''),
  };
}

const problems = getTask('arithmetic').generate(6, { seed: 11, difficulty: 1, split: 'train' }) as Problem[];

/**
 * Problem j's sample k (counted per problem) is right when j % 3 !== 2 and k < 3, in one of two
 * wordings (k % 2), so such a problem has 2 distinct verified traces; every other sample is wrong.
 */
class ScriptedPolicy implements Policy {
  calls = 0;
  private readonly seen = new Map<string, number>();
  constructor(private readonly codec: Codec, private readonly solves: boolean) {}
  complete(prompt: readonly number[], _options: SampleOptions, _rng: Random): Completion {
    this.calls++;
    const key = prompt.join(',');
    const j = problems.findIndex((p) => this.codec.encode(promptText(p.prompt, 'r1-chat')).join(',') === key);
    assert.ok(j >= 0, 'the prompt is one of the problems, in the R1 chat style');
    const k = this.seen.get(key) ?? 0;
    this.seen.set(key, k + 1);
    const right = this.solves && j % 3 !== 2 && k < 3;
    const answer = right ? problems[j]!.answer : `${Number(problems[j]!.answer) + 1}`;
    const text = `${k % 2 === 0 ? 'add the digits' : 'add column by column'}\n</think>\n\n<answer>${answer}</answer>`;
    const tokens = [...this.codec.encode(text), this.codec.eosId];
    return { tokens, logprobs: tokens.map(() => 0), text, finish: 'stop' };
  }
}

const config = tinyDense('Qwen2ForCausalLM', { vocab_size: 256, hidden_size: 32, num_hidden_layers: 1 });
const sft = (outDir: string) => ({ lr: 1e-3, minLr: 1e-4, warmup: 1, steps: 3, batchSize: 2, weightDecay: 0, clip: 1, maxLen: 512, seed: 1, outDir, checkpointEvery: 3, logEvery: 1, print: () => {}, workers: 1 });

test('rs: samples each cell as stated, keeps at most 2 distinct verified traces per problem, fine-tunes on them', () => {
  const dir = tempDir('rs');
  const codec = growingCodec();
  const policy = new ScriptedPolicy(codec, true);
  const cells = [
    { label: 'first', problems: problems.slice(0, 3), samples: 4, seed: 1 },
    { label: 'second', problems: problems.slice(3), samples: 5, seed: 2 },
  ];
  const start = TrainModel.init(config, 3);
  const before = new Map([...start.tensors()].map(([name, t]) => [name, Float32Array.from(t.values)]));
  const result = rejectionSamplingSft(policy, codec, () => start, cells, { name: 'rs', maxTokens: 64, dir, sft: sft(join(dir, 'sft')), print: () => {} });
  assert.equal(policy.calls, 3 * 4 + 3 * 5, 'every problem sampled as many times as its cell says');
  // problems 0, 1, 3, 4 are solved, each in two wordings; 2 and 5 never
  assert.equal(result.traces, 8);
  assert.deepEqual(result.cells, { first: '4 traces, 2/3 problems', second: '4 traces, 2/3 problems' });
  const traces = readFileSync(join(dir, 'traces.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { messages: { content: string }[]; meta: { id: string } });
  assert.equal(traces.length, 8);
  for (const trace of traces) {
    const problem = problems.find((p) => p.id === trace.meta.id)!;
    assert.equal(verifyProblem(problem, trace.messages.at(-1)!.content).correct, true, 'only verified traces are kept');
  }
  assert.equal(result.steps, 3);
  assert.ok(result.final_loss !== null && Number.isFinite(result.final_loss));
  assert.ok(existsSync(join(dir, 'sft', 'latest')), 'the fine-tuned model is checkpointed');
  assert.ok([...start.tensors()].some(([name, t]) => t.values.some((v, i) => v !== before.get(name)![i])), 'SFT changed the weights');
});

test('rs: with no verified trace there is no fine-tuning and no checkpoint', () => {
  const dir = tempDir('rs-none');
  const codec = growingCodec();
  let loaded = false;
  const result = rejectionSamplingSft(new ScriptedPolicy(codec, false), codec, () => {
    loaded = true;
    return TrainModel.init(config, 3);
  }, [{ label: 'all', problems, samples: 2, seed: 1 }], { name: 'rs', maxTokens: 64, dir, sft: sft(join(dir, 'sft')), print: () => {} });
  assert.deepEqual(result, { traces: 0, replayed: 0, cells: { all: '0 traces, 0/6 problems' }, steps: 0, final_loss: null });
  assert.equal(loaded, false, 'the model is not even loaded');
  assert.equal(readFileSync(join(dir, 'traces.jsonl'), 'utf8'), '');
  assert.equal(existsSync(join(dir, 'sft')), false);
});

test('rs: replay adds the examples it is asked for (given the count of verified traces) to the fine-tuning, none without traces', () => {
  const codec = growingCodec();
  const cells = [{ label: 'all', problems, samples: 4, seed: 1 }];
  const asked: number[] = [];
  const replay = (traces: number) => {
    asked.push(traces);
    return coldStartExamples({ tasks: ['arithmetic'], difficulties: [1], count: 2 * traces, seed: 5, rephrased: 0 });
  };
  const run = (withReplay: boolean): { result: ReturnType<typeof rejectionSamplingSft>; weights: Float32Array[] } => {
    const dir = tempDir(`rs-replay-${withReplay}`);
    const model = TrainModel.init(config, 3);
    const result = rejectionSamplingSft(new ScriptedPolicy(codec, true), codec, () => model, cells, {
      name: 'rs', maxTokens: 64, dir, sft: sft(join(dir, 'sft')), print: () => {}, ...(withReplay ? { replay } : {}),
    });
    return { result, weights: [...model.tensors()].map(([, t]) => Float32Array.from(t.values)) };
  };
  const plain = run(false);
  assert.equal(plain.result.replayed, 0);
  assert.deepEqual(asked, [], 'no replay asked for without a replay callback');
  const mixed = run(true);
  assert.equal(mixed.result.traces, 8);
  assert.deepEqual(asked, [8], 'asked with the count of verified traces');
  assert.equal(mixed.result.replayed, 16);
  assert.ok(mixed.weights.some((w, i) => w.some((v, j) => v !== plain.weights[i]![j])), 'the replayed examples changed what SFT learned');
  const none = rejectionSamplingSft(new ScriptedPolicy(codec, false), codec, () => TrainModel.init(config, 3), cells, {
    name: 'rs', maxTokens: 64, dir: tempDir('rs-replay-none'), sft: sft(join(tempDir('rs-replay-none-sft'), 'sft')), print: () => {}, replay,
  });
  assert.equal(none.replayed, 0);
  assert.deepEqual(asked, [8], 'nothing replayed when no trace verified');
});
