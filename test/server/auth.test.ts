/**
 * Accounts and keys with auth required: API keys (created and revoked with `frugal admin` on the
 * same database file), sessions, CSRF, registration policies and invites, pause/resume, per-user
 * conversations, and durability of what was stored (close, reopen, WAL).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run as admin } from '../../src/cli/admin.js';
import { Store } from '../../src/server/store.js';
import { readSse, startTestServer, type TestServer, adminCommand as runAdmin } from './helpers.js';

let t: TestServer;
let db = '';

before(async () => {
  t = await startTestServer({ settings: { authRequired: true, defaultReasoningBudget: 3 } });
  db = join(t.dir, 'frugal.db');
});
after(() => t.close());

/** `frugal admin --db <this server's db> ...args` (helpers.ts). */
const adminCommand = (...args: string[]): Promise<string> => runAdmin(db, ...args);

const chat = { model: 'deepseek-chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };

async function call(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${t.url}${path}`, { method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'), headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
}

test('API keys: missing or unknown -> 401, valid -> 200, revoked -> 401', async () => {
  assert.equal((await call('/v1/chat/completions', { body: chat })).status, 401);
  assert.equal((await call('/v1/chat/completions', { body: chat, headers: { authorization: 'Bearer sk-frugal-nope' } })).status, 401);
  const key = await adminCommand('create-key', '--name', 'test');
  assert.match(key, /^sk-frugal-\S{20,}$/);
  const store = new Store(db);
  const row = store.apiKeys().at(-1)!;
  store.close();
  assert.ok(key.startsWith(row.prefix) && !JSON.stringify(row).includes(key), 'only a prefix and a hash are stored');
  const ok = await call('/v1/chat/completions', { body: chat, headers: { authorization: `Bearer ${key}` } });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal((await call('/v1/models', { headers: { authorization: `Bearer ${key}` } })).status, 200);
  await adminCommand('revoke-key', row.prefix);
  const revoked = await call('/v1/chat/completions', { body: chat, headers: { authorization: `Bearer ${key}` } });
  assert.equal(revoked.status, 401);
  assert.match(((await revoked.json()) as { error: { message: string } }).error.message, /revoked/);
});

test('registration policies, sessions, CSRF, per-user conversations, pause', async () => {
  assert.equal((await call('/auth/register', { body: { username: 'ann', password: 'correct horse' } })).status, 403, 'closed by default');
  await adminCommand('registration', 'open');
  const reg = await call('/auth/register', { body: { username: 'ann', password: 'correct horse' } });
  assert.equal(reg.status, 201);
  const cookie = reg.headers.get('set-cookie')!;
  assert.match(cookie, /frugal_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict/);
  const session = cookie.split(';')[0]!;
  const { csrf_token: csrf } = (await reg.json()) as { csrf_token: string };
  assert.equal((await call('/auth/register', { body: { username: 'ann', password: 'another one' } })).status, 409);

  const me = await call('/auth/me', { headers: { cookie: session } });
  assert.equal(((await me.json()) as { user: { username: string } }).user.username, 'ann');
  // CSRF: a cookie-authenticated POST needs the token
  assert.equal((await call('/ui/conversations', { body: {}, headers: { cookie: session } })).status, 403);
  assert.equal((await call('/ui/conversations', { body: {}, headers: { cookie: session, 'x-csrf-token': 'wrong' } })).status, 403);
  const created = await call('/ui/conversations', { body: { title: 'first' }, headers: { cookie: session, 'x-csrf-token': csrf } });
  assert.equal(created.status, 201);
  const { conversation } = (await created.json()) as { conversation: { id: string } };

  // a message: stored user message, SSE events, stored assistant message
  const sse = await call(`/ui/conversations/${conversation.id}/messages`, { body: { content: 'Hello!', max_tokens: 6 }, headers: { cookie: session, 'x-csrf-token': csrf } });
  assert.equal(sse.status, 200);
  const { events } = await readSse(sse);
  const types = events.map((e) => (e as { type: string }).type);
  assert.equal(types[0], 'start');
  assert.equal(types.at(-1), 'done');
  const detail = (await (await call(`/ui/conversations/${conversation.id}`, { headers: { cookie: session } })).json()) as { messages: { role: string; content: string; reasoning_content: string }[] };
  assert.deepEqual(detail.messages.map((m) => m.role), ['user', 'assistant']);
  const streamed = events.filter((e) => (e as { type: string }).type === 'content').map((e) => (e as { text: string }).text).join('');
  const thought = events.filter((e) => (e as { type: string }).type === 'reasoning').map((e) => (e as { text: string }).text).join('');
  assert.equal(detail.messages[1]!.content, streamed);
  assert.equal(detail.messages[1]!.reasoning_content, thought);

  // another user cannot see it; login/logout
  await adminCommand('registration', 'invite');
  assert.equal((await call('/auth/register', { body: { username: 'bob', password: 'password123' } })).status, 403);
  const code = await adminCommand('create-invite');
  assert.equal((await call('/auth/register', { body: { username: 'bob', password: 'password123', invite_code: 'bad' } })).status, 403);
  assert.equal((await call('/auth/register', { body: { username: 'bob', password: 'password123', invite_code: code } })).status, 201);
  assert.equal((await call('/auth/register', { body: { username: 'eve', password: 'password123', invite_code: code } })).status, 403, 'invite used once');
  assert.equal((await call('/auth/login', { body: { username: 'bob', password: 'wrong password' } })).status, 401);
  const login = await call('/auth/login', { body: { username: 'bob', password: 'password123' } });
  assert.equal(login.status, 200);
  const bob = login.headers.get('set-cookie')!.split(';')[0]!;
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { headers: { cookie: bob } })).status, 404);
  assert.deepEqual(((await (await call('/ui/conversations', { headers: { cookie: bob } })).json()) as { conversations: unknown[] }).conversations, []);
  const bobCsrf = ((await login.json()) as { csrf_token: string }).csrf_token;
  assert.equal((await call('/auth/logout', { method: 'POST', headers: { cookie: bob, 'x-csrf-token': bobCsrf } })).status, 204);
  assert.equal((await call('/auth/me', { headers: { cookie: bob } })).status, 401);

  // pause: 503 with the message; health says paused; resume
  await adminCommand('pause', 'maintenance until noon');
  const paused = await call(`/ui/conversations/${conversation.id}/messages`, { body: { content: 'x' }, headers: { cookie: session, 'x-csrf-token': csrf } });
  assert.equal(paused.status, 503);
  assert.match(((await paused.json()) as { error: { message: string } }).error.message, /paused.*maintenance until noon/);
  assert.equal(((await (await call('/health')).json()) as { status: string }).status, 'paused');
  await adminCommand('resume');
  assert.equal(((await (await call('/health')).json()) as { status: string }).status, 'ok');
});

test('durability: what was acknowledged is in the file after close and reopen', async () => {
  const store = new Store(db);
  const ann = store.userByName('ann')!;
  const conversations = store.conversations(ann.id);
  assert.equal(conversations.length, 1);
  assert.equal(conversations[0]!.title, 'first');
  assert.equal(store.messages(conversations[0]!.id).length, 2);
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  const versions = store.db.prepare<{ version: number }>('SELECT version FROM migrations ORDER BY version').all().map((r) => r.version);
  assert.deepEqual(versions, [1, 2]);
  store.close();
  // reopening migrates nothing twice
  const again = new Store(db);
  assert.equal(again.migrate(), 2);
  again.close();
  // a file that is not a database opens, then fails at the first statement: the error names the file
  const notDb = join(t.dir, 'not-a-database.db');
  writeFileSync(notDb, 'GGUF and then some bytes that are no SQLite header at all, long enough to read a page');
  assert.throws(() => new Store(notDb), (error: Error) => error.message === `${notDb}: file is not a database`);
});

test('login attempts per IP are limited (429 with Retry-After)', async () => {
  const limited = await startTestServer({ settings: { loginAttemptsPerMinute: 3 } });
  try {
    const attempt = () => fetch(`${limited.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x', password: 'guess-guess' }) });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attempt()).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
  } finally {
    await limited.close();
  }
});

test('frugal admin: an argument an action does not take is an error, not ignored', async () => {
  await assert.rejects(admin(['--db', db, 'create-key', 'alice']), /create-key takes no argument, got 'alice' \(give the owner as --user NAME\)/);
  await assert.rejects(admin(['--db', db, 'status', 'now']), /status takes no argument/);
  await assert.rejects(admin(['--db', db, 'registration', 'open', 'please']), /registration takes 1 argument/);
  assert.match(await adminCommand('status'), /active keys/);
});
