/**
 * Requests that wait in the admission queue (../shared/spec/formats-and-api.md §5.4): a streaming
 * one gets SSE `: keep-alive` comments, then its stream; a non-streaming one gets status 200 and
 * the JSON content type at once, blank lines while queued, then the JSON body; the `openai` SDK parses such replies. An error while queued (queue timeout) comes as the
 * error body under the 200 already sent; a client that leaves while queued is dequeued at once; a
 * request that does not wait gets a plain JSON reply. The server has one generation slot, held by
 * a long streaming request on a slowed model (every forward lasts at least a few milliseconds)
 * until the test lets it go.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { loadSlowedForServing, readSse, startTestServer, type TestServer } from './helpers.js';

const FORWARD_MS = 3;
const KEEP_ALIVE_MS = 20;

let t: TestServer;
/** Same, with a queue timeout far shorter than the slot holder's generation. */
let impatient: TestServer;

before(async () => {
  const common = { settings: { keepAliveMs: KEEP_ALIVE_MS, defaultMaxTokens: 16 }, registry: { load: loadSlowedForServing(FORWARD_MS) } };
  t = await startTestServer({ ...common, scheduler: { maxActive: 1, maxQueue: 4, queueTimeoutMs: 20_000 } });
  impatient = await startTestServer({ ...common, scheduler: { maxActive: 1, maxQueue: 4, queueTimeoutMs: 150 } });
});
after(async () => {
  await t.close();
  await impatient.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms`);
    await sleep(2);
  }
}

const post = (server: TestServer, path: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });

const chatBody = { model: 'deepseek-chat', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8, temperature: 0 };

/** Takes the one slot with a long streaming generation; `release` disconnects it (the slot frees at once). */
async function holdSlot(server: TestServer): Promise<{ release(): Promise<void> }> {
  const controller = new AbortController();
  const r = await post(server, '/v1/chat/completions', { ...chatBody, max_tokens: 600, stream: true }, controller.signal);
  assert.equal(r.status, 200);
  const drained = r.text().catch(() => '');
  await waitFor(() => server.server.ctx.scheduler.activeCount === 1, 'the slot holder runs');
  return {
    async release() {
      assert.equal(server.server.ctx.scheduler.activeCount, 1, 'the slot holder was still running when released');
      controller.abort();
      await drained;
    },
  };
}

/** Reads a response body to its end as text, exactly as sent. */
async function rawText(r: Response): Promise<string> {
  return new TextDecoder().decode(await r.arrayBuffer());
}

for (const [path, body, object] of [
  ['/v1/chat/completions', chatBody, 'chat.completion'],
  ['/beta/completions', { model: 'deepseek-chat', prompt: 'def f(', suffix: '\n', max_tokens: 8, temperature: 0 }, 'text_completion'],
] as const) {
  test(`a queued non-streaming ${path} request gets 200 and blank lines at once, then the JSON body`, async () => {
    const scheduler = t.server.ctx.scheduler;
    const holder = await holdSlot(t);
    const r = await post(t, path, body);
    // the headers came while the request is still in the queue
    assert.equal(scheduler.queueDepth, 1);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    await sleep(5 * KEEP_ALIVE_MS);
    assert.equal(scheduler.queueDepth, 1, 'still queued after the keep-alive wait');
    await holder.release();
    const text = await rawText(r);
    const leading = /^\n*/.exec(text)![0].length;
    assert.ok(leading >= 2, `several blank lines before the body (got ${leading}): ${JSON.stringify(text.slice(0, 40))}`);
    assert.equal(text.slice(leading).trimStart(), text.slice(leading), 'only newlines before the JSON');
    const parsed = JSON.parse(text) as { object: string; choices: unknown[]; usage: { completion_tokens: number } };
    assert.equal(parsed.object, object);
    assert.equal(parsed.choices.length, 1);
    assert.ok(parsed.usage.completion_tokens > 0);
  });
}

test('a queued streaming request gets SSE keep-alive comments, then its stream', async () => {
  const holder = await holdSlot(t);
  const r = await post(t, '/v1/chat/completions', { ...chatBody, stream: true });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
  await waitFor(() => t.server.ctx.scheduler.queueDepth === 1, 'the streaming request is queued');
  await sleep(5 * KEEP_ALIVE_MS);
  assert.equal(t.server.ctx.scheduler.queueDepth, 1, 'still queued after the keep-alive wait');
  await holder.release();
  const { events, comments, done } = await readSse(r);
  assert.ok(comments >= 2, `keep-alive comments while queued (got ${comments})`);
  assert.ok(done, 'the stream ends with [DONE]');
  const chunks = events as { choices: { delta: { content?: string } }[] }[];
  assert.ok(chunks.some((c) => c.choices[0]?.delta.content), 'content arrived after the queue');
});

test('the openai SDK parses a reply that had blank lines before the JSON', async () => {
  const raw: string[] = [];
  const client = new OpenAI({
    baseURL: `${t.url}/v1`, apiKey: 'sk-local', maxRetries: 0,
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      raw.push(await rawText(response.clone()));
      return response;
    },
  });
  const holder = await holdSlot(t);
  const answer = client.chat.completions.create({ model: 'deepseek-chat', messages: chatBody.messages, max_tokens: 8, temperature: 0 });
  await waitFor(() => t.server.ctx.scheduler.queueDepth === 1, 'the SDK request is queued');
  await sleep(3 * KEEP_ALIVE_MS);
  // the clone's reader waits for the whole body, so release the slot before awaiting the SDK
  const released = holder.release();
  const completion = await answer;
  await released;
  assert.match(raw[0]!, /^\n+\{/, 'the SDK got blank lines before the JSON');
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0]!.message.role, 'assistant');
  assert.equal(typeof completion.choices[0]!.message.content, 'string');
  assert.ok((completion.usage?.completion_tokens ?? 0) > 0);
  // the same request without a queue gives the same answer (temperature 0)
  const direct = await client.chat.completions.create({ model: 'deepseek-chat', messages: chatBody.messages, max_tokens: 8, temperature: 0 });
  assert.equal(direct.choices[0]!.message.content, completion.choices[0]!.message.content);
  assert.match(raw[1]!, /^\{/, 'no blank lines without a queue');
});

test('a request that does not wait gets a plain JSON reply with no leading newline', async () => {
  assert.equal(t.server.ctx.scheduler.activeCount, 0);
  const r = await post(t, '/v1/chat/completions', chatBody);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(r.headers.get('content-length') !== null, 'an ordinary reply with its length');
  const text = await rawText(r);
  assert.equal(text[0], '{');
  assert.equal((JSON.parse(text) as { object: string }).object, 'chat.completion');
  // errors before admission keep their real status
  const bad = await post(t, '/v1/chat/completions', { ...chatBody, temperature: 7 });
  assert.equal(bad.status, 422);
});

test('an error while queued (queue timeout) is the error body under the 200 already sent', async () => {
  const holder = await holdSlot(impatient);
  const r = await post(impatient, '/v1/chat/completions', chatBody);
  assert.equal(r.status, 200);
  const text = await rawText(r);
  await holder.release();
  assert.match(text, /^\n+\{/);
  const parsed = JSON.parse(text) as { error: { type: string; code: string; message: string } };
  assert.equal(parsed.error.type, 'server_overloaded');
  assert.match(parsed.error.message, /waited .* in the queue/);
  // the openai SDK (which sees status 200) gets the error object as the parsed body, not a completion
  assert.equal((parsed as unknown as { choices?: unknown }).choices, undefined);
});

test('a client that leaves while queued is dequeued at once (the slot holder keeps running)', async () => {
  const scheduler = t.server.ctx.scheduler;
  const holder = await holdSlot(t);
  const abortedBefore = scheduler.stats.aborted;
  const controller = new AbortController();
  const r = await post(t, '/v1/chat/completions', chatBody, controller.signal);
  assert.equal(r.status, 200);
  assert.equal(scheduler.queueDepth, 1);
  controller.abort();
  await waitFor(() => scheduler.queueDepth === 0, 'the queued request leaves the queue', 1000);
  assert.equal(scheduler.stats.aborted, abortedBefore + 1);
  assert.equal(scheduler.activeCount, 1, 'the slot holder still runs');
  await holder.release();
  await waitFor(() => scheduler.activeCount === 0, 'the slot frees');
});

test('Ollama keep_alive 0 while the model generates: 503 in Ollama\'s shape with Retry-After; once the request ends it unloads', async () => {
  const registry = t.server.ctx.registry;
  const holder = await holdSlot(t);
  const busy = await post(t, '/api/generate', { model: 'tiny', prompt: '', keep_alive: 0, stream: false });
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get('retry-after'), '1');
  const body = await busy.json() as { error: unknown };
  assert.equal(typeof body.error, 'string', 'Ollama clients read error as the message');
  assert.match(body.error as string, /'tiny' is generating/);
  assert.deepEqual(registry.loadedModels().map((m) => m.id), ['tiny'], 'still loaded');
  await holder.release();
  await waitFor(() => t.server.ctx.scheduler.activeCount === 0, 'the slot is free');
  const stop = await post(t, '/api/chat', { model: 'tiny', messages: [], keep_alive: '0s', stream: false });
  assert.equal(stop.status, 200);
  assert.equal((await stop.json() as { done_reason: string }).done_reason, 'unload');
  assert.deepEqual(registry.loadedModels(), [], 'unloaded');
});
