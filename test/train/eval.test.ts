import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Random } from '../../src/autograd/random.js';
import { evaluate, formatEvalTable } from '../../src/train/eval.js';
import { rejectionSample } from '../../src/train/distill.js';
import { coldStartExamples } from '../../src/train/cold-start.js';
import { tokenizeExample } from '../../src/train/sft.js';
import type { Codec, Completion, Policy, SampleOptions } from '../../src/train/rollout.js';
import { getTask } from '../../src/train/tasks/registry.js';
import { verifyProblem } from '../../src/train/tasks/registry.js';
import type { Problem } from '../../src/train/tasks/types.js';
import { splitOfHash } from '../../src/train/tasks/split.js';

// Codec over UTF-16 code units (ids = char codes + 1, EOS = 0): any text round-trips.
const codec: Codec = {
  eosId: 0,
  encode: (text) => Array.from(text, (c) => c.charCodeAt(0) + 1),
  decode: (ids) => ids.filter((i) => i !== 0).map((i) => String.fromCharCode(i - 1)).join(''),
};

const problems = getTask('arithmetic').generate(5, { seed: 3, difficulty: 1, split: 'test' });
const byPrompt = new Map(problems.map((p) => [codec.encode(`${p.prompt}\n<think>\n`).join(','), p]));

/**
 * A scripted policy: for problem j (0-based), sample k is right when (j + k) % 3 === 0, greedy
 * is right for even j; wrong answers are well-formed except every 4th sample, which has no </think>.
 */
class FakePolicy implements Policy {
  calls = 0;
  private counters = new Map<string, number>();
  complete(prompt: readonly number[], options: SampleOptions, _rng: Random): Completion {
    this.calls++;
    const key = prompt.join(',');
    const problem = byPrompt.get(key)!;
    const j = problems.indexOf(problem);
    let right: boolean;
    let broken = false;
    if (options.temperature === 0) {
      right = j % 2 === 0;
    } else {
      const k = this.counters.get(key) ?? 0;
      this.counters.set(key, k + 1);
      right = (j + k) % 3 === 0;
      broken = !right && k % 4 === 3;
    }
    const answer = right ? problem.answer : `${Number(problem.answer) + 1}`;
    const text = broken ? `no closing tag <answer>${answer}</answer>` : `work\n</think>\n\n<answer>${answer}</answer>`;
    const tokens = [...codec.encode(text), codec.eosId];
    return { tokens, logprobs: tokens.map(() => 0), text, finish: 'stop' };
  }
}

test('eval: pass@1 and pass@k over k samples, greedy accuracy, format rate and length are exact on a scripted policy', () => {
  const k = 6;
  const report = evaluate(new FakePolicy(), codec, problems, { style: 'plain', samples: k, temperature: 0.6, topP: 0.95, maxTokens: 64, greedy: true, seed: 1 });
  // Independent count of the script.
  let pass = 0;
  let formatted = 0;
  let length = 0;
  for (let j = 0; j < problems.length; j++) {
    let right = 0;
    for (let s = 0; s < k; s++) {
      const ok = (j + s) % 3 === 0;
      right += ok ? 1 : 0;
      const broken = !ok && s % 4 === 3;
      formatted += broken ? 0 : 1;
      const answer = ok ? problems[j]!.answer : `${Number(problems[j]!.answer) + 1}`;
      length += (broken ? `no closing tag <answer>${answer}</answer>` : `work\n</think>\n\n<answer>${answer}</answer>`).length + 1;
    }
    pass += right / k;
  }
  assert.equal(report.pass1, pass / problems.length);
  assert.equal(report.greedyAccuracy, 3 / 5);
  assert.equal(report.formatRate, formatted / (k * problems.length));
  assert.equal(report.meanResponseLength, length / (k * problems.length));
  assert.match(formatEvalTable([{ ...report, difficulty: 1 }]), /arithmetic\s+1\s+5\s+6\s+/);
  // pass@k: with 6 samples every problem has a right one; with 2, problem j does when j or j + 1 is a multiple of 3
  assert.equal(report.passAtK, 1);
  const two = evaluate(new FakePolicy(), codec, problems, { style: 'plain', samples: 2, temperature: 0.6, topP: 0.95, maxTokens: 64, greedy: false, seed: 1 });
  const solved = problems.filter((_, j) => j % 3 === 0 || (j + 1) % 3 === 0).length;
  assert.ok(solved > 0 && solved < problems.length);
  assert.equal(two.passAtK, solved / problems.length);
  assert.match(formatEvalTable([two]), /pass@1\s+pass@k/);
  assert.equal(evaluate(new FakePolicy(), codec, problems, { style: 'plain', samples: 0, temperature: 0.6, topP: 0.95, maxTokens: 64, greedy: true, seed: 1 }).passAtK, null);
});

test('distill: rejection sampling keeps only verified, well-formed traces (deduplicated, at most keepPerPrompt)', () => {
  const policy = new FakePolicy();
  const r = rejectionSample(policy, codec, problems, { style: 'plain', samples: 6, temperature: 1, topP: 1, maxTokens: 64, keepPerPrompt: 3, seed: 2 });
  assert.equal(r.sampled, 30);
  // Every kept trace verifies against its problem, and the rejected ones did not.
  for (const e of r.kept) {
    const problem = problems.find((p) => p.id === e.meta!['id'])!;
    const response = e.messages[e.messages.length - 1]!.content!;
    assert.ok(response.startsWith('<think>\n'));
    assert.equal(verifyProblem(problem as Problem, response).correct, true);
  }
  // Right samples per problem: (j + k) % 3 === 0 for k < 6 → 2 each; all identical text → 1 kept per problem.
  assert.equal(r.kept.length, 5);
  assert.equal(r.promptsCovered, 5);
  assert.equal(r.rejectedWrong, 20);
  assert.equal(r.rejectedFormat, 0);
});

test('cold start: R1 chat examples from worked solutions, train split only, mixed over tasks and levels', () => {
  const examples = coldStartExamples({ tasks: ['arithmetic', 'sort'], count: 12, seed: 1 });
  assert.equal(examples.length, 12);
  const cells = new Set(examples.map((e) => `${e.meta!['task']}/${e.meta!['difficulty']}`));
  assert.equal(cells.size, 6);
  for (const e of examples) {
    assert.equal(e.messages[0]!.role, 'user');
    const response = e.messages[1]!.content!;
    assert.match(response, /^<think>\n[\s\S]+\n<\/think>\n\n<answer>[^<]+<\/answer>$/);
    const id = e.meta!['id'] as string;
    // Train split only: the id carries the canonical hash that decides the split.
    assert.equal(splitOfHash(id.slice(`${e.meta!['task']}-`.length)), 'train', id);
    // R1 chat: the prompt ends in the prefilled <think>\n and the completion continues it with EOS.
    const t = tokenizeExample(e, 'r1-chat', codec);
    assert.ok(codec.decode(t.prompt).endsWith('<｜Assistant｜><think>\n'));
    assert.equal(codec.decode(t.completion), response.slice('<think>\n'.length));
    assert.equal(t.completion.at(-1), codec.eosId);
  }
  assert.throws(() => coldStartExamples({ tasks: ['chess'], count: 3, seed: 1 }), /unknown task "chess"/);
});
