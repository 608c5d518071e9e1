/**
 * Regressions found by fuzzing the Ollama routes (/api/chat, /api/generate, /api/show) with
 * malformed requests: each row is a request that once got a 500, a 422 (Ollama has none), or an
 * answer unlike Ollama's. Errors must be Ollama's `{"error": "..."}`; the server must keep serving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

before(async () => {
  t = await startTestServer();
});
after(() => t.close());

const chat = (extra: Record<string, unknown>, options: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'tiny', messages: [{ role: 'user', content: 'Hello there' }], stream: false, options: { num_predict: 4, ...options }, ...extra,
});

/** A format schema, or tool-call arguments, nested `depth` levels deep (JSON text: too deep to build as an object literal). */
const nestedSchema = (depth: number): string => `${'{"type":"array","items":'.repeat(depth)}{}${'}'.repeat(depth)}`;
const nestedArray = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

interface Row {
  name: string;
  route: '/api/chat' | '/api/generate';
  /** A body object, or its JSON text. */
  body: Record<string, unknown> | string;
  status: number;
}

const ROWS: Row[] = [
  // the sampler divided a repeated token's logit by 1e-320: infinite, "every token is banned", a 500
  { name: 'repeat_penalty too small for a float32', route: '/api/chat', body: chat({}, { repeat_penalty: 1e-320 }), status: 400 },
  { name: 'repeat_penalty too small, streamed (was an in-stream error after 200)', route: '/api/chat', body: chat({ stream: true }, { repeat_penalty: 1e-320 }), status: 400 },
  // 1/T overflowed: "token id -1 is outside the vocabulary", a 422; Ollama's float32 makes it 0, greedy
  { name: 'temperature too small for a float32 is greedy', route: '/api/generate', body: { model: 'tiny', prompt: 'Hi', stream: false, options: { num_predict: 4, temperature: 1e-320 } }, status: 200 },
  // Ollama never answers 422
  { name: 'top_p above 1', route: '/api/chat', body: chat({}, { top_p: 1.5 }), status: 400 },
  { name: 'seed not an integer', route: '/api/generate', body: { model: 'tiny', prompt: 'Hi', stream: false, options: { seed: 1.5 } }, status: 400 },
  { name: 'empty stop string', route: '/api/chat', body: chat({}, { stop: [''] }), status: 400 },
  { name: 'format with $ref', route: '/api/chat', body: chat({ format: { $ref: '#' } }), status: 400 },
  { name: 'format items not a schema', route: '/api/generate', body: { model: 'tiny', prompt: 'Hi', stream: false, format: { type: 'array', items: 0 } }, status: 400 },
  // num_predict is an upper bound in Ollama: a large one is served up to the cap, not refused (was 422)
  { name: 'num_predict above the server cap', route: '/api/chat', body: chat({}, { num_predict: 100_000, stop: ['e'] }), status: 200 },
  // deep nesting overflowed the stack in the schema check and the tool-call rendering: 500
  { name: 'format nested 3000 deep', route: '/api/chat', body: JSON.stringify(chat({})).replace(/}$/, `,"format":${nestedSchema(3000)}}`), status: 400 },
  {
    name: 'tool call arguments nested 20000 deep', route: '/api/chat', status: 400,
    body: `{"model":"tiny","stream":false,"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":${nestedArray(20000)}}}]},{"role":"user","content":"hi"}]}`,
  },
  // Go decodes a missing or null content as "": Ollama answers (was 400)
  { name: 'message without content', route: '/api/chat', body: chat({ messages: [{ role: 'system' }, { role: 'user', content: null }, { role: 'user', content: 'Hi' }] }), status: 200 },
  { name: 'message content of another type', route: '/api/chat', body: chat({ messages: [{ role: 'user', content: 5 }] }), status: 400 },
  // context was ignored whatever it held
  { name: 'context not token ids', route: '/api/generate', body: { model: 'tiny', prompt: 'Hi', stream: false, context: ['a'] }, status: 400 },
  { name: 'context ids outside the vocabulary', route: '/api/generate', body: { model: 'tiny', prompt: 'Hi', stream: false, context: [1e9] }, status: 400 },
];

async function post(route: string, body: Record<string, unknown> | string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${t.url}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body), signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, text: await response.text() };
}

/** The last NDJSON object of a streamed answer, or the JSON answer. */
const lastObject = (text: string): Record<string, unknown> => JSON.parse(text.trim().split('\n').pop()!) as Record<string, unknown>;

/** What is wrong with the answer to `row` ('' when it is right). */
async function rowProblem(row: Row): Promise<string> {
  const { status, text } = await post(row.route, row.body);
  const seen = `${row.name}: ${status} ${text.slice(0, 200)}`;
  if (status !== row.status) return seen;
  const answer = lastObject(text);
  if (status === 200) return answer.done === true && answer.error === undefined ? '' : seen;
  return Object.keys(answer).join() === 'error' && typeof answer.error === 'string' ? '' : seen;
}

test('Ollama routes: malformed requests get Ollama\'s status and {"error": "..."}, and the server keeps serving', async () => {
  const problems: string[] = [];
  for (const row of ROWS) {
    const problem = await rowProblem(row);
    if (problem) problems.push(problem);
  }
  assert.deepEqual(problems, []);
  const normal = await post('/api/chat', chat({}));
  assert.equal(normal.status, 200);
});

test('Ollama generate: a tiny temperature answers as temperature 0 (greedy)', async () => {
  const answer = async (temperature: number): Promise<unknown> =>
    JSON.parse((await post('/api/generate', { model: 'tiny', prompt: 'Hello', stream: false, options: { num_predict: 8, temperature } })).text).response;
  assert.equal(await answer(1e-320), await answer(0));
});

test('Ollama generate: a prompt of null is a load request, as an absent one is', async () => {
  const { status, text } = await post('/api/generate', { model: 'tiny', prompt: null, stream: false });
  assert.equal(status, 200);
  assert.equal(JSON.parse(text).done_reason, 'load');
});

test('Ollama generate: context holds the prompt and the answer\'s tokens, and a later request continues from it', async () => {
  const first = JSON.parse((await post('/api/generate', { model: 'tiny', prompt: 'Hello', stream: false, options: { num_predict: 5, temperature: 0 } })).text) as Record<string, unknown>;
  const context = first.context as number[];
  assert.equal(context.length, (first.prompt_eval_count as number) + (first.eval_count as number));
  const streamed = await post('/api/generate', { model: 'tiny', prompt: 'And then?', stream: true, context, options: { num_predict: 3, temperature: 0 } });
  const next = lastObject(streamed.text);
  assert.ok((next.prompt_eval_count as number) > context.length, 'the earlier conversation is part of the prompt');
  assert.deepEqual((next.context as number[]).slice(0, context.length), context);
  const raw = JSON.parse((await post('/api/generate', { model: 'tiny', prompt: 'Hello', raw: true, stream: false, options: { num_predict: 2 } })).text) as Record<string, unknown>;
  assert.deepEqual(raw.context, [], 'Ollama gives no context for a raw prompt');
});

test('Ollama show: modified_at, as the ollama client\'s ShowResponse declares', async () => {
  const { status, text } = await post('/api/show', { model: 'tiny' });
  assert.equal(status, 200);
  assert.ok(!Number.isNaN(Date.parse(JSON.parse(text).modified_at as string)));
});
