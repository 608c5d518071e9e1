/**
 * OpenAI's Responses API: POST /v1/responses (also /responses), the API that OpenAI's SDKs and
 * the AI SDK's `openai` provider now default to (../shared/spec/formats-and-api.md §5.9). It runs
 * on the same generation as chat completions; the thought becomes a `reasoning` output item
 * (its text as `reasoning_text` content), the answer a `message` item with `output_text`, and
 * tool calls `function_call` items. Streaming sends named SSE events in the documented order,
 * each with a `sequence_number`, and no `[DONE]`.
 *
 * Stateless: `previous_response_id` is refused (send the conversation in `input`); `store` is
 * accepted and nothing is stored. Text input only.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DoneEvent, GenerationEvent } from '../../generate/events.js';
import type { ChatMessage } from '../../tokenizer/chat-template.js';
import type { ServerContext } from '../context.js';
import { ApiError, checkNesting } from '../errors.js';
import { admit, disconnectSignal, resolveMaxTokens, runToText, type GenerationPlan } from '../generation.js';
import { checkJsonSchema, type JsonSchema } from '../json-schema.js';
import { buildChatPrompt, encodePrompt, templateOption } from '../prompt.js';
import { mustWait, sendJsonAnswer } from '../json-wait.js';
import { EventStream } from '../sse.js';
import { answerToolCalls, forcedToolSchema, historyToolCalls, type ParsedToolCall, parseTools, type ToolUse } from '../tools.js';
import { bodyObject, optBool, optNumber, optObject, optString, type Body } from '../validate.js';
import { samplingOf } from './openai.js';

const ROLES: Record<string, ChatMessage['role']> = { user: 'user', system: 'system', developer: 'system', assistant: 'assistant' };

/** A message's content: a string or an array of text parts (input_text, output_text, text). */
function itemText(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) throw new ApiError(400, `${where}.content must be a string or an array of text parts`, where);
  return value.map((part, j) => {
    const p = part as Body | null;
    if (p && ['input_text', 'output_text', 'text'].includes(p.type as string) && typeof p.text === 'string') return p.text;
    throw new ApiError(400, `${where}.content[${j}] must be an input_text part (only text is supported here)`, `${where}.content`);
  }).join('');
}

/** `instructions` and `input` as chat messages: text messages, earlier function calls and their outputs; reasoning items are dropped. */
function inputMessages(b: Body): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const instructions = optString(b, 'instructions');
  if (instructions) messages.push({ role: 'system', content: instructions });
  const input = b.input;
  if (typeof input === 'string') {
    messages.push({ role: 'user', content: input });
  } else if (Array.isArray(input)) {
    input.forEach((raw, i) => {
      const where = `input[${i}]`;
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ApiError(400, `${where} must be an object`, where);
      const item = raw as Body;
      const type = item.type ?? 'message';
      if (type === 'message') {
        const role = ROLES[item.role as string];
        if (!role) throw new ApiError(400, `${where}.role must be user, system, developer or assistant; got ${JSON.stringify(item.role)}`, `${where}.role`);
        messages.push({ role, content: itemText(item.content, where) });
      } else if (type === 'function_call') {
        // checked here so that the error names the Responses field (historyToolCalls names a chat message's)
        if (typeof item.name !== 'string') throw new ApiError(400, `${where}.name must be a string`, `${where}.name`);
        const [call] = historyToolCalls([{ id: item.call_id, function: { name: item.name, arguments: item.arguments } }], i);
        const last = messages[messages.length - 1];
        if (last?.role === 'assistant' && last.tool_calls && last.content === null) last.tool_calls.push(call!);
        else messages.push({ role: 'assistant', content: null, tool_calls: [call!] });
      } else if (type === 'function_call_output') {
        const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '');
        messages.push({ role: 'tool', content: output, ...(typeof item.call_id === 'string' ? { tool_call_id: item.call_id } : {}) });
      } else if (type !== 'reasoning') {
        throw new ApiError(400, `${where}.type ${JSON.stringify(type)} is not supported (message, function_call, function_call_output, reasoning)`, `${where}.type`);
      }
    });
  } else {
    throw new ApiError(400, 'input must be a string or an array of input items', 'input');
  }
  if (!messages.some((m) => m.role !== 'system')) throw new ApiError(400, 'input must hold at least one message', 'input');
  return messages;
}

/** Responses-shape tools ({"type": "function", "name", "parameters"}) and tool_choice, as the chat route's. */
function responseTools(b: Body): ToolUse {
  const raw = b.tools;
  const tools = Array.isArray(raw)
    ? raw.map((t, i) => {
      const tool = t as Body | null;
      if (tool?.type !== 'function') throw new ApiError(400, `tools[${i}] must be {"type": "function", "name": ..., "parameters": ...} (function tools only)`, `tools[${i}]`);
      return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } };
    })
    : raw;
  const choice = b.tool_choice;
  const chatChoice = choice && typeof choice === 'object' ? { type: 'function', function: { name: (choice as Body).name } } : choice;
  return parseTools({ tools, tool_choice: chatChoice });
}

/** The JSON constraint of `text.format`: json_object, json_schema (its schema), or none. */
function textFormat(b: Body): boolean | Exclude<JsonSchema, boolean> {
  const format = optObject(optObject(b, 'text') ?? {}, 'format');
  const type = format ? optString(format, 'type') ?? 'text' : 'text';
  if (type === 'text') return false;
  if (type === 'json_object') return true;
  if (type === 'json_schema') return checkJsonSchema(format!.schema, 'text.format.schema') as Exclude<JsonSchema, boolean>;
  throw new ApiError(422, `text.format.type must be "text", "json_object" or "json_schema", got "${type}"`, 'text.format');
}

function usageOf(done: DoneEvent): Body {
  const u = done.usage;
  return {
    input_tokens: u.promptTokens, input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens, output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

const reasoningItem = (id: string, text: string, status: string): Body => ({ type: 'reasoning', id, summary: [], content: [{ type: 'reasoning_text', text }], status });
const messageItem = (id: string, text: string, status: string): Body => ({
  type: 'message', id, role: 'assistant', status, content: [{ type: 'output_text', text, annotations: [] }],
});
const callItem = (call: ParsedToolCall, status: string): Body => ({
  type: 'function_call', id: `fc_${call.id}`, call_id: call.id, name: call.function.name, arguments: call.function.arguments, status,
});

async function responses(ctx: ServerContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  ctx.checkPaused();
  const principal = ctx.principal(request);
  const b = bodyObject(request.body);
  checkNesting(b);
  if (b.model === undefined) throw new ApiError(400, 'model is required', 'model');
  if (b.previous_response_id !== undefined && b.previous_response_id !== null) {
    throw new ApiError(400, 'previous_response_id is not supported: this server keeps no responses; send the whole conversation in input', 'previous_response_id');
  }
  const resolved = ctx.registry.resolve(b.model);
  const messages = inputMessages(b);
  const stream = optBool(b, 'stream') ?? false;
  const tools = responseTools(b);
  const format = textFormat(b);
  const served = ctx.registry.get(resolved.id);
  const promptPlan = buildChatPrompt(served.tokenizer, {
    messages, thinking: resolved.thinking,
    ...(tools.tools ? { tools: tools.tools } : {}),
    ...(tools.forced !== undefined ? { forcedTool: tools.forced } : {}),
    ...templateOption(served.loaded.chatTemplate),
  });
  const prompt = encodePrompt(served.tokenizer, promptPlan);
  const plan: GenerationPlan = {
    served, prompt, thinking: promptPlan.thinking,
    maxTokens: resolveMaxTokens(ctx, served, prompt.length, optNumber(b, 'max_output_tokens', { integer: true, min: 1 }), 'max_output_tokens', 'input'),
    sampling: samplingOf(b),
    json: forcedToolSchema(tools) ?? (tools.forced !== undefined || format),
  };
  const admission = admit(ctx, principal, plan);
  const controller = disconnectSignal(reply);
  const id = `resp_${randomUUID().replaceAll('-', '')}`;
  const reasoningId = `rs_${randomUUID().replaceAll('-', '')}`;
  const messageId = `msg_${randomUUID().replaceAll('-', '')}`;
  const createdAt = Math.floor(Date.now() / 1000);
  const envelope = (status: string, output: Body[], done?: DoneEvent): Body => ({
    id, object: 'response', created_at: createdAt, status, model: b.model, output,
    error: null, incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null, max_output_tokens: plan.maxTokens, parallel_tool_calls: true, previous_response_id: null,
    reasoning: { effort: null, summary: null }, store: false, temperature: plan.sampling.temperature ?? null,
    text: { format: { type: format === false ? 'text' : format === true ? 'json_object' : 'json_schema' } },
    tool_choice: tools.forced !== undefined ? { type: 'function', name: tools.forced } : tools.use ? 'auto' : 'none',
    tools: Array.isArray(b.tools) ? b.tools : [], top_p: plan.sampling.topP ?? null, truncation: 'disabled', usage: done ? usageOf(done) : null, metadata: {},
  });
  /** The finished output items: the thought, the answer (or the calls), given the texts. */
  const finalOutput = (reasoning: string, content: string): { output: Body[]; calls: number } => {
    const { content: answer, calls } = answerToolCalls(content, tools);
    const output: Body[] = [];
    if (reasoning !== '') output.push(reasoningItem(reasoningId, reasoning, 'completed'));
    if (answer !== '' || calls.length === 0) output.push(messageItem(messageId, answer, 'completed'));
    for (const call of calls) output.push(callItem(call, 'completed'));
    return { output, calls: calls.length };
  };
  const statusOf = (done: DoneEvent): string => (done.finishReason === 'length' ? 'incomplete' : 'completed');

  if (!stream) {
    // blank lines before the JSON while the request waits in the queue (json-wait.ts)
    return sendJsonAnswer(ctx, reply, async (onStart) => {
      const { result, reasoning, content } = await runToText(admission, { signal: controller.signal, onStart });
      return envelope(statusOf(result.done), finalOutput(reasoning, content).output, result.done);
    });
  }

  const events = new EventStream(reply, 'sse', false);
  if (mustWait(ctx)) events.keepAlive(ctx.settings.keepAliveMs);
  let sequence = 0;
  const emit = (type: string, fields: Body): void => events.send({ type, sequence_number: sequence++, ...fields }, type);
  /** The item being streamed: the thought (index 0) or the answer (the next index); undefined before the first text. */
  let open: { kind: 'reasoning' | 'message'; index: number; text: string } | undefined;
  let nextIndex = 0;
  let reasoning = '';
  let content = '';
  const holdContent = tools.use || tools.forced !== undefined;
  const close = (): void => {
    if (!open) return;
    const { kind, index, text } = open;
    if (kind === 'reasoning') {
      emit('response.reasoning_text.done', { item_id: reasoningId, output_index: index, content_index: 0, text });
      emit('response.content_part.done', { item_id: reasoningId, output_index: index, content_index: 0, part: { type: 'reasoning_text', text } });
      emit('response.output_item.done', { output_index: index, item: reasoningItem(reasoningId, text, 'completed') });
    } else {
      emit('response.output_text.done', { item_id: messageId, output_index: index, content_index: 0, text, logprobs: [] });
      emit('response.content_part.done', { item_id: messageId, output_index: index, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
      emit('response.output_item.done', { output_index: index, item: messageItem(messageId, text, 'completed') });
    }
    open = undefined;
  };
  const openItem = (kind: 'reasoning' | 'message'): void => {
    close();
    open = { kind, index: nextIndex++, text: '' };
    if (kind === 'reasoning') {
      emit('response.output_item.added', { output_index: open.index, item: { type: 'reasoning', id: reasoningId, summary: [], content: [], status: 'in_progress' } });
      emit('response.content_part.added', { item_id: reasoningId, output_index: open.index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
    } else {
      emit('response.output_item.added', { output_index: open.index, item: { type: 'message', id: messageId, role: 'assistant', status: 'in_progress', content: [] } });
      emit('response.content_part.added', { item_id: messageId, output_index: open.index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    }
  };
  const onEvent = (e: GenerationEvent): void => {
    if (e.type === 'done' || e.text === '') return;
    if (e.channel === 'reasoning') {
      reasoning += e.text;
      if (open?.kind !== 'reasoning') openItem('reasoning');
      open!.text += e.text;
      emit('response.reasoning_text.delta', { item_id: reasoningId, output_index: open!.index, content_index: 0, delta: e.text });
      return;
    }
    content += e.text;
    if (holdContent) return;
    if (open?.kind !== 'message') openItem('message');
    open!.text += e.text;
    emit('response.output_text.delta', { item_id: messageId, output_index: open!.index, content_index: 0, delta: e.text, logprobs: [] });
  };
  try {
    const result = await admission.run({
      signal: controller.signal,
      onStart: () => {
        events.stopKeepAlive();
        events.sendWithNext({ type: 'response.created', sequence_number: sequence++, response: envelope('in_progress', []) }, 'response.created');
        emit('response.in_progress', { response: envelope('in_progress', []) });
      },
      onEvent,
    });
    if (result.done.finishReason === 'abort') return events.end();
    events.holdUntilEnd();
    if (holdContent) {
      close();
      const { content: answer, calls } = answerToolCalls(content, tools);
      if (answer !== '') {
        openItem('message');
        open!.text = answer;
        emit('response.output_text.delta', { item_id: messageId, output_index: open!.index, content_index: 0, delta: answer, logprobs: [] });
      }
      close();
      for (const call of calls) {
        const index = nextIndex++;
        emit('response.output_item.added', { output_index: index, item: callItem({ ...call, function: { ...call.function, arguments: '' } }, 'in_progress') });
        emit('response.function_call_arguments.delta', { item_id: `fc_${call.id}`, output_index: index, delta: call.function.arguments });
        emit('response.function_call_arguments.done', { item_id: `fc_${call.id}`, output_index: index, arguments: call.function.arguments });
        emit('response.output_item.done', { output_index: index, item: callItem(call, 'completed') });
      }
      if (answer === '' && calls.length === 0) {
        openItem('message');
        close();
      }
    } else {
      if (content === '') openItem('message');
      close();
    }
    const status = statusOf(result.done);
    const output = finalOutput(reasoning, content).output;
    emit(status === 'completed' ? 'response.completed' : 'response.incomplete', { response: envelope(status, output, result.done) });
  } catch (error) {
    const e = error instanceof ApiError ? error : new ApiError(500, (error as Error).message);
    emit('error', { code: e.body().error.code, message: e.message, param: e.param });
  }
  events.end();
  return reply;
}

export function registerResponsesRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/responses', (req, reply) => responses(ctx, req, reply));
  app.post('/responses', (req, reply) => responses(ctx, req, reply));
}
