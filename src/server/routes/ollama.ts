/**
 * Ollama-compatible routes: POST /api/chat (with `tools`: calls in `message.tool_calls`) and
 * /api/generate (with `suffix`: fill in the middle) (NDJSON streaming by default, `think` and the
 * `thinking` field; no prompt or no messages is a load request, answered done_reason "load"), GET /api/tags,
 * GET /api/ps (loaded models), POST /api/show, GET /api/version
 * (../shared/spec/formats-and-api.md §5.11). Durations are nanoseconds. /api/generate returns
 * `context` (the prompt's and the answer's tokens) and continues from one sent back. A refused
 * request is a 400 with `{"error": "..."}` (an unknown model 404), as Ollama answers.
 */
import { statSync } from 'node:fs';
import { openGguf } from '../../formats/gguf.js';
import { llamaFileTypeName } from '../../formats/gguf-file-type.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../tokenizer/chat-template.js';
import type { SamplingOptions } from '../../generate/sampling.js';
import type { GenerationTokenizer } from '../../generate/events.js';
import type { ServerContext } from '../context.js';
import { ApiError, checkNesting } from '../errors.js';
import { admit, disconnectSignal, resolveMaxTokens, type GenerationPlan } from '../generation.js';
import { buildChatPrompt, encodePrompt, fimPrompt, templateOption } from '../prompt.js';
import { historyToolCalls, parseToolCalls, parseToolDefinitions } from '../tools.js';
import { checkJsonSchema, type JsonSchema } from '../json-schema.js';
import { EventStream } from '../sse.js';
import type { JobResult } from '../scheduler.js';
import { bodyObject, optBool, optNumber, optObject, optStops, optString, type Body, type NumberRule } from '../validate.js';

export const OLLAMA_VERSION = '0.6.4';

/**
 * A sampling option read as Ollama reads it: a float32 (its options are Go float32s). A value too
 * small for a float32 is 0 there: a temperature of 1e-320 is greedy, not an overflow of 1/T.
 */
function float32Option(o: Body, name: string, rule: NumberRule): number | undefined {
  const value = optNumber(o, name, rule);
  return value === undefined ? undefined : Math.fround(value);
}

/**
 * `repeat_penalty` > 0 as a float32: a penalty that rounds to 0 or to infinity divides or
 * multiplies a logit out of range (every token then looks banned: 500), so it is refused.
 */
function repeatPenaltyOption(o: Body): number | undefined {
  const penalty = float32Option(o, 'repeat_penalty', { min: 0, above: true });
  if (penalty !== undefined && !(penalty > 0 && Number.isFinite(penalty))) {
    throw new ApiError(400, `repeat_penalty must be a positive float32, got ${String(o.repeat_penalty)}`, 'repeat_penalty');
  }
  return penalty;
}

function optionsOf(b: Body, maxTokensCap: number): { sampling: SamplingOptions; maxTokens?: number; stop?: string[]; reasoningBudget?: number } {
  const o = optObject(b, 'options') ?? {};
  const sampling: SamplingOptions = {};
  const set = <K extends keyof SamplingOptions>(key: K, value: SamplingOptions[K] | undefined): void => {
    if (value !== undefined) sampling[key] = value;
  };
  set('temperature', float32Option(o, 'temperature', { min: 0, max: 2 }));
  set('topP', optNumber(o, 'top_p', { min: 0, max: 1, above: true }));
  set('topK', optNumber(o, 'top_k', { min: 0, integer: true }));
  set('minP', optNumber(o, 'min_p', { min: 0, max: 1 }));
  set('repetitionPenalty', repeatPenaltyOption(o));
  set('frequencyPenalty', optNumber(o, 'frequency_penalty', { min: -2, max: 2 }));
  set('presencePenalty', optNumber(o, 'presence_penalty', { min: -2, max: 2 }));
  const seed = optNumber(o, 'seed', { integer: true });
  if (seed !== undefined) sampling.seed = seed >>> 0;
  const numPredict = optNumber(o, 'num_predict', { integer: true });
  const out: ReturnType<typeof optionsOf> = { sampling };
  // Ollama's num_predict is only an upper bound (-1: no limit, -2: fill the context): a large one
  // is answered up to the server's cap, not refused
  if (numPredict !== undefined && numPredict > 0) out.maxTokens = Math.min(numPredict, maxTokensCap);
  const stop = optStops(o);
  if (stop) out.stop = stop;
  const budget = optNumber(o, 'reasoning_budget', { integer: true, min: 0 });
  if (budget !== undefined) out.reasoningBudget = budget;
  return out;
}

/** `think`: true/false, or a level (any level means thinking); unset: the model's default (on). */
function thinkOf(b: Body, fallback: boolean): boolean {
  const t = b.think;
  if (t === undefined || t === null) return fallback;
  if (typeof t === 'boolean') return t;
  if (t === 'low' || t === 'medium' || t === 'high') return true;
  throw new ApiError(400, 'think must be true, false, "low", "medium" or "high"', 'think');
}

function parseMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) throw new ApiError(400, 'messages must be a non-empty array', 'messages');
  return value.map((raw, i) => {
    const m = raw as Body | null;
    if (!m || typeof m !== 'object' || !['system', 'user', 'assistant', 'tool'].includes(m.role as string)) {
      throw new ApiError(400, `messages[${i}] must be an object with role system, user, assistant or tool`, `messages[${i}]`);
    }
    const role = m.role as ChatMessage['role'];
    if (Array.isArray(m.images) && m.images.length > 0) throw new ApiError(400, `messages[${i}].images: the models served here read text only`, `messages[${i}].images`);
    const calls = role === 'assistant' && Array.isArray(m.tool_calls) ? m.tool_calls : undefined;
    // Ollama decodes a missing or null content as "" (a Go string): only another type is refused
    if (m.content !== undefined && m.content !== null && typeof m.content !== 'string') {
      throw new ApiError(400, `messages[${i}].content must be a string`, `messages[${i}].content`);
    }
    const message: ChatMessage = { role, content: typeof m.content === 'string' ? m.content : calls ? null : '' };
    // Ollama's calls: {function: {name, arguments: {...}}} (arguments an object; a JSON string is taken too)
    if (calls) message.tool_calls = historyToolCalls(calls, i);
    return message;
  });
}

/** Tool calls in Ollama's shape (arguments as an object), or none when the content holds no well-formed call. */
function ollamaToolCalls(content: string): { content: string; calls: Body[] } {
  const parsed = parseToolCalls(content);
  return { content: parsed.content, calls: parsed.calls.map((c) => ({ function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown } })) };
}

/**
 * `context` (deprecated by Ollama, still sent by older clients to continue a /api/generate
 * conversation): the token ids an earlier answer returned; none when absent.
 */
function contextIds(b: Body, vocabSize: number): number[] {
  const value = b.context;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((id) => Number.isInteger(id) && (id as number) >= 0 && (id as number) < vocabSize)) {
    throw new ApiError(400, `context must be an array of token ids (integers 0..${vocabSize - 1}) from an earlier answer`, 'context');
  }
  return value as number[];
}

/**
 * The prompt continuing an earlier conversation: its tokens, then the new prompt's (without the
 * new prompt's BOS, which the earlier one already starts with), as Ollama prepends the context.
 */
function afterContext(tokenizer: GenerationTokenizer, earlier: readonly number[], prompt: Int32Array): Int32Array {
  if (earlier.length === 0) return prompt;
  const bos = Array.from(tokenizer.encode('', { addSpecialTokens: true }));
  const startsWithBos = bos.length > 0 && bos.every((id, i) => prompt[i] === id);
  return Int32Array.from([...earlier, ...(startsWithBos ? prompt.subarray(bos.length) : prompt)]);
}

const ns = (ms: number): number => Math.round(ms * 1e6);

function finalStats(result: JobResult, totalMs: number): Body {
  const { usage, timings, finishReason } = result.done;
  return {
    done: true,
    done_reason: finishReason === 'length' ? 'length' : 'stop',
    total_duration: ns(totalMs),
    load_duration: 0,
    prompt_eval_count: usage.promptTokens,
    prompt_eval_duration: ns(timings.prefillMs),
    eval_count: usage.completionTokens,
    eval_duration: ns(timings.decodeMs),
  };
}

async function ollamaGenerate(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply, kind: 'chat' | 'generate'): Promise<unknown> {
  const started = performance.now();
  ctx.checkPaused();
  const principal = ctx.principal(request);
  const b = bodyObject(request.body);
  checkNesting(b);
  const modelName = b.model;
  const resolved = ctx.registry.resolve(modelName);
  const stream = optBool(b, 'stream') ?? true;
  const opts = optionsOf(b, ctx.settings.maxTokensCap);
  const format = b.format;
  if (format !== undefined && format !== null && format !== '' && format !== 'json' && typeof format !== 'object') throw new ApiError(400, 'format must be "json" or a JSON schema object', 'format');
  const json = format === 'json' ? true : typeof format === 'object' && format !== null ? (checkJsonSchema(format, 'format') as Exclude<JsonSchema, boolean>) : false;
  // Ollama's load request (the ollama CLI sends one before a chat): no prompt, or no messages;
  // with keep_alive 0 it unloads the model instead (`ollama stop`)
  // (null is absent, as Go decodes it: a prompt of null is a load request too)
  const absent = (value: unknown): boolean => value === undefined || value === null;
  const load = kind === 'chat' ? absent(b.messages) || (Array.isArray(b.messages) && b.messages.length === 0) : (absent(b.prompt) || b.prompt === '') && absent(b.suffix);
  if (load) {
    const unload = b.keep_alive === 0 || (typeof b.keep_alive === 'string' && /^0+(\.0*)?[smh]?$/.test(b.keep_alive));
    if (unload) ctx.registry.unload(resolved.id);
    else ctx.registry.get(resolved.id);
    const loaded = { model: modelName, created_at: new Date().toISOString(), done: true, done_reason: unload ? 'unload' : 'load' };
    return reply.send(kind === 'chat' ? { ...loaded, message: { role: 'assistant', content: '' } } : { ...loaded, response: '' });
  }
  const served = ctx.registry.get(resolved.id);
  const thinking = thinkOf(b, resolved.thinking);
  const template = templateOption(served.loaded.chatTemplate);
  const tools = kind === 'chat' && b.tools !== undefined && b.tools !== null ? parseToolDefinitions(b.tools) : [];
  let prompt: Int32Array;
  let thinkingMode: GenerationPlan['thinking'];
  if (kind === 'chat') {
    const messages = parseMessages(b.messages);
    const plan = buildChatPrompt(served.tokenizer, { messages, thinking, ...(tools.length > 0 ? { tools } : {}), ...template });
    prompt = encodePrompt(served.tokenizer, plan);
    thinkingMode = plan.thinking;
  } else {
    if (Array.isArray(b.images) && b.images.length > 0) throw new ApiError(400, 'images: the models served here read text only', 'images');
    const earlier = contextIds(b, served.model.info.vocabSize);
    const text = optString(b, 'prompt') ?? '';
    const system = optString(b, 'system');
    const suffix = optString(b, 'suffix');
    if (suffix !== undefined) {
      // fill in the middle (code completion): the text between prompt and suffix, no thought
      prompt = fimPrompt(served.tokenizer, text, suffix);
      thinkingMode = 'off';
    } else if (optBool(b, 'raw')) {
      prompt = Int32Array.from(served.tokenizer.encode(text, { addSpecialTokens: true, parseSpecial: false }));
      thinkingMode = 'off';
    } else {
      const messages: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
      messages.push({ role: 'user', content: text });
      const plan = buildChatPrompt(served.tokenizer, { messages, thinking, ...template });
      prompt = afterContext(served.tokenizer, earlier, encodePrompt(served.tokenizer, plan));
      thinkingMode = plan.thinking;
    }
  }
  // the tokens this answer returns as `context` (Ollama returns none for a raw prompt)
  const returnsContext = kind === 'generate' && !optBool(b, 'raw');
  const generated: number[] = [];
  const plan: GenerationPlan = {
    served, prompt, thinking: thinkingMode, sampling: opts.sampling, stop: opts.stop, reasoningBudget: opts.reasoningBudget, json,
    maxTokens: resolveMaxTokens(ctx, served, prompt.length, opts.maxTokens, 'options.num_predict', kind === 'chat' ? 'messages' : 'prompt'),
  };
  const admission = admit(ctx, principal, plan);
  const controller = disconnectSignal(reply);
  const createdAt = (): string => new Date().toISOString();
  const piece = (channel: 'reasoning' | 'content', text: string): Body =>
    kind === 'chat'
      ? { model: modelName, created_at: createdAt(), message: { role: 'assistant', content: channel === 'content' ? text : '', ...(channel === 'reasoning' ? { thinking: text } : {}) }, done: false }
      : { model: modelName, created_at: createdAt(), response: channel === 'content' ? text : '', ...(channel === 'reasoning' ? { thinking: text } : {}), done: false };
  let reasoning = '';
  let content = '';
  const out = stream ? new EventStream(reply, 'ndjson') : undefined;
  try {
    const result = await admission.run({
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'token' && returnsContext) generated.push(e.id);
        if (e.type === 'done' || e.text === '') return;
        if (e.channel === 'reasoning') reasoning += e.text;
        else content += e.text;
        // with tools the content is held: it may turn out to be a call
        if (e.channel === 'reasoning' || tools.length === 0) out?.send(piece(e.channel, e.text));
      },
    });
    const stats = finalStats(result, performance.now() - started);
    const called = tools.length > 0 ? ollamaToolCalls(content) : { content, calls: [] };
    // streamed: the final message carries only what was held back (a tools answer's content or calls)
    const finalContent = out && tools.length === 0 ? '' : called.content;
    const final: Body =
      kind === 'chat'
        ? {
          model: modelName, created_at: createdAt(),
          message: { role: 'assistant', content: finalContent, ...(!out && reasoning ? { thinking: reasoning } : {}), ...(called.calls.length > 0 ? { tool_calls: called.calls } : {}) },
          ...stats,
        }
        : { model: modelName, created_at: createdAt(), response: out ? '' : content, ...(!out && reasoning ? { thinking: reasoning } : {}), ...stats, context: returnsContext ? [...prompt, ...generated] : [] };
    if (!out) return reply.send(final);
    out.send(final);
  } catch (error) {
    if (!out) throw error;
    out.send({ error: (error as Error).message });
  }
  out.end();
  return reply;
}

/**
 * Ollama answers a request it refuses with 400 (or 404 for an unknown model); it has no 422. The
 * shared checks (validate.ts, the schema and tool checks) split 400/422 as DeepSeek does, so a
 * 422 of theirs is answered 400 here.
 */
async function withOllamaStatus<T>(handler: () => Promise<T>): Promise<T> {
  try {
    return await handler();
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) throw new ApiError(400, error.message, error.param, error.code, error.retryAfter);
    throw error;
  }
}

export function registerOllamaRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/chat', (req, reply) => withOllamaStatus(() => ollamaGenerate(ctx, req, reply, 'chat')));
  app.post('/api/generate', (req, reply) => withOllamaStatus(() => ollamaGenerate(ctx, req, reply, 'generate')));
  app.get('/api/version', async () => ({ version: OLLAMA_VERSION }));
  app.get('/api/tags', async (req) => {
    ctx.principal(req);
    return {
      models: ctx.registry.ids().map((id) => {
        const config = ctx.registry.config(id)!;
        const file = modelFileFacts(config.path);
        return {
          name: `${id}:latest`, model: `${id}:latest`, modified_at: file.modified, size: file.size, digest: '',
          details: detailsOf(ctx.registry.isLoaded(id) ? ctx.registry.get(id).model.info : undefined, file),
          path: config.path,
        };
      }),
    };
  });
  // the loaded models (Ollama's "running" list); they stay loaded until the memory budget needs room
  app.get('/api/ps', async (req) => {
    ctx.principal(req);
    return {
      models: ctx.registry.loadedModels().map((served) => {
        const info = served.model.info;
        return {
          name: `${served.id}:latest`, model: `${served.id}:latest`, size: served.bytes, digest: '', size_vram: 0,
          expires_at: new Date(Date.UTC(9999, 0, 1)).toISOString(), context_length: served.contextLength,
          details: detailsOf(info, modelFileFacts(ctx.registry.config(served.id)?.path ?? '')),
        };
      }),
    };
  });
  app.post('/api/show', async (req) => {
    ctx.principal(req);
    const b = bodyObject(req.body);
    const resolved = ctx.registry.resolve(b.model ?? b.name);
    const served = ctx.registry.get(resolved.id);
    const info = served.model.info;
    const file = modelFileFacts(ctx.registry.config(served.id)?.path ?? '');
    return {
      modelfile: '', parameters: '', template: served.loaded.chatTemplate ?? '',
      details: detailsOf(info, file), modified_at: file.modified,
      model_info: { 'general.architecture': info.architecture, 'general.parameter_count': info.parameterCount, [`${info.architecture}.context_length`]: info.contextLength, [`${info.architecture}.vocab_size`]: info.vocabSize },
      capabilities: ['completion', 'tools', 'thinking', 'insert'],
    };
  });
}

/** What /api/tags, /api/ps and /api/show report about a model file, as Ollama does. */
export interface FileFacts {
  size: number;
  modified: string;
  /** general.architecture ('' when unknown). */
  family: string;
  /** Weights in the file, as Ollama writes them: "1.6M", "7.6B" ('' when unknown). */
  parameterSize: string;
  /** The file type (general.file_type) as llama.cpp names it, else the weight matrices' own type: "F32", "Q4_K_M" ('' when unknown). */
  quantizationLevel: string;
}

export function parameterSizeText(count: number): string {
  if (count <= 0) return '';
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  return `${(count / 1e3).toFixed(1)}K`;
}

/** Ollama's `details` of a model: the file's facts, the loaded engine's (`info`) where the file has none. */
function detailsOf(info: { architecture: string; parameterCount: number } | undefined, file: FileFacts): Record<string, unknown> {
  const family = file.family || info?.architecture || '';
  const parameterSize = file.parameterSize || (info ? parameterSizeText(info.parameterCount) : '');
  return { parent_model: '', format: 'gguf', family, families: family ? [family] : null, parameter_size: parameterSize, quantization_level: file.quantizationLevel };
}

const factsCache = new Map<string, { key: string; facts: FileFacts }>();

/**
 * A model file's size, modification time and GGUF header facts (read once per file version; the
 * header only). Models built in memory, directories and unreadable files get zeros and ''.
 */
export function modelFileFacts(path: string): FileFacts {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return { size: 0, modified: new Date(0).toISOString(), family: '', parameterSize: '', quantizationLevel: '' };
  }
  const base = { size: stat.isFile() ? stat.size : 0, modified: stat.mtime.toISOString(), family: '', parameterSize: '', quantizationLevel: '' };
  const key = `${stat.size}:${stat.mtimeMs}`;
  const cached = factsCache.get(path);
  if (cached?.key === key) return cached.facts;
  let facts: FileFacts = base;
  if (stat.isFile()) {
    try {
      const file = openGguf(path);
      try {
        const architecture = file.value('general.architecture');
        const fileType = file.value('general.file_type');
        const matrices = file.tensors.filter((t) => t.dims.length >= 2);
        const counts = new Map<string, number>();
        for (const t of matrices) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + t.elements);
        const mostly = [...counts].sort((x, y) => y[1] - x[1])[0]?.[0] ?? '';
        facts = {
          ...base,
          family: typeof architecture === 'string' ? architecture : '',
          parameterSize: parameterSizeText(file.tensors.reduce((sum, t) => sum + t.elements, 0)),
          quantizationLevel: (typeof fileType === 'number' ? llamaFileTypeName(fileType) : undefined) ?? mostly.toUpperCase(),
        };
      } finally {
        file.close();
      }
    } catch {
      // not a GGUF file we can read: size and time only
    }
  }
  factsCache.set(path, { key, facts });
  return facts;
}
