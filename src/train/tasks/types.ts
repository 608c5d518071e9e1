/**
 * Shared shapes of the verifiable tasks (R1-Zero style RL and cold-start SFT data): a problem
 * with a canonical answer, a strict verifier and a worked solution. Problems are plain JSON
 * (no BigInt inside `data`), so a dataset can be written to JSONL and read back.
 */

export type Split = 'train' | 'validation' | 'test';
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

/** 1 = easy, 2 = medium, 3 = hard; each task documents what a level means. */
export type Difficulty = 1 | 2 | 3;
export const DIFFICULTIES: readonly Difficulty[] = [1, 2, 3];

export interface Problem<D = unknown> {
  /** `<task>-<12 hex digits of the canonical-form hash>`: the same problem always has the same id. */
  id: string;
  task: string;
  difficulty: Difficulty;
  split: Split;
  /** The user question text (no template, no format instructions beyond what the task needs). */
  prompt: string;
  /** The canonical answer; `verify(problem, '<think>…</think><answer>' + answer + '</answer>')` is correct. */
  answer: string;
  data: D;
}

export interface GenerateOptions {
  /** Any finite number; the same seed, difficulty and split give the same problems. */
  seed: number;
  difficulty: Difficulty;
  split: Split;
}

export interface Verdict {
  correct: boolean;
  /** The answer text the verifier judged (after extraction and normalization), when one was found. */
  parsedAnswer?: string;
  /** Why it is correct or wrong, in words (e.g. "no </think>", "uses 7 twice", "division by zero"). */
  reason: string;
}

/** A worked solution for cold-start SFT: a short plain-language thought and the answer it reaches. */
export interface WorkedSolution {
  thought: string;
  answer: string;
  /** `<think>\n{thought}\n</think>\n\n<answer>{answer}</answer>`. */
  completion: string;
}

export interface Task<D = unknown> {
  name: string;
  /** One line per difficulty level, for help texts and reports. */
  describe: Record<Difficulty, string>;
  generate(count: number, options: GenerateOptions): Problem<D>[];
  /**
   * Never throws for any completion text; throws a clear Error only for a malformed problem.
   * `options.requireThink: false` reads completions without `</think>` whole (non-reasoning evaluation).
   */
  verify(problem: Problem<D>, completion: string, options?: { requireThink?: boolean }): Verdict;
  solution(problem: Problem<D>): WorkedSolution;
}

export function completionText(thought: string, answer: string): string {
  return `<think>\n${thought}\n</think>\n\n<answer>${answer}</answer>`;
}

export function checkDifficulty(task: string, difficulty: unknown): Difficulty {
  if (difficulty !== 1 && difficulty !== 2 && difficulty !== 3) {
    throw new Error(`${task}: difficulty must be 1, 2 or 3, got ${JSON.stringify(difficulty)}`);
  }
  return difficulty;
}
