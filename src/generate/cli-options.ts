/**
 * Command-line flags shared by `frugal run` and `frugal chat`: sampling, stops, budgets. Bad values
 * give an Error naming the flag.
 */
import type { GenerationTokenizer } from './events.js';
import type { SamplingOptions } from './sampling.js';
import { defaultStopTokenIds } from './sequence.js';

/** parseArgs option table for the generation flags. */
export const generationFlags = {
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  'repeat-last-n': { type: 'string' },
  'frequency-penalty': { type: 'string' },
  'presence-penalty': { type: 'string' },
  seed: { type: 'string' },
  'max-tokens': { type: 'string' },
  stop: { type: 'string', multiple: true },
  'reasoning-budget': { type: 'string' },
  'ignore-eos': { type: 'boolean' },
} as const;

export const generationFlagsHelp = `sampling (defaults: DeepSeek's R1 guidance):
  --temperature T         0 = greedy (default 0.6)
  --top-k K               keep the K most likely tokens, 0 = off (default 0)
  --top-p P               nucleus sampling (default 0.95)
  --min-p P               drop tokens below P x the top probability (default 0)
  --repeat-penalty R      llama.cpp repetition penalty, 1 = off (default 1)
  --repeat-last-n N       tokens the repetition penalty looks back (default 64, -1 = all)
  --frequency-penalty F   OpenAI frequency penalty (default 0)
  --presence-penalty F    OpenAI presence penalty (default 0)
  --seed S                seed for reproducible sampling (default random)
  --max-tokens N          most tokens to generate, thinking included (default 4096)
  --stop TEXT             stop when TEXT appears (repeatable; not printed)
  --reasoning-budget N    close the thought after N reasoning tokens
  --ignore-eos            never end at the end-of-sequence token (only --max-tokens or --stop ends it)`;

type Values = Record<string, string | boolean | string[] | undefined>;

function number(values: Values, flag: string, integer: boolean): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  const value = Number(text);
  // Number() also reads 0x10 and 1e30: an integer flag takes plain decimal digits, and a safe integer
  const plain = integer ? /^-?\d+$/.test(text) && Number.isSafeInteger(value) : /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(text);
  if (!plain || !Number.isFinite(value)) {
    throw new Error(`--${flag} must be ${integer ? 'an integer' : 'a number'}, got '${String(raw)}'`);
  }
  return value;
}

export interface GenerationFlags {
  sampling: SamplingOptions;
  maxTokens: number;
  stop: string[];
  reasoningBudget?: number;
  /** --ignore-eos: the end-of-sequence tokens are banned (see samplingWith). */
  ignoreEos?: boolean;
}

/** The flags' sampling options, with the tokenizer's end-of-sequence tokens banned under --ignore-eos (as llama.cpp's flag does). */
export function samplingWith(flags: GenerationFlags, tokenizer: GenerationTokenizer): SamplingOptions {
  if (!flags.ignoreEos) return flags.sampling;
  return { ...flags.sampling, logitBias: Object.fromEntries(defaultStopTokenIds(tokenizer).map((id) => [id, -Infinity])) };
}

export function parseGenerationFlags(values: Values): GenerationFlags {
  const sampling: SamplingOptions = { temperature: 0.6, topP: 0.95 };
  const set = <K extends keyof SamplingOptions>(key: K, flag: string, integer = false): void => {
    const v = number(values, flag, integer);
    if (v !== undefined) (sampling as Record<string, unknown>)[key] = v;
  };
  set('temperature', 'temperature');
  set('topK', 'top-k', true);
  set('topP', 'top-p');
  set('minP', 'min-p');
  set('repetitionPenalty', 'repeat-penalty');
  set('repetitionWindow', 'repeat-last-n', true);
  set('frequencyPenalty', 'frequency-penalty');
  set('presencePenalty', 'presence-penalty');
  set('seed', 'seed', true);
  const check = (flag: string, ok: boolean, rule: string): void => {
    if (!ok) throw new Error(`--${flag} must be ${rule}, got '${String(values[flag])}'`);
  };
  const s = sampling;
  check('temperature', s.temperature! >= 0, '>= 0');
  if (s.topK !== undefined) check('top-k', s.topK >= 0, '>= 0');
  check('top-p', s.topP! > 0 && s.topP! <= 1, 'in (0, 1]');
  if (s.minP !== undefined) check('min-p', s.minP >= 0 && s.minP <= 1, 'in [0, 1]');
  if (s.repetitionPenalty !== undefined) check('repeat-penalty', s.repetitionPenalty > 0, '> 0');
  if (s.repetitionWindow !== undefined) check('repeat-last-n', s.repetitionWindow >= -1, '>= -1');
  const maxTokens = number(values, 'max-tokens', true) ?? 4096;
  check('max-tokens', maxTokens >= 1, '>= 1');
  const reasoningBudget = number(values, 'reasoning-budget', true);
  if (reasoningBudget !== undefined) check('reasoning-budget', reasoningBudget >= 0, '>= 0');
  const stop = (values.stop as string[] | undefined) ?? [];
  for (const text of stop) if (text === '') throw new Error('--stop needs a non-empty text');
  const flags: GenerationFlags = { sampling, maxTokens, stop };
  if (reasoningBudget !== undefined) flags.reasoningBudget = reasoningBudget;
  if (values['ignore-eos'] === true) flags.ignoreEos = true;
  return flags;
}

/** parseArgs option table for speculative decoding (`frugal run`). */
export const speculativeFlags = {
  speculative: { type: 'string' },
  'draft-tokens': { type: 'string' },
} as const;

export const speculativeFlagsHelp = `speculative decoding (same output distribution, fewer model passes):
  --speculative M         mtp (the model's MTP module, deepseek2), ngram (prompt lookup) or off (default)
  --draft-tokens K        tokens drafted per step (default 1 for mtp, 4 for ngram)`;

export interface SpeculativeFlags {
  method: 'mtp' | 'ngram' | 'off';
  draftTokens?: number;
}

export function parseSpeculativeFlags(values: Values): SpeculativeFlags {
  const method = (values.speculative as string | undefined) ?? 'off';
  if (method !== 'mtp' && method !== 'ngram' && method !== 'off') throw new Error(`--speculative must be mtp, ngram or off, got '${method}'`);
  const draftTokens = number(values, 'draft-tokens', true);
  if (draftTokens !== undefined && draftTokens < 1) throw new Error(`--draft-tokens must be >= 1, got '${String(values['draft-tokens'])}'`);
  if (draftTokens !== undefined && method === 'off') throw new Error('--draft-tokens needs --speculative mtp or ngram');
  return draftTokens === undefined ? { method } : { method, draftTokens };
}
