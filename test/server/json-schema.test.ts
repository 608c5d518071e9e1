/**
 * Schema-constrained JSON: documents that fit the schema are accepted at every prefix and complete
 * at their end; documents that break it are refused at the first character that makes them
 * unfixable; unsupported schemas are refused with 422; and through the server (Ollama `format`,
 * OpenAI `json_schema`) a random model's output parses and fits the schema.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../src/server/errors.js';
import { checkJsonSchema, SchemaValidator } from '../../src/server/json-schema.js';
import { startTestServer, type TestServer } from './helpers.js';

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 8 },
    age: { type: 'integer' },
    role: { enum: ['admin', 'user'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 4 }, maxItems: 2 },
    ok: { type: ['boolean', 'null'] },
  },
  required: ['name', 'age'],
};

/** The index of the first character refused (-1: all accepted), and whether the whole is complete. */
function feed(schema: object, doc: string): { refusedAt: number; complete: boolean } {
  const v = new SchemaValidator(checkJsonSchema(schema, 'format'));
  const chars = [...doc];
  for (let i = 0; i < chars.length; i++) {
    if (!v.accepts(chars[i]!)) return { refusedAt: i, complete: false };
    assert.ok(v.push(chars[i]!), `push after accepts at ${i}`);
  }
  return { refusedAt: -1, complete: v.complete };
}

test('documents that fit are accepted at every prefix and complete at the end', () => {
  for (const doc of [
    '{"name": "Ann", "age": 42}',
    '{"age": -3, "name": "Bo", "role": "admin", "tags": ["x", "yz"], "ok": null}',
    '{"name":"","age":0,"ok":true,"tags":[]}',
    '{ "name": "a\\"b", "age": 1e3 }'.replace('1e3', '7'),
  ]) {
    const r = feed(person, doc);
    assert.equal(r.refusedAt, -1, doc);
    assert.ok(r.complete, doc);
  }
});

test('documents that break the schema are refused where they become unfixable', () => {
  // [document, the longest prefix accepted]
  const cases: [string, string][] = [
    ['{"nam"', '{"nam'], // the key closes as "nam", which is no property
    ['{"nick": "x"', '{"n'], // no property starts with "ni"
    ['{"age": "x"', '{"age": '], // a string where an integer goes
    ['{"age": 4.5', '{"age": 4'], // a fraction in an integer
    ['{"role": "root"', '{"role": "'], // no enum value starts with "r
    ['{"name": "abcdefghi"', '{"name": "abcdefgh'], // longer than maxLength 8
    ['{"tags": ["a", "b", "c"]', '{"tags": ["a", "b"'], // a third item (maxItems 2): the comma is refused
    ['{"name": "A", "name": "B"', '{"name": "A", "'], // a key twice: nothing unused starts with "n
    ['{"name": "A"}', '{"name": "A"'], // the closing brace before "age" (required)
    ['{"ok": 1', '{"ok": '], // a number where boolean or null goes
    ['{"name": "A", "age": 1, "role": "user", "tags": [], "ok": false,', '{"name": "A", "age": 1, "role": "user", "tags": [], "ok": false'], // a comma with no key left
  ];
  for (const [doc, fine] of cases) {
    const r = feed(person, doc);
    assert.equal(r.refusedAt, [...fine].length, `${doc}: refused at ${r.refusedAt}, expected ${[...fine].length}`);
  }
});

test('anyOf, nested objects, additionalProperties', () => {
  const schema = {
    type: 'object',
    properties: {
      point: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] },
      id: { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 3 }] },
    },
    additionalProperties: { type: 'boolean' },
  };
  assert.equal(feed(schema, '{"point": {"x": 1.5, "y": -2}, "id": "ab", "extra": false}').refusedAt, -1);
  assert.equal(feed(schema, '{"id": 7}').refusedAt, -1);
  assert.equal(feed(schema, '{"point": {"x": 1}}').refusedAt, [...'{"point": {"x": 1'].length, 'y is required inside');
  assert.equal(feed(schema, '{"extra": 1}').refusedAt, [...'{"extra": '].length, 'additional properties are booleans');
  assert.equal(feed(schema, '{"id": [').refusedAt, [...'{"id": '].length);
});

test('unsupported or malformed schemas are refused with 422 naming the problem', () => {
  const refuse = (schema: unknown, message: RegExp): void => {
    assert.throws(() => checkJsonSchema(schema, 'format'), (e: unknown) => e instanceof ApiError && e.status === 422 && message.test(e.message));
  };
  refuse({ type: 'array' }, /top level must be an object schema/);
  refuse({ type: 'object', properties: { a: { $ref: '#/x' } } }, /format\.properties\.a: the schema keyword '\$ref' is not supported/);
  refuse({ type: 'object', properties: { a: { type: 'text' } } }, /'text' is not a JSON schema type/);
  refuse({ type: 'object', required: 'a' }, /required must be an array/);
  refuse('json', /must be a JSON schema object/);
});

let t: TestServer;
before(async () => {
  t = await startTestServer({ contextLength: 512 });
});
after(() => t.close());

/** Does `value` fit `person` (the checks the constraint enforces)? */
function fitsPerson(value: Record<string, unknown>): void {
  assert.equal(typeof value.name, 'string');
  assert.ok((value.name as string).length <= 8);
  assert.ok(Number.isInteger(value.age));
  for (const key of Object.keys(value)) assert.ok(key in person.properties, `unexpected key ${key}`);
  if ('role' in value) assert.ok(['admin', 'user'].includes(value.role as string));
  if ('tags' in value) assert.ok(Array.isArray(value.tags) && (value.tags as unknown[]).length <= 2);
  if ('ok' in value) assert.ok(value.ok === null || typeof value.ok === 'boolean');
}

test('through the server: a random model answers Ollama format and OpenAI json_schema with JSON that fits', async () => {
  for (let seed = 1; seed <= 3; seed++) {
    const ollama = await (await fetch(`${t.url}/api/chat`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Who?' }], think: false, stream: false, format: person, options: { seed, num_predict: 300 } }),
    })).json() as { message: { content: string }; done_reason: string };
    assert.equal(ollama.done_reason, 'stop', ollama.message.content);
    fitsPerson(JSON.parse(ollama.message.content) as Record<string, unknown>);
  }
  const openai = await (await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'deepseek-chat', messages: [{ role: 'user', content: 'Who?' }], max_tokens: 300, seed: 9,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person, strict: true } },
    }),
  })).json() as { choices: { message: { content: string }; finish_reason: string }[] };
  assert.equal(openai.choices[0]!.finish_reason, 'stop', openai.choices[0]!.message.content);
  fitsPerson(JSON.parse(openai.choices[0]!.message.content) as Record<string, unknown>);
  const bad = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', allOf: [] } } } }),
  });
  assert.equal(bad.status, 422);
  assert.match(await bad.text(), /'allOf' is not supported/);
});
