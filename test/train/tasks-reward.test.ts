import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_REWARD_WEIGHTS, accuracyReward, formatProblem, formatReward, getTask, makeArithmeticProblem,
  r1ChatMessages, r1ChatPrompt, r1ZeroPrompt, scoreCompletion, TASK_NAMES,
} from '../../src/train/tasks/index.js';

test('format reward: exactly one well-formed think block, then a non-empty answer', () => {
  const good = ['<think>reason</think><answer>5</answer>', '\n  <think>\nreason\n</think>\n\nThe answer is 5.', '<think>a</think>5'];
  for (const g of good) assert.equal(formatReward(g), 1, g);
  const bad: [string, RegExp][] = [
    ['reason</think><answer>5</answer>', /no <think>/],
    ['<think>reason<answer>5</answer>', /no <\/think>/],
    ['<think>a<think>b</think></think>5', /2 <think> tags/],
    ['<think>a</think><think>b</think>5', /2 <think> tags/],
    ['<think>a</think>5</think>', /2 <\/think> tags/],
    ['<think>reason</think>   \n', /no answer after/],
    ['<think>  </think>5', /empty reasoning/],
    ['Sure! <think>a</think>5', /text before <think>/],
    ['</think>x<think>a', /text before <think>/],
    ['', /no <think>/],
  ];
  for (const [b, why] of bad) {
    assert.equal(formatReward(b), 0, b);
    assert.match(formatProblem(b), why, b);
  }
  // With the answer tag required, the answer part must be exactly one non-empty <answer> block.
  const tag = { requireAnswerTag: true };
  assert.equal(formatReward('<think>a</think>\n<answer> 5 </answer>\n', tag), 1);
  assert.equal(formatReward('<think>a</think>So: <answer>5</answer>', tag), 0);
  assert.equal(formatReward('<think>a</think><answer>5</answer><answer>6</answer>', tag), 0);
  assert.equal(formatReward('<think>a</think><answer> </answer>', tag), 0);
  assert.equal(formatReward('<think>a</think>5', tag), 0);
  // The chat template (and a prefilled R1-Zero prompt) already wrote <think>.
  assert.equal(formatReward('\nreason\n</think>\n\n<answer>5</answer>', { prefilledThink: true }), 1);
  assert.equal(formatReward('\nreason\n</think>\n\n<answer>5</answer>'), 0);
  assert.equal(formatReward('<think>reason</think>5', { prefilledThink: true }), 0, 'a second <think> after the prefill');
});

test('accuracy and format are separate; the score weights them', () => {
  const p = makeArithmeticProblem('17', '*', '3');
  const right = '<think>17 x 3 = 51</think>\n<answer>51</answer>';
  const rightNoTags = '<think>17 x 3 = 51</think> 51';
  const wrong = '<think>17 x 3 = 41</think>\n<answer>41</answer>';
  const unclosed = '<think>17 x 3 = 51 <answer>51</answer>';
  assert.deepEqual(DEFAULT_REWARD_WEIGHTS, { accuracy: 1, format: 1 });
  const r = scoreCompletion(p, right);
  assert.deepEqual([r.accuracy, r.format, r.score, r.verdict.parsedAnswer, r.formatReason], [1, 1, 2, '51', 'well-formed']);
  assert.deepEqual([scoreCompletion(p, wrong).accuracy, scoreCompletion(p, wrong).format], [0, 1]);
  assert.match(scoreCompletion(p, wrong).verdict.reason, /expected 51, got 41/);
  assert.deepEqual([scoreCompletion(p, unclosed).accuracy, scoreCompletion(p, unclosed).format], [0, 0]);
  const loose = scoreCompletion(p, rightNoTags, { requireAnswerTag: true, weights: { accuracy: 1, format: 0.25 } });
  assert.deepEqual([loose.accuracy, loose.format, loose.score], [1, 0, 1]);
  assert.equal(scoreCompletion(p, right, { weights: { accuracy: 0.9, format: 0.1 } }).score, 0.9 * 1 + 0.1 * 1);
  assert.equal(accuracyReward(p, '17 x 3 = 51</think>51', { prefilledThink: true }), 1);
  assert.equal(accuracyReward(p, '<think>51</think>'), 0);
  assert.throws(() => scoreCompletion(p, right, { weights: { accuracy: Number.NaN, format: 1 } }), /weights must be finite/);
});

test('worked solutions earn full reward under the strictest format', () => {
  for (const name of TASK_NAMES) {
    const task = getTask(name);
    for (const p of task.generate(5, { seed: 21, difficulty: 2, split: 'validation' })) {
      const r = scoreCompletion(p, task.solution(p).completion, { requireAnswerTag: true });
      assert.equal(r.score, 2, `${p.id}: ${r.verdict.reason} / ${r.formatReason}`);
    }
  }
});

test('R1-Zero template and R1 chat prompt', () => {
  const q = 'Solve for x: 3x + 7 = 22';
  const zero = r1ZeroPrompt(q);
  assert.ok(zero.endsWith(`User: ${q}. Assistant:`), zero);
  assert.ok(zero.includes('<think> reasoning here </think> <answer> answer here </answer>'));
  assert.ok(!/<｜|reflect|step by step/i.test(zero), 'no chat tokens, no content hints');
  assert.ok(r1ZeroPrompt('What is 2 + 3?').endsWith('User: What is 2 + 3? Assistant:'), 'no doubled punctuation');
  assert.ok(r1ZeroPrompt(q, { prefillThink: true }).endsWith('Assistant: <think>'));
  assert.throws(() => r1ZeroPrompt('  '), /empty question/);

  assert.deepEqual(r1ChatMessages('What is 2 + 3?', { instruction: '' }), [{ role: 'user', content: 'What is 2 + 3?' }]);
  const [m] = r1ChatMessages('What is 2 + 3?');
  assert.equal(m!.role, 'user');
  assert.match(m!.content!, /^What is 2 \+ 3\?\n.*<answer>/);
  const chat = r1ChatPrompt('What is 2 + 3?');
  assert.ok(chat.startsWith('<｜begin▁of▁sentence｜><｜User｜>What is 2 + 3?'), chat);
  assert.ok(chat.endsWith('<｜Assistant｜><think>\n'));
  assert.equal(r1ChatPrompt('Hi', { bosToken: '' }).startsWith('<｜User｜>Hi'), true);
});
