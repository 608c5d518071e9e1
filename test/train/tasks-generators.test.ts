import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DIFFICULTIES, SPLITS, TASK_NAMES, getTask, splitOf, makeArithmeticProblem,
  type ArithmeticData, type CountdownData, type LinearData, type Problem, type SortData, type Split,
} from '../../src/train/tasks/index.js';

const wrap = (answer: string): string => `<think>\nworking\n</think>\n<answer>${answer}</answer>`;

/** The canonical identity of a problem, recomputed here from its data (not from the library). */
function identity(p: Problem): string {
  switch (p.task) {
    case 'arithmetic': {
      const d = p.data as ArithmeticData;
      const [x, y] = d.op !== '-' && BigInt(d.b) < BigInt(d.a) ? [d.b, d.a] : [d.a, d.b];
      return `${x}${d.op}${y}`;
    }
    case 'countdown': {
      const d = p.data as CountdownData;
      return `${[...d.numbers].sort((a, b) => a - b).join(',')}->${d.target}`;
    }
    case 'linear': {
      const d = p.data as LinearData;
      return `${d.a},${d.b},${d.c},${d.d}`;
    }
    case 'sort':
      return [...(p.data as SortData).words].sort().join(',');
    default:
      throw new Error(p.task);
  }
}

test('generation is deterministic in the seed, a shorter run is a prefix, other seeds differ', () => {
  for (const name of TASK_NAMES) {
    const task = getTask(name);
    for (const difficulty of DIFFICULTIES) {
      const a = task.generate(40, { seed: 7, difficulty, split: 'train' });
      const b = task.generate(40, { seed: 7, difficulty, split: 'train' });
      assert.deepEqual(a, b, `${name} ${difficulty}`);
      assert.deepEqual(task.generate(15, { seed: 7, difficulty, split: 'train' }), a.slice(0, 15));
      const c = task.generate(40, { seed: 8, difficulty, split: 'train' });
      const overlap = c.filter((p) => a.some((q) => q.id === p.id)).length;
      assert.ok(overlap < 20, `${name} ${difficulty}: seeds 7 and 8 share ${overlap} of 40`);
      assert.equal(new Set(a.map((p) => p.id)).size, a.length, `${name} ${difficulty}: duplicates within one run`);
      for (const p of a) {
        assert.equal(p.task, name);
        assert.equal(p.difficulty, difficulty);
        assert.equal(p.split, 'train');
        assert.ok(p.prompt.length > 0 && p.answer.length > 0);
        assert.deepEqual(JSON.parse(JSON.stringify(p)), p, 'problems are plain JSON');
      }
    }
  }
});

test('every generated problem: canonical answer verifies, a wrong one does not, the worked solution verifies', () => {
  const sizes: Record<string, number> = { arithmetic: 40, countdown: 15, linear: 40, sort: 40 };
  for (const name of TASK_NAMES) {
    const task = getTask(name);
    for (const difficulty of DIFFICULTIES) {
      for (const split of SPLITS) {
        for (const p of task.generate(sizes[name]!, { seed: 11, difficulty, split })) {
          const v = task.verify(p, wrap(p.answer));
          assert.ok(v.correct, `${p.id} ${p.prompt} answer ${p.answer}: ${v.reason}`);
          assert.equal(task.verify(p, wrap(p.answer + '1')).correct, false, `${p.id}: answer+"1" accepted`);
          const s = task.solution(p);
          assert.ok(s.thought.length > 20 && !s.thought.includes('</think>'));
          assert.ok(s.completion.startsWith('<think>\n') && s.completion.includes(s.thought));
          const sv = task.verify(p, s.completion);
          assert.ok(sv.correct, `${p.id} ${p.prompt}: worked solution answer ${s.answer}: ${sv.reason}`);
        }
      }
    }
  }
});

test('arithmetic worked solutions (digit loops) agree with BigInt; huge products are exact', () => {
  const task = getTask('arithmetic');
  for (const p of task.generate(200, { seed: 5, difficulty: 3, split: 'train' }) as Problem<ArithmeticData>[]) {
    const a = BigInt(p.data.a);
    const b = BigInt(p.data.b);
    const want = p.data.op === '+' ? a + b : p.data.op === '-' ? a - b : a * b;
    assert.equal(task.solution(p).answer, want.toString(), p.prompt);
    assert.equal(p.answer, want.toString());
  }
  const big = makeArithmeticProblem('12345678901', '*', '98765432109');
  const product = 12345678901n * 98765432109n;
  assert.equal(product.toString().length, 22);
  assert.equal(big.answer, product.toString());
  assert.equal(task.solution(big).answer, product.toString());
  assert.ok(task.verify(big, wrap(product.toString())).correct);
  // One off in the last digit is wrong (a float comparison could not tell).
  assert.equal(task.verify(big, wrap((product + 1n).toString())).correct, false);
  assert.equal(Number(product) === Number(product + 1n), true, 'the pair really is beyond float precision');
  const grouped = product.toLocaleString('en-US');
  assert.ok(grouped.includes(','));
  assert.ok(task.verify(big, wrap(grouped)).correct, `thousands commas: ${grouped}`);
});

test('difficulty scales: operand sizes, number counts, equation forms, word counts', () => {
  const gen = <D>(name: string, difficulty: 1 | 2 | 3, n = 150): Problem<D>[] =>
    getTask(name).generate(n, { seed: 3, difficulty, split: 'train' }) as Problem<D>[];
  const avg = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

  const digits = [1, 2, 3].map((d) => avg(gen<ArithmeticData>('arithmetic', d as 1 | 2 | 3).map((p) => p.data.a.length + p.data.b.length)));
  assert.ok(digits[0]! < digits[1]! && digits[1]! < digits[2]!, `operand digits ${digits}`);
  const subtractions = gen<ArithmeticData>('arithmetic', 2, 300).filter((p) => p.data.op === '-');
  assert.ok(subtractions.some((p) => p.answer.startsWith('-')), 'some subtractions are negative');
  assert.ok(subtractions.some((p) => !p.answer.startsWith('-')));

  for (const [d, lo, hi] of [[1, 3, 3], [2, 4, 4], [3, 5, 6]] as const) {
    for (const p of gen<CountdownData>('countdown', d, 40)) {
      assert.ok(p.data.numbers.length >= lo && p.data.numbers.length <= hi, `countdown ${d}: ${p.data.numbers}`);
      assert.ok(!p.data.numbers.includes(p.data.target), 'target is never one of the numbers');
    }
  }

  for (const p of gen<LinearData>('linear', 1)) assert.ok(p.data.c === 0 && /^\d+$/.test(p.answer), p.prompt);
  const l2 = gen<LinearData>('linear', 2);
  assert.ok(l2.every((p) => p.data.c !== 0 && /^-?\d+$/.test(p.answer)));
  assert.ok(l2.some((p) => p.answer.startsWith('-')));
  const l3 = gen<LinearData>('linear', 3);
  assert.ok(l3.every((p) => p.data.grouped !== undefined && p.prompt.includes('(')));
  assert.ok(l3.filter((p) => p.answer.includes('/')).length > 30, 'level 3 has fraction answers');

  for (const [d, lo, hi] of [[1, 3, 4], [2, 5, 7], [3, 8, 12]] as const) {
    for (const p of gen<SortData>('sort', d)) {
      const w = p.data.words;
      assert.ok(w.length >= lo && w.length <= hi);
      assert.equal(new Set(w).size, w.length);
      if (d === 1) assert.equal(new Set(w.map((x) => x[0])).size, w.length);
    }
  }
  const shared = gen<SortData>('sort', 3).filter((p) => {
    const counts = new Map<string, number>();
    for (const w of p.data.words) counts.set(w.slice(0, 2), (counts.get(w.slice(0, 2)) ?? 0) + 1);
    return Math.max(...counts.values()) >= 4;
  });
  assert.ok(shared.length > 100, `level 3 word lists share prefixes (${shared.length}/150)`);
});

test('splits are disjoint: thousands of problems per split, any seeds, intersected by recomputed identity', () => {
  const counts: Record<Split, number> = { train: 2000, validation: 1000, test: 1000 };
  const cases: [string, 1 | 2 | 3][] = [['arithmetic', 1], ['arithmetic', 2], ['countdown', 1], ['linear', 2], ['sort', 2]];
  for (const [name, difficulty] of cases) {
    const task = getTask(name);
    const owner = new Map<string, Split>();
    for (const split of SPLITS) {
      for (const seed of [1, 2]) {
        const n = Math.round(counts[split] * (seed === 1 ? 1 : 0.3) * (name === 'countdown' ? 0.5 : 1));
        for (const p of task.generate(n, { seed, difficulty, split })) {
          const key = identity(p);
          const prev = owner.get(key);
          assert.ok(prev === undefined || prev === split, `${name}: ${key} in ${prev} and ${split}`);
          owner.set(key, split);
          assert.equal(splitOf(name, key), split);
        }
      }
    }
    const sizes = SPLITS.map((s) => [...owner.values()].filter((v) => v === s).length);
    assert.ok(sizes.every((n) => n >= 500), `${name}: distinct per split ${sizes}`);
  }
  // The operand order of + and * does not move a problem to another split.
  for (const p of getTask('arithmetic').generate(300, { seed: 9, difficulty: 2, split: 'test' }) as Problem<ArithmeticData>[]) {
    if (p.data.op === '-') continue;
    const swapped = makeArithmeticProblem(p.data.b, p.data.op, p.data.a, 2);
    assert.equal(swapped.split, 'test');
    assert.equal(swapped.id, p.id);
  }
});

test('bad generate arguments and a too-small problem space give clear errors', () => {
  const task = getTask('arithmetic');
  assert.throws(() => task.generate(5, { seed: 1, difficulty: 4 as never, split: 'train' }), /difficulty must be 1, 2 or 3/);
  assert.throws(() => task.generate(5, { seed: 1, difficulty: 1, split: 'dev' as never }), /split must be/);
  assert.throws(() => task.generate(-1, { seed: 1, difficulty: 1, split: 'train' }), /count/);
  assert.throws(() => task.generate(1, { seed: Number.NaN, difficulty: 1, split: 'train' }), /seed/);
  assert.throws(() => getTask('chess'), /unknown task "chess"; known tasks: arithmetic, countdown, linear, sort/);
  // Level 1 linear has 8 * 20 * 30 = 4800 problems, ~10% in test: 1000 distinct test problems cannot exist.
  assert.throws(() => getTask('linear').generate(1000, { seed: 1, difficulty: 1, split: 'test' }), /linear: found only \d+ of 1000 distinct test problems at difficulty 1/);
  assert.deepEqual(task.generate(0, { seed: 1, difficulty: 1, split: 'test' }), []);
});
