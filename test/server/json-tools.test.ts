/**
 * The JSON validator against JSON.parse on valid and invalid documents and all their prefixes,
 * the logits mask on a toy vocabulary, and tool-call parsing of the DeepSeek format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonValidator, maskJsonLogits } from '../../src/server/json-constraint.js';
import { forcedCallPrefix, parseToolCalls, TOOL_CALL_END, TOOL_CALLS_END } from '../../src/server/tools.js';

const valid = ['{}', '{"a":1}', '{"a": [1, -2.5e+3, true, false, null, "x\\n\\u00e9"], "b": {"c": {}}}', '{"k": "é😀"}', '{"n": 0.5, "m": [[], [{}]]}'];
const invalid = ['{"a":01}', '{"a":1,}', '{a:1}', '[1]', '{"a" 1}', '{"a":tru}', '{"a":"\x01"}', '{"a":1}}', '{"a":-}', '{"a":1.}', '{"a":"\\x"}', '"s"'];

test('valid documents: every prefix accepted, complete exactly at the end', () => {
  for (const doc of valid) {
    JSON.parse(doc);
    const v = new JsonValidator();
    for (const [i, ch] of [...doc].entries()) {
      assert.ok(v.push(ch), `${doc} at ${i}`);
      assert.equal(v.complete, i === [...doc].length - 1, `${doc}: complete at ${i}`);
    }
  }
});

test('invalid documents are rejected (or never complete)', () => {
  for (const doc of invalid) {
    assert.throws(() => {
      const parsed: unknown = JSON.parse(doc);
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    });
    const v = new JsonValidator();
    assert.ok(!v.push(doc) || !v.complete, doc);
  }
});

test('the mask keeps only tokens that continue the JSON, then only the end token', () => {
  const texts = ['{', '}', '"a"', ':', '1', 'x', ' ', '"', ',', '<eos>'];
  const vocab = { texts: texts.map((t, i) => (i === 9 ? undefined : t)), stopIds: new Set([9]) };
  const state = new JsonValidator();
  const allowed = (): string[] => {
    const logits = new Float32Array(texts.length).fill(1);
    maskJsonLogits(logits, state, vocab);
    return texts.filter((_, i) => logits[i] !== -Infinity);
  };
  assert.deepEqual(allowed(), ['{', ' ']);
  state.push('{');
  assert.deepEqual(allowed(), ['}', '"a"', ' ', '"']);
  state.push('"a":1');
  assert.deepEqual(allowed(), ['}', '1', ' ', ',']);
  state.push('}');
  assert.deepEqual(allowed(), ['<eos>']);
});

test('tool calls in the DeepSeek format become tool_calls; malformed ones stay content', () => {
  const text = `Let me check.${forcedCallPrefix('get_weather')}{"city": "Paris"}\n\`\`\`${TOOL_CALL_END}${TOOL_CALLS_END}`;
  const parsed = parseToolCalls(text);
  assert.equal(parsed.content, 'Let me check.');
  assert.equal(parsed.calls.length, 1);
  assert.equal(parsed.calls[0]!.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(parsed.calls[0]!.function.arguments), { city: 'Paris' });
  const broken = `${forcedCallPrefix('f')}{"a": \n\`\`\`${TOOL_CALL_END}`;
  assert.deepEqual(parseToolCalls(broken), { content: broken, calls: [] });
  assert.deepEqual(parseToolCalls('plain answer'), { content: 'plain answer', calls: [] });
});

test('the mask keeps the same tokens as testing the whole vocabulary in sorted order would, on a large vocabulary', () => {
  // a 5000-token vocabulary of short texts; only a few of them continue a number, and they rank low
  const alphabet = 'abcdefghij{}[]":, 0123456789-.eE';
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const texts = Array.from({ length: 5000 }, (_, i) => (i % 9 === 0 ? undefined : Array.from({ length: 1 + (i % 3) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('')));
  const vocab = { texts, stopIds: new Set([0]) };
  /** The mask as it was: sort everything, test in order. */
  const reference = (logits: Float32Array, state: JsonValidator, keep: number): Float32Array => {
    const out = logits.slice();
    const order = Array.from({ length: out.length }, (_, i) => i).sort((a, b) => out[b]! - out[a]! || a - b);
    let kept = 0;
    for (const id of order) {
      const text = vocab.texts[id];
      if (kept < keep && text !== undefined && out[id] !== -Infinity && state.accepts(text)) kept++;
      else out[id] = -Infinity;
    }
    return out;
  };
  for (const prefix of ['{"a": 1', '{"a": ', '{"a": [1', '{']) {
    const state = new JsonValidator();
    assert.ok(state.push(prefix));
    for (let round = 0; round < 4; round++) {
      const logits = Float32Array.from({ length: texts.length }, () => Math.floor(rnd() * 50)); // many ties
      // keep 400: fewer than that fit among the best 1024, so the whole vocabulary gets sorted too
      const keep = round % 2 === 0 ? 64 : 400;
      const expected = reference(logits, state, keep);
      const got = logits.slice();
      maskJsonLogits(got, state, vocab, keep);
      assert.deepEqual(Array.from(got).map((v) => v !== -Infinity), Array.from(expected).map((v) => v !== -Infinity), `${prefix} round ${round}`);
    }
  }
});
