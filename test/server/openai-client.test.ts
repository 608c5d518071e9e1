/**
 * The official `openai` SDK against the server: non-streaming and streaming chat completions,
 * reasoning_content in messages and deltas, usage with cache and reasoning counts, JSON mode,
 * forced tool calls, logprobs, prefix completion and FIM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { collect, generate } from '../../src/generate/engine.js';
import { JsonValidator } from '../../src/server/json-constraint.js';
import { buildChatPrompt, encodePrompt } from '../../src/server/prompt.js';
import { loadForServing, startReasoningServer, type TestServer } from './helpers.js';

let t: TestServer;
let client: OpenAI;

before(async () => {
  ({ t, client } = await startReasoningServer());
});
after(() => t.close());

const messages = [{ role: 'user' as const, content: 'What is 2 + 2?' }];

test('non-streaming reasoner answer equals the engine run on the same prompt', async () => {
  const r = await client.chat.completions.create({ model: 'deepseek-reasoner', messages, max_tokens: 20, temperature: 0 });
  const choice = r.choices[0]!;
  const message = choice.message as typeof choice.message & { reasoning_content?: string };
  // reference: the engine alone on the prompt the server should build
  const loaded = loadForServing(t.modelPath);
  const plan = buildChatPrompt(loaded.tokenizer, { messages, thinking: true });
  const expected = await collect(generate(loaded.model, loaded.tokenizer, { prompt: encodePrompt(loaded.tokenizer, plan.text), sampling: { temperature: 0 }, maxTokens: 20, reasoningBudget: 6 }));
  assert.equal(message.reasoning_content, expected.reasoning);
  assert.equal(message.content, expected.content);
  assert.ok(expected.reasoning.length > 0, 'the thought has text');
  assert.equal(choice.finish_reason, expected.done.finishReason === 'length' ? 'length' : 'stop');
  const usage = r.usage as NonNullable<typeof r.usage> & { prompt_cache_hit_tokens: number; prompt_cache_miss_tokens: number };
  assert.equal(usage.prompt_tokens, expected.done.usage.promptTokens);
  assert.equal(usage.completion_tokens, expected.done.usage.completionTokens);
  assert.equal(usage.completion_tokens_details?.reasoning_tokens, expected.done.usage.reasoningTokens);
  assert.equal(usage.prompt_cache_hit_tokens + usage.prompt_cache_miss_tokens, usage.prompt_tokens);
  assert.match(r.id, /^[0-9a-f-]{36}$/);
  assert.equal(r.model, 'deepseek-reasoner');
});

test('streaming: reasoning deltas then content deltas, usage chunk, same text as non-streaming', async () => {
  const whole = await client.chat.completions.create({ model: 'deepseek-reasoner', messages, max_tokens: 20, temperature: 0 });
  const stream = await client.chat.completions.create({ model: 'deepseek-reasoner', messages, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let reasoning = '';
  let content = '';
  let sawContent = false;
  let finish: string | null = null;
  let usage: unknown;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    const delta = choice.delta as typeof choice.delta & { reasoning_content?: string | null };
    if (delta.reasoning_content) {
      assert.ok(!sawContent, 'reasoning after content');
      reasoning += delta.reasoning_content;
    }
    if (delta.content) {
      sawContent = true;
      content += delta.content;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  const message = whole.choices[0]!.message as { content: string | null; reasoning_content?: string };
  assert.equal(reasoning, message.reasoning_content);
  assert.equal(content, message.content);
  assert.equal(finish, whole.choices[0]!.finish_reason);
  assert.deepEqual((usage as { completion_tokens: number }).completion_tokens, whole.usage!.completion_tokens);
});

test('the prefix cache serves a repeated prompt', async () => {
  const ask = () => client.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'cache me please, a long enough prompt' }], max_tokens: 3, temperature: 0 });
  await ask();
  const second = await ask();
  const usage = second.usage as unknown as { prompt_tokens: number; prompt_cache_hit_tokens: number };
  assert.equal(usage.prompt_cache_hit_tokens, usage.prompt_tokens - 1);
});

test('deepseek-chat answers without reasoning; JSON mode output is always a valid JSON prefix, complete when it stops', async () => {
  let completed = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const r = await client.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'Reply in JSON' }], max_tokens: 60, seed, response_format: { type: 'json_object' } });
    const message = r.choices[0]!.message as { content: string; reasoning_content?: string };
    assert.equal(message.reasoning_content, undefined);
    assert.ok(new JsonValidator().push(message.content), `a JSON prefix: ${message.content}`);
    if (r.choices[0]!.finish_reason === 'stop') {
      assert.equal(typeof JSON.parse(message.content), 'object');
      completed++;
    }
  }
  assert.ok(completed > 0, 'some answers closed their object');
});

test('a forced tool call returns tool_calls with JSON arguments that follow the tool\'s parameter schema', async () => {
  let calls = 0;
  const parameters = { type: 'object', properties: { city: { type: 'string', maxLength: 6 }, days: { type: 'integer' } }, required: ['city'] };
  for (let seed = 1; seed <= 6; seed++) {
    const r = await client.chat.completions.create({
      model: 'deepseek-chat', messages: [{ role: 'user', content: 'weather in Paris?' }], max_tokens: 60, seed,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const choice = r.choices[0]!;
    if (choice.finish_reason === 'length') continue; // the random model did not close its JSON in time
    assert.equal(choice.finish_reason, 'tool_calls');
    const call = choice.message.tool_calls![0]! as { function: { name: string; arguments: string } };
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    assert.equal(typeof args.city, 'string');
    assert.ok((args.city as string).length <= 6);
    assert.ok(Object.keys(args).every((k) => k === 'city' || k === 'days'), call.function.arguments);
    if ('days' in args) assert.ok(Number.isInteger(args.days));
    calls++;
  }
  assert.ok(calls > 0, 'some calls completed');
});

test('logprobs: one entry per content token, top alternatives sorted', async () => {
  const r = await client.chat.completions.create({ model: 'deepseek-chat', messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
  const entries = r.choices[0]!.logprobs!.content!;
  assert.equal(entries.length, r.usage!.completion_tokens);
  for (const e of entries) {
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.logprob <= 0);
    // greedy: the chosen token is the most likely one
    assert.ok(Math.abs(e.logprob - e.top_logprobs[0]!.logprob) < 1e-6);
    assert.ok(e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob);
  }
});

test('prefix completion continues the assistant text (also under /beta)', async () => {
  const beta = new OpenAI({ baseURL: `${t.url}/beta`, apiKey: 'sk-local', maxRetries: 0 });
  const prefix = 'The answer is';
  const body = { model: 'deepseek-chat', messages: [...messages, { role: 'assistant', content: prefix, prefix: true }], max_tokens: 8, temperature: 0 } as never;
  const r = await beta.chat.completions.create(body);
  const loaded = loadForServing(t.modelPath);
  const plan = buildChatPrompt(loaded.tokenizer, { messages, thinking: false, prefix: { content: prefix } });
  assert.ok(plan.text.endsWith(prefix));
  const expected = await collect(generate(loaded.model, loaded.tokenizer, { prompt: encodePrompt(loaded.tokenizer, plan.text), sampling: { temperature: 0 }, maxTokens: 8, thinking: 'off' }));
  assert.equal((r as { choices: { message: { content: string } }[] }).choices[0]!.message.content, expected.content);
});

test('FIM at /beta/completions and GET /v1/models', async () => {
  const r = await fetch(`${t.url}/beta/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'deepseek-chat', prompt: 'def f(', suffix: '\n    return x', max_tokens: 5, temperature: 0 }) });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { object: string; choices: { text: string; finish_reason: string }[]; usage: { completion_tokens: number } };
  assert.equal(body.object, 'text_completion');
  assert.ok(body.usage.completion_tokens >= 1);
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  assert.ok(ids.includes('tiny') && ids.includes('deepseek-reasoner') && ids.includes('deepseek-chat'));
});

test('thinking disabled on the reasoner; a tool-call round trip renders and answers', async () => {
  const body = { model: 'deepseek-reasoner', messages, max_tokens: 6, temperature: 0, thinking: { type: 'disabled' } } as never;
  const r = (await client.chat.completions.create(body)) as { choices: { message: { content: string; reasoning_content?: string } }[]; usage: { completion_tokens_details: { reasoning_tokens: number } } };
  assert.equal(r.choices[0]!.message.reasoning_content, undefined);
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 0);
  const loop = await client.chat.completions.create({
    model: 'deepseek-chat', max_tokens: 4, temperature: 0,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
    messages: [
      { role: 'user', content: 'weather?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 21 C' },
    ],
  });
  assert.ok(['stop', 'length', 'tool_calls'].includes(loop.choices[0]!.finish_reason));
  assert.ok(loop.usage!.prompt_tokens > 0);
});

test('the "developer" role (newer OpenAI clients) is a system message: same prompt, same answer', async () => {
  const ask = (role: 'developer' | 'system') => client.chat.completions.create({
    model: 'deepseek-chat', messages: [{ role, content: 'Answer in one word.' }, { role: 'user', content: 'Hello?' }], max_tokens: 8, temperature: 0,
  });
  const [developer, system] = await Promise.all([ask('developer'), ask('system')]);
  assert.equal(developer.choices[0]!.message.content, system.choices[0]!.message.content);
  assert.equal(developer.usage!.prompt_tokens, system.usage!.prompt_tokens);
  const plain = await client.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'Hello?' }], max_tokens: 8, temperature: 0 });
  assert.ok(plain.usage!.prompt_tokens < developer.usage!.prompt_tokens, 'the developer message is in the prompt');
});

test('models.list and models.retrieve: configured ids and DeepSeek aliases; an unknown one is 404', async () => {
  const ids = (await client.models.list()).data.map((m) => m.id);
  assert.ok(ids.includes('tiny') && ids.includes('deepseek-reasoner'), ids.join(', '));
  assert.equal((await client.models.retrieve('tiny')).id, 'tiny');
  assert.equal((await client.models.retrieve('deepseek-chat')).object, 'model');
  await assert.rejects(client.models.retrieve('gpt-99'), (error: { status?: number; message?: string }) => error.status === 404 && /does not exist/.test(error.message ?? ''));
});

test('GET /user/balance in DeepSeek\'s shape: available, nothing billed', async () => {
  for (const path of ['/user/balance', '/v1/user/balance']) {
    const r = await fetch(`${t.url}${path}`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { is_available: boolean; balance_infos: { currency: string; total_balance: string; granted_balance: string; topped_up_balance: string }[] };
    assert.equal(body.is_available, true);
    const info = body.balance_infos[0]!;
    assert.ok(['CNY', 'USD'].includes(info.currency));
    for (const amount of [info.total_balance, info.granted_balance, info.topped_up_balance]) assert.match(amount, /^\d+\.\d{2}$/);
    assert.equal(Number(info.total_balance), Number(info.granted_balance) + Number(info.topped_up_balance));
  }
});
