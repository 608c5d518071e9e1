/**
 * Security review of accounts and authentication, against a running server with auth required:
 * password hashing and login answers, account names (case, look-alikes), login limits per address
 * and per account, invites (checked before names, single use under a race), session cookies
 * (flags, a fresh token per login, logout, expiry), CSRF, malformed Authorization headers, one
 * user's conversations out of another's reach, and deleted users locked out at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Store } from '../../src/server/store.js';
import { startTestServer, type TestServer, adminCommand as runAdmin } from './helpers.js';

let t: TestServer;
let db = '';

before(async () => {
  t = await startTestServer({ settings: { authRequired: true, loginAttemptsPerMinute: 1000 } });
  db = join(t.dir, 'frugal.db');
  await adminCommand('registration', 'open');
});
after(() => t.close());

/** `frugal admin --db <this server's db> ...args` (helpers.ts). */
const adminCommand = (...args: string[]): Promise<string> => runAdmin(db, ...args);

/** Runs `fn` on the server's database file, opened a second time (as `frugal admin` would). */
function withStore<T>(fn: (store: Store) => T): T {
  const store = new Store(db);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

async function call(path: string, init: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const method = init.method ?? (init.body !== undefined ? 'POST' : 'GET');
  return fetch(`${t.url}${path}`, { method, headers, ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}) });
}

interface Session {
  cookie: string;
  csrf: string;
  /** The whole Set-Cookie header. */
  setCookie: string;
}

async function sessionFrom(response: Response, expectedStatus: number): Promise<Session> {
  const text = await response.text();
  assert.equal(response.status, expectedStatus, text);
  const setCookie = response.headers.get('set-cookie')!;
  return { cookie: setCookie.split(';')[0]!, csrf: (JSON.parse(text) as { csrf_token: string }).csrf_token, setCookie };
}

const register = async (username: string, password = 'password123'): Promise<Session> => sessionFrom(await call('/auth/register', { body: { username, password } }), 201);
const login = async (username: string, password = 'password123'): Promise<Session> => sessionFrom(await call('/auth/login', { body: { username, password } }), 200);

async function errorOf(response: Response): Promise<{ status: number; code: string | null; message: string }> {
  const body = (await response.json()) as { error: { code: string | null; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

/** A JSON POST sent from `localAddress` (another loopback address is another client IP on Linux). */
function postFrom(baseUrl: string, localAddress: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<number> {
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A GET with raw header bytes (fetch refuses to send non-ASCII); returns the status line and body. */
function rawGet(path: string, headerBytes: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(new URL(t.url).port) }, () => {
      socket.end(Buffer.concat([Buffer.from(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n`), headerBytes, Buffer.from('\r\n\r\n')]));
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve({ status: Number(text.slice(9, 12)), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
    socket.on('error', reject);
  });
}

test('account names: one account whatever the case; non-ASCII look-alikes and overlong names refused', async () => {
  await register('Ann');
  const again = await call('/auth/register', { body: { username: 'ann', password: 'password123' } });
  assert.equal(again.status, 409, "'ann' is the account 'Ann', not a second one");
  const me = await call('/auth/me', { headers: { cookie: (await login('ANN')).cookie } });
  assert.equal(((await me.json()) as { user: { username: string } }).user.username, 'Ann', 'logging in ignores case');
  for (const username of ['\u0430nn', 'A\u0301nn', '\uff21nn', 'a'.repeat(65), '']) {
    const refused = await call('/auth/register', { body: { username, password: 'password123' } });
    assert.equal(refused.status, 422, `username ${JSON.stringify(username.slice(0, 10))}`);
  }
});

test('passwords: scrypt with a salt per user; length bounds; login answers alike for unknown user, wrong and absurd passwords', async () => {
  await register('salt1', 'same password');
  await register('salt2', 'same password');
  const [h1, h2] = withStore((s) => [s.userByName('salt1')!.password_hash, s.userByName('salt2')!.password_hash]);
  assert.match(h1!, /^scrypt\$16384\$8\$1\$/);
  assert.notEqual(h1!.split('$')[4], h2!.split('$')[4], 'a salt per user');
  assert.notEqual(h1, h2);
  for (const password of ['short', 'x'.repeat(1025)]) {
    assert.equal((await call('/auth/register', { body: { username: 'weak', password } })).status, 422);
  }
  const answers = [];
  for (const [username, password] of [['nobody-here', 'password123'], ['salt1', 'wrong password'], ['salt1', 'x'.repeat(500_000)], ['y'.repeat(100_000), 'password123']]) {
    answers.push(await errorOf(await call('/auth/login', { body: { username, password } })));
  }
  for (const answer of answers) assert.deepEqual(answer, { status: 401, code: 'invalid_credentials', message: 'wrong username or password' });
});

test('login attempts are limited per account name, however many addresses guess it', async () => {
  const limited = await startTestServer({ settings: { authRequired: true, loginAttemptsPerMinute: 3 } });
  try {
    const attempt = (localAddress: string, username: string, headers: Record<string, string> = {}): Promise<number> =>
      postFrom(limited.url, localAddress, '/auth/login', { username, password: 'guess-guess' }, headers);
    const spread = [];
    for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) spread.push(await attempt(address, address === '127.0.0.5' ? 'VICTIM' : 'victim'));
    assert.deepEqual(spread, [401, 401, 401, 429], 'the fourth guess at one name in a minute is refused, from any address, in any case');
    // the address limit counts the socket's address: a forged X-Forwarded-For does not reset it
    const forged = [];
    for (let i = 0; i < 4; i++) forged.push(await attempt('127.0.0.6', `other${i}`, { 'x-forwarded-for': `10.0.0.${i}` }));
    assert.deepEqual(forged, [401, 401, 401, 429]);
  } finally {
    await limited.close();
  }
});

test('invites: a wrong code does not reveal taken names; one code, two registrations at once, one user; spent even after its user is deleted', async () => {
  await adminCommand('registration', 'invite');
  try {
    const probe = await call('/auth/register', { body: { username: 'ann', password: 'password123', invite_code: 'guessed' } });
    assert.equal((await errorOf(probe)).code, 'invite_invalid', 'the invite is checked before the name');
    const code = await adminCommand('create-invite');
    const racing = await Promise.all(['racer1', 'racer2', 'racer3'].map((username) => call('/auth/register', { body: { username, password: 'password123', invite_code: code } })));
    assert.deepEqual(racing.map((r) => r.status).sort(), [201, 403, 403]);
    const winner = withStore((s) => ['racer1', 'racer2', 'racer3'].filter((name) => s.userByName(name)));
    assert.equal(winner.length, 1);
    await adminCommand('delete-user', winner[0]!);
    const reused = await call('/auth/register', { body: { username: 'racer4', password: 'password123', invite_code: code } });
    assert.equal(reused.status, 403, 'deleting the user does not give the code back');
  } finally {
    await adminCommand('registration', 'open');
  }
});

test('sessions: HttpOnly SameSite cookie, no Secure claimed by a header, a new token per login, logout ends it on the server, expiry', async () => {
  const first = await register('sam');
  assert.match(first.setCookie, /^frugal_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/, '32 random bytes');
  const viaForgedProxy = await sessionFrom(await call('/auth/login', { body: { username: 'sam', password: 'password123' }, headers: { 'x-forwarded-proto': 'https' } }), 200);
  assert.doesNotMatch(viaForgedProxy.setCookie, /Secure/, 'X-Forwarded-Proto is not trusted');
  // fixation: a login with a cookie chosen beforehand gets a new token, and the old one stays unknown
  const planted = 'frugal_session=attacker-chosen-value';
  const fresh = await sessionFrom(await call('/auth/login', { body: { username: 'sam', password: 'password123' }, headers: { cookie: planted } }), 200);
  assert.notEqual(fresh.cookie, planted);
  assert.notEqual(fresh.cookie, first.cookie);
  assert.equal((await call('/auth/me', { headers: { cookie: planted } })).status, 401);
  // logout needs this session's CSRF token, then the token is dead even if replayed
  assert.equal((await call('/auth/logout', { method: 'POST', headers: { cookie: fresh.cookie } })).status, 403);
  assert.equal((await call('/auth/logout', { method: 'POST', headers: { cookie: fresh.cookie, 'x-csrf-token': first.csrf } })).status, 403);
  const out = await call('/auth/logout', { method: 'POST', headers: { cookie: fresh.cookie, 'x-csrf-token': fresh.csrf } });
  assert.equal(out.status, 204);
  assert.match(out.headers.get('set-cookie')!, /frugal_session=; .*Max-Age=0/);
  assert.equal((await call('/auth/me', { headers: { cookie: fresh.cookie } })).status, 401);
  assert.equal((await call('/v1/models', { headers: { cookie: fresh.cookie } })).status, 401);
  // expiry is checked on every request
  assert.equal((await call('/auth/me', { headers: { cookie: first.cookie } })).status, 200);
  withStore((s) => s.db.prepare('UPDATE sessions SET expires_at = ?').run(Date.now() - 1));
  assert.equal((await call('/auth/me', { headers: { cookie: first.cookie } })).status, 401);
});

test('CSRF: cookie-authenticated changes need this session\'s token; API keys need none', async () => {
  const carol = await register('carol');
  const dave = await register('dave');
  const withToken = (session: Session, token: string | undefined): Record<string, string> => ({ cookie: session.cookie, ...(token === undefined ? {} : { 'x-csrf-token': token }) });
  for (const token of [undefined, '', dave.csrf, `${carol.csrf}x`]) {
    assert.equal((await call('/ui/conversations', { body: {}, headers: withToken(carol, token) })).status, 403, `token ${String(token)}`);
    assert.equal((await call('/v1/chat/completions', { body: { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }, headers: withToken(carol, token) })).status, 403);
  }
  const created = await call('/ui/conversations', { body: { title: 'mine' }, headers: withToken(carol, carol.csrf) });
  const { conversation } = (await created.json()) as { conversation: { id: string } };
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { method: 'DELETE', headers: withToken(carol, dave.csrf) })).status, 403);
  assert.equal((await call(`/ui/conversations/${conversation.id}/messages`, { body: { content: 'x' }, headers: withToken(carol, undefined) })).status, 403);
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { headers: { cookie: carol.cookie } })).status, 200, 'GET needs no token');
  const key = await adminCommand('create-key', '--user', 'carol');
  const viaKey = await call('/ui/conversations', { body: { title: 'by key' }, headers: { authorization: `Bearer ${key}` } });
  assert.equal(viaKey.status, 201);
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } })).status, 204);
  // a login from a web page: a "simple" cross-site POST is refused, JSON would need a preflight
  const crossSite = await fetch(`${t.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'text/plain', origin: 'https://evil.example' }, body: JSON.stringify({ username: 'carol', password: 'password123' }) });
  assert.equal(crossSite.status, 415);
});

test("another user's conversation is 404 on every route (no IDOR)", async () => {
  const owner = await register('erin');
  const other = await register('frank');
  const created = await call('/ui/conversations', { body: { title: 'private' }, headers: { cookie: owner.cookie, 'x-csrf-token': owner.csrf } });
  const { conversation } = (await created.json()) as { conversation: { id: string } };
  const asOther = { cookie: other.cookie, 'x-csrf-token': other.csrf };
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { headers: asOther })).status, 404);
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { method: 'DELETE', headers: asOther })).status, 404);
  assert.equal((await call(`/ui/conversations/${conversation.id}/messages`, { body: { content: 'hi', max_tokens: 1 }, headers: asOther })).status, 404);
  const otherKey = await adminCommand('create-key', '--user', 'frank');
  assert.equal((await call(`/ui/conversations/${conversation.id}`, { headers: { authorization: `Bearer ${otherKey}` } })).status, 404);
  const listed = (await (await call('/ui/conversations', { headers: asOther })).json()) as { conversations: unknown[] };
  assert.deepEqual(listed.conversations, []);
  const mine = await call(`/ui/conversations/${conversation.id}`, { headers: { cookie: owner.cookie } });
  assert.equal(((await mine.json()) as { messages: unknown[] }).messages.length, 0, 'nothing was added by the other user');
});

test('`frugal admin delete-user` locks the user out at once: sessions, keys, login', async () => {
  const gina = await register('gina');
  const ginaKey = await adminCommand('create-key', '--user', 'gina');
  assert.equal((await call('/v1/models', { headers: { cookie: gina.cookie } })).status, 200);
  assert.equal((await call('/v1/models', { headers: { authorization: `Bearer ${ginaKey}` } })).status, 200);
  await adminCommand('delete-user', 'GINA');
  assert.equal((await call('/v1/models', { headers: { cookie: gina.cookie } })).status, 401);
  assert.equal((await call('/v1/models', { headers: { authorization: `Bearer ${ginaKey}` } })).status, 401);
  assert.equal((await call('/auth/login', { body: { username: 'gina', password: 'password123' } })).status, 401);
});

test('a user deleted by hand (sqlite3 shell: foreign keys off, no cascade) loses their sessions and keys', async () => {
  const hank = await register('hank');
  const hankKey = await adminCommand('create-key', '--user', 'hank');
  withStore((s) => {
    s.db.pragma('foreign_keys = OFF');
    s.db.prepare('DELETE FROM users WHERE username = ?').run('hank');
  });
  assert.equal((await call('/v1/models', { headers: { cookie: hank.cookie } })).status, 401, 'the orphaned session');
  const orphanKey = await call('/v1/models', { headers: { authorization: `Bearer ${hankKey}` } });
  assert.equal((await errorOf(orphanKey)).code, 'invalid_api_key', 'the orphaned key');
});

test('malformed Authorization headers get 401 with the error body; a revoked key and a paused service refuse at once', async () => {
  for (const value of ['Basic YTpi', '', 'Bearer', 'Bearer ', 'Bearer a b', `Bearer ${'k'.repeat(12_000)}`]) {
    const answer = await errorOf(await call('/v1/models', { headers: { authorization: value } }));
    assert.deepEqual([answer.status, answer.code], [401, 'invalid_api_key'], `Authorization: ${value.slice(0, 12)}`);
  }
  const nonAscii = await rawGet('/v1/models', Buffer.concat([Buffer.from('authorization: Bearer '), Buffer.from('ключ-é', 'utf8')]));
  assert.equal(nonAscii.status, 401);
  assert.equal((JSON.parse(nonAscii.body) as { error: { code: string } }).error.code, 'invalid_api_key');
  const key = await adminCommand('create-key');
  const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };
  await adminCommand('pause', 'upgrade');
  try {
    assert.equal((await call('/v1/chat/completions', { body: chat, headers: { authorization: `Bearer ${key}` } })).status, 503);
  } finally {
    await adminCommand('resume');
  }
  assert.equal((await call('/v1/chat/completions', { body: chat, headers: { authorization: `Bearer ${key}` } })).status, 200);
  const stored = withStore((s) => s.apiKeys().at(-1)!);
  assert.ok(!JSON.stringify(stored).includes(key), 'only a hash and a prefix are stored');
  await adminCommand('revoke-key', String(stored.id));
  assert.equal((await call('/v1/models', { headers: { authorization: `Bearer ${key}` } })).status, 401);
});

test('with secureCookies (served behind https) both the session cookie and its clearing carry Secure', async () => {
  const secure = await startTestServer({ settings: { authRequired: true, secureCookies: true } });
  try {
    const dbFile = join(secure.dir, 'frugal.db');
    const store = new Store(dbFile);
    store.setSetting('registration', 'open');
    store.close();
    const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${secure.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const session = await sessionFrom(await post('/auth/register', { username: 'ivy', password: 'password123' }), 201);
    assert.match(session.setCookie, /; Secure$/);
    const out = await post('/auth/logout', {}, { cookie: session.cookie, 'x-csrf-token': session.csrf });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie')!, /Max-Age=0; Secure$/);
  } finally {
    await secure.close();
  }
});
