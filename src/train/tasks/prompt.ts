/**
 * Prompt builders. The R1-Zero template follows the structure of spec §8.1 in our own words: a
 * plain-text frame (no chat tokens) for a base model, ending in `User: {question} Assistant:`.
 * The R1 chat form is one user message rendered with the R1 chat template, which ends with
 * `<｜Assistant｜><think>\n`: the model continues inside the reasoning (score such completions
 * with `prefilledThink: true`).
 */
import { type ChatMessage, renderR1Chat } from '../../tokenizer/chat-template.js';

export const R1_ZERO_FRAME =
  'This is a dialogue between a User and an Assistant. The User poses a problem and the Assistant works it out. ' +
  'The Assistant first reasons about the problem privately and only then states the answer. ' +
  'The reasoning goes between <think> and </think> and the answer between <answer> and </answer>, ' +
  'like this: <think> reasoning here </think> <answer> answer here </answer>.';

export interface R1ZeroPromptOptions {
  /** Append ` <think>` after `Assistant:` so generation starts inside the reasoning. */
  prefillThink?: boolean;
}

export function r1ZeroPrompt(question: string, options: R1ZeroPromptOptions = {}): string {
  const q = question.trim();
  if (q === '') throw new Error('r1ZeroPrompt: empty question');
  const ended = /[.?!:]$/.test(q) ? q : `${q}.`;
  return `${R1_ZERO_FRAME} User: ${ended} Assistant:${options.prefillThink ? ' <think>' : ''}`;
}

export const R1_CHAT_INSTRUCTION = 'Think it through step by step, then give only the final answer between <answer> and </answer>.';

export interface R1ChatOptions {
  /** Appended to the question on its own line; '' for none. Default R1_CHAT_INSTRUCTION. */
  instruction?: string;
}

/** One user message, no system prompt (R1 usage recommendation). */
export function r1ChatMessages(question: string, options: R1ChatOptions = {}): ChatMessage[] {
  const q = question.trim();
  if (q === '') throw new Error('r1ChatMessages: empty question');
  const instruction = options.instruction ?? R1_CHAT_INSTRUCTION;
  return [{ role: 'user', content: instruction === '' ? q : `${q}\n${instruction}` }];
}

/** The rendered R1 chat prompt text, ending in `<｜Assistant｜><think>\n`. */
export function r1ChatPrompt(question: string, options: R1ChatOptions & { bosToken?: string } = {}): string {
  const render: { addGenerationPrompt: boolean; bosToken?: string } = { addGenerationPrompt: true };
  if (options.bosToken !== undefined) render.bosToken = options.bosToken;
  return renderR1Chat(r1ChatMessages(question, options), render);
}
