/**
 * Prompt styles shared by the R1 stages, and the programmatic cold-start SFT set (spec §8.4
 * stage 1): the verifiable tasks' worked solutions rendered as R1 chat conversations
 * (user question → assistant `<think>\n…\n</think>\n\n<answer>…</answer>`), mixed over tasks and
 * difficulties, TRAIN split only.
 *
 * Prompt styles (what the model sees, and what part of the completion it produces):
 *   'r1-chat'  the R1 chat template; the prompt ends in `<｜Assistant｜><think>\n`, the model writes
 *              the reasoning, `</think>`, the answer and EOS (score with prefilledThink).
 *   'r1-zero'  the plain-text R1-Zero frame for a base model (spec §8.1); the model writes
 *              ` <think> … </think> <answer> … </answer>`; generation stops at `</answer>`.
 *   'plain'    `{question}\n<think>\n` — a short form for tiny test models (prefilledThink).
 */
import { r1ChatMessages, r1ChatPrompt, r1ZeroPrompt } from './tasks/prompt.js';
import { rephraseShare } from './tasks/phrasing.js';
import { getTask } from './tasks/registry.js';
import { TaskRng } from './tasks/rng.js';
import { DIFFICULTIES, type Difficulty, type Problem } from './tasks/types.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';

export type PromptStyle = 'r1-chat' | 'r1-zero' | 'plain';
export const PROMPT_STYLES: readonly PromptStyle[] = ['r1-chat', 'r1-zero', 'plain'];

export function checkPromptStyle(value: unknown, where: string): PromptStyle {
  if (typeof value !== 'string' || !(PROMPT_STYLES as readonly string[]).includes(value)) {
    throw new Error(`${where}: prompt style must be one of ${PROMPT_STYLES.join(', ')}, found ${JSON.stringify(value)}`);
  }
  return value as PromptStyle;
}

/** The prompt text for a question in a style. */
export function promptText(question: string, style: PromptStyle): string {
  if (style === 'r1-chat') return r1ChatPrompt(question);
  if (style === 'r1-zero') return r1ZeroPrompt(question);
  return `${question.trim()}\n<think>\n`;
}

/** Whether the prompt already opened `<think>` (scoreCompletion's prefilledThink). */
export function prefilledThink(style: PromptStyle): boolean {
  return style !== 'r1-zero';
}

/** Text at which sampling stops besides EOS (base models never learned EOS after the answer). */
export function stopTextOf(style: PromptStyle): string | undefined {
  return style === 'r1-zero' ? '</answer>' : undefined;
}

/**
 * The completion text the model must produce for a full `<think>\n…</think>…` response in a
 * style: the prefilled `<think>\n` is cut for the prefilled styles; r1-zero gets a leading space.
 */
export function completionForStyle(fullResponse: string, style: PromptStyle): string {
  if (style === 'r1-zero') return ` ${fullResponse}`;
  const prefix = '<think>\n';
  return fullResponse.startsWith(prefix) ? fullResponse.slice(prefix.length) : fullResponse;
}

export interface ChatExample {
  messages: ChatMessage[];
  /** Provenance (task, problem id), not used by training. */
  meta?: Record<string, unknown>;
}

export interface ColdStartOptions {
  tasks: readonly string[];
  difficulties?: readonly Difficulty[];
  /** Examples in total, spread evenly over (task, difficulty) pairs, interleaved. */
  count: number;
  seed: number;
  /** The share of examples (0..1, default 0) whose question is worded another way (tasks/phrasing.ts). */
  rephrased?: number;
}

/** The cold-start set: chat examples from worked solutions (train split), interleaved over tasks × difficulties. */
export function coldStartExamples(options: ColdStartOptions): ChatExample[] {
  if (options.tasks.length === 0) throw new Error('cold start: no tasks given');
  if (!Number.isInteger(options.count) || options.count < 1) throw new Error(`cold start: count ${options.count} must be a positive integer`);
  const difficulties = options.difficulties ?? DIFFICULTIES;
  const cells = options.tasks.flatMap((task) => difficulties.map((difficulty) => ({ task: getTask(task), difficulty })));
  const per = Math.ceil(options.count / cells.length);
  const lists = cells.map(({ task, difficulty }, i) => task.generate(per, { seed: options.seed * 131 + i, difficulty, split: 'train' }) as Problem[]);
  const wording = new TaskRng(options.seed, 'cold-start/rephrase');
  const share = options.rephrased ?? 0;
  const out: ChatExample[] = [];
  for (let j = 0; j < per && out.length < options.count; j++) {
    for (let c = 0; c < cells.length && out.length < options.count; c++) {
      const problem = lists[c]![j];
      if (!problem) continue;
      const asked = rephraseShare(problem, wording, share);
      out.push(chatExampleOf(asked, cells[c]!.task.solution(problem).completion));
    }
  }
  return out;
}

/** One R1 chat example: the user message as the R1 prompt builder writes it, the assistant's full response. */
export function chatExampleOf(problem: Problem, response: string): ChatExample {
  return {
    messages: [...r1ChatMessages(problem.prompt), { role: 'assistant', content: response }],
    meta: { task: problem.task, id: problem.id, difficulty: problem.difficulty },
  };
}
