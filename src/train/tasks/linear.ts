/**
 * Linear equations in x with one exact solution. Levels: 1 = ax + b = c (integer x, 1..20);
 * 2 = ax + b = cx + d, x on both sides (integer x, may be negative); 3 = p(x + q) + r = cx + d
 * (often a fraction). Every equation is stored reduced to ax + b = cx + d; canonical form is
 * that tuple. Canonical answer: the reduced fraction ("5", "-3", "7/2", "-1/3").
 *
 * Answer policy (strict but fair): exactly one number, exact, optionally written "x = …":
 * a whole number, a finite decimal equal to the solution (2.5 for 5/2; 0.333 for 1/3 is wrong),
 * or a fraction of whole numbers, reduced or not (10/4 and 5/2 both count; "\frac{5}{2}" too).
 * Not accepted: several values, expressions ("3 + 2"), mixed numbers ("2 1/2"), rounded decimals.
 */
import { type ExtractOptions, extractAnswer, lastNumberText, parseExactNumber } from './answer.js';
import { type Rational, add, div, equals, formatRational, mul, rational } from './rational.js';
import { type Candidate, canonicalHash, generateInSplit, problemId, splitOfHash } from './split.js';
import type { TaskRng } from './rng.js';
import { type Difficulty, type Problem, type Task, type Verdict, type WorkedSolution, completionText, checkDifficulty } from './types.js';

export interface LinearData {
  /** The equation as shown in the prompt. */
  equation: string;
  /** Reduced form: a x + b = c x + d, with a !== c. */
  a: number;
  b: number;
  c: number;
  d: number;
  /** Level 3's p(x + q) + r left side, when used. */
  grouped?: { p: number; q: number; r: number };
}

const TASK = 'linear';

/** "3x - 7", "-x", "5", "0". */
export function formatLinear(coef: number, constant: number): string {
  let s = coef === 0 ? '' : coef === 1 ? 'x' : coef === -1 ? '-x' : `${coef}x`;
  if (constant !== 0) s += s === '' ? String(constant) : constant > 0 ? ` + ${constant}` : ` - ${-constant}`;
  return s === '' ? '0' : s;
}

const signed = (n: number): string => (n >= 0 ? `+ ${n}` : `- ${-n}`);

function groupedText(g: { p: number; q: number; r: number }): string {
  const inner = `x ${signed(g.q)}`;
  return `${g.p}(${inner})${g.r === 0 ? '' : ` ${signed(g.r)}`}`;
}

function solutionOf(d: LinearData): Rational {
  const x = div(rational(BigInt(d.d - d.b)), rational(BigInt(d.a - d.c)));
  if (x === null) throw new Error(`linear: ${d.equation} has no unique solution`);
  return x;
}

function candidate(data: LinearData): Candidate<LinearData> {
  return {
    canonical: `${data.a},${data.b},${data.c},${data.d}`,
    prompt: `Solve for x: ${data.equation}`,
    answer: formatRational(solutionOf(data)),
    data,
  };
}

const nonZero = (rng: TaskRng, lo: number, hi: number): number => {
  for (;;) {
    const v = rng.int(lo, hi);
    if (v !== 0) return v;
  }
};

function draw(rng: TaskRng, difficulty: Difficulty): Candidate<LinearData> | null {
  if (difficulty === 1) {
    const a = rng.int(2, 9);
    const x = rng.int(1, 20);
    const b = rng.int(1, 30);
    const c = a * x + b;
    return candidate({ equation: `${formatLinear(a, b)} = ${c}`, a, b, c: 0, d: c });
  }
  if (difficulty === 2) {
    const a = nonZero(rng, -9, 9);
    const c = nonZero(rng, -9, 9);
    if (a === c) return null;
    const x = rng.int(-20, 20);
    const b = rng.int(-30, 30);
    const d = (a - c) * x + b;
    return candidate({ equation: `${formatLinear(a, b)} = ${formatLinear(c, d)}`, a, b, c, d });
  }
  const g = { p: rng.int(2, 9), q: nonZero(rng, -9, 9), r: rng.int(-20, 20) };
  const c = nonZero(rng, -9, 9);
  const d = rng.int(-40, 40);
  const a = g.p;
  const b = g.p * g.q + g.r;
  if (a === c) return null;
  return candidate({ equation: `${groupedText(g)} = ${formatLinear(c, d)}`, a, b, c, d, grouped: g });
}

function checkData(problem: Problem<LinearData>): LinearData {
  const d = problem.data;
  const ints = d && [d.a, d.b, d.c, d.d].every((v) => Number.isSafeInteger(v));
  if (!ints || d.a === d.c || typeof d.equation !== 'string') {
    throw new Error(`linear problem ${problem.id}: data must be { equation, a, b, c, d: integers with a !== c }, got ${JSON.stringify(d)}`);
  }
  return d;
}

/** A problem for a x + b = c x + d (tests, hand-made sets). */
export function makeLinearProblem(a: number, b: number, c: number, d: number, difficulty: Difficulty = 2): Problem<LinearData> {
  if (a === c) throw new Error(`linear: ${formatLinear(a, b)} = ${formatLinear(c, d)} has no unique solution`);
  const cand = candidate({ equation: `${formatLinear(a, b)} = ${formatLinear(c, d)}`, a, b, c, d });
  const hash = canonicalHash(TASK, cand.canonical);
  return { id: problemId(TASK, hash), task: TASK, difficulty: checkDifficulty(TASK, difficulty), split: splitOfHash(hash), ...cand };
}

export function verifyLinear(problem: Problem<LinearData>, completion: string, options: ExtractOptions = {}): Verdict {
  const expected = solutionOf(checkData(problem));
  const ex = extractAnswer(completion, options);
  if (!ex.ok) return { correct: false, reason: ex.reason };
  const text = ex.source === 'rest' ? lastNumberText(ex.text) : ex.text;
  if (text === null) return { correct: false, reason: 'no number after </think>' };
  const n = parseExactNumber(text, { allowDecimal: true, allowFraction: true });
  if (!n.ok) return { correct: false, parsedAnswer: text, reason: n.reason };
  const got = formatRational(n.value);
  return equals(n.value, expected)
    ? { correct: true, parsedAnswer: got, reason: 'correct' }
    : { correct: false, parsedAnswer: got, reason: `expected x = ${formatRational(expected)}, got ${got}` };
}

const r = (n: number): Rational => rational(BigInt(n));
const show = (q: Rational): string => formatRational(q);

export function linearSolution(problem: Problem<LinearData>): WorkedSolution {
  const data = checkData(problem);
  const { a, b, c, d, grouped } = data;
  const lines = [`The equation is ${data.equation}. I collect the x terms on the left and the numbers on the right.`];
  if (grouped) {
    lines.push(`Expand ${grouped.p}(${`x ${signed(grouped.q)}`}) = ${formatLinear(grouped.p, grouped.p * grouped.q)}, so the left side is ${formatLinear(a, b)}.`);
  }
  let coef = a;
  let constant = d;
  if (c !== 0) {
    coef = a - c;
    lines.push(`${c > 0 ? `Subtract ${formatLinear(c, 0)} from` : `Add ${formatLinear(-c, 0)} to`} both sides: ${formatLinear(coef, b)} = ${d}.`);
  }
  if (b !== 0) {
    constant = d - b;
    lines.push(`${b > 0 ? `Subtract ${b} from` : `Add ${-b} to`} both sides: ${formatLinear(coef, 0)} = ${constant}.`);
  }
  const x = div(r(constant), r(coef))!;
  const divisor = coef < 0 ? `(${coef})` : String(coef);
  lines.push(coef === 1 ? `So x = ${show(x)}.` : `Divide both sides by ${coef}: x = ${constant} ÷ ${divisor} = ${show(x)}.`);
  const left = add(mul(r(a), x), r(b));
  const right = add(mul(r(c), x), r(d));
  lines.push(`Check: the left side is ${show(left)} and the right side is ${show(right)}${equals(left, right) ? ', equal.' : ', not equal.'}`);
  const answer = show(x);
  const thought = lines.join('\n');
  return { thought, answer, completion: completionText(thought, answer) };
}

export const linearTask: Task<LinearData> = {
  name: TASK,
  describe: {
    1: 'ax + b = c with a whole-number solution 1..20',
    2: 'ax + b = cx + d, x on both sides, whole-number solution',
    3: 'p(x + q) + r = cx + d, solution often a fraction',
  },
  generate: (count, options) => generateInSplit(TASK, count, options, draw),
  verify: verifyLinear,
  solution: linearSolution,
};
