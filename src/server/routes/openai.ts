/**
 * OpenAI/DeepSeek-compatible routes: POST /chat/completions (also under /v1 and /beta) and GET
 * /models (text completion is in completions.ts). Reasoning goes to `reasoning_content` (message
 * and stream deltas), usage carries DeepSeek's cache and reasoning counts (../shared/spec/formats-and-api.md §5).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../tokenizer/chat-template.js';
import type { DoneEvent, GenerationEvent, TokenEvent } from '../../generate/events.js';
import type { SamplingOptions } from '../../generate/sampling.js';
import type { ServerContext } from '../context.js';
import { ApiError, checkNesting } from '../errors.js';
import { admitAll, choicePlans, disconnectSignal, MAX_CHOICES, resolveMaxTokens, runAdmissions, runToText, type GenerationPlan } from '../generation.js';
import type { JobResult } from '../scheduler.js';
import { buildChatPrompt, encodePrompt, templateOption } from '../prompt.js';
import { mustWait, sendJsonAnswer } from '../json-wait.js';
import { EventStream, jsonTemplate } from '../sse.js';
import { answerToolCalls, forcedToolSchema, historyToolCalls, parseTools } from '../tools.js';
import { checkJsonSchema, type JsonSchema } from '../json-schema.js';
import { completions } from './completions.js';
import { bodyObject, optBool, optNumber, optObject, optStops, optString, type Body } from '../validate.js';

export const FINGERPRINT = 'fp_frugal';
const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

interface ChatRequest {
  modelName: string;
  plan: GenerationPlan;
  /** How many choices (`n`), each a generation of its own. */
  n: number;
  stream: boolean;
  includeUsage: boolean;
  /** Parse tool calls out of the answer. */
  tools: boolean;
  forcedTool?: string | undefined;
}

/** Message content: a string, null, or an array of `{type: "text", text}` parts. */
function contentText(value: unknown, index: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value
      .map((part, j) => {
        if (part && typeof part === 'object' && (part as Body).type === 'text' && typeof (part as Body).text === 'string') return (part as Body).text as string;
        throw new ApiError(400, `messages[${index}].content[${j}] must be a {"type": "text", "text": ...} part (only text is supported)`, `messages[${index}].content`);
      })
      .join('');
  }
  throw new ApiError(400, `messages[${index}].content must be a string, null or an array of text parts`, `messages[${index}].content`);
}

function parseMessages(value: unknown): { messages: ChatMessage[]; prefix?: { content: string; reasoning?: string } } {
  if (!Array.isArray(value)) throw new ApiError(400, 'messages must be an array of message objects', 'messages');
  if (value.length === 0) throw new ApiError(400, 'messages must not be empty', 'messages');
  const messages: ChatMessage[] = [];
  let prefix: { content: string; reasoning?: string } | undefined;
  value.forEach((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, `messages[${i}] must be an object`, `messages[${i}]`);
    const m = raw as Body;
    // OpenAI's "developer" role (its newer name for system instructions) is a system message here
    if (typeof m.role !== 'string' || !(ROLES.has(m.role) || m.role === 'developer')) {
      throw new ApiError(400, `messages[${i}].role must be one of system (or developer), user, assistant, tool; got ${JSON.stringify(m.role)}`, `messages[${i}].role`);
    }
    const role = (m.role === 'developer' ? 'system' : m.role) as ChatMessage['role'];
    const content = contentText(m.content, i);
    if (role !== 'assistant' && content === null) throw new ApiError(400, `messages[${i}].content is required for role ${role}`, `messages[${i}].content`);
    const reasoning = m.reasoning_content ?? m.reasoning;
    if (reasoning !== undefined && reasoning !== null && typeof reasoning !== 'string') throw new ApiError(400, `messages[${i}].reasoning_content must be a string`, `messages[${i}].reasoning_content`);
    if (m.prefix === true) {
      if (role !== 'assistant' || i !== value.length - 1) throw new ApiError(400, `messages[${i}]: only the last message, an assistant one, may have "prefix": true`, `messages[${i}].prefix`);
      prefix = { content: content ?? '' };
      if (typeof reasoning === 'string') prefix.reasoning = reasoning;
      return;
    }
    const message: ChatMessage = { role, content };
    if (role === 'assistant' && Array.isArray(m.tool_calls)) message.tool_calls = historyToolCalls(m.tool_calls, i);
    if (role === 'tool' && typeof m.tool_call_id === 'string') message.tool_call_id = m.tool_call_id;
    messages.push(message);
  });
  if (messages.length === 0 && prefix === undefined) throw new ApiError(400, 'messages must not be empty', 'messages');
  return prefix ? { messages, prefix } : { messages };
}

export function samplingOf(b: Body): SamplingOptions {
  const sampling: SamplingOptions = {};
  const temperature = optNumber(b, 'temperature', { min: 0, max: 2 });
  const topP = optNumber(b, 'top_p', { min: 0, max: 1, above: true });
  const topK = optNumber(b, 'top_k', { min: 0, integer: true });
  const frequency = optNumber(b, 'frequency_penalty', { min: -2, max: 2 });
  const presence = optNumber(b, 'presence_penalty', { min: -2, max: 2 });
  const seed = optNumber(b, 'seed', { integer: true });
  if (temperature !== undefined) sampling.temperature = temperature;
  if (topP !== undefined) sampling.topP = topP;
  if (topK !== undefined) sampling.topK = topK;
  if (frequency !== undefined) sampling.frequencyPenalty = frequency;
  if (presence !== undefined) sampling.presencePenalty = presence;
  if (seed !== undefined) sampling.seed = seed >>> 0;
  return sampling;
}

function parseChatRequest(ctx: ServerContext, body: unknown): ChatRequest {
  const b = bodyObject(body);
  checkNesting(b);
  if (b.model === undefined) throw new ApiError(400, 'model is required', 'model');
  const resolved = ctx.registry.resolve(b.model);
  const { messages, prefix } = parseMessages(b.messages);
  const stream = optBool(b, 'stream') ?? false;
  const streamOptions = optObject(b, 'stream_options');
  if (streamOptions && !stream) throw new ApiError(400, 'stream_options is only allowed with stream: true', 'stream_options');
  const includeUsage = streamOptions ? optBool(streamOptions, 'include_usage') ?? false : false;
  const n = optNumber(b, 'n', { integer: true, min: 1, max: MAX_CHOICES }) ?? 1;
  // a null max_completion_tokens is absent (optNumber): the limit, and the field errors name, are max_tokens'
  const maxTokensParam = b.max_completion_tokens !== undefined && b.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optNumber(b, maxTokensParam, { integer: true, min: 1 });
  const logprobs = optBool(b, 'logprobs') ?? false;
  const topLogprobs = optNumber(b, 'top_logprobs', { integer: true, min: 0, max: 20 });
  if (topLogprobs !== undefined && !logprobs) throw new ApiError(422, 'top_logprobs requires logprobs: true', 'top_logprobs');
  const format = optObject(b, 'response_format');
  const formatType = format ? optString(format, 'type') ?? 'text' : 'text';
  if (formatType !== 'text' && formatType !== 'json_object' && formatType !== 'json_schema') {
    throw new ApiError(422, `response_format.type must be "text", "json_object" or "json_schema", got "${formatType}"`, 'response_format');
  }
  const schema = formatType === 'json_schema'
    ? (checkJsonSchema((format!.json_schema as Body | undefined)?.schema, 'response_format.json_schema.schema') as Exclude<JsonSchema, boolean>)
    : undefined;
  const thinkingField = optObject(b, 'thinking');
  let thinking = resolved.thinking;
  if (thinkingField) {
    const type = optString(thinkingField, 'type');
    if (type !== 'enabled' && type !== 'disabled') throw new ApiError(422, 'thinking.type must be "enabled" or "disabled"', 'thinking');
    thinking = type === 'enabled';
  }
  const reasoningBudget = optNumber(b, 'reasoning_budget', { integer: true, min: 0 });
  const tools = parseTools(b);

  const served = ctx.registry.get(resolved.id);
  const promptPlan = buildChatPrompt(served.tokenizer, {
    messages,
    thinking,
    ...(tools.tools ? { tools: tools.tools } : {}),
    ...(tools.forced !== undefined ? { forcedTool: tools.forced } : {}),
    ...(prefix ? { prefix } : {}),
    ...templateOption(served.loaded.chatTemplate),
  });
  const prompt = encodePrompt(served.tokenizer, promptPlan);
  const plan: GenerationPlan = {
    served,
    prompt,
    thinking: promptPlan.thinking,
    maxTokens: resolveMaxTokens(ctx, served, prompt.length, maxTokens, maxTokensParam),
    sampling: samplingOf(b),
    stop: optStops(b),
    reasoningBudget,
    logprobs,
    topLogprobs: topLogprobs ?? 0,
    json: schema ?? forcedToolSchema(tools) ?? (formatType === 'json_object' || tools.forced !== undefined),
  };
  return { modelName: b.model as string, plan, n, stream, includeUsage, tools: tools.use, forcedTool: tools.forced };
}

export function usageOf(done: DoneEvent): Body {
  const u = done.usage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    prompt_cache_hit_tokens: u.cachedTokens,
    prompt_cache_miss_tokens: u.promptTokens - u.cachedTokens,
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

/**
 * Usage of all choices together: each prompt's tokens once (from the first of its `n` choices, as
 * OpenAI counts them), every choice's completion tokens.
 */
export function choicesUsage(results: readonly JobResult[], n: number): Body {
  const sum = (pick: (u: DoneEvent['usage']) => number, every = 1): number => results.reduce((s, r, i) => (i % every === 0 ? s + pick(r.done.usage) : s), 0);
  const first = results[0]!.done;
  return usageOf({
    ...first,
    usage: { ...first.usage, promptTokens: sum((u) => u.promptTokens, n), cachedTokens: sum((u) => u.cachedTokens, n), completionTokens: sum((u) => u.completionTokens), reasoningTokens: sum((u) => u.reasoningTokens) },
  });
}

function logprobEntry(ctx: { decode(ids: number[]): string }, event: TokenEvent): Body {
  const text = (id: number): string => ctx.decode([id]);
  const token = text(event.id);
  return {
    token,
    logprob: event.logprob ?? 0,
    bytes: [...Buffer.from(token)],
    top_logprobs: (event.topLogprobs ?? []).map((t) => {
      const s = text(t.id);
      return { token: s, logprob: t.logprob, bytes: [...Buffer.from(s)] };
    }),
  };
}

function finishReason(done: DoneEvent, toolCalls: boolean): string {
  if (toolCalls) return 'tool_calls';
  return done.finishReason === 'length' ? 'length' : 'stop';
}

/** Tool calls of a finished answer: the forced call's JSON, or calls parsed from the content. */
function toolCallsOf(request: ChatRequest, content: string): { content: string; calls: Body[] } {
  const { content: answer, calls } = answerToolCalls(content, { use: request.tools, forced: request.forcedTool });
  return { content: answer, calls: calls as unknown as Body[] };
}

async function chatCompletions(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  ctx.checkPaused();
  const principal = ctx.principal(request);
  const chat = parseChatRequest(ctx, request.body);
  const admissions = admitAll(ctx, principal, choicePlans(chat.plan, chat.n));
  const id = randomUUID();
  const created = Math.floor(Date.now() / 1000);
  const tokenizer = chat.plan.served.tokenizer;
  const controller = disconnectSignal(reply);
  const wantLogprobs = chat.plan.logprobs === true;
  const holdContent = chat.tools || chat.forcedTool !== undefined;

  if (!chat.stream) {
    // blank lines before the JSON while the request waits in the queue (json-wait.ts)
    return sendJsonAnswer(ctx, reply, async (onStart) => {
      const answers = await runAdmissions(admissions, controller, async (admission, index) => {
        const logprobs: Body[] = [];
        const { result, reasoning, content } = await runToText(admission, {
          signal: controller.signal,
          onStart,
          onEvent: (e) => {
            if (wantLogprobs && e.type === 'token' && e.channel === 'content') logprobs.push(logprobEntry(tokenizer, e));
          },
        });
        const { content: answer, calls } = toolCallsOf(chat, content);
        const message: Body = { role: 'assistant', content: answer };
        if (reasoning !== '' || chat.plan.thinking !== 'off') message.reasoning_content = reasoning;
        if (calls.length > 0) message.tool_calls = calls;
        return { result, choice: { index, message, logprobs: wantLogprobs ? { content: logprobs } : null, finish_reason: finishReason(result.done, calls.length > 0) } };
      });
      return {
        id, object: 'chat.completion', created, model: chat.modelName, system_fingerprint: FINGERPRINT,
        choices: answers.map((a) => a.choice), usage: choicesUsage(answers.map((a) => a.result), chat.n),
      };
    });
  }

  // headers with the first write: a keep-alive comment now, or the role chunk with the first token
  const stream = new EventStream(reply, 'sse', false);
  if (mustWait(ctx)) stream.keepAlive(ctx.settings.keepAliveMs);
  const chunk = (index: number, delta: Body, extra: Body = {}): Body => ({
    id, object: 'chat.completion.chunk', created, model: chat.modelName, system_fingerprint: FINGERPRINT,
    choices: [{ index, delta, logprobs: null, finish_reason: null, ...extra }], usage: null,
  });
  const templates = admissions.map((_, index) => ({
    reasoning: jsonTemplate((text) => chunk(index, { content: null, reasoning_content: text })),
    content: jsonTemplate((text) => chunk(index, { content: text, reasoning_content: null })),
  }));
  let running = admissions.length;
  try {
    const results = await runAdmissions(admissions, controller, async (admission, index) => {
      let heldContent = '';
      const result = await admission.run({
        signal: controller.signal,
        onStart: () => {
          stream.stopKeepAlive();
          stream.sendWithNext(chunk(index, { role: 'assistant', content: null, reasoning_content: '' }));
        },
        onEvent: (e: GenerationEvent): void => {
          if (e.type === 'done' || e.text === '') return;
          if (e.channel === 'content' && holdContent) {
            heldContent += e.text;
            return;
          }
          if (wantLogprobs && e.type === 'token' && e.channel === 'content') {
            stream.send(chunk(index, { content: e.text, reasoning_content: null }, { logprobs: { content: [logprobEntry(tokenizer, e)] } }));
          } else stream.sendJson(e.channel === 'reasoning' ? templates[index]!.reasoning(e.text) : templates[index]!.content(e.text));
        },
      });
      if (result.done.finishReason === 'abort') return result;
      // what the last choice to finish sends leaves with the usage and [DONE]
      if (--running === 0) stream.holdUntilEnd();
      let calls: Body[] = [];
      if (holdContent) {
        const parsed = toolCallsOf(chat, heldContent);
        calls = parsed.calls;
        if (parsed.content) stream.send(chunk(index, { content: parsed.content, reasoning_content: null }));
        if (calls.length > 0) stream.send(chunk(index, { tool_calls: calls.map((c, i) => ({ index: i, ...c })) }));
      }
      stream.send(chunk(index, { content: '', reasoning_content: null }, { finish_reason: finishReason(result.done, calls.length > 0) }));
      return result;
    });
    if (results.some((r) => r.done.finishReason === 'abort')) return stream.end();
    if (chat.includeUsage) stream.send({ id, object: 'chat.completion.chunk', created, model: chat.modelName, system_fingerprint: FINGERPRINT, choices: [], usage: choicesUsage(results, chat.n) });
    stream.sendRaw('data: [DONE]\n\n');
  } catch (error) {
    const e = error instanceof ApiError ? error : new ApiError(500, (error as Error).message);
    stream.send(e.body());
  }
  stream.end();
  return reply;
}

export function registerOpenAiRoutes(app: FastifyInstance, ctx: ServerContext): void {
  for (const base of ['', '/v1', '/beta']) {
    app.post(`${base}/chat/completions`, (req, reply) => chatCompletions(ctx, req, reply));
  }
  app.post('/beta/completions', (req, reply) => completions(ctx, req, reply));
  app.post('/v1/completions', (req, reply) => completions(ctx, req, reply));
  const models = (req: FastifyRequest): Body => {
    ctx.principal(req);
    const data = [...ctx.registry.ids(), ...ctx.registry.aliases()].map((id) => ({ id, object: 'model', created: 0, owned_by: 'frugal' }));
    return { object: 'list', data };
  };
  app.get('/models', (req) => models(req));
  app.get('/v1/models', (req) => models(req));
  // retrieve one model (the SDKs' models.retrieve): a configured id or an alias, else 404 model_not_found
  const model = (req: FastifyRequest): Body => {
    ctx.principal(req);
    const name = (req.params as { model: string }).model;
    ctx.registry.resolve(name);
    return { id: name, object: 'model', created: 0, owned_by: 'frugal' };
  };
  app.get('/models/:model', (req) => model(req));
  app.get('/v1/models/:model', (req) => model(req));
  // DeepSeek's balance query, for clients that check it first: a local server bills nothing, so
  // requests are always available and there is no balance to report
  const balance = (req: FastifyRequest): Body => {
    ctx.principal(req);
    return { is_available: true, balance_infos: [{ currency: 'USD', total_balance: '0.00', granted_balance: '0.00', topped_up_balance: '0.00' }] };
  };
  app.get('/user/balance', (req) => balance(req));
  app.get('/v1/user/balance', (req) => balance(req));
}
