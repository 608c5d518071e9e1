/**
 * EventStream's write coalescing: at most one write per window; an event outside a window is
 * written at once, the events within one are held (the reply corked) and leave together when it
 * closes, which opens the next window; end() sends what is held and leaves no timer behind.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { FastifyReply } from 'fastify';
import { EventStream } from '../../src/server/sse.js';

/** A reply whose raw stream records writes and flushes (a flush: the cork count falling to 0). */
function fakeReply(): { reply: FastifyReply; flushes: string[][]; pending: string[] } {
  const flushes: string[][] = [];
  const pending: string[] = [];
  let corks = 0;
  const flush = (): void => {
    if (corks === 0 && pending.length > 0) flushes.push(pending.splice(0));
  };
  const raw = Object.assign(new EventEmitter(), {
    statusCode: 0, destroyed: false, writableFinished: false,
    setHeader: () => {}, flushHeaders: () => {},
    write: (text: string) => {
      pending.push(text);
      flush();
      return true;
    },
    cork: () => void corks++,
    uncork: () => {
      corks = Math.max(0, corks - 1);
      flush();
    },
    end: () => {
      corks = 0;
      flush();
    },
  });
  return { reply: { hijack: () => {}, raw } as unknown as FastifyReply, flushes, pending };
}

test('events within a window leave in one write after the first; end() sends what is held', async () => {
  const { reply, flushes, pending } = fakeReply();
  const stream = new EventStream(reply);
  stream.send({ n: 1 });
  assert.deepEqual(flushes, [['data: {"n":1}\n\n']], 'the first event is written at once');
  stream.send({ n: 2 });
  stream.send({ n: 3 });
  assert.equal(flushes.length, 1, 'later events of the window are held');
  assert.equal(pending.length, 2);
  await sleep(24);
  assert.deepEqual(flushes[1], ['data: {"n":2}\n\n', 'data: {"n":3}\n\n'], 'they leave together when the window closes');
  stream.send({ n: 4 });
  assert.equal(flushes.length, 2, 'that write opened the next window: the next event is held');
  await sleep(24);
  assert.deepEqual(flushes[2], ['data: {"n":4}\n\n']);
  await sleep(24);
  stream.send({ n: 5 });
  assert.equal(flushes.length, 4, 'after a window without events, the next event is written at once');
  stream.send({ n: 6 });
  stream.end();
  assert.deepEqual(flushes[4], ['data: {"n":6}\n\n'], 'end() sends the held event');
  await sleep(40);
  assert.equal(flushes.length, 5, 'no write after end');
});
