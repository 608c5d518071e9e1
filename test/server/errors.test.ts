/**
 * Bad requests: each gets the right status and an error body naming the problem (DeepSeek's
 * shape; Ollama's `{"error": "..."}` on its /api/* routes), and the server keeps serving afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

before(async () => {
  t = await startTestServer({ contextLength: 128, bodyLimit: 4096, settings: { maxTokensCap: 500, loopbackHostsOnly: true } });
});
after(() => t.close());

const good = { model: 'deepseek-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };

/** Raw POST (bytes as given), to send malformed JSON and invalid UTF-8; contentType null sends none. */
function post(path: string, body: Buffer | string, contentType: string | null = 'application/json', host?: string, origin?: string): Promise<{ status: number; body: string }> {
  const url = new URL(path, t.url);
  const headers = { ...(contentType !== null ? { 'content-type': contentType } : {}), ...(host ? { host } : {}), ...(origin ? { origin } : {}) };
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const cases: [name: string, path: string, body: Buffer | string, status: number, message: RegExp, contentType?: string][] = [
  ['malformed JSON', '/v1/chat/completions', '{"model": "deepseek-chat", "messages": [', 400, /not valid JSON/],
  ['invalid UTF-8', '/v1/chat/completions', Buffer.concat([Buffer.from('{"model": "deepseek-chat", "messages": [{"role": "user", "content": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]), 400, /not valid UTF-8/],
  ['body not an object', '/v1/chat/completions', '[1, 2]', 400, /JSON object/],
  ['missing model', '/v1/chat/completions', JSON.stringify({ messages: good.messages }), 400, /model is required/],
  ['model not a string', '/v1/chat/completions', JSON.stringify({ ...good, model: 5 }), 400, /model must be a non-empty string/],
  ['unknown model', '/v1/chat/completions', JSON.stringify({ ...good, model: 'gpt-99' }), 404, /'gpt-99' does not exist/],
  ['messages missing', '/v1/chat/completions', JSON.stringify({ model: 'deepseek-chat' }), 400, /messages must be an array/],
  ['empty messages', '/v1/chat/completions', JSON.stringify({ ...good, messages: [] }), 400, /messages must not be empty/],
  ['bad role', '/v1/chat/completions', JSON.stringify({ ...good, messages: [{ role: 'robot', content: 'x' }] }), 400, /role must be one of/],
  ['content wrong type', '/v1/chat/completions', JSON.stringify({ ...good, messages: [{ role: 'user', content: 5 }] }), 400, /content must be a string/],
  ['temperature wrong type', '/v1/chat/completions', JSON.stringify({ ...good, temperature: 'hot' }), 400, /temperature must be a number/],
  ['temperature out of range', '/v1/chat/completions', JSON.stringify({ ...good, temperature: 3 }), 422, /temperature must be <= 2/],
  ['negative max_tokens', '/v1/chat/completions', JSON.stringify({ ...good, max_tokens: -5 }), 422, /max_tokens must be >= 1/],
  ['fractional max_tokens', '/v1/chat/completions', JSON.stringify({ ...good, max_tokens: 1.5 }), 422, /max_tokens must be an integer/],
  ['huge max_tokens', '/v1/chat/completions', JSON.stringify({ ...good, max_tokens: 1e9 }), 422, /max_tokens must be at most 500/],
  ['stream not a boolean', '/v1/chat/completions', JSON.stringify({ ...good, stream: 'yes' }), 400, /stream must be a boolean/],
  ['too many stops', '/v1/chat/completions', JSON.stringify({ ...good, stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), 422, /at most 16/],
  ['top_logprobs without logprobs', '/v1/chat/completions', JSON.stringify({ ...good, top_logprobs: 2 }), 422, /requires logprobs/],
  ['bad response_format', '/v1/chat/completions', JSON.stringify({ ...good, response_format: { type: 'xml' } }), 422, /response_format.type/],
  ['tool_choice naming an unknown tool', '/v1/chat/completions', JSON.stringify({ ...good, tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }), 422, /not among the tools/],
  ['prompt beyond the context', '/v1/chat/completions', JSON.stringify({ ...good, messages: [{ role: 'user', content: 'x'.repeat(600) }] }), 400, /maximum context length is 128 tokens/],
  ['oversized body', '/v1/chat/completions', JSON.stringify({ ...good, messages: [{ role: 'user', content: 'x'.repeat(5000) }] }), 413, /larger than the limit of 4096 bytes/],
  ['a form body (no Origin: read as JSON)', '/v1/chat/completions', 'model=x', 400, /not valid JSON/, 'application/x-www-form-urlencoded'],
  ['unknown route', '/v1/nothing', '{}', 404, /no route POST \/v1\/nothing/],
  ['ollama: bad think', '/api/chat', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], think: 'maybe' }), 400, /think must be/],
  ['ollama: unknown model', '/api/generate', JSON.stringify({ model: 'llama9', prompt: 'x' }), 404, /does not exist/],
  ['ollama: tools not an array', '/api/chat', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], tools: 'weather' }), 400, /tools must be an array/],
  ['ollama: a call without a function name', '/api/chat', JSON.stringify({ model: 'tiny', messages: [{ role: 'assistant', content: '', tool_calls: [{ function: { arguments: {} } }] }, { role: 'user', content: 'x' }] }), 400, /messages\[0\]\.tool_calls\[0\]\.function\.name must be a string/],
  ['ollama: format neither json nor a schema', '/api/generate', JSON.stringify({ model: 'tiny', prompt: 'x', format: 5 }), 400, /format must be "json" or a JSON schema object/],
  ['ollama: images in a chat', '/api/chat', JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'what is this?', images: ['iVBORw0KGgo='] }] }), 400, /images: the models served here read text only/],
  ['ollama: images in a generate', '/api/generate', JSON.stringify({ model: 'tiny', prompt: 'what is this?', images: ['iVBORw0KGgo='] }), 400, /images: the models served here read text only/],
  ['FIM without prompt', '/beta/completions', JSON.stringify({ model: 'deepseek-chat' }), 400, /prompt must be a string/],
];

test('bad requests: status and error body', async () => {
  for (const [name, path, body, status, message, contentType] of cases) {
    const r = await post(path, body, contentType);
    assert.equal(r.status, status, `${name}: status (${r.body})`);
    if (path.startsWith('/api/')) {
      // Ollama's shape: the message as a string (its clients read `error` as the message)
      const parsed = JSON.parse(r.body) as { error: unknown };
      assert.equal(typeof parsed.error, 'string', `${name}: Ollama's error shape (${r.body})`);
      assert.match(parsed.error as string, message, name);
      continue;
    }
    const parsed = JSON.parse(r.body) as { error: { message: string; type: string; code: string | null; param: string | null } };
    assert.match(parsed.error.message, message, name);
    assert.equal(typeof parsed.error.type, 'string', name);
    assert.ok('param' in parsed.error && 'code' in parsed.error, `${name}: body shape`);
  }
  // still serving
  const ok = await post('/v1/chat/completions', JSON.stringify(good));
  assert.equal(ok.status, 200, ok.body);
  const health = await fetch(`${t.url}/health`);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
});

test('curl -d style bodies (form or no content type, no Origin) are read as JSON; from a browser page (Origin) only application/json', async () => {
  const body = JSON.stringify({ model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', null]) {
    const r = await post('/api/generate', body, type);
    assert.equal(r.status, 200, `${type}: ${r.body}`);
    assert.equal(typeof (JSON.parse(r.body) as { response: unknown }).response, 'string');
  }
  const page = await post('/v1/chat/completions', JSON.stringify(good), 'text/plain', undefined, 'http://evil.example');
  assert.equal(page.status, 415);
  assert.match(page.body, /send the body as application\/json/);
  const json = await post('/v1/chat/completions', JSON.stringify(good), 'application/json', undefined, 'http://localhost:3000');
  assert.equal(json.status, 200, 'a JSON body passes whatever its Origin (the browser needs a CORS preflight to send one)');
});

test('a loopback server without auth refuses other Host names (DNS rebinding)', async () => {
  const r = await post('/v1/chat/completions', JSON.stringify(good), 'application/json', 'evil.example:8080');
  assert.equal(r.status, 403);
  assert.match(r.body, /loopback host name/);
  assert.equal((await post('/v1/chat/completions', JSON.stringify(good), 'application/json', 'localhost:8080')).status, 200);
  assert.equal((await post('/v1/chat/completions', JSON.stringify(good), 'application/json', '[::1]:8080')).status, 200);
});

test('a streaming request that fails validation gets a JSON error, not a stream', async () => {
  const r = await post('/v1/chat/completions', JSON.stringify({ ...good, stream: true, max_tokens: 0 }));
  assert.equal(r.status, 422);
  assert.match(r.body, /max_tokens must be >= 1/);
});
