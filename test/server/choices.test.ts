/**
 * `n` choices of one prompt (chat and text completions): with a seed, choice i is what the same
 * request with seed + i and n = 1 gives; usage counts the prompt once and every choice's
 * completion; streamed choices, told apart by index, equal the non-streamed ones; the `openai`
 * SDK reads them; out-of-range n and a request that cannot be admitted whole are refused, and a
 * refused request leaves no admission behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { MAX_CHOICES } from '../../src/server/generation.js';
import { readSse, startReasoningServer, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let client: OpenAI;

before(async () => {
  ({ t, client } = await startReasoningServer());
});
after(() => t.close());

interface ChatChoice {
  index: number;
  message: { content: string; reasoning_content?: string };
  finish_reason: string;
}
interface Usage { prompt_tokens: number; completion_tokens: number; prompt_cache_hit_tokens: number; prompt_cache_miss_tokens: number; completion_tokens_details: { reasoning_tokens: number } }
interface ChatBody { choices: ChatChoice[]; usage: Usage; error?: { message: string } }

const messages = [{ role: 'user', content: 'Pick a number.' }];

async function post(path: string, body: Record<string, unknown>, server: TestServer = t): Promise<{ status: number; json: ChatBody }> {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as ChatBody };
}

const chat = (body: Record<string, unknown>): Promise<{ status: number; json: ChatBody }> =>
  post('/v1/chat/completions', { model: 'deepseek-reasoner', messages, max_tokens: 24, temperature: 1, ...body });

test('chat n = 3 with a seed: choice i is the n = 1 answer with seed + i; usage counts the prompt once', async () => {
  const { status, json } = await chat({ n: 3, seed: 40 });
  assert.equal(status, 200);
  assert.deepEqual(json.choices.map((c) => c.index), [0, 1, 2]);
  let completion = 0;
  let reasoning = 0;
  for (let i = 0; i < 3; i++) {
    const alone = await chat({ seed: 40 + i });
    assert.equal(alone.json.choices.length, 1);
    assert.deepEqual(json.choices[i]!.message, alone.json.choices[0]!.message, `choice ${i}`);
    assert.equal(json.choices[i]!.finish_reason, alone.json.choices[0]!.finish_reason);
    assert.equal(json.usage.prompt_tokens, alone.json.usage.prompt_tokens, 'the prompt counts once');
    completion += alone.json.usage.completion_tokens;
    reasoning += alone.json.usage.completion_tokens_details.reasoning_tokens;
  }
  assert.equal(json.usage.completion_tokens, completion, 'every choice\'s completion tokens');
  assert.equal(json.usage.completion_tokens_details.reasoning_tokens, reasoning);
  assert.equal(json.usage.prompt_cache_hit_tokens + json.usage.prompt_cache_miss_tokens, json.usage.prompt_tokens);
  const texts = new Set(json.choices.map((c) => `${c.message.reasoning_content}|${c.message.content}`));
  assert.ok(texts.size > 1, 'different seeds sample different choices');
});

test('streamed n = 3: per index the same thought, answer and finish as not streamed; one role and one finish chunk each', async () => {
  const whole = await chat({ n: 3, seed: 7 });
  const r = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-reasoner', messages, max_tokens: 24, temperature: 1, n: 3, seed: 7, stream: true, stream_options: { include_usage: true } }),
  });
  const { events, done } = await readSse(r);
  assert.ok(done);
  type Chunk = { choices: { index: number; delta: { role?: string; content?: string | null; reasoning_content?: string | null }; finish_reason: string | null }[]; usage: Usage | null };
  const chunks = events as Chunk[];
  const got = [0, 1, 2].map(() => ({ reasoning: '', content: '', roles: 0, finishes: [] as string[] }));
  for (const c of chunks) {
    for (const choice of c.choices) {
      const g = got[choice.index]!;
      if (choice.delta.role) g.roles++;
      g.reasoning += choice.delta.reasoning_content ?? '';
      g.content += choice.delta.content ?? '';
      if (choice.finish_reason) g.finishes.push(choice.finish_reason);
    }
  }
  got.forEach((g, i) => {
    assert.equal(g.roles, 1, `choice ${i}: one role chunk`);
    assert.deepEqual(g.finishes, [whole.json.choices[i]!.finish_reason], `choice ${i}: one finish chunk`);
    assert.equal(g.reasoning, whole.json.choices[i]!.message.reasoning_content, `choice ${i}: thought`);
    assert.equal(g.content, whole.json.choices[i]!.message.content, `choice ${i}: answer`);
  });
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, [], 'the usage chunk comes last, with no choices');
  assert.equal(last.usage!.completion_tokens, whole.json.usage.completion_tokens);
  assert.equal(last.usage!.prompt_tokens, whole.json.usage.prompt_tokens);
});

test('the openai SDK reads n choices', async () => {
  const r = await client.chat.completions.create({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, n: 4, temperature: 0 });
  assert.equal(r.choices.length, 4);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  // greedy: every choice is the same
  assert.equal(new Set(r.choices.map((c) => c.message.content)).size, 1);
});

test('text completions: n choices per prompt, numbered prompt by prompt; usage counts each prompt once', async () => {
  const complete = (body: Record<string, unknown>) => post('/v1/completions', { model: 'tiny', max_tokens: 8, temperature: 1, seed: 3, ...body });
  const prompts = ['Once upon a time', 'The capital of'];
  const { status, json } = await complete({ prompt: prompts, n: 2 });
  assert.equal(status, 200);
  const choices = json.choices as unknown as { index: number; text: string }[];
  assert.deepEqual(choices.map((c) => c.index), [0, 1, 2, 3]);
  let promptTokens = 0;
  for (const [p, prompt] of prompts.entries()) {
    for (let j = 0; j < 2; j++) {
      const alone = await complete({ prompt, seed: 3 + j });
      assert.equal(choices[p * 2 + j]!.text, (alone.json.choices[0] as unknown as { text: string }).text, `prompt ${p}, choice ${j}`);
      if (j === 0) promptTokens += alone.json.usage.prompt_tokens;
    }
  }
  assert.equal(json.usage.prompt_tokens, promptTokens);
  const many = await complete({ prompt: Array.from({ length: 20 }, () => 'x'), n: 4 });
  assert.equal(many.status, 400);
  assert.match(many.json.error!.message, /n times the number of prompts/);
});

test('n out of range is refused naming n', async () => {
  for (const n of [0, -1, 1.5, MAX_CHOICES + 1, '2']) {
    const { status, json } = await chat({ n });
    assert.ok(status === 400 || status === 422, `n = ${JSON.stringify(n)}: ${status}`);
    assert.match(json.error!.message, /\bn\b/, `n = ${JSON.stringify(n)}: ${json.error!.message}`);
  }
});

test('n beyond what the queue can take is refused whole (429), and leaves no admission behind', async () => {
  const small = await startTestServer({ scheduler: { maxActive: 1, maxQueue: 2 } });
  try {
    const refused = await post('/v1/chat/completions', { model: 'deepseek-chat', messages, max_tokens: 4, n: 4 }, small);
    assert.equal(refused.status, 429);
    const scheduler = small.server.ctx.scheduler;
    assert.equal(scheduler.activeCount + scheduler.queueDepth, 0);
    const fits = await post('/v1/chat/completions', { model: 'deepseek-chat', messages, max_tokens: 4, n: 3 }, small);
    assert.equal(fits.status, 200);
    assert.equal(fits.json.choices.length, 3);
  } finally {
    await small.close();
  }
});
