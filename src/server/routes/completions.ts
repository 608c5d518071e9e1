/**
 * Text completion: POST /v1/completions (OpenAI's legacy API) and /beta/completions (DeepSeek's
 * FIM, with `suffix`). One prompt or a batch (strings or token ids, one choice each), `echo`, and
 * `logprobs` for the generated tokens and, with `echo`, for the prompt's own tokens: each given the
 * tokens before it, as lm-evaluation-harness's loglikelihood requests read them
 * (`token_logprobs[ctxlen:-1]`). `max_tokens: 0` with `echo` scores a text without generating.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DoneEvent, GenerationEvent } from '../../generate/events.js';
import type { TokenLogprob } from '../../generate/sampling.js';
import type { ServerContext } from '../context.js';
import { ApiError, checkNesting } from '../errors.js';
import { admitAll, choicePlans, MAX_CHOICES, disconnectSignal, resolveMaxTokens, runAdmissions, type GenerationPlan } from '../generation.js';
import { mustWait, sendJsonAnswer } from '../json-wait.js';
import type { ServedModel } from '../models.js';
import { fimPrompt } from '../prompt.js';
import type { JobResult, PromptTokenLogprob } from '../scheduler.js';
import { EventStream } from '../sse.js';
import { bodyObject, optBool, optNumber, optStops, optString, type Body } from '../validate.js';
import { choicesUsage, FINGERPRINT, samplingOf } from './openai.js';

/** Prompts one request may carry. */
export const MAX_PROMPTS = 64;

/** One prompt of the request: its tokens, and the text that `echo` returns. */
interface PromptInput {
  ids: Int32Array;
  text: string;
  /** Leading tokens the server added (BOS) that the text does not contain. */
  added: number;
}

type Tokenizer = ServedModel['tokenizer'];

function tokenIds(value: unknown[], vocab: number, where: string): Int32Array {
  if (value.length === 0) throw new ApiError(400, `${where} must not be empty`, 'prompt');
  return Int32Array.from(value, (id, j) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new ApiError(400, `${where}[${j}] must be a token id from 0 to ${vocab - 1}, got ${JSON.stringify(id)}`, 'prompt');
    }
    return id;
  });
}

/** `prompt` as OpenAI takes it: a string, an array of strings, an array of token ids, or an array of such arrays. */
export function parsePrompts(value: unknown, tokenizer: Tokenizer, vocab: number, suffix: string | undefined): PromptInput[] {
  const bos = Array.from(tokenizer.encode('', { addSpecialTokens: true }));
  const ofText = (text: string): PromptInput => {
    if (suffix !== undefined) return { ids: fimPrompt(tokenizer, text, suffix), text, added: 0 };
    return { ids: Int32Array.from([...bos, ...Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: false }))]), text, added: bos.length };
  };
  const ofIds = (ids: Int32Array): PromptInput => ({ ids, text: tokenizer.decode(Array.from(ids)), added: 0 });
  if (typeof value === 'string') return [ofText(value)];
  if (!Array.isArray(value) || value.length === 0) {
    throw new ApiError(400, 'prompt must be a string, an array of strings, an array of token ids or an array of token id arrays', 'prompt');
  }
  const many = suffix === undefined ? MAX_PROMPTS : 1;
  if (value.every((item) => typeof item === 'number')) {
    // the FIM prompt is built from the texts around the hole; token ids would drop the suffix unseen
    if (suffix !== undefined) throw new ApiError(400, 'suffix (fill in the middle) takes the prompt as text, not token ids', 'prompt');
    return [ofIds(tokenIds(value, vocab, 'prompt'))];
  }
  if (value.length > many) throw new ApiError(400, suffix === undefined ? `prompt holds ${value.length} prompts; at most ${MAX_PROMPTS} per request` : 'suffix (fill in the middle) takes one prompt', 'prompt');
  if (value.every((item) => typeof item === 'string')) return value.map((text: string) => ofText(text));
  if (suffix === undefined && value.every((item) => Array.isArray(item))) return value.map((ids: unknown[], i) => ofIds(tokenIds(ids, vocab, `prompt[${i}]`)));
  throw new ApiError(400, 'prompt must be a string, an array of strings, an array of token ids or an array of token id arrays (not a mix)', 'prompt');
}

/** OpenAI's legacy logprobs object of one choice. */
interface LogprobsReport {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Body | null)[];
  text_offset: number[];
}

function topObject(tokenizer: Tokenizer, top: readonly TokenLogprob[]): Body {
  return Object.fromEntries(top.map((x) => [tokenizer.decode([x.id]), x.logprob]));
}

/** One choice being built: its text (echo first), its logprobs, its end. */
class ChoiceText {
  text = '';
  readonly logprobs: LogprobsReport = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  done: DoneEvent | undefined;

  constructor(
    readonly index: number,
    private readonly tokenizer: Tokenizer,
  ) {}

  /** The prompt as echo returns it, with its tokens' scores when they were asked for. */
  echo(input: PromptInput, scores: readonly PromptTokenLogprob[] | undefined): string {
    const start = this.text.length;
    if (scores) {
      const decoder = this.tokenizer.streamDecoder();
      let offset = start;
      scores.forEach((score, i) => {
        const piece = decoder.push(score.id);
        this.logprobs.tokens.push(this.tokenizer.decode([score.id]));
        this.logprobs.token_logprobs.push(score.logprob);
        this.logprobs.top_logprobs.push(score.logprob === null ? null : topObject(this.tokenizer, score.top));
        this.logprobs.text_offset.push(offset);
        if (i >= input.added) offset += piece.length;
      });
    }
    this.text += input.text;
    return input.text;
  }

  /** Adds a generated event's text (and its logprobs when asked); returns the text added. */
  add(e: GenerationEvent, logprobs: boolean): string {
    if (e.type === 'done') return '';
    if (e.type === 'token' && logprobs) {
      this.logprobs.text_offset.push(this.text.length);
      this.logprobs.tokens.push(this.tokenizer.decode([e.id]));
      this.logprobs.token_logprobs.push(e.logprob ?? 0);
      this.logprobs.top_logprobs.push(topObject(this.tokenizer, e.topLogprobs ?? []));
    }
    this.text += e.text;
    return e.text;
  }
}

function finishOf(done: DoneEvent): string {
  return done.finishReason === 'length' ? 'length' : 'stop';
}

export async function completions(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  ctx.checkPaused();
  const principal = ctx.principal(request);
  const b = bodyObject(request.body);
  checkNesting(b);
  if (b.model === undefined) throw new ApiError(400, 'model is required', 'model');
  const resolved = ctx.registry.resolve(b.model);
  if (b.prompt === undefined) throw new ApiError(400, 'prompt must be a string, an array of strings or token ids', 'prompt');
  const suffix = optString(b, 'suffix');
  const echo = optBool(b, 'echo') ?? false;
  const stream = optBool(b, 'stream') ?? false;
  const logprobsCount = optNumber(b, 'logprobs', { integer: true, min: 0, max: 20 });
  const requestedMax = optNumber(b, 'max_tokens', { integer: true, min: 0 });
  if (requestedMax === 0 && !echo) throw new ApiError(400, 'max_tokens 0 generates nothing; it needs echo (to score the prompt)', 'max_tokens');
  if (echo && suffix !== undefined) throw new ApiError(400, 'echo and suffix (fill in the middle) cannot be used together', 'echo');
  const served = ctx.registry.get(resolved.id);
  const tokenizer = served.tokenizer;
  const inputs = parsePrompts(b.prompt, tokenizer, served.model.info.vocabSize, suffix);
  const logprobs = logprobsCount !== undefined;
  const scorePrompt = echo && logprobs;
  const sampling = samplingOf(b);
  const stop = optStops(b);
  const n = optNumber(b, 'n', { integer: true, min: 1, max: MAX_CHOICES }) ?? 1;
  if (n * inputs.length > MAX_PROMPTS) throw new ApiError(400, `n times the number of prompts must be at most ${MAX_PROMPTS}, got ${n} x ${inputs.length}`, 'n');
  // each prompt's n choices in a row: choice index = prompt index * n + j, as OpenAI numbers them
  const runs = inputs.flatMap((input) => {
    const plan: GenerationPlan = {
      served, prompt: input.ids, thinking: 'off', sampling, stop,
      // max_tokens 0 still needs room for one token in the context check; nothing is generated
      maxTokens: resolveMaxTokens(ctx, served, input.ids.length, requestedMax === 0 ? 1 : requestedMax, 'max_tokens', 'prompt'),
      logprobs, topLogprobs: logprobsCount ?? 0,
      ...(requestedMax === 0 ? { scoreOnly: true } : {}),
      ...(scorePrompt ? { promptLogprobs: logprobsCount } : {}),
    };
    return choicePlans(plan, n).map((choicePlan) => ({ input, plan: choicePlan }));
  });
  const admissions = admitAll(ctx, principal, runs.map((r) => r.plan));
  const id = `cmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const controller = disconnectSignal(reply);
  const choices = runs.map((_, i) => new ChoiceText(i, tokenizer));
  const head = { id, object: 'text_completion', created, model: b.model, system_fingerprint: FINGERPRINT };
  const chunk = (index: number, text: string, finish: string | null, report: LogprobsReport | null): Body => ({
    ...head, choices: [{ index, text, logprobs: report, finish_reason: finish }],
  });
  /** Runs every prompt (they batch in the scheduler); the first failure cancels the others. */
  const runAll = (handlers: {
    onStart?: () => void;
    onEcho?: (choice: ChoiceText, text: string, from: number) => void;
    onEvent?: (choice: ChoiceText, text: string, from: number) => void;
    onDone?: (choice: ChoiceText, result: JobResult) => void;
  }): Promise<JobResult[]> =>
    runAdmissions(admissions, controller, async (admission, i) => {
      const choice = choices[i]!;
      const doEcho = (scores?: readonly PromptTokenLogprob[]): void => {
        const from = choice.logprobs.tokens.length;
        const text = choice.echo(runs[i]!.input, scores);
        handlers.onEcho?.(choice, text, from);
      };
      const result = await admission.run({
        signal: controller.signal,
        onStart: () => {
          handlers.onStart?.();
          if (echo && !scorePrompt) doEcho();
        },
        ...(scorePrompt ? { onPromptLogprobs: (scores: PromptTokenLogprob[]) => doEcho(scores) } : {}),
        onEvent: (e) => {
          const from = choice.logprobs.tokens.length;
          const text = choice.add(e, logprobs);
          // a token that ends inside a UTF-8 character has no text yet, but its logprob is sent
          if (text || choice.logprobs.tokens.length > from) handlers.onEvent?.(choice, text, from);
        },
      });
      choice.done = result.done;
      handlers.onDone?.(choice, result);
      return result;
    });
  const reportOf = (choice: ChoiceText, from = 0): LogprobsReport | null => {
    if (!logprobs) return null;
    const lp = choice.logprobs;
    return { tokens: lp.tokens.slice(from), token_logprobs: lp.token_logprobs.slice(from), top_logprobs: lp.top_logprobs.slice(from), text_offset: lp.text_offset.slice(from) };
  };
  if (!stream) {
    // blank lines before the JSON while the request waits in the queue (json-wait.ts)
    return sendJsonAnswer(ctx, reply, async (onStart) => {
      const results = await runAll({ onStart });
      return {
        ...head,
        choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: reportOf(c), finish_reason: finishOf(c.done!) })),
        usage: choicesUsage(results, n),
      };
    });
  }
  const events = new EventStream(reply);
  if (mustWait(ctx)) events.keepAlive(ctx.settings.keepAliveMs);
  try {
    const results = await runAll({
      onStart: () => events.stopKeepAlive(),
      onEcho: (choice, text, from) => events.send(chunk(choice.index, text, null, reportOf(choice, from))),
      onEvent: (choice, text, from) => events.send(chunk(choice.index, text, null, reportOf(choice, from))),
      // one prompt: its last chunk carries the usage, as before; a batch ends with a usage chunk of its own
      onDone: (choice, result) => { if (choices.length > 1) events.send(chunk(choice.index, '', finishOf(result.done), null)); },
    });
    if (choices.length === 1) events.send({ ...chunk(0, '', finishOf(results[0]!.done), null), usage: choicesUsage(results, n) });
    else events.send({ ...head, choices: [], usage: choicesUsage(results, n) });
    events.sendRaw('data: [DONE]\n\n');
  } catch (error) {
    events.send((error instanceof ApiError ? error : new ApiError(500, (error as Error).message)).body());
  }
  events.end();
  return reply;
}
