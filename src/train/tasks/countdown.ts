/**
 * Countdown: reach a target from 3–6 given numbers with + - * /, each number used at most once
 * (not all must be used). Levels: 1 = 3 numbers in 1..25, target 10..100; 2 = 4 numbers in 1..50,
 * target 10..250; 3 = 5–6 numbers in 1..100, target 100..999. The generator builds a random
 * expression over all the numbers with positive whole intermediate values, so a solution exists;
 * the target is never one of the numbers. Canonical form: the sorted numbers and the target.
 *
 * Verification: any valid expression is accepted. It is parsed by expression.ts (no eval),
 * may be written `expr = target` (or `target = expr`), must use only given numbers as written
 * (multiset: a number given once may appear once), and its exact rational value must equal the
 * target (6 / 4 * 2 = 3 is exact). Division by zero, unary minus, decimals, unknown characters
 * are wrong answers with a reason, never exceptions. Without tags or an Answer: line, the last
 * non-empty line after </think> is read.
 */
import { type ExtractOptions, extractAnswer, normalizeAnswerText, parseExactNumber } from './answer.js';
import { type Expr, evaluate, formatExpression, literals, parseExpression } from './expression.js';
import { solveCountdown } from './countdown-solver.js';
import { equals, rational } from './rational.js';
import { type Candidate, canonicalHash, generateInSplit, problemId, splitOfHash } from './split.js';
import type { TaskRng } from './rng.js';
import { type Difficulty, type Problem, type Task, type Verdict, type WorkedSolution, completionText, checkDifficulty } from './types.js';

export interface CountdownData {
  numbers: number[];
  target: number;
}

const TASK = 'countdown';
const LEVELS: Record<Difficulty, { count: [number, number]; max: number; target: [number, number] }> = {
  1: { count: [3, 3], max: 25, target: [10, 100] },
  2: { count: [4, 4], max: 50, target: [10, 250] },
  3: { count: [5, 6], max: 100, target: [100, 999] },
};

const promptOf = (numbers: readonly number[], target: number): string =>
  `Using the numbers [${numbers.join(', ')}], write an expression that equals ${target}. ` +
  'You may use + - * / and parentheses, and each number at most once.';

const canonicalOf = (numbers: readonly number[], target: number): string => `${[...numbers].sort((a, b) => a - b).join(',')}->${target}`;

function candidate(numbers: number[], target: number, witness: Expr): Candidate<CountdownData> {
  return { canonical: canonicalOf(numbers, target), prompt: promptOf(numbers, target), answer: formatExpression(witness), data: { numbers, target } };
}

function draw(rng: TaskRng, difficulty: Difficulty): Candidate<CountdownData> | null {
  const level = LEVELS[difficulty];
  const numbers = Array.from({ length: rng.int(level.count[0], level.count[1]) }, () => rng.int(1, level.max));
  let pool: { value: bigint; expr: Expr }[] = numbers.map((n) => ({ value: BigInt(n), expr: { kind: 'num', value: BigInt(n), text: String(n) } }));
  while (pool.length > 1) {
    pool = rng.shuffle(pool);
    const x = pool.pop()!;
    const y = pool.pop()!;
    const [big, small] = x.value >= y.value ? [x, y] : [y, x];
    const ops: ('+' | '-' | '*' | '/')[] = ['+', '*'];
    if (big.value !== small.value) ops.push('-');
    if (small.value > 1n && big.value % small.value === 0n) ops.push('/');
    const op = rng.pick(ops);
    const value = op === '+' ? big.value + small.value : op === '-' ? big.value - small.value : op === '*' ? big.value * small.value : big.value / small.value;
    pool.push({ value, expr: { kind: 'bin', op, left: big.expr, right: small.expr } });
  }
  const target = Number(pool[0]!.value);
  if (target < level.target[0] || target > level.target[1] || numbers.includes(target)) return null;
  return candidate(numbers, target, pool[0]!.expr);
}

function checkData(problem: Problem<CountdownData>): CountdownData {
  const d = problem.data;
  const ok = d && Array.isArray(d.numbers) && d.numbers.length >= 2 && d.numbers.every((n) => Number.isSafeInteger(n) && n > 0) && Number.isSafeInteger(d.target);
  if (!ok) throw new Error(`countdown problem ${problem.id}: data must be { numbers: positive integers (2 or more), target: integer }, got ${JSON.stringify(d)}`);
  return d;
}

/** A problem from explicit numbers and target (tests, hand-made sets); throws if the solver finds no solution. */
export function makeCountdownProblem(numbers: number[], target: number, difficulty: Difficulty = 2): Problem<CountdownData> {
  const search = solveCountdown(numbers, target, 0);
  if (!search.expr) throw new Error(`countdown: ${target} cannot be reached from [${numbers.join(', ')}] with whole intermediate values`);
  const c = candidate(numbers, target, search.expr);
  const hash = canonicalHash(TASK, c.canonical);
  return { id: problemId(TASK, hash), task: TASK, difficulty: checkDifficulty(TASK, difficulty), split: splitOfHash(hash), ...c };
}

/** Judges one expression text (already extracted) against the problem. */
export function checkCountdownExpression(data: CountdownData, text: string): Verdict {
  const s = normalizeAnswerText(text);
  const sides = s.split('=').map((x) => x.trim());
  if (sides.length > 2) return { correct: false, parsedAnswer: s, reason: 'more than one "="' };
  let exprText = sides[0]!;
  if (sides.length === 2) {
    const right = parseExactNumber(sides[1]!);
    const left = parseExactNumber(sides[0]!);
    const [claim, claimText, expr] = right.ok ? [right, sides[1]!, sides[0]!] : left.ok ? [left, sides[0]!, sides[1]!] : [null, '', ''];
    if (claim === null || !claim.ok) return { correct: false, parsedAnswer: s, reason: 'neither side of "=" is a number' };
    if (!equals(claim.value, rational(BigInt(data.target)))) return { correct: false, parsedAnswer: s, reason: `claims ${claimText}, the target is ${data.target}` };
    exprText = expr;
  }
  const parsed = parseExpression(exprText);
  if (!parsed.ok) return { correct: false, parsedAnswer: exprText, reason: `not a valid expression: ${parsed.error}` };
  const available = new Map<string, number>();
  for (const n of data.numbers) available.set(String(n), (available.get(String(n)) ?? 0) + 1);
  for (const lit of literals(parsed.expr)) {
    if (lit.text !== lit.value.toString()) return { correct: false, parsedAnswer: exprText, reason: `number written as ${lit.text}` };
    const left = available.get(lit.text) ?? 0;
    if (left === 0) {
      const given = data.numbers.includes(Number(lit.value));
      return { correct: false, parsedAnswer: exprText, reason: given ? `uses ${lit.text} more often than given` : `uses ${lit.text}, which is not one of the given numbers` };
    }
    available.set(lit.text, left - 1);
  }
  const value = evaluate(parsed.expr);
  if (value === null) return { correct: false, parsedAnswer: exprText, reason: 'division by zero' };
  const shown = value.d === 1n ? value.n.toString() : `${value.n}/${value.d}`;
  return equals(value, rational(BigInt(data.target)))
    ? { correct: true, parsedAnswer: exprText, reason: 'correct' }
    : { correct: false, parsedAnswer: exprText, reason: `evaluates to ${shown}, the target is ${data.target}` };
}

export function verifyCountdown(problem: Problem<CountdownData>, completion: string, options: ExtractOptions = {}): Verdict {
  const data = checkData(problem);
  const ex = extractAnswer(completion, options);
  if (!ex.ok) return { correct: false, reason: ex.reason };
  let text = ex.text;
  if (ex.source === 'rest') {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    text = lines[lines.length - 1] ?? '';
  }
  return checkCountdownExpression(data, text);
}

const sym = (op: string): string => (op === '*' ? '×' : op === '/' ? '÷' : op);

export function countdownSolution(problem: Problem<CountdownData>): WorkedSolution {
  const { numbers, target } = checkData(problem);
  const search = solveCountdown(numbers, target);
  if (!search.expr) throw new Error(`countdown problem ${problem.id}: no solution found for target ${target} from [${numbers.join(', ')}]`);
  const lines = [`The numbers are ${numbers.join(', ')} and the target is ${target}. I combine two numbers at a time and check whether I reach ${target}.`];
  for (const dead of search.deadEnds) {
    const last = dead[dead.length - 1]!;
    lines.push(`Try ${dead.map((s) => `${s.left} ${sym(s.op)} ${s.right} = ${s.result}`).join(', then ')}. That gives ${last.result}, not ${target}, so this start does not work.`);
  }
  lines.push(`Try ${search.steps.map((s) => `${s.left} ${sym(s.op)} ${s.right} = ${s.result}`).join(', then ')}. That reaches ${target}.`);
  const answer = formatExpression(search.expr);
  lines.push(`As one expression: ${answer} = ${target}.`);
  const thought = lines.join('\n');
  return { thought, answer, completion: completionText(thought, answer) };
}

export const countdownTask: Task<CountdownData> = {
  name: TASK,
  describe: {
    1: '3 numbers in 1..25, target 10..100',
    2: '4 numbers in 1..50, target 10..250',
    3: '5–6 numbers in 1..100, target 100..999',
  },
  generate: (count, options) => generateInSplit(TASK, count, options, draw),
  verify: verifyCountdown,
  solution: countdownSolution,
};
