import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnswerPrinter, formatStats, visibleControls, type ThinkingDisplay } from '../../src/generate/cli-output.js';
import { parseGenerationFlags } from '../../src/generate/cli-options.js';
import type { DoneEvent, GenerationEvent } from '../../src/generate/events.js';

const events: GenerationEvent[] = [
  { type: 'token', id: 1, text: 'Let me', channel: 'reasoning' },
  { type: 'token', id: 2, text: ' think.', channel: 'reasoning' },
  { type: 'token', id: 3, text: '', channel: 'reasoning' },
  { type: 'token', id: 4, text: 'Four', channel: 'content' },
  { type: 'text', text: '.', channel: 'content' },
];

function print(display: ThinkingDisplay, color: boolean, list = events): string {
  let out = '';
  const p = new AnswerPrinter({ write: (s: string) => (out += s) }, display, color);
  for (const e of list) p.onEvent(e);
  p.end();
  return out;
}

test('thinking shown under a header without a terminal, dimmed on one', () => {
  assert.equal(print('show', false), 'Thinking:\nLet me think.\n\nAnswer:\nFour.\n');
  assert.equal(print('show', true), '\x1b[2mLet me think.\x1b[0m\n\nFour.\n');
});

test('thinking collapsed to a summary, or hidden', () => {
  assert.match(print('collapse', false), /^thought for 3 tokens \(\d+\.\d s\)\n\nFour\.\n$/);
  assert.match(print('collapse', true), /^\x1b\[2mthinking\.\.\.\x1b\[0m\r\x1b\[2K\x1b\[2mthought for 3 tokens \(\d+\.\d s\)\x1b\[0m\n\nFour\.\n$/);
  assert.equal(print('hide', false), 'Four.\n');
  assert.equal(print('hide', true), 'Four.\n');
});

test('output without thinking, and a thought that never ends', () => {
  const plain: GenerationEvent[] = [{ type: 'token', id: 1, text: 'Hi\n', channel: 'content' }];
  assert.equal(print('show', false, plain), 'Hi\n');
  assert.equal(print('show', true, events.slice(0, 2)), '\x1b[2mLet me think.\x1b[0m\n');
});

test('control characters are made visible on a terminal', () => {
  assert.equal(visibleControls('a\x1b[2Jb\tc\nd\x7f\r'), 'a^[[2Jb\tc\nd^?^M');
  const evil: GenerationEvent[] = [{ type: 'token', id: 1, text: '\x1b]0;pwned\x07', channel: 'content' }];
  assert.equal(print('show', true, evil), '^[]0;pwned^G\n');
});

test('stats line', () => {
  const done: DoneEvent = {
    type: 'done',
    finishReason: 'stop',
    usage: { promptTokens: 12, cachedTokens: 4, completionTokens: 30, reasoningTokens: 20 },
    timings: { prefillMs: 123.4, decodeMs: 1000, prefillTokensPerSecond: 64.8, tokensPerSecond: 30 },
    seed: 1,
  };
  assert.equal(formatStats(done), 'prompt 12 tokens (4 cached) in 123 ms, generated 30 tokens (20 reasoning) at 30.0 tokens/s [stop]');
});

test('generation flags: defaults, values and errors naming the flag', () => {
  assert.deepEqual(parseGenerationFlags({}), { sampling: { temperature: 0.6, topP: 0.95 }, maxTokens: 4096, stop: [] });
  const f = parseGenerationFlags({ temperature: '0', 'top-k': '40', 'min-p': '0.05', seed: '9', stop: ['\n\n', 'END'], 'reasoning-budget': '100', 'repeat-penalty': '1.1' });
  assert.deepEqual(f.sampling, { temperature: 0, topP: 0.95, topK: 40, minP: 0.05, seed: 9, repetitionPenalty: 1.1 });
  assert.deepEqual(f.stop, ['\n\n', 'END']);
  assert.equal(f.reasoningBudget, 100);
  assert.throws(() => parseGenerationFlags({ temperature: 'hot' }), /--temperature must be a number, got 'hot'/);
  assert.throws(() => parseGenerationFlags({ 'top-k': '2.5' }), /--top-k must be an integer/);
  // Number() reads these; a flag takes plain decimal notation (and integers within 2^53)
  assert.throws(() => parseGenerationFlags({ 'max-tokens': '0x10' }), /--max-tokens must be an integer, got '0x10'/);
  assert.throws(() => parseGenerationFlags({ seed: '1e30' }), /--seed must be an integer, got '1e30'/);
  assert.throws(() => parseGenerationFlags({ temperature: '0x1' }), /--temperature must be a number/);
  assert.deepEqual(parseGenerationFlags({ temperature: '.5', 'top-p': '9e-1' }).sampling, { temperature: 0.5, topP: 0.9 });
  assert.throws(() => parseGenerationFlags({ 'min-p': '3' }), /--min-p must be in \[0, 1\]/);
  assert.throws(() => parseGenerationFlags({ 'max-tokens': '0' }), /--max-tokens must be >= 1/);
  assert.throws(() => parseGenerationFlags({ stop: [''] }), /--stop needs a non-empty text/);
});
