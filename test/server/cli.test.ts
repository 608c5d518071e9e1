/**
 * `frugal serve` as a process: refuses a public address without auth, serves on loopback, and a
 * SIGKILL loses no acknowledged message (WAL + synchronous writes). Model registry: models load on
 * first use and the least recently used one unloads when the memory budget is exceeded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHfConfig } from '../../src/formats/hf-config.js';
import { ModelRegistry } from '../../src/server/models.js';
import { writeModelDir } from '../../src/train/checkpoint.js';
import { TrainModel } from '../../src/train/model.js';
import { snapshotTensors } from '../../src/train/rollout.js';
import { Store } from '../../src/server/store.js';
import { loadForServing, readSse, tinyModelFile } from './helpers.js';

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));
let dir = '';
let model = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-cli-'));
  model = tinyModelFile(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('a non-loopback address without auth is refused unless explicitly allowed', () => {
  const r = spawnSync(process.execPath, [bin, 'serve', '--model', model, '--host', '0.0.0.0', '--no-auth', '--port', '0', '--db', join(dir, 'x.db')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refusing to serve 0\.0\.0\.0.*without authentication/);
  const missing = spawnSync(process.execPath, [bin, 'serve', '--model', join(dir, 'nope.gguf')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /model not found: .*nope\.gguf/);
});

test('bad --speculative and --draft-tokens values are refused at start with the flag named', () => {
  const serve = (...flags: string[]) => spawnSync(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--db', join(dir, 'spec.db'), ...flags], { encoding: 'utf8', timeout: 20_000 });
  const method = serve('--speculative', 'medusa');
  assert.equal(method.status, 1);
  assert.match(method.stderr, /--speculative must be mtp, ngram or off, got 'medusa'/);
  const draft = serve('--speculative', 'ngram', '--draft-tokens', '0');
  assert.equal(draft.status, 1);
  assert.match(draft.stderr, /--draft-tokens must be >= 1, got '0'/);
});

/** The URL a spawned `frugal serve` prints once it listens (rejects if it exits first). */
function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', () => reject(new Error(`server exited: ${err}`)));
  });
}

test('SIGKILL during a generation loses no acknowledged message', async () => {
  const db = join(dir, 'kill.db');
  const child = spawn(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--db', db], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await listeningUrl(child);
    const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const { conversation } = (await (await post('/ui/conversations', { title: 'kill' })).json()) as { conversation: { id: string } };
    const acknowledged: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { events } = await readSse(await post(`/ui/conversations/${conversation.id}/messages`, { content: `message ${i}`, max_tokens: 4 }));
      acknowledged.push((events[0] as { user_message_id: string }).user_message_id);
    }
    // a fourth message: killed right after its acknowledgement, mid-generation
    const r = await post(`/ui/conversations/${conversation.id}/messages`, { content: 'last words', max_tokens: 800 });
    const reader = r.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    acknowledged.push((JSON.parse(first.slice(first.indexOf('{'), first.indexOf('\n'))) as { user_message_id: string }).user_message_id);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const store = new Store(db);
    const ids = new Set(store.messages(conversation.id).map((m) => m.id));
    store.close();
    for (const id of acknowledged) assert.ok(ids.has(id), `message ${id} survived the kill`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('--secure-cookies marks the login cookie Secure (served behind an HTTPS proxy)', async () => {
  const db = join(dir, 'secure.db');
  const setup = new Store(db);
  setup.setSetting('registration', 'open');
  setup.close();
  const child = spawn(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--db', db, '--secure-cookies'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await listeningUrl(child);
    const r = await fetch(`${url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'carol', password: 'a long enough password' }) });
    assert.equal(r.status, 201, await r.text());
    assert.match(r.headers.get('set-cookie') ?? '', /HttpOnly.*; Secure/);
  } finally {
    child.kill('SIGKILL');
  }
});

test('models load on first use; the least recently used idle one unloads over the memory budget', () => {
  const second = join(dir, 'second.gguf');
  copyFileSync(model, second);
  const size = statSync(model).size;
  const registry = new ModelRegistry([{ path: model }, { id: 'other', path: second }], { memoryBudgetBytes: size * 1.5, load: loadForServing });
  assert.deepEqual(registry.ids(), ['tiny', 'other']);
  assert.equal(registry.isLoaded('tiny'), false);
  registry.get('tiny');
  assert.deepEqual(registry.loadedModels().map((m) => m.id), ['tiny']);
  registry.get('other');
  assert.deepEqual(registry.loadedModels().map((m) => m.id), ['other']);
  // a busy model is not unloaded: loading another then fails with 503
  registry.get('other').active = 1;
  assert.throws(() => registry.get('tiny'), /not enough memory/);
  assert.equal(registry.resolve('deepseek-reasoner').id, 'tiny');
  assert.equal(registry.resolve('deepseek-chat').thinking, false);
  assert.equal(registry.resolve('other:latest').id, 'other');
});

test('the registry loads with loadForServing by default; a model without a tokenizer is a clear error', () => {
  const registry = new ModelRegistry([{ path: model }]);
  assert.ok(registry.get('tiny').tokenizer, 'the default loader brings the tokenizer');
  // an HF model directory without tokenizer.json
  const config = parseHfConfig({
    architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64, initializer_range: 0.02,
  });
  const bare = join(dir, 'no-tokenizer');
  writeModelDir(bare, config, snapshotTensors(TrainModel.init(config, 1)));
  const broken = new ModelRegistry([{ id: 'bare', path: bare }]);
  assert.throws(() => broken.get('bare'), /no-tokenizer: the model file has no tokenizer, so it cannot generate text/);
});

test('a bad --cache-memory is refused at start with the flag named', () => {
  for (const value of ['-5', 'lots', '1.5']) {
    const r = spawnSync(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--db', join(dir, 'cache.db'), `--cache-memory=${value}`], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, value);
    assert.match(r.stderr, new RegExp(`--cache-memory must be an integer >= 0, got '${value.replace('.', '\\.')}'`));
  }
});

test('a bad --max-connections or --max-connections-per-ip is refused at start with the flag named', () => {
  for (const flag of ['max-connections', 'max-connections-per-ip']) {
    for (const value of ['0', 'many', '2.5']) {
      const r = spawnSync(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--db', join(dir, 'conn.db'), `--${flag}=${value}`], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, `${flag}=${value}`);
      assert.match(r.stderr, new RegExp(`--${flag} must be an integer >= 1, got '${value.replace('.', '\\.')}'`));
    }
  }
});
