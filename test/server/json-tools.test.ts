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
