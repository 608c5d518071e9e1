/**
 * Regressions found by fuzzing the OpenAI/DeepSeek routes with randomized and adversarial bodies:
 * each request here once got a 500 (or a wrong answer); now it gets the documented status and
 * error body, and the server keeps serving. A fixed table, so the test is deterministic.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SchemaValidator } from '../../src/server/json-schema.js';
import { startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

before(async () => {
  t = await startTestServer({ settings: { maxTokensCap: 64 } });
});
after(() => t.close());

const user = [{ role: 'user', content: 'hi' }];
const chat = { model: 'deepseek-chat', messages: user, max_tokens: 4 };
/** `levels` nested arrays around a 1, as JSON text (JSON.stringify of it would itself overflow). */
const nestedArrays = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
const DEEP = 20000;
const deepSchema = `${'{"properties":{"a":'.repeat(DEEP)}{}${'}}'.repeat(DEEP)}`;
const schemaFormat = (schema: unknown): unknown => ({ type: 'json_schema', json_schema: { name: 'x', schema } });

interface Case {
  name: string;
  path: string;
  /** The body: an object, or JSON text (for nesting JSON.stringify cannot write). */
  body: unknown;
  status: number;
  message: RegExp;
  param?: string | null;
}

const cases: Case[] = [
  // nested thousands of levels deep: the schema checks, tool prompts and error messages recursed (stack overflow, 500)
  { name: 'deeply nested response_format schema', path: '/v1/chat/completions', body: `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deepSchema}}}}`, status: 400, message: /nests arrays and objects more than 128 levels deep/ },
  { name: 'deeply nested tool parameters', path: '/v1/chat/completions', body: `{"model":"deepseek-chat","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${nestedArrays(DEEP)}}}]}`, status: 400, message: /more than 128 levels deep/ },
  { name: 'deeply nested arguments of an earlier tool call', path: '/v1/chat/completions', body: `{"model":"deepseek-chat","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":${nestedArrays(DEEP)}}}]},{"role":"user","content":"x"}]}`, status: 400, message: /more than 128 levels deep/ },
  { name: 'responses: deeply nested function_call_output', path: '/v1/responses', body: `{"model":"deepseek-chat","input":[{"role":"user","content":"x"},{"type":"function_call_output","call_id":"c","output":${nestedArrays(DEEP)}}]}`, status: 400, message: /more than 128 levels deep/ },
  { name: 'completions: deeply nested prompt', path: '/v1/completions', body: `{"model":"deepseek-chat","prompt":${nestedArrays(DEEP)}}`, status: 400, message: /more than 128 levels deep/ },
  // tool_choice "required" forces the first tool: with none, tools[0] was undefined (TypeError, 500)
  { name: 'tool_choice required with no tools', path: '/v1/chat/completions', body: { ...chat, tools: [], tool_choice: 'required' }, status: 422, message: /tool_choice "required" needs at least one tool/, param: 'tool_choice' },
  { name: 'responses: tool_choice required with no tools', path: '/v1/responses', body: { model: 'deepseek-chat', input: 'hi', tools: [], tool_choice: 'required' }, status: 422, message: /needs at least one tool/, param: 'tool_choice' },
  // schemas no document satisfies: decoding ran into a dead end (500 "no token of the vocabulary can continue")
  { name: 'json_schema requiring a property that is not listed', path: '/v1/chat/completions', body: { ...chat, max_tokens: 30, response_format: schemaFormat({ type: 'object', properties: { b: { type: 'string' } }, required: ['a'] }) }, status: 422, message: /required names 'a'/, param: 'response_format.json_schema.schema' },
  { name: 'json_schema with an enum none of the type allows', path: '/v1/chat/completions', body: { ...chat, max_tokens: 30, response_format: schemaFormat({ type: 'object', properties: { a: { type: 'string', enum: [1] } } }) }, status: 422, message: /properties\.a: no value of enum or const has the type string/ },
  { name: 'json_schema with an empty enum', path: '/v1/chat/completions', body: { ...chat, response_format: schemaFormat({ type: 'object', properties: { a: { enum: [] } } }) }, status: 422, message: /properties\.a\.enum is empty/ },
  { name: 'responses: text.format schema with minItems above maxItems', path: '/v1/responses', body: { model: 'deepseek-chat', input: 'hi', text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object', properties: { a: { type: 'array', minItems: 2, maxItems: 1 } } } } } }, status: 422, message: /minItems is above maxItems/, param: 'text.format.schema' },
  // a contradiction the request check does not see (anyOf against type): the dead end is the request's fault, not a 500
  { name: 'json_schema contradicting itself through anyOf', path: '/v1/chat/completions', body: { ...chat, max_tokens: 30, seed: 1, temperature: 0, response_format: schemaFormat({ type: 'object', properties: { a: { type: 'string', anyOf: [{ type: 'integer' }] } }, required: ['a'] }) }, status: 422, message: /no token of the vocabulary can continue/ },
  // token ids with a suffix: the suffix was dropped without a word (a plain completion, 200)
  { name: 'FIM with a token-id prompt', path: '/beta/completions', body: { model: 'deepseek-chat', prompt: [104, 105], suffix: '\n', max_tokens: 2 }, status: 400, message: /suffix \(fill in the middle\) takes the prompt as text/, param: 'prompt' },
  // errors that named a field the request does not have
  { name: 'responses: function_call without a name', path: '/v1/responses', body: { model: 'deepseek-chat', input: [{ type: 'function_call', call_id: 'c', arguments: '{}' }] }, status: 400, message: /^input\[0\]\.name must be a string/, param: 'input[0].name' },
  { name: 'max_tokens too large beside a null max_completion_tokens', path: '/v1/chat/completions', body: { ...chat, max_tokens: 1000, max_completion_tokens: null }, status: 422, message: /^max_tokens must be at most 64/, param: 'max_tokens' },
];

async function post(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(new URL(path, t.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

/** What is wrong with the answer to `c`, or undefined. */
async function problemOf(c: Case): Promise<string | undefined> {
  const r = await post(c.path, c.body);
  if (r.status !== c.status) return `status ${r.status}, not ${c.status} (${r.text.slice(0, 200)})`;
  const error = (JSON.parse(r.text) as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } }).error;
  if (!error || typeof error.message !== 'string' || typeof error.type !== 'string' || !('param' in error) || !('code' in error)) return `not the error shape: ${r.text.slice(0, 200)}`;
  if (!c.message.test(error.message)) return `message ${JSON.stringify(error.message)} does not match ${c.message}`;
  if (c.param !== undefined && error.param !== c.param) return `param ${JSON.stringify(error.param)}, not ${JSON.stringify(c.param)}`;
  return undefined;
}

test('fuzzed requests: status and error body', async () => {
  // every case is tried, so that a failure lists all the requests that regressed
  const problems: string[] = [];
  for (const c of cases) {
    const problem = await problemOf(c);
    if (problem !== undefined) problems.push(`${c.name}: ${problem}`);
  }
  assert.deepEqual(problems, []);
  const ok = await post('/v1/chat/completions', chat);
  assert.equal(ok.status, 200, 'the server still serves');
});

test('a json_schema property that is false is never started (its key led to a dead end)', async () => {
  const validator = new SchemaValidator({ type: 'object', properties: { a: false }, additionalProperties: false });
  assert.ok(validator.push('{'));
  assert.equal(validator.accepts('"'), false, 'no key can be written');
  assert.ok(validator.accepts('}'));
  // through the server: the only document is {}
  const r = await post('/v1/chat/completions', { ...chat, max_tokens: 30, seed: 3, response_format: schemaFormat({ type: 'object', properties: { a: false }, additionalProperties: false }) });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const content = (JSON.parse(r.text) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
  assert.deepEqual(JSON.parse(content), {});
});

test('router refusals and prototype names answer in the error shape', async () => {
  const get = async (path: string): Promise<{ status: number; body: { error?: { message?: unknown; type?: unknown; code?: unknown } } }> => {
    const response = await fetch(`${t.url}${path}`);
    return { status: response.status, body: (await response.json()) as { error?: { message?: unknown } } };
  };
  // names an object has through its prototype are no model names (they resolved to the default model)
  for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    const listed = await get(`/v1/models/${name}`);
    assert.equal(listed.status, 404, name);
    assert.equal(listed.body.error?.code, 'model_not_found', name);
    const posted = await post('/v1/chat/completions', { ...chat, model: name });
    assert.equal(posted.status, 404, `POST with model ${name}: ${posted.text.slice(0, 200)}`);
  }
  // Fastify's router answered these in its own shape ({"error": "Bad Request", "code": "FST_ERR_..."})
  for (const [path, status] of [['/v1/models/%FF', 400], [`/v1/models/${'m'.repeat(300)}`, 414]] as const) {
    const r = await get(path);
    assert.equal(r.status, status, path.slice(0, 40));
    assert.equal(typeof r.body.error?.message, 'string', JSON.stringify(r.body).slice(0, 200));
    assert.equal(typeof r.body.error?.type, 'string', JSON.stringify(r.body).slice(0, 200));
  }
  assert.equal((await post('/v1/chat/completions', chat)).status, 200, 'the server still serves');
});

test('what the HTTP parser refuses (huge headers, a broken request line) answers in the error shape', async () => {
  const { connect } = await import('node:net');
  const raw = (text: string): Promise<string> => new Promise((resolve, reject) => {
    const { hostname, port } = new URL(t.url);
    const socket = connect(Number(port), hostname, () => socket.end(text));
    let answer = '';
    socket.on('data', (d: Buffer) => { answer += d.toString(); });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
  for (const [request, status] of [
    [`GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['GARBAGE / HTTP/9\r\n\r\n', 400],
  ] as const) {
    const answer = await raw(request);
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer.slice(0, 100));
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error?: { message?: unknown; type?: unknown } };
    assert.equal(typeof body.error?.message, 'string', answer.slice(0, 300));
    assert.equal(typeof body.error?.type, 'string', answer.slice(0, 300));
  }
  assert.equal((await post('/v1/chat/completions', chat)).status, 200, 'the server still serves');
});
