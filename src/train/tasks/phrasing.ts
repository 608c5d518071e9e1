/**
 * Other ways a person asks the same question. Each generator writes its prompts one way ("What is
 * 42 - 61?"), and a small model trained only on that wording takes "42-61" or "what's 12 + 7" for
 * another task. The cold-start SFT and GRPO stages of the recipe give part of their questions in
 * one of the wordings below (`rephrase`), so the chat model learns to read the question, and
 * `frugal eval --rephrase` measures how well it does. The wordings are built from the problem's
 * data, never from its prompt text, and keep every number and word the answer depends on. The
 * worked solution and the verifier do not change: the thought still restates the problem in the
 * canonical form.
 */
import type { ArithmeticData } from './arithmetic.js';
import type { CountdownData } from './countdown.js';
import type { LinearData } from './linear.js';
import type { TaskRng } from './rng.js';
import type { SortData } from './sort.js';
import type { Problem } from './types.js';

type Wording<D> = (data: D, rng: TaskRng) => string;

const OPERATOR_SYMBOLS: Record<ArithmeticData['op'], readonly string[]> = { '+': ['+'], '-': ['-'], '*': ['*', 'x', '×'] };
const OPERATOR_WORDS: Record<ArithmeticData['op'], readonly string[]> = { '+': ['plus'], '-': ['minus'], '*': ['times', 'multiplied by'] };

const ARITHMETIC: readonly Wording<ArithmeticData>[] = [
  (d, r) => `What is ${d.a}${r.pick(OPERATOR_SYMBOLS[d.op])}${d.b}?`,
  (d, r) => `${d.a} ${r.pick(OPERATOR_SYMBOLS[d.op])} ${d.b} = ?`,
  (d, r) => `${d.a}${r.pick(OPERATOR_SYMBOLS[d.op])}${d.b}=`,
  (d, r) => `${d.a} ${r.pick(OPERATOR_SYMBOLS[d.op])} ${d.b}`,
  (d, r) => `Compute ${d.a} ${r.pick(OPERATOR_SYMBOLS[d.op])} ${d.b}.`,
  (d, r) => `Calculate ${d.a}${r.pick(OPERATOR_SYMBOLS[d.op])}${d.b}`,
  (d, r) => `what's ${d.a} ${r.pick(OPERATOR_SYMBOLS[d.op])} ${d.b}`,
  (d, r) => `what is ${d.a} ${r.pick(OPERATOR_SYMBOLS[d.op])} ${d.b}`,
  (d, r) => `What is ${d.a} ${r.pick(OPERATOR_WORDS[d.op])} ${d.b}?`,
  (d, r) => `How much is ${d.a} ${r.pick(OPERATOR_WORDS[d.op])} ${d.b}?`,
];

const withoutSpaces = (equation: string): string => equation.replace(/ /g, '');

const LINEAR: readonly Wording<LinearData>[] = [
  (d) => `Solve ${d.equation}`,
  (d) => `Solve ${withoutSpaces(d.equation)}`,
  (d) => `solve for x: ${withoutSpaces(d.equation)}`,
  (d) => `Find x if ${d.equation}.`,
  (d) => `${d.equation}, x = ?`,
  (d) => `${withoutSpaces(d.equation)}. What is x?`,
  (d) => `What value of x satisfies ${d.equation}?`,
  (d) => `x = ? when ${withoutSpaces(d.equation)}`,
];

const numberList = (numbers: readonly number[], rng: TaskRng): string =>
  rng.pick([`[${numbers.join(', ')}]`, numbers.join(', '), numbers.join(' '), `${numbers.slice(0, -1).join(', ')} and ${numbers[numbers.length - 1]}`]);

const COUNTDOWN: readonly Wording<CountdownData>[] = [
  (d, r) => `Make ${d.target} from ${numberList(d.numbers, r)} using + - * /.`,
  (d, r) => `Use ${numberList(d.numbers, r)} to reach ${d.target}.`,
  (d, r) => `Countdown: numbers ${numberList(d.numbers, r)}, target ${d.target}.`,
  (d, r) => `Reach ${d.target} with ${numberList(d.numbers, r)}, each number at most once.`,
  (d, r) => `Write an expression with ${numberList(d.numbers, r)} that equals ${d.target}.`,
  (d, r) => `numbers: ${numberList(d.numbers, r)} target: ${d.target}`,
  (d, r) => `How can I get ${d.target} from ${numberList(d.numbers, r)}?`,
];

const wordList = (words: readonly string[], rng: TaskRng): string => rng.pick([words.join(', '), words.join(' '), words.join(',')]);

const SORT: readonly Wording<SortData>[] = [
  (d, r) => `Sort alphabetically: ${wordList(d.words, r)}`,
  (d, r) => `Put these words in alphabetical order: ${wordList(d.words, r)}`,
  (d, r) => `Alphabetize: ${wordList(d.words, r)}`,
  (d, r) => `sort ${wordList(d.words, r)}`,
  (d, r) => `Sort these words: ${wordList(d.words, r)}`,
  (d, r) => `Order these words alphabetically, separated by commas: ${wordList(d.words, r)}`,
];

const WORDINGS: Record<string, readonly Wording<never>[]> = { arithmetic: ARITHMETIC, linear: LINEAR, countdown: COUNTDOWN, sort: SORT };

/** How many wordings `rephrase` has for a task (0: none, the prompt stays). */
export function wordingCount(task: string): number {
  return WORDINGS[task]?.length ?? 0;
}

/** With probability `share` (0..1; rng not drawn from when 0) the problem asked another way, else the problem as it is. */
export function rephraseShare<D>(problem: Problem<D>, rng: TaskRng, share: number): Problem<D> {
  return share > 0 && rng.float() < share ? rephrase(problem, rng) : problem;
}

/**
 * The problem asked another way, picked by rng (a task without wordings keeps its prompt). The
 * problem is unchanged apart from `prompt`.
 */
export function rephrase<D>(problem: Problem<D>, rng: TaskRng): Problem<D> {
  const wordings = WORDINGS[problem.task] as readonly Wording<D>[] | undefined;
  if (!wordings || wordings.length === 0) return problem;
  return { ...problem, prompt: rng.pick(wordings)(problem.data, rng) };
}
