import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseDecoder, parseChatEvent } from '../../src/server/web/sse.js';

const STREAM = ': keep-alive\n\n' +
  'data: {"type":"start","user_message_id":1,"assistant_message_id":2}\n\n' +
  'data: {"type":"reasoning","text":"hm\\n"}\r\n\r\n' +
  'event: custom\ndata: line one\ndata: line two\n\n' +
  'data:{"type":"content","text":"ok"}\r\r' +
  'data: {"type":"done","finish_reason":"stop"}\n\n';

const EXPECTED = [
  { event: 'message', data: '{"type":"start","user_message_id":1,"assistant_message_id":2}' },
  { event: 'message', data: '{"type":"reasoning","text":"hm\\n"}' },
  { event: 'custom', data: 'line one\nline two' },
  { event: 'message', data: '{"type":"content","text":"ok"}' },
  { event: 'message', data: '{"type":"done","finish_reason":"stop"}' },
];

test('sse: whole stream decodes into events, comments dropped', () => {
  assert.deepEqual(new SseDecoder().push(STREAM), EXPECTED);
});

test('sse: every split of the stream into two or three chunks gives the same events', () => {
  for (let a = 0; a <= STREAM.length; a++) {
    const decoder = new SseDecoder();
    const events = [...decoder.push(STREAM.slice(0, a)), ...decoder.push(STREAM.slice(a))];
    assert.deepEqual(events, EXPECTED, `split at ${a}`);
  }
  for (let a = 0; a < STREAM.length; a += 7) {
    for (let b = a; b <= STREAM.length; b += 5) {
      const decoder = new SseDecoder();
      const events = [STREAM.slice(0, a), STREAM.slice(a, b), STREAM.slice(b)].flatMap((c) => decoder.push(c));
      assert.deepEqual(events, EXPECTED, `split at ${a}, ${b}`);
    }
  }
});

test('sse: a truncated event is not dispatched and stays pending', () => {
  const decoder = new SseDecoder();
  assert.deepEqual(decoder.push('data: {"type":"content","text":"x"}\ndata: par'), []);
  assert.equal(decoder.pending, 'data: par');
});

test('chat events: parsed, unknown types ignored, malformed data named', () => {
  assert.deepEqual(parseChatEvent('{"type":"content","text":"a"}'), { type: 'content', text: 'a' });
  assert.equal(parseChatEvent('{"type":"future_thing"}'), undefined);
  assert.throws(() => parseChatEvent('not json'), /not JSON: not json/);
  assert.throws(() => parseChatEvent('{"text":"a"}'), /no "type"/);
  assert.throws(() => parseChatEvent('{"type":"content"}'), /"content" event without a text string/);
  assert.throws(() => parseChatEvent('{"type":"error"}'), /"error" event without a message/);
});
