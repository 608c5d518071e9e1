import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coldStartExamples } from '../../src/train/cold-start.js';
import {
  DIFFICULTIES, TASK_NAMES, getTask,
  type ArithmeticData, type CountdownData, type LinearData, type Problem, type SortData,
} from '../../src/train/tasks/index.js';
import { rephrase, wordingCount } from '../../src/train/tasks/phrasing.js';
import { TaskRng } from '../../src/train/tasks/rng.js';

const numbersIn = (text: string): number[] => (text.match(/\d+/g) ?? []).map(Number);

/** What a reader of the reworded question must be able to get back from it, checked from the problem's data. */
function assertSameQuestion(problem: Problem, asked: string): void {
  const where = `${problem.id}: ${JSON.stringify(asked)}`;
  switch (problem.task) {
    case 'arithmetic': {
      const d = problem.data as ArithmeticData;
      assert.deepEqual(numbersIn(asked), [Number(d.a), Number(d.b)], where);
      const operators: Record<string, RegExp> = { '+': /\+|plus/, '-': /-|minus/, '*': /\*|\d ?x ?\d|×|times|multiplied by/ };
      assert.match(asked, operators[d.op]!, where);
      for (const [op, pattern] of Object.entries(operators)) if (op !== d.op) assert.doesNotMatch(asked, pattern, `${where} names ${op} too`);
      break;
    }
    case 'linear': {
      const d = problem.data as LinearData;
      assert.ok(asked.replace(/ /g, '').includes(d.equation.replace(/ /g, '')), `${where} lost the equation ${d.equation}`);
      break;
    }
    case 'countdown': {
      const d = problem.data as CountdownData;
      const found = numbersIn(asked);
      assert.deepEqual([...found].sort((a, b) => a - b), [...d.numbers, d.target].sort((a, b) => a - b), where);
      break;
    }
    case 'sort': {
      const d = problem.data as SortData;
      assert.deepEqual(asked.match(/[a-z]+/g)!.slice(-d.words.length), d.words, where);
      break;
    }
    default:
      throw new Error(`no check for task ${problem.task}`);
  }
}

test('rephrase: every wording of every task keeps the numbers, operator, equation or words, and all wordings occur', () => {
  for (const task of TASK_NAMES) {
    assert.ok(wordingCount(task) >= 6, `${task} has ${wordingCount(task)} wordings`);
    const rng = new TaskRng(5, task);
    const shapes = new Set<string>();
    for (const difficulty of DIFFICULTIES) {
      for (const problem of getTask(task).generate(150, { seed: 17, difficulty, split: 'train' }) as Problem[]) {
        const asked = rephrase(problem, rng);
        assert.notEqual(asked.prompt, problem.prompt, `${problem.id} kept its wording`);
        assert.deepEqual({ ...asked, prompt: problem.prompt }, problem, 'only the prompt changes');
        assertSameQuestion(problem, asked.prompt);
        shapes.add(asked.prompt.replace(/[\d,[\]]+|[a-z]+(?=,| |$)/g, '#').slice(0, 12));
      }
    }
    assert.ok(shapes.size >= wordingCount(task), `${task}: only ${shapes.size} different openings for ${wordingCount(task)} wordings`);
  }
});

test('rephrase: the same rng seed gives the same wordings; an unknown task keeps its prompt', () => {
  const problems = getTask('linear').generate(20, { seed: 3, difficulty: 2, split: 'test' });
  const once = problems.map((p) => rephrase(p, new TaskRng(9, 'x')).prompt);
  const again = problems.map((p) => rephrase(p, new TaskRng(9, 'x')).prompt);
  assert.deepEqual(once, again);
  const other: Problem = { ...problems[0]!, task: 'chess' };
  assert.equal(rephrase(other, new TaskRng(1)), other);
});

test('cold start with rephrased 0.5: about half the questions reworded, the same worked solutions; 0 gives the plain set', () => {
  const options = { tasks: ['arithmetic', 'linear', 'countdown', 'sort'], difficulties: [1, 2] as const, count: 400, seed: 4 };
  const plain = coldStartExamples({ ...options, difficulties: [...options.difficulties] });
  assert.deepEqual(coldStartExamples({ ...options, difficulties: [...options.difficulties], rephrased: 0 }), plain);
  const mixed = coldStartExamples({ ...options, difficulties: [...options.difficulties], rephrased: 0.5 });
  assert.equal(mixed.length, plain.length);
  let reworded = 0;
  mixed.forEach((example, i) => {
    assert.deepEqual(example.messages[1], plain[i]!.messages[1], `example ${i}: the answer must not change`);
    assert.deepEqual(example.meta, plain[i]!.meta);
    if (example.messages[0]!.content !== plain[i]!.messages[0]!.content) reworded++;
  });
  assert.ok(reworded > 150 && reworded < 250, `${reworded} of 400 reworded`);
});
