/**
 * Distillation (spec §8.4 stage 3, §8.5): rejection sampling from a teacher — k samples per
 * prompt, keep only the traces whose answer VERIFIES and whose format is well-formed — written as
 * chat JSONL ({"messages": [user, assistant]}), then plain SFT of a smaller dense student
 * (Qwen2/Llama config) on them (src/train/sft.ts; no RL for the student, as R1-Distill).
 */
import { writeFileAtomic } from '../formats/atomic-write.js';
import type { Problem } from './tasks/types.js';
import { scoreCompletion } from './tasks/reward.js';
import { type ChatExample, type PromptStyle, chatExampleOf, prefilledThink, promptText, stopTextOf } from './cold-start.js';
import { type Codec, type Policy, completeAll, streamRng } from './rollout.js';

export interface RejectionOptions {
  style: PromptStyle;
  /** k samples per prompt. */
  samples: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  /** Keep at most this many verified traces per prompt (default 1; duplicates are dropped). */
  keepPerPrompt: number;
  seed: number;
}

export interface RejectionResult {
  kept: ChatExample[];
  sampled: number;
  /** Samples rejected because the answer did not verify, and because of the format only. */
  rejectedWrong: number;
  rejectedFormat: number;
  /** Prompts with at least one kept trace. */
  promptsCovered: number;
}

/** The full `<think>\n…` response of a completion sampled in a style (what the chat example stores). */
export function fullResponse(completion: string, style: PromptStyle): string {
  if (style === 'r1-zero') return completion.trimStart();
  return `<think>\n${completion}`;
}

export function rejectionSample(teacher: Policy, codec: Codec, problems: readonly Problem[], o: RejectionOptions): RejectionResult {
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new Error(`distill: samples ${o.samples} must be a positive integer`);
  const stopText = stopTextOf(o.style);
  const kept: ChatExample[] = [];
  let rejectedWrong = 0;
  let rejectedFormat = 0;
  let promptsCovered = 0;
  // every prompt's k samples in one batch (prompt after prompt), then the verdicts in that order
  const prompts = problems.map((problem) => codec.encode(promptText(problem.prompt, o.style)));
  const completions = completeAll(
    teacher, prompts.flatMap((prompt) => Array.from({ length: o.samples }, () => prompt)),
    { temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens, ...(stopText ? { stopText } : {}) },
    prompts.flatMap((_, p) => Array.from({ length: o.samples }, (__, k) => streamRng(o.seed, p, k))),
  );
  problems.forEach((problem, p) => {
    const seen = new Set<string>();
    for (let k = 0; k < o.samples; k++) {
      const c = completions[p * o.samples + k]!;
      const s = scoreCompletion(problem, c.text, { prefilledThink: prefilledThink(o.style), requireAnswerTag: true });
      if (s.accuracy !== 1) {
        rejectedWrong++;
        continue;
      }
      if (s.format !== 1) {
        rejectedFormat++;
        continue;
      }
      const response = fullResponse(c.text, o.style).replace(/\s+$/, '');
      if (seen.has(response) || seen.size >= o.keepPerPrompt) continue;
      seen.add(response);
      kept.push(chatExampleOf(problem, response));
    }
    if (seen.size > 0) promptsCovered++;
  });
  return { kept, sampled: problems.length * o.samples, rejectedWrong, rejectedFormat, promptsCovered };
}

/** Writes chat JSONL atomically: a crash leaves the old file or the whole new one, never some of the lines. */
export function writeChatJsonl(path: string, examples: readonly ChatExample[]): void {
  const text = examples.map((e) => `${JSON.stringify(e)}\n`).join('');
  writeFileAtomic(path, (write) => write(Buffer.from(text, 'utf8')));
}
