import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  extractAnswer, lastNumberText, makeArithmeticProblem, makeLinearProblem, makeSortProblem, normalizeAnswerText,
  parseExactNumber, verifyProblem, type Problem,
} from '../../src/train/tasks/index.js';

const text = (completion: string): string | null => {
  const e = extractAnswer(completion);
  return e.ok ? e.text : null;
};

test('the answer is read only after the last </think>, by tag, boxed, Answer: line, then the rest', () => {
  assert.equal(text('<think>so it is 42</think>'), null);
  assert.match((extractAnswer('<think>so it is 42</think>') as { reason: string }).reason, /nothing after <\/think>/);
  assert.match((extractAnswer('<think>the answer is <answer>42</answer>') as { reason: string }).reason, /no <\/think>/);
  assert.equal(text('<think><answer>41</answer></think>\n<answer>42</answer>'), '42');
  assert.equal(text('<think>a</think>b</think> <answer>43</answer>'), '43', 'after the LAST </think>');
  assert.equal(text('<think>a</think><answer>41</answer> hmm </think> 42'), '42', 'an answer before the last </think> is reasoning');
  assert.equal(text('<think>a</think><answer>1</answer> no wait <answer> 2 </answer>'), '2', 'last <answer> wins');
  assert.equal(text('<think>a</think><answer>7'), '7', 'unclosed <answer> runs to the end');
  assert.equal(text('<think>a</think>\n<answer>  </answer>'), null);
  assert.equal(text('<think>a</think> so \\boxed{\\frac{1}{2}} and \\boxed{3}'), '3');
  assert.equal(text('<think>a</think> \\boxed{\\frac{1}{2}}'), '\\frac{1}{2}');
  assert.equal(text('<think>a</think>\nAnswer: 12\nmore text'), '12');
  assert.equal(text('<think>a</think>\n**Final Answer:** 99'), '99');
  assert.equal(text('<think>a</think>\nThe answer is: 5'), '5');
  assert.equal(text('<think>a</think>\nAnswer： 6'), '6', 'full-width colon');
  const rest = extractAnswer('<think>a</think>\nIt is 15.');
  assert.deepEqual(rest, { ok: true, text: 'It is 15.', source: 'rest' });
  assert.deepEqual(extractAnswer('It is 15.', { requireThink: false }), { ok: true, text: 'It is 15.', source: 'rest' });
  assert.equal(text('  \n '), null);
});

test('normalization and exact number parsing', () => {
  assert.equal(normalizeAnswerText('  \u2212105 . '), '-105');
  assert.equal(normalizeAnswerText('**$-3$**.'), '-3');
  assert.equal(normalizeAnswerText('`x\u00A0=\u00A05`'), 'x = 5');
  const num = (s: string, policy = {}): string | null => {
    const r = parseExactNumber(s, policy);
    return r.ok ? `${r.value.n}/${r.value.d}` : null;
  };
  assert.equal(num('1,234'), '1234/1');
  assert.equal(num('-1,234,567'), '-1234567/1');
  assert.equal(num('12,34'), null, 'bad thousands grouping');
  assert.equal(num('\u2212 7'), null, 'a sign must touch the number');
  assert.equal(num('\u22127'), '-7/1', 'unicode minus');
  assert.equal(num('x = 5'), '5/1');
  assert.equal(num('5 = x'), '5/1');
  assert.equal(num('x = y'), null);
  assert.equal(num('x=10/2', { allowFraction: true }), '5/1');
  assert.equal(num('10/2'), null, 'fractions only where the task allows them');
  assert.equal(num('2.50', { allowDecimal: true }), '5/2');
  assert.equal(num('2.5'), null);
  assert.equal(num('3/-6', { allowFraction: true }), '-1/2');
  assert.equal(num('-\\frac{3}{6}', { allowFraction: true }), '-1/2');
  assert.equal(num('5/0', { allowFraction: true }), null);
  assert.equal(num('2 1/2', { allowFraction: true }), null, 'mixed numbers are not accepted');
  assert.equal(num('3 + 2'), null);
  assert.equal(num('5 or 6'), null);
  assert.equal(num(''), null);
  assert.equal(lastNumberText('first 12, then 1,234.'), '1,234');
  assert.equal(lastNumberText('x = -7'), '-7');
  assert.equal(lastNumberText('3-5'), '5');
  assert.equal(lastNumberText('no digits'), null);
});

const think = (answerPart: string): string => `<think>\nlet me work: 1 + 1 = 2, maybe 579?\n</think>\n${answerPart}`;
const judge = (p: Problem, completion: string): boolean => verifyProblem(p, completion).correct;

test('arithmetic: tolerant of formatting, strict on the value', () => {
  const p = makeArithmeticProblem('763', '-', '868');
  assert.equal(p.answer, '-105');
  for (const ok of ['<answer>-105</answer>', '<answer> \u2212105. </answer>', 'Answer: -105', '763 - 868 = -105.', '\\boxed{-105}', '<answer>763 - 868 = -105</answer>']) {
    assert.ok(judge(p, think(ok)), ok);
  }
  for (const bad of ['<answer>105</answer>', '<answer>-105.5</answer>', '<answer>-210/2</answer>', '<answer>-105 or -106</answer>', '']) {
    assert.equal(judge(p, think(bad)), false, bad);
  }
  assert.equal(judge(p, '<think>it is -105</think>'), false, 'answer only in the reasoning');
  assert.equal(judge(p, '<think>it is -105'), false, 'no </think>');
  assert.equal(judge(p, '<answer>-105</answer>'), false, 'no </think> at all');
  assert.ok(verifyProblem(p, '<answer>-105</answer>', { requireThink: false }).correct, 'non-reasoning evaluation');
  assert.ok(verifyProblem(p, 'It is -105.', { requireThink: false }).correct);
  const big = makeArithmeticProblem('99999999999', '+', '1');
  assert.ok(judge(big, think('<answer>100,000,000,000</answer>')));
  assert.equal(judge(big, think('<answer>100,000,000,001</answer>')), false);
});

test('linear: x = 5, 5, 10/2, 5.0 accepted; rounded decimals and expressions are not', () => {
  const p = makeLinearProblem(3, 7, 0, 22);
  assert.equal(p.prompt, 'Solve for x: 3x + 7 = 22');
  assert.equal(p.answer, '5');
  for (const ok of ['x = 5', '5', 'x=10/2', '5.0', 'X = 5', '$x = 5$']) assert.ok(judge(p, think(`<answer>${ok}</answer>`)), ok);
  for (const bad of ['x = 6', '3 + 2', 'x = 5 or x = 6', '5x', '']) assert.equal(judge(p, think(`<answer>${bad}</answer>`)), false, bad);
  const q = makeLinearProblem(3, 0, 0, 1);
  assert.equal(q.answer, '1/3');
  for (const ok of ['1/3', '2/6', 'x = \\frac{1}{3}', '-1/-3']) assert.ok(judge(q, think(`<answer>${ok}</answer>`)), ok);
  for (const bad of ['0.333', '0.3333333333', '1/0', '3']) assert.equal(judge(q, think(`<answer>${bad}</answer>`)), false, bad);
  const neg = makeLinearProblem(2, 0, 4, 5);
  assert.equal(neg.answer, '-5/2');
  for (const ok of ['-5/2', '\u22122.5', 'x = -2.5', '5/-2']) assert.ok(judge(neg, think(`<answer>${ok}</answer>`)), ok);
  assert.equal(judge(neg, think('x = -5/2 so')), true, 'fallback reads the last number');
  assert.throws(() => makeLinearProblem(2, 1, 2, 3), /no unique solution/);
});

test('sort: separators and whitespace normalized, words and order exact', () => {
  const p = makeSortProblem(['pear', 'apple', 'fig']);
  assert.equal(p.answer, 'apple, fig, pear');
  for (const ok of ['apple, fig, pear', ' apple ,fig,  pear. ', 'apple fig pear', '[apple, fig, pear]', '"apple", "fig", "pear"', 'apple,\nfig,\npear']) {
    assert.ok(judge(p, think(`<answer>${ok}</answer>`)), ok);
  }
  for (const bad of ['apple, pear, fig', 'Apple, fig, pear', 'apple, fig', 'apple, fig, pear, plum', 'apple, fig, pear, pear', '']) {
    assert.equal(judge(p, think(`<answer>${bad}</answer>`)), false, bad);
  }
  assert.ok(judge(p, think('The order is:\napple, fig, pear')), 'fallback: last non-empty line');
  const prefixes = makeSortProblem(['care', 'car', 'card', 'cart']);
  assert.equal(prefixes.answer, 'car, card, care, cart');
  assert.throws(() => makeSortProblem(['two words']), /without spaces or commas/);
});

test('a malformed problem is a clear Error; malformed completions never throw', () => {
  const p = makeArithmeticProblem('1', '+', '2');
  assert.throws(() => verifyProblem({ ...p, data: { a: 'x', b: '2', op: '+' } }, 'x'), /arithmetic problem arithmetic-[0-9a-f]{12}: data must be/);
  assert.throws(() => verifyProblem({ ...p, task: 'nope' }, 'x'), /unknown task "nope"/);
  const weird = ['', '</think>', '</think></think>', '<think></think><answer>', '</think>\\boxed{', '</think>Answer:', '</think>' + '('.repeat(5000), '</think>' + '9'.repeat(5000), '\u0000</think>\uFFFF'];
  for (const problem of [p, makeLinearProblem(1, 2, 3, 4), makeSortProblem(['b', 'a'])]) {
    for (const w of weird) assert.equal(verifyProblem(problem, w).correct, false, JSON.stringify(w.slice(0, 20)));
  }
});
