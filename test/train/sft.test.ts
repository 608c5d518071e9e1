import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrainModel } from '../../src/train/model.js';
import { coldStartExamples, promptText } from '../../src/train/cold-start.js';
import { readChatJsonl, runSft, sftBatch, sftLoss, tokenizeExample, type SftOptions } from '../../src/train/sft.js';
import { EnginePolicy, inferenceModel, streamRng, tokenizerCodec } from '../../src/train/rollout.js';
import { IGNORE_INDEX } from '../../src/autograd/loss.js';
import { formatReward } from '../../src/train/tasks/reward.js';
import { getTask } from '../../src/train/tasks/registry.js';
import { tempDir, tinyDense } from './helpers.js';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { KNOWN_PATTERNS } from '../../src/tokenizer/pre-tokenizer.js';
import { tinyTokenizerJson } from '../tokenizer/tiny-tokenizer.js';
import { charCodec } from './rollout-codec.js';

const examples = coldStartExamples({ tasks: ['arithmetic'], difficulties: [1], count: 64, seed: 3 });
// A byte-level BPE learned on the set itself: the worked solutions are templated, so a few hundred
// merges shorten them ~4x and keep the test fast.
const texts = examples.flatMap((e) => e.messages.map((m) => m.content ?? '')).join('\n');
const tokenizer = Tokenizer.fromJson(tinyTokenizerJson(texts, { patterns: KNOWN_PATTERNS['deepseek-v3'], merges: 300, addedTokens: [{ content: '<|eos|>', special: true }] }));
const codec = tokenizerCodec(tokenizer, tokenizer.tokenId('<|eos|>'));
const tokenized = examples.map((e, i) => tokenizeExample(e, 'plain', codec, `example ${i}`));
const config = tinyDense('Qwen2ForCausalLM', { vocab_size: tokenizer.vocabSize, hidden_size: 48, intermediate_size: 96, num_hidden_layers: 2, max_position_embeddings: 512, initializer_range: 0.05 });

function options(outDir: string, over: Partial<SftOptions> = {}): SftOptions {
  return {
    lr: 0.02, minLr: 0.002, warmup: 5, steps: 50, batchSize: 8, weightDecay: 0, clip: 1, maxLen: 400, seed: 1,
    outDir, checkpointEvery: 20, logEvery: 1000, print: () => {}, ...over,
  };
}

test('sft: the batch masks prompt and padding tokens; only assistant tokens (and EOS) are targets', () => {
  const b = sftBatch([{ prompt: [5, 6, 7], completion: [8, 9, 0] }, { prompt: [1, 2], completion: [3, 0] }], 100);
  assert.equal(b.seq, 5);
  const I = IGNORE_INDEX;
  assert.deepEqual([...b.targets], [I, I, 8, 9, 0, I, 3, 0, I, I]);
  assert.equal(b.tokens, 5);
});

test('sft: cold-start SFT lowers the loss and makes the model emit <think>…</think><answer>…</answer>', () => {
  const started = Date.now();
  const heldOut = coldStartExamples({ tasks: ['arithmetic'], difficulties: [1], count: 8, seed: 77 }).map((e) => tokenizeExample(e, 'plain', codec));
  const model = TrainModel.init(config, 5);
  const before = sftLoss(model, heldOut, 400);
  const r = runSft(model, tokenized, options(tempDir('sft')));
  const after = sftLoss(r.model, heldOut, 400);
  const problems = getTask('arithmetic').generate(8, { seed: 9, difficulty: 1, split: 'test' });
  const formatRate = (m: TrainModel) => {
    const policy = new EnginePolicy(inferenceModel(m), codec);
    let loose = 0;
    let strict = 0;
    for (const [i, p] of problems.entries()) {
      const c = policy.complete(codec.encode(promptText(p.prompt, 'plain')), { temperature: 0, topP: 1, maxTokens: 150 }, streamRng(1, i));
      loose += formatReward(c.text, { prefilledThink: true });
      strict += formatReward(c.text, { prefilledThink: true, requireAnswerTag: true });
    }
    return { loose, strict };
  };
  const untrained = formatRate(TrainModel.init(config, 5));
  const trained = formatRate(r.model);
  console.log(`held-out loss ${before.toFixed(3)} -> ${after.toFixed(3)}; greedy format (one <think>…</think> + answer) ${untrained.loose}/8 -> ${trained.loose}/8, strict <answer> form ${untrained.strict}/8 -> ${trained.strict}/8; ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // Measured: loss 6.3 -> 1.0, format 0/8 -> 6/8 (strict 4/8) after 50 steps.
  assert.ok(after < before - 3, `loss ${before} -> ${after}`);
  assert.equal(untrained.loose, 0);
  assert.ok(trained.loose >= 5, `format ${trained.loose}/8`);
  assert.ok(trained.strict >= 2, `strict format ${trained.strict}/8`);
});

test('sft: stopped and resumed equals an uninterrupted run bit for bit', () => {
  const small = tokenized.slice(0, 16);
  const o = { steps: 6, checkpointEvery: 3, batchSize: 4 };
  const straight = runSft(TrainModel.init(config, 2), small, options(tempDir('sft-a'), o));
  const dir = tempDir('sft-b');
  runSft(TrainModel.init(config, 2), small, options(dir, { ...o, stopAt: 3 }));
  const resumed = runSft(TrainModel.init(config, 42), small, options(dir, o));
  assert.equal(resumed.startStep, 3);
  assert.deepEqual(resumed.log.map((e) => ({ ...e, seconds: 0 })), straight.log.map((e) => ({ ...e, seconds: 0 })));
  for (const [name, t] of straight.model.tensors()) assert.deepEqual(resumed.model.tensors().get(name)!.values, t.values, name);
});

test('sft: chat JSONL errors name the file, line and field', () => {
  const dir = tempDir('sft-jsonl');
  const path = join(dir, 'data.jsonl');
  writeFileSync(path, '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"<think>\\nx\\n</think>\\n\\nyo"}]}\n{"messages":[{"role":"bot","content":"x"}]}\n');
  assert.throws(() => readChatJsonl(path), /data\.jsonl:2: messages\[0\]\.role "bot"/);
  writeFileSync(path, '{"messages":[{"role":"user","content":"hi"}]}\nnot json\n');
  assert.throws(() => readChatJsonl(path), /data\.jsonl:2: not valid JSON/);
  writeFileSync(path, '{"messages":[{"role":"user","content":"hi"}]}\n');
  assert.throws(() => tokenizeExample(readChatJsonl(path)[0]!, 'r1-chat', charCodec('hi'), 'data.jsonl:1'), /data\.jsonl:1: 'messages' needs at least a user and an assistant/);
});
