/**
 * EventStream's write coalescing: at most one write per window; an event outside a window is
 * written at once, the events within one are held and leave in one write when it closes, which
 * opens the next window; [DONE] after held events stays behind them; end() sends what is held and
 * leaves no timer behind; an event sent with sendWithNext (a stream's role chunk) leaves with the
 * next write. jsonTemplate (the streamed chunks' JSON) equals JSON.stringify.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { FastifyReply } from 'fastify';
import { EventStream, jsonTemplate } from '../../src/server/sse.js';

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
    end: (text?: string) => {
      if (text !== undefined) pending.push(text);
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
  await sleep(24);
  assert.deepEqual(flushes[1], ['data: {"n":2}\n\ndata: {"n":3}\n\n'], 'they leave in one write when the window closes');
  stream.send({ n: 4 });
  assert.equal(flushes.length, 2, 'that write opened the next window: the next event is held');
  await sleep(24);
  assert.deepEqual(flushes[2], ['data: {"n":4}\n\n']);
  await sleep(24);
  stream.send({ n: 5 });
  assert.equal(flushes.length, 4, 'after a window without events, the next event is written at once');
  stream.send({ n: 6 });
  stream.sendRaw('data: [DONE]\n\n');
  assert.equal(flushes.length, 4, '[DONE] waits behind the held event');
  stream.end();
  assert.deepEqual(flushes[4], ['data: {"n":6}\n\ndata: [DONE]\n\n'], 'end() sends the held events in order');
  await sleep(40);
  assert.equal(flushes.length, 5, 'no write after end');
});

test('sendWithNext: the event leaves with the next write (event, raw text or end), in order', async () => {
  {
    const { reply, flushes } = fakeReply();
    const stream = new EventStream(reply);
    stream.sendWithNext({ role: 'assistant' });
    assert.equal(flushes.length, 0, 'nothing is written on its own');
    stream.send({ n: 1 });
    assert.deepEqual(flushes, [['data: {"role":"assistant"}\n\ndata: {"n":1}\n\n']], 'one write with the first event, at once');
    stream.send({ n: 2 });
    assert.equal(flushes.length, 1, 'that write opened a window');
    await sleep(24);
    assert.deepEqual(flushes[1], ['data: {"n":2}\n\n']);
    stream.end();
  }
  {
    const { reply, flushes } = fakeReply();
    const stream = new EventStream(reply);
    stream.sendWithNext({ role: 'assistant' });
    stream.sendRaw('data: [DONE]\n\n');
    assert.deepEqual(flushes, [['data: {"role":"assistant"}\n\ndata: [DONE]\n\n']], 'raw text takes it along');
    stream.end();
  }
  {
    const { reply, flushes } = fakeReply();
    const stream = new EventStream(reply);
    stream.sendWithNext({ role: 'assistant' });
    stream.end();
    assert.deepEqual(flushes, [['data: {"role":"assistant"}\n\n']], 'end() sends it when nothing else came');
  }
  {
    const { reply, flushes } = fakeReply();
    const stream = new EventStream(reply);
    stream.sendWithNext({ role: 'assistant' }, undefined, 10);
    await sleep(30);
    assert.deepEqual(flushes, [['data: {"role":"assistant"}\n\n']], 'alone after its deadline (a long prompt still being read)');
    stream.send({ n: 1 });
    assert.deepEqual(flushes[1], ['data: {"n":1}\n\n'], 'that write opened no window: the first token leaves at once');
    stream.end();
  }
});

test('jsonTemplate gives the bytes of JSON.stringify for any text', () => {
  const build = (text: string): unknown => ({ id: 'chatcmpl-"x"', created: 1, choices: [{ index: 0, delta: { content: null, reasoning_content: text }, finish_reason: null }], usage: null });
  const template = jsonTemplate(build);
  const texts = ['', 'plain', ' "quoted" \\ back', 'line\nbreak\ttab\u0000nul\u001f', 'ünïcödé 数学 🙂', '\ud800 lone surrogate', '</script>'];
  for (const text of texts) assert.equal(template(text), JSON.stringify(build(text)), JSON.stringify(text));
  const clash = (text: string): unknown => ({ model: '\u0000frugal-text\u0000', text });
  assert.equal(jsonTemplate(clash)('a"b'), JSON.stringify(clash('a"b')), 'a template whose constant parts hold the marker falls back to JSON.stringify');
});
