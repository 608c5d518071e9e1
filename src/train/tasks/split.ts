/**
 * Disjoint train / validation / test splits by construction: a problem's split is a pure function
 * of its task name and canonical form (a 64-bit hash of `task:canonical`, see canonicalHash; its
 * first 32 bits as a fraction: < 0.8 train, < 0.9 validation, else test). Generators draw candidates and keep only those whose
 * hash lands in the requested split, so the same problem can never be in two splits, whatever the
 * seeds and counts. Each task chooses a canonical form that identifies problems sharing an answer
 * (e.g. 3 + 5 and 5 + 3 are one problem; a word list is identified by its sorted words).
 */
import type { Difficulty, GenerateOptions, Problem, Split } from './types.js';
import { SPLITS, checkDifficulty } from './types.js';
import { TaskRng } from './rng.js';

export const SPLIT_FRACTIONS: Readonly<Record<Split, number>> = { train: 0.8, validation: 0.1, test: 0.1 };

/**
 * 16 hex digits: two 32-bit multiply-xorshift lanes over the UTF-16 code units, each finished with
 * a murmur3-style avalanche (~20x faster than SHA-256 through node:crypto for these short keys;
 * the split only needs well-spread bits, not cryptographic strength). Never change it: it decides
 * which problems are test problems.
 */
export function canonicalHash(task: string, canonical: string): string {
  const key = `${task}:${canonical}`;
  let h1 = 0x811c9dc5 ^ key.length;
  let h2 = 0x27d4eb2f;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  const fmix = (h: number): number => {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  const a = fmix(h1 ^ Math.imul(h2, 0x9e3779b1));
  const b = fmix(h2 ^ a);
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
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
  const elsewhere = new Set<string>();
  const out: Problem<D>[] = [];
  // Give up after this many draws in a row that add nothing (the space is exhausted or nearly).
  const patience = 5000;
  let idle = 0;
  for (let attempt = 1; out.length < count; attempt++) {
    if (idle >= patience) {
      throw new Error(`${task}: found only ${out.length} of ${count} distinct ${options.split} problems at difficulty ${difficulty} after ${attempt - 1} draws (problem space too small)`);
    }
    idle++;
    const c = draw(rng, difficulty);
    if (c === null || seen.has(c.canonical) || elsewhere.has(c.canonical)) continue;
    const hash = canonicalHash(task, c.canonical);
    if (splitOfHash(hash) !== options.split) {
      elsewhere.add(c.canonical);
      continue;
    }
    seen.add(c.canonical);
    idle = 0;
    out.push({ id: problemId(task, hash), task, difficulty, split: options.split, prompt: c.prompt, answer: c.answer, data: c.data });
  }
  return out;
}
