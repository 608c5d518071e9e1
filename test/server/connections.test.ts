/**
 * Connection caps (src/server/connections.ts): sockets that never send a request hold their slot;
 * beyond the per-address cap a new connection gets a 503 in the API's error shape and is closed,
 * the open ones keep working, and once they close requests go through again. The total cap the same.
 * A socket that stays silent is closed after silentMs; one that sent a request is not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

before(async () => {
  t = await startTestServer({ connections: { perAddress: 3, total: 5, silentMs: 1500 } });
});
/** Every client socket a test opens, destroyed before the server closes (a failed test must not leave one holding it). */
const opened: Socket[] = [];
after(async () => {
  for (const s of opened) s.destroy();
  await t.close();
});

const port = (): number => Number(new URL(t.url).port);

/** An open socket from localAddress that sends nothing (what a slow-loris client holds). */
function idleSocket(localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: port(), localAddress }, () => resolve(s));
    opened.push(s);
    s.on('error', reject);
  });
}

/**
 * Sends one raw GET on a fresh socket (from localAddress) and returns everything the server sent
 * before closing (fetch would keep its connection open, and count against the caps).
 */
function rawGet(path = '/health', localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: port(), localAddress }, () => s.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`));
    let text = '';
    s.on('data', (chunk) => { text += chunk.toString(); });
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Closes the sockets and waits until the server has seen them close. */
async function closeAll(sockets: Socket[]): Promise<void> {
  for (const s of sockets) s.destroy();
  await until(() => t.server.connections.open() === 0);
}

test('beyond the per-address cap a connection gets 503 with the error body; the held ones still work; after they close, requests pass', { timeout: 20_000 }, async () => {
  const held = await Promise.all([idleSocket(), idleSocket()]);
  await until(() => t.server.connections.open('127.0.0.1') === 2);
  // 2 held + this one = 3, the cap: still served
  assert.match(await rawGet(), /^HTTP\/1\.1 200/);
  const third = await idleSocket();
  await until(() => t.server.connections.open('127.0.0.1') === 3);
  const refused = await rawGet();
  assert.match(refused, /^HTTP\/1\.1 503/);
  assert.match(refused, /retry-after: 1/i);
  const body = JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'too_many_connections');
  assert.match(body.error.message, /limit per address/);
  // a refused client that never closes its side: the server lets go of the socket within about a second
  const connections = (): Promise<number> => new Promise((resolve, reject) => t.server.app.server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  // the held three only (the refused socket of rawGet above may still be closing)
  const before = 3;
  for (let waited = 0; (await connections()) !== before; waited += 20) {
    assert.ok(waited < 3000, 'the refused socket of the first 503 is still held');
    await new Promise((r) => setTimeout(r, 20));
  }
  const stubborn = connect({ host: '127.0.0.1', port: port(), allowHalfOpen: true });
  opened.push(stubborn);
  stubborn.on('error', () => {});
  stubborn.resume();
  await new Promise<void>((resolve) => stubborn.once('end', () => resolve()));
  const released = Date.now();
  for (let n = await connections(); n > before; n = await connections()) {
    assert.ok(Date.now() - released < 3000, 'the refused socket is still held 3 s after its 503');
    await new Promise((r) => setTimeout(r, 20));
  }
  // a held socket can still make its request
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    held[0]!.on('data', (c) => { text += c.toString(); if (text.includes('"status"')) resolve(text); });
    held[0]!.write('GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 200/);
  stubborn.destroy();
  await closeAll([...held, third]);
  assert.match(await rawGet(), /^HTTP\/1\.1 200/);
  const metrics = await rawGet('/metrics');
  assert.match(metrics, /frugal_refused_connections_total 2\b/);
});

test('beyond the total cap a connection from another address gets 503 too', { timeout: 20_000 }, async () => {
  // connections from 127.0.0.2 (a loopback address on Linux too) come from another remote address
  const first = await Promise.all([idleSocket('127.0.0.1'), idleSocket('127.0.0.1'), idleSocket('127.0.0.1')]);
  const second = await Promise.all([idleSocket('127.0.0.2'), idleSocket('127.0.0.2')]);
  await until(() => t.server.connections.open() === 5);
  const refused = await rawGet('/health', '127.0.0.2');
  assert.match(refused, /^HTTP\/1\.1 503/);
  assert.match(refused, /open connections, its limit/);
  await closeAll([...first, ...second]);
  assert.match(await rawGet('/health', '127.0.0.2'), /^HTTP\/1\.1 200/);
});

test('a connection that sends nothing is closed after silentMs; one that made a request stays open', { timeout: 20_000 }, async () => {
  const started = Date.now();
  const silent = await idleSocket();
  const talker = await idleSocket();
  const answered = new Promise<string>((resolve) => {
    let text = '';
    talker.on('data', (c) => { text += c.toString(); if (text.includes('"status"')) resolve(text); });
  });
  talker.write('GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
  assert.match(await answered, /^HTTP\/1\.1 200/);
  await new Promise<void>((resolve) => silent.once('close', () => resolve()));
  const waited = Date.now() - started;
  assert.ok(waited >= 1400 && waited < 5000, `the silent socket closed after ${waited} ms (silentMs 1500)`);
  assert.equal(talker.destroyed, false, 'the socket that made a request was closed too');
  await closeAll([talker]);
});
