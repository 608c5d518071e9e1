import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReasoningParser, promptOpensThought, type ReasoningParserOptions } from '../../src/generate/reasoning.js';

function parse(pieces: string[], options: ReasoningParserOptions = {}): { reasoning: string; content: string; order: string } {
  const p = new ReasoningParser(options);
  let reasoning = '';
  let content = '';
  let order = '';
  for (const part of [...pieces.flatMap((s) => p.push(s)), ...p.flush()]) {
    if (part.channel === 'reasoning') reasoning += part.text;
    else content += part.text;
    if (!order.endsWith(part.channel[0]!)) order += part.channel[0];
    assert.ok(part.text.length > 0, 'no empty parts');
  }
  return { reasoning, content, order };
}

/** Every cut of `text` into two and into three pieces, and into single characters. */
function* splits(text: string): Generator<string[]> {
  yield [text];
  yield [...text];
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) yield [text.slice(0, i), text.slice(i, j), text.slice(j)];
  }
}

test('<think> ... </think> splits into reasoning and content at every cut', () => {
  const text = '<think>\nLet me see: 2+2.\nIt is 4.\n</think>\n\nThe answer is **4**.';
  for (const pieces of splits(text)) {
    const r = parse(pieces);
    assert.equal(r.reasoning, 'Let me see: 2+2.\nIt is 4.', JSON.stringify(pieces));
    assert.equal(r.content, 'The answer is **4**.');
    assert.equal(r.order, 'rc');
  }
});

test('pre-filled <think>: the output starts as reasoning until </think>', () => {
  const text = 'Hmm, 3 * 3 = 9.\n</think>\n\n9';
  for (const pieces of splits(text)) {
    const r = parse(pieces, { startInReasoning: true });
    assert.equal(r.reasoning, 'Hmm, 3 * 3 = 9.', JSON.stringify(pieces));
    assert.equal(r.content, '9');
  }
});

test('output without <think> is all content, even with tags later', () => {
  const text = 'Plain answer with <think> and </think> inside.';
  for (const pieces of splits(text)) {
    const r = parse(pieces);
    assert.equal(r.reasoning, '');
    assert.equal(r.content, text);
  }
});

test('only the first </think> ends the thought; later tags are content', () => {
  const r = parse(['a</think>b</think>c'], { startInReasoning: true });
  assert.equal(r.reasoning, 'a');
  assert.equal(r.content, 'b</think>c');
});

test('an empty thought gives no reasoning; leading whitespace before <think> is allowed', () => {
  const r = parse(['  \n<think>\n\n</think>\n\nHi']);
  assert.deepEqual([r.reasoning, r.content], ['', 'Hi']);
});

test('an unterminated thought is reasoning (flushed, trimmed)', () => {
  for (const pieces of splits('thinking forever </thi')) {
    const r = parse(pieces, { startInReasoning: true });
    assert.equal(r.reasoning, 'thinking forever </thi');
    assert.equal(r.content, '');
  }
});

test('a partial <think> at the end of the output is content', () => {
  assert.deepEqual(parse(['<thi']), { reasoning: '', content: '<thi', order: 'c' });
});

test('reasoning text is released while streaming, holding only a possible tag or trailing space', () => {
  const p = new ReasoningParser({ startInReasoning: true });
  assert.deepEqual(p.push('one two '), [{ channel: 'reasoning', text: 'one two' }]);
  assert.deepEqual(p.push('three</'), [{ channel: 'reasoning', text: ' three' }]);
  assert.deepEqual(p.push('think>'), []);
  assert.equal(p.reasoningDone, true);
  assert.deepEqual(p.push('\n\nok'), [{ channel: 'content', text: 'ok' }]);
});

test('promptOpensThought detects a prompt ending inside <think>', () => {
  assert.equal(promptOpensThought('<｜User｜>hi<｜Assistant｜><think>\n'), true);
  assert.equal(promptOpensThought('<｜Assistant｜><think>'), true);
  assert.equal(promptOpensThought('<｜Assistant｜>'), false);
  assert.equal(promptOpensThought('<think>\nx\n</think>\n\n'), false);
  assert.equal(promptOpensThought('<think> some text'), false);
});
