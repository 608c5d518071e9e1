/**
 * Overload and cancellation: autocannon drives the chat endpoint past capacity (2 running, 4
 * queued) while UI clients post messages; every answer is 200, 429 or 503, memory stays bounded,
 * every acknowledged UI message is in the database, /health is fine afterwards. A client that
 * disconnects mid-stream frees its slot at once, and its partial UI answer is stored as "abort".
 * Rate limits answer 429 with Retry-After.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { readSse, startTestServer, type TestServer } from './helpers.js';

type AutocannonResult = { statusCodeStats: Record<string, { count: number }>; errors: number; timeouts: number; requests: { total: number } };
const autocannon = createRequire(import.meta.url)('autocannon') as (options: Record<string, unknown>) => Promise<AutocannonResult>;

let t: TestServer;

before(async () => {
  t = await startTestServer({
    scheduler: { maxActive: 2, maxQueue: 4, queueTimeoutMs: 700 },
    settings: { defaultMaxTokens: 16 },
  });
});
after(() => t.close());

const chat = JSON.stringify({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'load' }], max_tokens: 12 });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(5);
  }
}

test('past capacity: only 200/429/503, bounded memory, acknowledged messages stored, healthy after', async () => {
  const store = t.server.ctx.store;
  const conversation = (await (await fetch(`${t.url}/ui/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { conversation: { id: string } };
  const rssBefore = process.memoryUsage().rss;
  const acknowledged: string[] = [];
  const uiStatuses: number[] = [];
  let stop = false;
  const uiClient = async (): Promise<void> => {
    while (!stop) {
      const r = await fetch(`${t.url}/ui/conversations/${conversation.conversation.id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'hello', max_tokens: 8 }) });
      uiStatuses.push(r.status);
      if (r.status !== 200) {
        await r.text();
        continue;
      }
      const { events } = await readSse(r);
      const start = events[0] as { type: string; user_message_id: string };
      assert.equal(start.type, 'start');
      acknowledged.push(start.user_message_id);
    }
  };
  const ui = Promise.all([uiClient(), uiClient(), uiClient()]);
  const result = await autocannon({ url: `${t.url}/v1/chat/completions`, method: 'POST', headers: { 'content-type': 'application/json' }, body: chat, connections: 12, duration: 2, timeout: 5 });
  stop = true;
  await ui;
  const statuses = Object.keys(result.statusCodeStats).map(Number);
  assert.ok(result.requests.total > 0);
  for (const s of [...statuses, ...uiStatuses]) assert.ok([200, 429, 503].includes(s), `unexpected status ${s}`);
  assert.ok(statuses.includes(200), 'some requests were served');
  assert.ok(statuses.includes(429) || statuses.includes(503), 'the load went past capacity');
  assert.equal(result.errors, 0, 'no connection errors');
  await waitFor(() => t.server.ctx.scheduler.activeCount === 0 && t.server.ctx.scheduler.queueDepth === 0);
  const growth = process.memoryUsage().rss - rssBefore;
  assert.ok(growth < 256 * 1024 * 1024, `RSS grew by ${(growth / 1048576).toFixed(0)} MB`);
  const stored = new Set(store.messages(conversation.conversation.id).map((m) => m.id));
  assert.ok(acknowledged.length > 0);
  for (const id of acknowledged) assert.ok(stored.has(id), `acknowledged message ${id} is stored`);
  const health = await fetch(`${t.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
});

/**
 * Starts a streamed request and reads `reads` chunks; returns it only while its generation is
 * still running (a loaded machine can let a short one finish first: then it is tried again).
 */
async function activeStream(start: (signal: AbortSignal) => Promise<Response>, reads: number): Promise<AbortController> {
  const scheduler = t.server.ctx.scheduler;
  for (let attempt = 0; attempt < 5; attempt++) {
    const controller = new AbortController();
    const r = await start(controller.signal);
    const reader = r.body!.getReader();
    for (let i = 0; i < reads; i++) await reader.read();
    if (scheduler.activeCount === 1) return controller;
    controller.abort();
    await waitFor(() => scheduler.activeCount === 0, 1000);
  }
  throw new Error('the generation finished before the client could disconnect, 5 times');
}

test('a client disconnect cancels its generation at once and frees its slot; the UI keeps the partial answer', async () => {
  const scheduler = t.server.ctx.scheduler;
  const abortedBefore = scheduler.stats.aborted;
  const controller = await activeStream((signal) => fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal,
    body: JSON.stringify({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'go on forever' }], max_tokens: 900, stream: true }),
  }), 2);
  controller.abort();
  await waitFor(() => scheduler.activeCount === 0, 1000);
  assert.equal(scheduler.stats.aborted, abortedBefore + 1);
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  assert.match(metrics, /frugal_generations_total\{model="tiny",finish_reason="abort"\} [1-9]/);

  // the same through the UI endpoint: the partial assistant message is stored with "abort"
  const conversation = (await (await fetch(`${t.url}/ui/conversations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()) as { conversation: { id: string } };
  const id = conversation.conversation.id;
  const ui = await activeStream((signal) => fetch(`${t.url}/ui/conversations/${id}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, signal, body: JSON.stringify({ content: 'talk', max_tokens: 900 }) }), 4);
  ui.abort();
  await waitFor(() => scheduler.activeCount === 0, 1000);
  const messages = () => t.server.ctx.store.messages(id);
  await waitFor(() => messages().length >= 2 && messages()[messages().length - 1]!.finish_reason === 'abort', 1000);
  const stored = messages();
  assert.equal(stored[stored.length - 2]!.content, 'talk');
  assert.equal(stored[stored.length - 1]!.finish_reason, 'abort');
});

test('metrics: requests by route and status, tokens, time to first token, queue depth', async () => {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  assert.match(text, /frugal_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
  assert.match(text, /frugal_http_requests_total\{route="\/v1\/chat\/completions",status="(429|503)"\} \d+/);
  assert.match(text, /frugal_completion_tokens_total\{model="tiny"\} [1-9]/);
  assert.match(text, /frugal_time_to_first_token_seconds_count\{model="tiny"\} [1-9]/);
  assert.match(text, /frugal_queue_depth 0/);
});

test('rate limits: requests per minute and concurrency per client answer 429 with Retry-After', async () => {
  const limited = await startTestServer({ limits: { requestsPerMinute: 2, concurrentPerClient: 1 }, dbFile: join(t.dir, 'limits.db') });
  try {
    const send = () => fetch(`${limited.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 30 }) });
    const [a, b] = await Promise.all([send(), send()]);
    assert.deepEqual([a.status, b.status].sort(), [200, 429], 'one concurrent generation per client');
    const rejected = a.status === 429 ? a : b;
    assert.match(((await rejected.json()) as { error: { message: string } }).error.message, /concurrent/);
    const c = await send();
    assert.equal(c.status, 200);
    const d = await send();
    assert.equal(d.status, 429);
    assert.ok(Number(d.headers.get('retry-after')) >= 1);
    assert.match(((await d.json()) as { error: { message: string } }).error.message, /2 requests per minute/);
  } finally {
    await limited.close();
  }
});
