/**
 * Embeddings through the official clients: OpenAI's /v1/embeddings (float and base64, batches,
 * token-id input) and Ollama's /api/embed and /api/embeddings give the same unit vectors, the
 * mean of the model's hidden states over the text's tokens; a text past the context is refused,
 * or cut with Ollama's truncate; bad requests get a message.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { loadForServing, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let client: OpenAI;

before(async () => {
  t = await startTestServer({ contextLength: 64 });
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'sk-local', maxRetries: 0 });
});
after(() => t.close());

/** The expected vector: mean of the hidden states over the text's tokens (BOS added), unit length. */
function expected(text: string): number[] {
  const { model, tokenizer } = loadForServing(t.modelPath);
  const ids = Int32Array.from(tokenizer.encode(text, { addSpecialTokens: true, parseSpecial: false }));
  const states = model.hiddenStates!(ids, model.newCache(ids.length));
  const d = states.length / ids.length;
  const mean = Array.from({ length: d }, (_, i) => {
    let s = 0;
    for (let r = 0; r < ids.length; r++) s += states[r * d + i]!;
    return s / ids.length;
  });
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

function near(a: readonly number[], b: readonly number[], what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

test('OpenAI embeddings: unit mean-pooled vectors, batches equal singles, base64 decodes to the floats, token ids as text', async () => {
  const texts = ['The cat sat.', 'A completely different sentence about numbers: 12345.'];
  const r = await client.embeddings.create({ model: 'tiny', input: texts });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 2);
  r.data.forEach((d, i) => {
    assert.equal(d.index, i);
    near(d.embedding, expected(texts[i]!), `text ${i}`);
    assert.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-6, 'unit length');
  });
  assert.ok(r.data[0]!.embedding.some((v, i) => Math.abs(v - r.data[1]!.embedding[i]!) > 1e-3), 'different texts, different vectors');
  const single = await client.embeddings.create({ model: 'tiny', input: texts[1]! });
  near(single.data[0]!.embedding, r.data[1]!.embedding, 'a batch item equals its single request');
  const { tokenizer } = loadForServing(t.modelPath);
  const ids = Array.from(tokenizer.encode(texts[0]!, { addSpecialTokens: true, parseSpecial: false }));
  assert.equal(r.usage.prompt_tokens, ids.length + Array.from(tokenizer.encode(texts[1]!, { addSpecialTokens: true })).length);
  const fromIds = await client.embeddings.create({ model: 'tiny', input: ids });
  near(fromIds.data[0]!.embedding, r.data[0]!.embedding, 'token ids give the text\'s vector');
  const raw = await fetch(`${t.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', input: texts[0], encoding_format: 'base64' }) });
  const b64 = ((await raw.json()) as { data: { embedding: string }[] }).data[0]!.embedding;
  const buffer = Buffer.from(b64, 'base64');
  near(Array.from(new Float32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4)), r.data[0]!.embedding, 'base64 floats');
});

test('Ollama embed and embeddings give the same vectors; truncate cuts a long text, truncate false and OpenAI refuse it', async () => {
  const ollama = new Ollama({ host: t.url });
  const texts = ['The cat sat.', 'Numbers 12345.'];
  const r = await ollama.embed({ model: 'tiny', input: texts });
  const openai = await client.embeddings.create({ model: 'tiny', input: texts });
  r.embeddings.forEach((v, i) => near(v, openai.data[i]!.embedding, `ollama embed ${i}`));
  assert.ok(r.prompt_eval_count! > 0);
  const legacy = await ollama.embeddings({ model: 'tiny', prompt: texts[0]! });
  near(legacy.embedding, openai.data[0]!.embedding, 'legacy route');
  const long = 'word '.repeat(200);
  const cut = await ollama.embed({ model: 'tiny', input: long });
  assert.equal(cut.embeddings[0]!.length, openai.data[0]!.embedding.length);
  assert.equal(cut.prompt_eval_count, 64, 'cut to the 64-token context');
  await assert.rejects(ollama.embed({ model: 'tiny', input: long, truncate: false }), (e: Error) => /has \d+ tokens; this model's context holds 64/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: 'tiny', input: long }), (e: { status?: number; message?: string }) => e.status === 400 && /context holds 64/.test(e.message ?? ''));
});

test('embeddings refuse bad requests with a message', async () => {
  const post = async (body: unknown): Promise<{ status: number; message: string }> => {
    const r = await fetch(`${t.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, message: ((await r.json()) as { error: { message: string } }).error.message };
  };
  for (const [body, status, message] of [
    [{ model: 'tiny' }, 400, /input must be a non-empty string/],
    [{ model: 'tiny', input: [] }, 400, /input must be a non-empty string/],
    [{ model: 'tiny', input: [1, -1] }, 400, /token ids/],
    [{ model: 'tiny', input: '' }, 400, /input\[0\] is empty/],
    [{ model: 'tiny', input: ['a', ''] }, 400, /input\[1\] is empty/],
    [{ model: 'tiny', input: 'x', dimensions: 8 }, 400, /dimensions is not supported/],
    [{ model: 'tiny', input: 'x', encoding_format: 'int8' }, 400, /encoding_format/],
    [{ model: 'nope', input: 'x' }, 404, /does not exist/],
    [{ input: 'x' }, 400, /model is required/],
  ] as const) {
    const r = await post(body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match(r.message, message, JSON.stringify(body));
  }
  // Ollama's routes: the same checks, Ollama's error shape
  for (const [route, body, message] of [
    ['/api/embed', { model: 'tiny', input: 5 }, /input must be a non-empty string/],
    ['/api/embed', { model: 'tiny', input: [[1], 'x'] }, /input must be a non-empty string/],
    ['/api/embeddings', { model: 'tiny', prompt: 7 }, /prompt must be a non-empty string/],
    ['/api/embed', { model: 'tiny', input: ['a', ''] }, /input\[1\] is empty/],
    ['/api/embed', { model: 'nope', input: '' }, /does not exist/],
  ] as const) {
    const r = await fetch(`${t.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, body.model === 'nope' ? 404 : 400, `${route} ${JSON.stringify(body)}`);
    assert.match(((await r.json()) as { error: string }).error, message);
  }
  // as Ollama: no input only loads the model (clients send it so), answered 200 with no vectors
  for (const [route, body, expected] of [
    ['/api/embeddings', { model: 'tiny' }, { embedding: [] }],
    ['/api/embeddings', { model: 'tiny', prompt: '' }, { embedding: [] }],
    ['/api/embed', { model: 'tiny', input: '' }, { model: 'tiny', embeddings: [] }],
    ['/api/embed', { model: 'tiny', input: [] }, { model: 'tiny', embeddings: [] }],
    ['/api/embed', { model: 'tiny' }, { model: 'tiny', embeddings: [] }],
  ] as const) {
    const r = await fetch(`${t.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200, `${route} ${JSON.stringify(body)}`);
    assert.deepEqual(await r.json(), expected, `${route} ${JSON.stringify(body)}`);
  }
});
