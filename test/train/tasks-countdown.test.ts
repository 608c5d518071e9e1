import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCountdownExpression, getTask, makeCountdownProblem, solveCountdown, type CountdownData, type Problem } from '../../src/train/tasks/index.js';
import { evaluate, formatExpression, literals, parseExpression } from '../../src/train/tasks/expression.js';
import { TaskRng } from '../../src/train/tasks/rng.js';

const wrap = (expr: string): string => `<think>\nsearching\n</think>\n<answer>${expr}</answer>`;

test('countdown accepts any valid expression: other orders, parenthesizations, symbols, "= target"', () => {
  const p = makeCountdownProblem([8, 2, 4, 7], 24);
  const task = getTask('countdown');
  for (const ok of ['(8 - 2) * 4', '4*(8-2)', '4 × (8 − 2)', '((8-2))*4', '4 x (8 - 2)', '(8-2)*4 = 24', '24 = 4 * (8 - 2)', '(7 - 4) * 8', '8 ÷ 2 × 7 - 4']) {
    const v = task.verify(p, wrap(ok));
    assert.ok(v.correct, `${ok}: ${v.reason}`);
  }
  assert.ok(task.verify(p, '<think>x</think>\nSo I get:\n(8 - 2) * 4').correct, 'fallback: last line after </think>');
  assert.ok(task.verify(p, '<think>x</think>\nAnswer: (8 - 2) * 4.').correct);

  const reasons: [string, RegExp][] = [
    ['8 * 2 + 8', /uses 8 more often than given/],
    ['6 * 4', /uses 6, which is not one of the given numbers/],
    ['(8 - 2) * 4 = 25', /claims 25, the target is 24/],
    ['25 = (8 - 2) * 4', /claims 25, the target is 24/],
    ['8 + 2 = 4 + 7', /neither side of "=" is a number/],
    ['8 * 2 + 7', /evaluates to 23, the target is 24/],
    ['8 / 7', /evaluates to 8\/7/],
    ['-2 + 8 * 4 - 7 + 1', /unary minus/],
    ['08 * (7 - 4)', /number written as 08/],
    ['2.5 * 8', /only whole numbers/],
    ['(8 - 2) * 4 = 24 = 24', /more than one "="/],
    ['8 2 4', /missing operator/],
    ['(8 - 2 * 4', /unclosed parenthesis/],
    ['8 ** 2', /unexpected \*/],
    ['Math.max(8)', /unexpected character/],
    ['8 + 2 ^ 4', /unexpected character "\^"/],
  ];
  for (const [bad, why] of reasons) {
    const v = task.verify(p, wrap(bad));
    assert.equal(v.correct, false, bad);
    assert.match(v.reason, why, bad);
  }
  assert.equal(task.verify(p, '<think>(8 - 2) * 4</think>').correct, false, 'only in the reasoning');
});

test('countdown arithmetic is exact: 6/4*2 = 3, division by zero is a wrong answer, huge values stay exact', () => {
  const data: CountdownData = { numbers: [6, 4, 2], target: 3 };
  assert.ok(checkCountdownExpression(data, '6/4*2').correct);
  assert.ok(checkCountdownExpression(data, '6 / (4 / 2)').correct);
  assert.match(checkCountdownExpression({ numbers: [2, 2, 8, 3], target: 24 }, '8 / (2 - 2) * 3').reason, /division by zero/);
  assert.match(checkCountdownExpression({ numbers: [1, 3, 3], target: 1 }, '1 / (3 - 3) * 0 + 1').reason, /not one of the given|division by zero/);
  // 1/3 * 3 is exactly 1 (a float evaluator gives 1 too, but 1/3 + 1/3 + 1/3 - 1 must be exactly 0, not 1e-16).
  assert.ok(checkCountdownExpression({ numbers: [1, 3, 1, 3, 1, 3, 1], target: 0 }, '1/3 + 1/3 + 1/3 - 1').correct);
  const nines = Array(8).fill(99999);
  const target = 99999 ** 2; // products beyond 2^53 are compared exactly
  assert.ok(checkCountdownExpression({ numbers: nines, target }, '99999 * 99999 * 99999 * 99999 / 99999 / 99999').correct);
  assert.equal(checkCountdownExpression({ numbers: nines, target }, '99999 * 99999 * 99999 * 99999 / 99999 / 99999 + 99999 / 99999 / 99999 / 99999').correct, false);
});

test('expression parser agrees with an independent float evaluation, and never throws on junk', () => {
  const rng = new TaskRng(123);
  const alphabet = ['1', '2', '7', '12', '+', '-', '*', '/', '×', '(', ')', ' ', 'x'];
  let parsed = 0;
  for (let i = 0; i < 6000; i++) {
    let s = '';
    const len = rng.int(1, 14);
    for (let k = 0; k < len; k++) s += rng.pick(alphabet);
    const r = parseExpression(s);
    if (!r.ok) continue;
    parsed++;
    const js = s.replace(/[×x]/g, '*');
    // Our grammar is a subset of JavaScript's for these characters; use JS only as an oracle here.
    const reference = Function(`"use strict"; return (${js});`)() as number;
    const value = evaluate(r.expr);
    if (value === null) {
      assert.ok(js.includes('/'), `${s}: division by zero reported without a division`);
      continue;
    }
    const approx = Number(value.n) / Number(value.d);
    assert.ok(Math.abs(approx - reference) <= 1e-9 * Math.max(1, Math.abs(reference)), `${s}: ${approx} vs ${reference}`);
    // Formatting keeps the value and the literals.
    const again = parseExpression(formatExpression(r.expr));
    assert.ok(again.ok);
    const v2 = evaluate(again.expr);
    assert.deepEqual(v2, value, `${s} -> ${formatExpression(r.expr)}`);
    assert.deepEqual(literals(again.expr).map((l) => l.value).sort(), literals(r.expr).map((l) => l.value).sort());
  }
  assert.ok(parsed > 150, `only ${parsed} random strings parsed`);
  for (const junk of ['(('.repeat(100) + '1', ')', '', '   ', '+', '1+', '(1)(2)', '1'.repeat(2000), '\u0000', '1/0']) {
    assert.doesNotThrow(() => parseExpression(junk));
    assert.doesNotThrow(() => checkCountdownExpression({ numbers: [1, 2], target: 3 }, junk));
  }
  assert.match((parseExpression('('.repeat(70) + '1' + ')'.repeat(70)) as { error: string }).error, /nested deeper than 64/);
  assert.deepEqual(parseExpression('1/0').ok, true);
  const dz = parseExpression('1/0');
  assert.equal(dz.ok && evaluate(dz.expr), null);
});

test('the solver finds solutions, uses each number at most once, and knows impossible targets', () => {
  const s = solveCountdown([25, 50, 75, 100, 3, 6], 952);
  assert.ok(s.expr);
  const used = literals(s.expr!).map((l) => Number(l.value)).sort((a, b) => a - b);
  const pool = [25, 50, 75, 100, 3, 6];
  for (const n of used) pool.splice(pool.indexOf(n), 1);
  assert.equal(pool.length + used.length, 6, 'only given numbers, each at most once');
  assert.ok(checkCountdownExpression({ numbers: [25, 50, 75, 100, 3, 6], target: 952 }, formatExpression(s.expr!)).correct);
  assert.equal(solveCountdown([2, 4], 7).expr, null);
  assert.throws(() => makeCountdownProblem([2, 4], 7), /7 cannot be reached from \[2, 4\]/);
  // Every generated problem is solvable and the worked solution narrates the steps it uses.
  for (const p of getTask('countdown').generate(10, { seed: 4, difficulty: 3, split: 'test' }) as Problem<CountdownData>[]) {
    const sol = getTask('countdown').solution(p);
    assert.match(sol.thought, new RegExp(`That reaches ${p.data.target}\\.`));
    assert.ok(checkCountdownExpression(p.data, sol.answer).correct, `${p.prompt}: ${sol.answer}`);
  }
});
