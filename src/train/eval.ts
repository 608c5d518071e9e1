/**
 * Evaluation on a task's TEST split, as R1 reports it (spec §6.5, §8.4 usage): pass@1 averaged
 * over k samples per problem at temperature 0.6 and top-p 0.95 (the fraction of the k samples that
 * verify, averaged over problems), pass@k (the share of problems that at least one of the k samples
 * solves: what sharpening by RL could reach at most without learning more), greedy accuracy (temperature 0), the format rate (well-formed
 * `<think>…</think>` + answer, over the k samples) and the mean response length in tokens (k samples).
 */
import type { Problem } from './tasks/types.js';
import { scoreCompletion } from './tasks/reward.js';
import { type PromptStyle, prefilledThink, promptText, stopTextOf } from './cold-start.js';
import { type Codec, type Policy, completeAll, streamRng } from './rollout.js';

export interface EvalOptions {
  style: PromptStyle;
  /** k samples per problem for pass@1 (0: skip sampling). */
  samples: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Also decode greedily. */
  greedy: boolean;
  seed: number;
}

export const R1_EVAL_DEFAULTS: Omit<EvalOptions, 'style' | 'maxTokens'> = { samples: 4, temperature: 0.6, topP: 0.95, greedy: true, seed: 0 };

export interface ProblemResult {
  id: string;
  /** The question as asked (the generator's wording, or another with `frugal eval --rephrase`). */
  prompt: string;
  /** Fraction of the k samples that verified. */
  pass1: number;
  greedyCorrect: boolean | null;
  formatRate: number;
  meanLength: number;
}

export interface EvalReport {
  task: string;
  problems: number;
  samples: number;
  /** Mean over problems of the per-problem pass@1 (null when samples = 0). */
  pass1: number | null;
  /** Share of problems with at least one verified sample among the k (null when samples = 0). */
  passAtK: number | null;
  greedyAccuracy: number | null;
  /** Over sampled completions (greedy ones when samples = 0). */
  formatRate: number;
  meanResponseLength: number;
  temperature: number;
  topP: number;
  perProblem: ProblemResult[];
}

export function evaluate(policy: Policy, codec: Codec, problems: readonly Problem[], o: EvalOptions): EvalReport {
  if (problems.length === 0) throw new Error('eval: no problems');
  if (!Number.isInteger(o.samples) || o.samples < 0) throw new Error(`eval: samples ${o.samples} must be an integer >= 0`);
  if (o.samples === 0 && !o.greedy) throw new Error('eval: nothing to do (samples 0 and no greedy decoding)');
  const prefilled = prefilledThink(o.style);
  const stopText = stopTextOf(o.style);
  const stop = stopText ? { stopText } : {};
  const prompts = problems.map((problem) => codec.encode(promptText(problem.prompt, o.style)));
  // every problem's k samples in one batch (problem after problem), then every greedy decode
  const sampledPrompts = prompts.flatMap((prompt) => Array.from({ length: o.samples }, () => prompt));
  const sampledRngs = prompts.flatMap((_, p) => Array.from({ length: o.samples }, (__, k) => streamRng(o.seed, p, k)));
  const sampled = completeAll(policy, sampledPrompts, { temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens, ...stop }, sampledRngs);
  const greedy = o.greedy ? completeAll(policy, prompts, { temperature: 0, topP: 1, maxTokens: o.maxTokens, ...stop }, prompts.map((_, p) => streamRng(o.seed, p, -1))) : [];
  const perProblem: ProblemResult[] = problems.map((problem, p) => {
    let correct = 0;
    let formatted = 0;
    let length = 0;
    for (let k = 0; k < o.samples; k++) {
      const c = sampled[p * o.samples + k]!;
      const s = scoreCompletion(problem, c.text, { prefilledThink: prefilled });
      correct += s.accuracy;
      formatted += s.format;
      length += c.tokens.length;
    }
    let greedyCorrect: boolean | null = null;
    if (o.greedy) {
      const c = greedy[p]!;
      const s = scoreCompletion(problem, c.text, { prefilledThink: prefilled });
      greedyCorrect = s.accuracy === 1;
      if (o.samples === 0) {
        formatted = s.format;
        length = c.tokens.length;
      }
    }
    const n = Math.max(1, o.samples);
    return { id: problem.id, prompt: problem.prompt, pass1: o.samples === 0 ? NaN : correct / o.samples, greedyCorrect, formatRate: formatted / n, meanLength: length / n };
  });
  const mean = (f: (r: ProblemResult) => number) => perProblem.reduce((a, r) => a + f(r), 0) / perProblem.length;
  return {
    task: [...new Set(problems.map((p) => p.task))].join(','), problems: problems.length, samples: o.samples,
    pass1: o.samples === 0 ? null : mean((r) => r.pass1),
    passAtK: o.samples === 0 ? null : mean((r) => (r.pass1 > 0 ? 1 : 0)),
    greedyAccuracy: o.greedy ? mean((r) => (r.greedyCorrect ? 1 : 0)) : null,
    formatRate: mean((r) => r.formatRate), meanResponseLength: mean((r) => r.meanLength),
    temperature: o.temperature, topP: o.topP, perProblem,
  };
}

/** A small text table of reports. */
export function formatEvalTable(reports: readonly (EvalReport & { difficulty?: number })[]): string {
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
  const header = ['task', 'level', 'problems', 'k', 'pass@1', 'pass@k', 'greedy', 'format', 'mean len'];
  const rows = reports.map((r) => [r.task, String(r.difficulty ?? '-'), String(r.problems), String(r.samples), pct(r.pass1), pct(r.passAtK), pct(r.greedyAccuracy), pct(r.formatRate), r.meanResponseLength.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
