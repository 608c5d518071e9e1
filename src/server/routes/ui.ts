/**
 * The web UI's API (contract in /tmp/server-contract.md): config, the user's conversations, and
 * POST /ui/conversations/:id/messages, which stores the user message, streams the answer as SSE
 * events (start, reasoning, content, done | error) and stores the assistant message afterwards,
 * partial with finish_reason "abort" when the client went away.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../tokenizer/chat-template.js';
import type { ServerContext } from '../context.js';
import { ApiError } from '../errors.js';
import { admit, disconnectSignal, resolveMaxTokens, type GenerationPlan } from '../generation.js';
import { buildChatPrompt, encodePrompt } from '../prompt.js';
import { EventStream } from '../sse.js';
import type { ConversationRow, MessageRow } from '../store.js';
import { bodyObject, optNumber, optString } from '../validate.js';

type IdParams = { Params: { id: string } };

function conversationOf(ctx: ServerContext, request: FastifyRequest<IdParams>): { conversation: ConversationRow; userId: number } {
  const user = ctx.uiUser(ctx.principal(request));
  const conversation = ctx.store.conversation(request.params.id, user.id);
  if (!conversation) throw new ApiError(404, `no conversation ${request.params.id}`, 'id');
  return { conversation, userId: user.id };
}

async function postMessage(ctx: ServerContext, request: FastifyRequest<IdParams>, reply: FastifyReply): Promise<unknown> {
  ctx.checkPaused();
  const principal = ctx.principal(request);
  const { conversation } = conversationOf(ctx, request);
  const b = bodyObject(request.body);
  const content = b.content;
  if (typeof content !== 'string' || content.trim() === '') throw new ApiError(400, 'content must be a non-empty string', 'content');
  const modelName = optString(b, 'model') ?? conversation.model;
  const resolved = ctx.registry.resolve(modelName);
  const served = ctx.registry.get(resolved.id);
  const history: ChatMessage[] = ctx.store.messages(conversation.id).map((m) => ({ role: m.role, content: m.content }));
  history.push({ role: 'user', content });
  const promptPlan = buildChatPrompt(served.tokenizer, { messages: history, thinking: resolved.thinking });
  const prompt = encodePrompt(served.tokenizer, promptPlan);
  const temperature = optNumber(b, 'temperature', { min: 0, max: 2 });
  const plan: GenerationPlan = {
    served, prompt, thinking: promptPlan.thinking,
    sampling: temperature === undefined ? { temperature: 0.6, topP: 0.95 } : { temperature, topP: 0.95 },
    reasoningBudget: optNumber(b, 'reasoning_budget', { integer: true, min: 0 }),
    maxTokens: resolveMaxTokens(ctx, served, prompt.length, optNumber(b, 'max_tokens', { integer: true, min: 1 })),
  };
  const admission = admit(ctx, principal, plan);
  let userMessage: MessageRow;
  try {
    userMessage = ctx.store.addMessage({ id: randomUUID(), conversation_id: conversation.id, role: 'user', content, reasoning_content: '', reasoning_ms: null, finish_reason: null });
  } catch (error) {
    admission.cancel();
    throw error;
  }
  const assistantId = randomUUID();
  const controller = disconnectSignal(reply);
  const stream = new EventStream(reply);
  if (ctx.scheduler.activeCount >= ctx.scheduler.maxActive) stream.keepAlive(ctx.settings.keepAliveMs);
  stream.send({ type: 'start', user_message_id: userMessage.id, assistant_message_id: assistantId });
  let reasoning = '';
  let answer = '';
  let reasoningStart: number | undefined;
  let reasoningEnd: number | undefined;
  const save = (finish: string): MessageRow => {
    const reasoningMs = reasoningStart === undefined ? null : Math.round((reasoningEnd ?? performance.now()) - reasoningStart);
    return ctx.store.addMessage({ id: assistantId, conversation_id: conversation.id, role: 'assistant', content: answer, reasoning_content: reasoning, reasoning_ms: reasoningMs, finish_reason: finish });
  };
  try {
    const result = await admission.run({
      signal: controller.signal,
      onStart: () => stream.stopKeepAlive(),
      onEvent: (e) => {
        if (e.type === 'done' || e.text === '') return;
        if (e.channel === 'reasoning') {
          reasoningStart ??= performance.now();
          reasoning += e.text;
          stream.send({ type: 'reasoning', text: e.text });
        } else {
          if (reasoningStart !== undefined) reasoningEnd ??= performance.now();
          answer += e.text;
          stream.send({ type: 'content', text: e.text });
        }
      },
    });
    const saved = save(result.done.finishReason);
    const u = result.done.usage;
    stream.send({
      type: 'done', finish_reason: result.done.finishReason, reasoning_ms: saved.reasoning_ms,
      usage: { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, reasoning_tokens: u.reasoningTokens },
    });
  } catch (error) {
    save('error');
    stream.send({ type: 'error', message: (error as Error).message });
  }
  stream.end();
  return reply;
}

export function registerUiRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/ui/config', async () => ({
    models: ctx.registry.ids().map((id) => ({ id, name: id, default: id === ctx.registry.defaultId })),
    auth_required: ctx.settings.authRequired,
    registration: ctx.store.registrationPolicy(),
  }));
  app.get('/ui/conversations', async (req) => {
    const user = ctx.uiUser(ctx.principal(req));
    return { conversations: ctx.store.conversations(user.id).map(({ user_id: _, ...c }) => c) };
  });
  app.post('/ui/conversations', async (req, reply) => {
    const user = ctx.uiUser(ctx.principal(req));
    const b = req.body === undefined ? {} : bodyObject(req.body);
    const title = optString(b, 'title') ?? '';
    if (title.length > 200) throw new ApiError(422, 'title must be at most 200 characters', 'title');
    const model = optString(b, 'model') ?? ctx.registry.defaultId;
    ctx.registry.resolve(model);
    const { user_id: _, ...conversation } = ctx.store.createConversation(randomUUID(), user.id, title, model);
    return reply.status(201).send({ conversation });
  });
  app.get<IdParams>('/ui/conversations/:id', async (req) => {
    const { conversation } = conversationOf(ctx, req);
    const { user_id: _, ...c } = conversation;
    return { conversation: c, messages: ctx.store.messages(conversation.id).map(({ conversation_id: __, ...m }) => m) };
  });
  app.delete<IdParams>('/ui/conversations/:id', async (req, reply) => {
    const { conversation, userId } = conversationOf(ctx, req);
    ctx.store.deleteConversation(conversation.id, userId);
    return reply.status(204).send();
  });
  app.post<IdParams>('/ui/conversations/:id/messages', (req, reply) => postMessage(ctx, req, reply));
}
