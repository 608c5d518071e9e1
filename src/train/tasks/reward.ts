/**
 * R1-Zero rule rewards (spec §8.2): an accuracy reward (1 when the task's verifier says correct,
 * else 0) and a format reward (1 when the completion is one well-formed `<think>…</think>`
 * followed by a non-empty answer, else 0), returned separately and combined as
 * `weights.accuracy * accuracy + weights.format * format` (default 1 and 1: Nature eq. 4).
 *
 * Format rules: leading whitespace allowed, then `<think>`; exactly one `<think>` and one
 * `</think>` in the whole text (nested or repeated tags fail); non-blank reasoning between them;
 * non-blank text after `</think>`. With `requireAnswerTag`, that text must be exactly one
 * `<answer>…</answer>` with non-blank content (surrounding whitespace allowed). With
 * `prefilledThink` (the prompt already ends in `<think>`, as the R1 chat template and a
 * prefilled R1-Zero prompt do), the completion is judged as if `<think>` preceded it.
 */
import { verifyProblem } from './registry.js';
import type { Problem, Verdict } from './types.js';

export interface FormatOptions {
  prefilledThink?: boolean;
  requireAnswerTag?: boolean;
}

export interface RewardWeights {
  accuracy: number;
  format: number;
}

export interface RewardOptions extends FormatOptions {
  weights?: RewardWeights;
}

export interface RewardResult {
  accuracy: 0 | 1;
  format: 0 | 1;
  score: number;
  verdict: Verdict;
  formatReason: string;
}

export const DEFAULT_REWARD_WEIGHTS: Readonly<RewardWeights> = { accuracy: 1, format: 1 };

const count = (text: string, tag: string): number => text.split(tag).length - 1;

export function withPrefill(completion: string, options: FormatOptions): string {
  return options.prefilledThink ? `<think>${completion}` : completion;
}

/** '' when the format is right, else why not. */
export function formatProblem(completion: string, options: FormatOptions = {}): string {
  const text = withPrefill(completion, options);
  const opens = count(text, '<think>');
  const closes = count(text, '</think>');
  if (opens !== 1) return opens === 0 ? 'no <think>' : `${opens} <think> tags`;
  if (closes !== 1) return closes === 0 ? 'no </think>' : `${closes} </think> tags`;
  if (!text.trimStart().startsWith('<think>')) return 'text before <think>';
  // Starting with the only <think>, the only </think> necessarily comes after it.
  const close = text.indexOf('</think>');
  const open = text.indexOf('<think>');
  if (text.slice(open + '<think>'.length, close).trim() === '') return 'empty reasoning';
  const after = text.slice(close + '</think>'.length).trim();
  if (after === '') return 'no answer after </think>';
  if (options.requireAnswerTag) {
    if (count(after, '<answer>') !== 1 || count(after, '</answer>') !== 1) return 'the answer must be one <answer>…</answer>';
    if (!after.startsWith('<answer>') || !after.endsWith('</answer>')) return 'text outside <answer>…</answer>';
    if (after.slice('<answer>'.length, -'</answer>'.length).trim() === '') return 'empty <answer>';
  }
  return '';
}

export function formatReward(completion: string, options: FormatOptions = {}): 0 | 1 {
  return formatProblem(completion, options) === '' ? 1 : 0;
}

export function accuracyReward(problem: Problem, completion: string, options: FormatOptions = {}): 0 | 1 {
  return verifyProblem(problem, withPrefill(completion, options)).correct ? 1 : 0;
}

export function scoreCompletion(problem: Problem, completion: string, options: RewardOptions = {}): RewardResult {
  const weights = options.weights ?? DEFAULT_REWARD_WEIGHTS;
  if (!Number.isFinite(weights.accuracy) || !Number.isFinite(weights.format)) {
    throw new Error(`reward weights must be finite numbers, got ${JSON.stringify(weights)}`);
  }
  const verdict = verifyProblem(problem, withPrefill(completion, options));
  const formatReason = formatProblem(completion, options);
  const accuracy = verdict.correct ? 1 : 0;
  const format = formatReason === '' ? 1 : 0;
  return { accuracy, format, score: weights.accuracy * accuracy + weights.format * format, verdict, formatReason: formatReason || 'well-formed' };
}
