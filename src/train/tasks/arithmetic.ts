/**
 * Multi-digit arithmetic: a + b, a - b (negative results when b > a), a * b, on exact BigInts.
 * Levels: 1 = +/- on 1–2 digit numbers, 2-digit × 1-digit; 2 = +/- on 3–4 digits, 3-digit ×
 * 2-digit; 3 = +/- on 5–8 digits, 4–6 digit × 3–4 digit. Canonical form: "a+b" / "a*b" with the
 * operands in increasing order (3 + 5 and 5 + 3 are one problem), "a-b" as given. The answer is
 * one whole number (thousands commas allowed, no decimals or fractions); see answer.ts for extraction.
 */
import { type ExtractOptions, extractAnswer, lastNumberText, parseExactNumber } from './answer.js';
import { addColumns, compareDigits, multiplyByDigit, placeName, subtractColumns } from './column-math.js';
import { type Candidate, canonicalHash, generateInSplit, problemId, splitOfHash } from './split.js';
import type { TaskRng } from './rng.js';
import { type Difficulty, type Problem, type Task, type Verdict, type WorkedSolution, completionText, checkDifficulty } from './types.js';

export type ArithmeticOp = '+' | '-' | '*';
export interface ArithmeticData {
  /** Decimal strings (JSON has no BigInt). */
  a: string;
  b: string;
  op: ArithmeticOp;
}

const TASK = 'arithmetic';

/** Operands are digit strings without leading zeros. */
function canonicalOf(a: string, op: ArithmeticOp, b: string): string {
  if (op === '-') return `${a}-${b}`;
  const [x, y] = compareDigits(a, b) <= 0 ? [a, b] : [b, a];
  return `${x}${op}${y}`;
}

function exactValue(d: ArithmeticData): bigint {
  const a = BigInt(d.a);
  const b = BigInt(d.b);
  return d.op === '+' ? a + b : d.op === '-' ? a - b : a * b;
}

function candidate(a: string, op: ArithmeticOp, b: string): Candidate<ArithmeticData> {
  const data = { a, b, op };
  return { canonical: canonicalOf(a, op, b), prompt: `What is ${a} ${op} ${b}?`, answer: exactValue(data).toString(), data };
}

function draw(rng: TaskRng, difficulty: Difficulty): Candidate<ArithmeticData> {
  const op = rng.pick<ArithmeticOp>(['+', '-', '*']);
  const addDigits: Record<Difficulty, [number, number]> = { 1: [1, 2], 2: [3, 4], 3: [5, 8] };
  const mulDigits: Record<Difficulty, [[number, number], [number, number]]> = { 1: [[2, 2], [1, 1]], 2: [[3, 3], [2, 2]], 3: [[4, 6], [3, 4]] };
  if (op === '*') {
    const [[a0, a1], [b0, b1]] = mulDigits[difficulty];
    return candidate(rng.digits(rng.int(a0, a1)), op, rng.digits(rng.int(b0, b1)));
  }
  const [lo, hi] = addDigits[difficulty];
  return candidate(rng.digits(rng.int(lo, hi)), op, rng.digits(rng.int(lo, hi)));
}

function checkData(problem: Problem<ArithmeticData>): ArithmeticData {
  const d = problem.data;
  if (!d || !/^\d+$/.test(String(d.a)) || !/^\d+$/.test(String(d.b)) || !['+', '-', '*'].includes(d.op)) {
    throw new Error(`arithmetic problem ${problem.id}: data must be { a, b: digit strings, op: + - * }, got ${JSON.stringify(d)}`);
  }
  return d;
}

/** A problem from explicit operands (tests, hand-made evaluation sets); its split is the hash's. */
export function makeArithmeticProblem(a: string, op: ArithmeticOp, b: string, difficulty: Difficulty = 3): Problem<ArithmeticData> {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) throw new Error(`arithmetic: operands must be digit strings, got ${a} and ${b}`);
  const c = candidate(a.replace(/^0+(?=\d)/, ''), op, b.replace(/^0+(?=\d)/, ''));
  const hash = canonicalHash(TASK, c.canonical);
  return { id: problemId(TASK, hash), task: TASK, difficulty: checkDifficulty(TASK, difficulty), split: splitOfHash(hash), ...c };
}

export function verifyArithmetic(problem: Problem<ArithmeticData>, completion: string, options: ExtractOptions = {}): Verdict {
  const expected = exactValue(checkData(problem));
  const ex = extractAnswer(completion, options);
  if (!ex.ok) return { correct: false, reason: ex.reason };
  const text = ex.source === 'rest' ? lastNumberText(ex.text) : ex.text;
  if (text === null) return { correct: false, reason: 'no number after </think>' };
  const n = parseExactNumber(text);
  if (!n.ok) return { correct: false, parsedAnswer: text, reason: n.reason };
  const got = n.value.n;
  return got === expected
    ? { correct: true, parsedAnswer: got.toString(), reason: 'correct' }
    : { correct: false, parsedAnswer: got.toString(), reason: `expected ${expected}, got ${got}` };
}

export function arithmeticSolution(problem: Problem<ArithmeticData>): WorkedSolution {
  const { a, b, op } = checkData(problem);
  const lines: string[] = [];
  let answer: string;
  if (op === '+') {
    lines.push(`I need ${a} + ${b}. I add column by column from the right, carrying when a column reaches 10.`);
    const r = addColumns(a, b);
    lines.push(...r.steps);
    answer = r.result;
  } else if (op === '-') {
    const negative = compareDigits(a, b) < 0;
    const [x, y] = negative ? [b, a] : [a, b];
    lines.push(
      negative
        ? `I need ${a} - ${b}. ${b} is larger than ${a}, so the result is negative: I compute ${b} - ${a} and put a minus sign in front.`
        : `I need ${a} - ${b}. I subtract column by column from the right, borrowing when the top digit is too small.`,
    );
    const r = subtractColumns(x, y);
    lines.push(...r.steps);
    answer = negative && r.result !== '0' ? `-${r.result}` : r.result;
  } else {
    lines.push(`I need ${a} × ${b}. I multiply ${a} by each digit of ${b}, shift each partial product by its place, and add them.`);
    let total = '0';
    for (let i = 0; i < b.length; i++) {
      const digit = b.charCodeAt(b.length - 1 - i) - 48;
      const p = multiplyByDigit(a, digit);
      if (a.length <= 3) lines.push(`${placeName(i)} digit ${digit}: ${p.steps.join(' ')}`);
      const shifted = p.result === '0' ? '0' : p.result + '0'.repeat(i);
      lines.push(`${a} × ${digit} = ${p.result}${i > 0 ? `, shifted ${i} place${i > 1 ? 's' : ''}: ${shifted}` : ''}.`);
      if (i > 0) {
        const s = addColumns(total, shifted);
        lines.push(`Running total: ${total} + ${shifted} = ${s.result}.`);
        total = s.result;
      } else {
        total = shifted;
      }
    }
    answer = total;
  }
  lines.push(`So ${a} ${op === '*' ? '×' : op} ${b} = ${answer}.`);
  const thought = lines.join('\n');
  return { thought, answer, completion: completionText(thought, answer) };
}

export const arithmeticTask: Task<ArithmeticData> = {
  name: TASK,
  describe: {
    1: 'a + b and a - b with 1–2 digit numbers; 2-digit × 1-digit',
    2: 'a + b and a - b with 3–4 digit numbers; 3-digit × 2-digit',
    3: 'a + b and a - b with 5–8 digit numbers; 4–6 digit × 3–4 digit',
  },
  generate: (count, options) => generateInSplit(TASK, count, options, draw),
  verify: verifyArithmetic,
  solution: arithmeticSolution,
};
