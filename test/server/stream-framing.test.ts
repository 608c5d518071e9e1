/**
 * The byte stream of a streamed chat completion, read from a raw socket: the status line and SSE
 * headers come first (they now leave with the first event instead of a write of their own), the
 * role chunk is the first event, and the closing events (the finish chunk, the usage chunk,
 * `data: [DONE]`, then the chunked-encoding end) arrive complete and in order (they now leave in
 * one write). Several concurrent streams (decoded in one batch) each get a well-formed stream.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

/** One HTTP/1.1 request on its own socket; resolves with everything the server sent until it closed. */
function rawRequest(body: unknown): Promise<string> {
  const { hostname, port } = new URL(t.url);
  const json = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
      );
    });
    const parts: Buffer[] = [];
    socket.on('data', (part) => parts.push(part));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

/** The SSE payload of a chunked HTTP/1.1 body. */
function dechunk(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = parseInt(body.slice(at, eol), 16);
    if (size === 0) return out;
    const start = eol + 2;
    const bytes = Buffer.from(body.slice(start), 'utf8').subarray(0, size).toString('utf8');
    out += bytes;
    at = start + bytes.length + 2;
  }
}

function checkStream(raw: string, what: string): void {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  assert.match(head, /^HTTP\/1\.1 200 /, what);
  assert.match(head, /content-type: text\/event-stream/i, what);
  assert.match(head, /transfer-encoding: chunked/i, what);
  assert.ok(raw.endsWith('0\r\n\r\n'), `${what}: the chunked body is terminated`);
  const lines = dechunk(raw.slice(split + 4)).split('\n\n').filter((l) => l !== '');
  assert.equal(lines.at(-1), 'data: [DONE]', what);
  const events = lines.slice(0, -1).map((l) => JSON.parse(l.replace(/^data: /, '')) as { choices: { delta: { role?: string }; finish_reason: string | null }[]; usage: { completion_tokens: number } | null });
  assert.equal(events[0]!.choices[0]!.delta.role, 'assistant', `${what}: the role chunk comes first`);
  const usage = events.at(-1)!;
  assert.deepEqual(usage.choices, [], `${what}: the usage chunk comes last`);
  assert.equal(usage.usage!.completion_tokens, 6, what);
  assert.equal(events.at(-2)!.choices[0]!.finish_reason, 'length', `${what}: the finish chunk precedes the usage`);
  // one chunk per token that completes some text (a byte token inside a UTF-8 character adds none)
  assert.ok(events.length >= 3 && events.length <= 1 + 6 + 2, `${what}: role, up to one chunk per token, finish, usage`);
  for (const e of events.slice(1, -2)) assert.equal(e.choices[0]!.finish_reason, null, what);
}

test('a streamed completion: headers, role chunk, token chunks, finish, usage, [DONE], end; alone and 5 at once', async () => {
  const body = { model: 'tiny', messages: [{ role: 'user', content: 'hello' }], max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } };
  checkStream(await rawRequest(body), 'alone');
  const together = await Promise.all([0, 1, 2, 3, 4].map((i) => rawRequest({ ...body, messages: [{ role: 'user', content: `stream ${i}` }] })));
  together.forEach((raw, i) => checkStream(raw, `concurrent stream ${i}`));
});
