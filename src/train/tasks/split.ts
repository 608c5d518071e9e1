/**
 * Disjoint train / validation / test splits by construction: a problem's split is a pure function
 * of its task name and canonical form (SHA-256 of `task:canonical`, first 32 bits as a fraction:
 * < 0.8 train, < 0.9 validation, else test). Generators draw candidates and keep only those whose
 * hash lands in the requested split, so the same problem can never be in two splits, whatever the
 * seeds and counts. Each task chooses a canonical form that identifies problems sharing an answer
 * (e.g. 3 + 5 and 5 + 3 are one problem; a word list is identified by its sorted words).
 */
import { createHash } from 'node:crypto';
import type { Difficulty, GenerateOptions, Problem, Split } from './types.js';
import { SPLITS, checkDifficulty } from './types.js';
import { TaskRng } from './rng.js';

export const SPLIT_FRACTIONS: Readonly<Record<Split, number>> = { train: 0.8, validation: 0.1, test: 0.1 };

export function canonicalHash(task: string, canonical: string): string {
  return createHash('sha256').update(`${task}:${canonical}`).digest('hex');
}

export function splitOfHash(hash: string): Split {
  const u = parseInt(hash.slice(0, 8), 16) / 4294967296;
  if (u < SPLIT_FRACTIONS.train) return 'train';
  if (u < SPLIT_FRACTIONS.train + SPLIT_FRACTIONS.validation) return 'validation';
  return 'test';
}

export function splitOf(task: string, canonical: string): Split {
  return splitOfHash(canonicalHash(task, canonical));
}

export function problemId(task: string, hash: string): string {
  return `${task}-${hash.slice(0, 12)}`;
}

/** What a generator's candidate step returns: everything of a problem but its id and split. */
export interface Candidate<D> {
  canonical: string;
  prompt: string;
  answer: string;
  data: D;
}

/**
 * Draws candidates until `count` distinct ones land in `options.split`. Deterministic in
 * (seed, difficulty, split); a shorter run is a prefix of a longer one. Throws when the
 * problem space at this difficulty is too small for the count.
 */
export function generateInSplit<D>(
  task: string,
  count: number,
  options: GenerateOptions,
  draw: (rng: TaskRng, difficulty: Difficulty) => Candidate<D> | null,
): Problem<D>[] {
  if (!Number.isInteger(count) || count < 0) throw new Error(`${task}: count must be a non-negative integer, got ${count}`);
  const difficulty = checkDifficulty(task, options?.difficulty);
  if (!SPLITS.includes(options.split)) throw new Error(`${task}: split must be train, validation or test, got ${JSON.stringify(options.split)}`);
  const rng = new TaskRng(options.seed, `${task}/${difficulty}/${options.split}`);
  const seen = new Set<string>();
  const out: Problem<D>[] = [];
  const maxAttempts = 1000 + 200 * count;
  for (let attempt = 0; out.length < count; attempt++) {
    if (attempt >= maxAttempts) {
      throw new Error(`${task}: found only ${out.length} of ${count} distinct ${options.split} problems at difficulty ${difficulty} after ${attempt} draws (problem space too small)`);
    }
    const c = draw(rng, difficulty);
    if (c === null || seen.has(c.canonical)) continue;
    const hash = canonicalHash(task, c.canonical);
    if (splitOfHash(hash) !== options.split) continue;
    seen.add(c.canonical);
    out.push({ id: problemId(task, hash), task, difficulty, split: options.split, prompt: c.prompt, answer: c.answer, data: c.data });
  }
  return out;
}
