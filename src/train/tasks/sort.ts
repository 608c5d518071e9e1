/**
 * Sorting words alphabetically (a non-numeric task). Levels: 1 = 3–4 words with different first
 * letters; 2 = 5–7 words; 3 = 8–12 words, about half sharing a two-letter prefix (car, card,
 * care, cart…). Words are distinct, lowercase ASCII; alphabetical = letter by letter, a prefix
 * before its extensions. Canonical form: the sorted list (so two orders of the same words are one
 * problem); canonical answer: "apple, fig, pear".
 *
 * Verification: exact match of the word sequence, case-sensitive, after normalizing separators:
 * the answer text is split on commas and whitespace (empty pieces dropped), surrounding [ ] and
 * quotes around each word are removed, a trailing period is dropped. Without tags or an Answer:
 * line, the last non-empty line after </think> is read.
 */
import { type ExtractOptions, extractAnswer, normalizeAnswerText } from './answer.js';
import { type Candidate, canonicalHash, generateInSplit, problemId, splitOfHash } from './split.js';
import type { TaskRng } from './rng.js';
import { type Difficulty, type Problem, type Task, type Verdict, type WorkedSolution, completionText, checkDifficulty } from './types.js';
import { WORDS } from './words.js';

export interface SortData {
  words: string[];
}

const TASK = 'sort';

export const alphabetical = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

function candidate(words: string[]): Candidate<SortData> {
  const sorted = [...words].sort(alphabetical);
  return { canonical: sorted.join(','), prompt: `Sort these words alphabetically and list them separated by commas: ${words.join(', ')}`, answer: sorted.join(', '), data: { words } };
}

const byPrefix = new Map<string, string[]>();
for (const w of WORDS) {
  const key = w.slice(0, 2);
  byPrefix.set(key, [...(byPrefix.get(key) ?? []), w]);
}
const richPrefixes = [...byPrefix.entries()].filter(([, ws]) => ws.length >= 5).map(([k]) => k);

function draw(rng: TaskRng, difficulty: Difficulty): Candidate<SortData> {
  const chosen = new Set<string>();
  if (difficulty === 1) {
    const n = rng.int(3, 4);
    const letters = new Set<string>();
    while (chosen.size < n) {
      const w = rng.pick(WORDS);
      if (letters.has(w[0]!)) continue;
      letters.add(w[0]!);
      chosen.add(w);
    }
  } else if (difficulty === 2) {
    const n = rng.int(5, 7);
    while (chosen.size < n) chosen.add(rng.pick(WORDS));
  } else {
    const n = rng.int(8, 12);
    const family = byPrefix.get(rng.pick(richPrefixes))!;
    const fromFamily = Math.min(family.length, Math.ceil(n / 2));
    for (const w of rng.shuffle(family).slice(0, fromFamily)) chosen.add(w);
    while (chosen.size < n) chosen.add(rng.pick(WORDS));
  }
  return candidate(rng.shuffle([...chosen]));
}

function checkData(problem: Problem<SortData>): SortData {
  const d = problem.data;
  if (!d || !Array.isArray(d.words) || d.words.length === 0 || !d.words.every((w) => typeof w === 'string' && /^\S+$/.test(w) && !w.includes(','))) {
    throw new Error(`sort problem ${problem.id}: data must be { words: non-empty list of words without spaces or commas }, got ${JSON.stringify(d)}`);
  }
  return d;
}

export function makeSortProblem(words: string[], difficulty: Difficulty = 2): Problem<SortData> {
  const c = candidate(words);
  const hash = canonicalHash(TASK, c.canonical);
  const p = { id: problemId(TASK, hash), task: TASK, difficulty: checkDifficulty(TASK, difficulty), split: splitOfHash(hash), ...c };
  checkData(p);
  return p;
}

/** The words of an answer text, per the header's separator rules. */
export function answerWords(text: string): string[] {
  let s = normalizeAnswerText(text);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  return s
    .split(/[,\s]+/)
    .map((w) => w.replace(/^["'“‘`]+|["'”’`]+$/g, ''))
    .filter((w) => w !== '');
}

export function verifySort(problem: Problem<SortData>, completion: string, options: ExtractOptions = {}): Verdict {
  const { words } = checkData(problem);
  const expected = [...words].sort(alphabetical);
  const ex = extractAnswer(completion, options);
  if (!ex.ok) return { correct: false, reason: ex.reason };
  let text = ex.text;
  if (ex.source === 'rest') {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    text = lines[lines.length - 1] ?? '';
  }
  const got = answerWords(text);
  const parsedAnswer = got.join(', ');
  if (got.length !== expected.length) return { correct: false, parsedAnswer, reason: `${got.length} words, expected ${expected.length}` };
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== expected[i]) return { correct: false, parsedAnswer, reason: `word ${i + 1} is ${JSON.stringify(got[i])}, expected ${JSON.stringify(expected[i])}` };
  }
  return { correct: true, parsedAnswer, reason: 'correct' };
}

function whyBefore(x: string, y: string): string {
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  if (i === x.length) return `${x} comes before ${y} because ${x} is the start of ${y}`;
  return `${x} comes before ${y} because at letter ${i + 1}, ${x[i]} comes before ${y[i]}`;
}

export function sortSolution(problem: Problem<SortData>): WorkedSolution {
  const { words } = checkData(problem);
  const lines = [`The words are ${words.join(', ')}. I order them by first letter, then look closer where first letters repeat.`];
  const groups = new Map<string, string[]>();
  for (const w of words) groups.set(w[0]!, [...(groups.get(w[0]!) ?? []), w]);
  const letters = [...groups.keys()].sort(alphabetical);
  lines.push(`First letters in order: ${letters.join(', ')}.`);
  const out: string[] = [];
  for (const letter of letters) {
    const group = groups.get(letter)!;
    // Insertion sort, narrated by the comparison that places each word.
    const sorted: string[] = [];
    for (const w of group) {
      let at = sorted.length;
      while (at > 0 && alphabetical(w, sorted[at - 1]!) < 0) at--;
      sorted.splice(at, 0, w);
    }
    if (sorted.length > 1) {
      lines.push(`Words starting with ${letter}: ${group.join(', ')}.`);
      for (let i = 0; i + 1 < sorted.length; i++) lines.push(`${whyBefore(sorted[i]!, sorted[i + 1]!)}.`);
    }
    out.push(...sorted);
  }
  const answer = out.join(', ');
  lines.push(`So the order is: ${answer}.`);
  const thought = lines.join('\n');
  return { thought, answer, completion: completionText(thought, answer) };
}

export const sortTask: Task<SortData> = {
  name: TASK,
  describe: {
    1: '3–4 words with different first letters',
    2: '5–7 words',
    3: '8–12 words, about half sharing a two-letter prefix',
  },
  generate: (count, options) => generateInSplit(TASK, count, options, draw),
  verify: verifySort,
  solution: sortSolution,
};
