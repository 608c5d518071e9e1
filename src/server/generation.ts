/**
 * One generation as the routes run it: checks the prompt against the context and max_tokens
 * against the caps, admits the request (rate limits, then the scheduler's queue), runs it and
 * settles the token count. A client that disconnects aborts its generation at once.
 */
import { setMaxListeners } from 'node:events';
import type { FastifyReply } from 'fastify';
import type { GenerationEvent } from '../generate/events.js';
import type { SamplingOptions } from '../generate/sampling.js';
import type { ThinkingMode } from '../generate/sequence.js';
import type { ServerContext, Principal } from './context.js';
import { ApiError } from './errors.js';
import type { JsonSchema } from './json-schema.js';
import type { ServedModel } from './models.js';
import type { JobResult, PromptTokenLogprob } from './scheduler.js';

export interface GenerationPlan {
  served: ServedModel;
  prompt: Int32Array;
  thinking: ThinkingMode;
  maxTokens: number;
  sampling: SamplingOptions;
  stop?: string[] | undefined;
  reasoningBudget?: number | undefined;
  logprobs?: boolean;
  topLogprobs?: number;
  /** Constrain the answer to one JSON object (true) or to one that fits a schema (json-schema.ts). */
  json?: boolean | Exclude<JsonSchema, boolean>;
  /** Score the prompt's tokens with this many alternatives each (echo with logprobs; scheduler.ts). */
  promptLogprobs?: number | undefined;
  /** End after reading the prompt (max_tokens 0). */
  scoreOnly?: boolean;
}

/**
 * Checks that the prompt fits and resolves max_tokens (400 / 422 with the numbers). `promptParam`
 * is the request field the prompt came from (messages, prompt, input), which a too long one names.
 */
export function resolveMaxTokens(ctx: ServerContext, served: ServedModel, promptTokens: number, requested: number | undefined, param = 'max_tokens', promptParam = 'messages'): number {
  const context = served.contextLength;
  if (promptTokens === 0) throw new ApiError(400, 'the prompt is empty', promptParam);
  if (promptTokens >= context) {
    throw new ApiError(400, `This model's maximum context length is ${context} tokens. However, you requested ${promptTokens} tokens in the ${promptParam}; shorten the prompt.`, promptParam, 'context_length_exceeded');
  }
  if (requested !== undefined && requested > ctx.settings.maxTokensCap) {
    throw new ApiError(422, `${param} must be at most ${ctx.settings.maxTokensCap}, got ${requested}`, param);
  }
  return Math.min(requested ?? ctx.settings.defaultMaxTokens, context - promptTokens);
}

/** Listeners a request's abort signal takes: one per generation (up to 64 prompts x 16 choices) and a few more. */
const MAX_LISTENERS = 64 * 16 + 16;

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function disconnectSignal(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  // every generation of a request listens on it: a completions batch (64 prompts x n choices)
  // passed Node's default of 10 listeners and printed a MaxListenersExceededWarning
  setMaxListeners(MAX_LISTENERS, controller.signal);
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller;
}

export interface Admission {
  /** Runs the admitted generation (call at once). */
  run(handlers: { onEvent?: (e: GenerationEvent) => void; onStart?: () => void; onPromptLogprobs?: (tokens: PromptTokenLogprob[]) => void; signal?: AbortSignal }): Promise<JobResult>;
  /** Gives the admission back without running (an error came up in between). */
  cancel(): void;
}

/**
 * Admits a request now (throws 429/503 before any response is written), so that streaming
 * routes can send their headers only once the request is accepted. The admission holds its place
 * in the scheduler until it runs (or is cancelled): a request admitted is never refused later.
 */
export function admit(ctx: ServerContext, principal: Principal, plan: GenerationPlan): Admission {
  ctx.checkPaused();
  const place = ctx.scheduler.reserve();
  let release: (usedTokens?: number) => void;
  try {
    release = ctx.limiter.admit(principal.client, plan.prompt.length + plan.maxTokens);
  } catch (error) {
    place.release();
    throw error;
  }
  let ran = false;
  return {
    cancel() {
      if (!ran) {
        release(0);
        place.release();
      }
      ran = true;
    },
    async run(handlers) {
      if (ran) throw new Error('an admission runs once');
      ran = true;
      let used: number | undefined;
      try {
        const result = await ctx.scheduler.run({
          model: plan.served,
          prompt: plan.prompt,
          options: {
            sampling: { ...ctx.settings.defaultSampling, ...plan.sampling },
            maxTokens: plan.maxTokens,
            stop: plan.stop ?? [],
            thinking: plan.thinking,
            reasoningBudget: plan.reasoningBudget ?? ctx.settings.defaultReasoningBudget,
            logprobs: plan.logprobs ?? false,
            topLogprobs: plan.topLogprobs ?? 0,
            stopTokenIds: plan.served.stopIds,
          },
          json: plan.json ?? false,
          ...(plan.promptLogprobs !== undefined ? { promptLogprobs: plan.promptLogprobs } : {}),
          ...(plan.scoreOnly ? { scoreOnly: true } : {}),
          ...(handlers.onPromptLogprobs ? { onPromptLogprobs: handlers.onPromptLogprobs } : {}),
          ...(handlers.signal ? { signal: handlers.signal } : {}),
          ...(handlers.onEvent ? { onEvent: handlers.onEvent } : {}),
          ...(handlers.onStart ? { onStart: handlers.onStart } : {}),
        }, place);
        used = result.done.usage.promptTokens + result.done.usage.completionTokens;
        return result;
      } finally {
        release(used);
      }
    },
  };
}

/**
 * Admits several generations of one request (a batch of prompts, or `n` choices) together: all of
 * them or none (the ones already admitted are given back when one is refused).
 */
export function admitAll(ctx: ServerContext, principal: Principal, plans: readonly GenerationPlan[]): Admission[] {
  const admissions: Admission[] = [];
  try {
    for (const plan of plans) admissions.push(admit(ctx, principal, plan));
  } catch (error) {
    for (const admission of admissions) admission.cancel();
    throw error;
  }
  return admissions;
}

/**
 * Runs every admission of a request (they batch in the scheduler) with `run`, in order; the first
 * failure aborts the others through the request's controller and rejects.
 */
export function runAdmissions<T>(admissions: readonly Admission[], controller: AbortController, run: (admission: Admission, index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(admissions.map(async (admission, index) => {
    try {
      return await run(admission, index);
    } catch (error) {
      controller.abort();
      throw error;
    }
  }));
}

/** The most choices (`n`) one request may ask for. */
export const MAX_CHOICES = 16;

/**
 * The plans of `n` choices of one prompt: the same plan, except that with a seed, choice i samples
 * with seed + i (different choices, each reproducible); without one, each draws its own.
 */
export function choicePlans(plan: GenerationPlan, n: number): GenerationPlan[] {
  const seed = plan.sampling.seed;
  return Array.from({ length: n }, (_, i) => (i === 0 || seed === undefined ? plan : { ...plan, sampling: { ...plan.sampling, seed: (seed + i) >>> 0 } }));
}

/**
 * Runs an admitted generation to its end for a non-streaming answer: the thought and the answer
 * collected as text (each event also goes to `onEvent`, if given).
 */
export async function runToText(
  admission: Admission, handlers: { onEvent?: (e: GenerationEvent) => void; onStart?: () => void; signal?: AbortSignal },
): Promise<{ result: JobResult; reasoning: string; content: string }> {
  let reasoning = '';
  let content = '';
  const result = await admission.run({
    ...handlers,
    onEvent: (e) => {
      if (e.type !== 'done') {
        if (e.channel === 'reasoning') reasoning += e.text;
        else content += e.text;
      }
      handlers.onEvent?.(e);
    },
  });
  return { result, reasoning, content };
}
