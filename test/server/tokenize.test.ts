/**
 * llama.cpp's /tokenize and /detokenize on a model with the real DeepSeek-V3 vocabulary: the ids
 * the model's own tokenizer gives (BOS only when asked, control-token text parsed unless told not
 * to), pieces, the round trip, the model picked by name, and bad requests.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { loadForServing, startTestServer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-tokenize-'));
const path = join(dir, 'ds.gguf');
writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'deepseek-v3', seed: 5, layers: 1, hiddenSize: 32, heads: 2, kvHeads: 1, ffSize: 64 });
const server = await startTestServer({ models: [{ id: 'ds', path }] });
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
const tokenizer = loadForServing(path).tokenizer;

async function post(route: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${server.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

test('/tokenize gives the model tokenizer\'s ids; /detokenize gives the text back', async () => {
  const text = 'Hello <｜User｜> wörld 数学 🙂 12345';
  const plain = await post('/tokenize', { content: text });
  assert.equal(plain.status, 200);
  assert.deepEqual(plain.json.tokens, Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true })));
  const withBos = await post('/tokenize', { content: text, add_special: true, model: 'ds' });
  assert.deepEqual(withBos.json.tokens, Array.from(tokenizer.encode(text, { addSpecialTokens: true, parseSpecial: true })));
  assert.equal((withBos.json.tokens as number[]).length, (plain.json.tokens as number[]).length + 1, 'BOS only when asked');
  const unparsed = await post('/tokenize', { content: text, parse_special: false });
  assert.ok((unparsed.json.tokens as number[]).length > (plain.json.tokens as number[]).length, 'control-token text as plain text takes more tokens');
  const pieces = await post('/tokenize', { content: 'Hello world', with_pieces: true });
  const list = pieces.json.tokens as { id: number; piece: string }[];
  assert.equal(list.map((p) => p.piece).join(''), 'Hello world');
  assert.deepEqual(list.map((p) => p.id), Array.from(tokenizer.encode('Hello world', { addSpecialTokens: false })));
  const back = await post('/detokenize', { tokens: plain.json.tokens });
  assert.deepEqual(back, { status: 200, json: { content: text } });
});

test('/tokenize and /detokenize refuse bad requests with a message', async () => {
  assert.equal((await post('/tokenize', {})).status, 400);
  assert.match(((await post('/tokenize', { content: 5 })).json.error as { message: string }).message, /content must be a string/);
  assert.equal((await post('/tokenize', { content: 'x', model: 'nope' })).status, 404);
  const bad = await post('/detokenize', { tokens: [1, -2] });
  assert.equal(bad.status, 400);
  assert.match((bad.json.error as { message: string }).message, /tokens must be an array of token ids/);
  assert.equal((await post('/detokenize', { tokens: [10 ** 9] })).status, 400);
  assert.equal((await post('/detokenize', { tokens: 'abc' })).status, 400);
});
