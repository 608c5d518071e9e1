/**
 * The Responses API (POST /v1/responses) through the official `openai` SDK: the thought as a
 * reasoning item and the answer as a message, equal to chat completions' reasoning_content and
 * content for the same request; usage; an incomplete response at max_output_tokens; the streamed
 * events in order with gapless sequence numbers, accumulated by the SDK's own stream helper into
 * the same output; forced function calls as function_call items (streamed and not); function call
 * history in the input; and the requests it refuses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startReasoningServer, type TestServer } from './helpers.js';

let t: TestServer;
let client: OpenAI;

before(async () => {
  ({ t, client } = await startReasoningServer());
});
after(() => t.close());

const question = 'What is 2 + 2?';

interface Texts {
  reasoning: string;
  answer: string;
}

function textsOf(output: readonly { type: string }[]): Texts {
  const reasoning = output.find((o) => o.type === 'reasoning') as { content?: { text: string }[] } | undefined;
  const message = output.find((o) => o.type === 'message') as { content: { type: string; text: string }[] } | undefined;
  return { reasoning: reasoning?.content?.map((c) => c.text).join('') ?? '', answer: message?.content.map((c) => c.text).join('') ?? '' };
}

test('a response holds the thought as a reasoning item and the answer as a message, as chat completions gives them', async () => {
  const r = await client.responses.create({ model: 'deepseek-reasoner', input: question, max_output_tokens: 20, temperature: 0 });
  const chat = await client.chat.completions.create({ model: 'deepseek-reasoner', messages: [{ role: 'user', content: question }], max_tokens: 20, temperature: 0 });
  const message = chat.choices[0]!.message as typeof chat.choices[0]['message'] & { reasoning_content: string };
  const texts = textsOf(r.output);
  assert.ok(texts.reasoning.length > 0, 'the thought has text');
  assert.equal(texts.reasoning, message.reasoning_content);
  assert.equal(texts.answer, message.content);
  assert.equal(r.output_text, message.content, 'the SDK\'s output_text is the answer');
  assert.deepEqual(r.output.map((o) => o.type), ['reasoning', 'message']);
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_[0-9a-f]{32}$/);
  assert.equal(r.status, chat.choices[0]!.finish_reason === 'length' ? 'incomplete' : 'completed');
  const usage = r.usage!;
  assert.equal(usage.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(usage.output_tokens, chat.usage!.completion_tokens);
  assert.equal(usage.output_tokens_details.reasoning_tokens, chat.usage!.completion_tokens_details!.reasoning_tokens);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
});

test('instructions and message items make the same prompt as system and user messages; max_output_tokens ends it incomplete', async () => {
  const r = await client.responses.create({
    model: 'deepseek-chat', instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: question }] }], max_output_tokens: 3, temperature: 0,
  });
  const chat = await client.chat.completions.create({
    model: 'deepseek-chat', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: question }], max_tokens: 3, temperature: 0,
  });
  assert.equal(r.usage!.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(r.output_text, chat.choices[0]!.message.content);
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
});

test('streaming: events in order with gapless sequence numbers; the SDK\'s stream helper accumulates the same output', async () => {
  const whole = await client.responses.create({ model: 'deepseek-reasoner', input: question, max_output_tokens: 20, temperature: 0 });
  const stream = await client.responses.create({ model: 'deepseek-reasoner', input: question, max_output_tokens: 20, temperature: 0, stream: true });
  const types: string[] = [];
  const numbers: number[] = [];
  let reasoning = '';
  let answer = '';
  for await (const event of stream) {
    types.push(event.type);
    numbers.push(event.sequence_number);
    if (event.type === 'response.reasoning_text.delta') reasoning += event.delta;
    if (event.type === 'response.output_text.delta') answer += event.delta;
  }
  assert.deepEqual(numbers, numbers.map((_, i) => i), 'sequence numbers 0, 1, 2, ...');
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.equal(types[types.length - 1], whole.status === 'completed' ? 'response.completed' : 'response.incomplete');
  const firstText = types.indexOf('response.output_text.delta');
  assert.ok(types.lastIndexOf('response.reasoning_text.delta') < firstText, 'the thought streams before the answer');
  assert.ok(types.indexOf('response.reasoning_text.done') < firstText);
  assert.equal(types.filter((x) => x === 'response.output_item.added').length, 2);
  assert.equal(types.filter((x) => x === 'response.output_item.done').length, 2);
  const texts = textsOf(whole.output);
  assert.equal(reasoning, texts.reasoning);
  assert.equal(answer, texts.answer);
  const final = await client.responses.stream({ model: 'deepseek-reasoner', input: question, max_output_tokens: 20, temperature: 0 }).finalResponse();
  assert.deepEqual(textsOf(final.output), texts);
  assert.equal(final.output_text, whole.output_text);
});

test('a forced function call comes back as a function_call item with JSON arguments, streamed or not', async () => {
  const tools = [{ type: 'function' as const, name: 'get_weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 6 } }, required: ['city'] } }];
  let calls = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const request = { model: 'deepseek-chat', input: 'weather in Paris?', max_output_tokens: 60, seed, tools, tool_choice: { type: 'function' as const, name: 'get_weather' } };
    const r = await client.responses.create(request as Parameters<typeof client.responses.create>[0] & { stream?: false });
    if (r.status === 'incomplete') continue; // the random model did not close its JSON in time
    const call = r.output.find((o) => o.type === 'function_call') as { name: string; arguments: string; call_id: string } | undefined;
    assert.ok(call, JSON.stringify(r.output));
    assert.equal(call.name, 'get_weather');
    assert.equal(typeof (JSON.parse(call.arguments) as { city: unknown }).city, 'string');
    assert.match(call.call_id, /^call_/);
    const streamed = await client.responses.stream(request).finalResponse();
    const streamedCall = streamed.output.find((o) => o.type === 'function_call') as { name: string; arguments: string } | undefined;
    assert.equal(streamedCall?.arguments, call.arguments, 'the streamed call has the same arguments');
    calls++;
  }
  assert.ok(calls > 0, 'some calls completed');
});

test('function call history and outputs in the input; refused: previous_response_id, images, unknown item types and tools', async () => {
  const tools = [{ type: 'function' as const, name: 'get_weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const r = await client.responses.create({
    model: 'deepseek-chat', tools, max_output_tokens: 4, temperature: 0,
    input: [
      { role: 'user', content: 'weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny, 21 C' },
    ],
  });
  assert.ok(r.usage!.input_tokens > 20, 'the call and its output are in the prompt');
  const refused = async (body: Record<string, unknown>, status: number, message: RegExp): Promise<void> => {
    const response = await fetch(`${t.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'deepseek-chat', ...body }) });
    assert.equal(response.status, status, JSON.stringify(body));
    assert.match(((await response.json()) as { error: { message: string } }).error.message, message);
  };
  await refused({ input: 'hi', previous_response_id: 'resp_1' }, 400, /previous_response_id is not supported/);
  await refused({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AA' }] }] }, 400, /only text is supported/);
  await refused({ input: [{ type: 'web_search_call' }] }, 400, /input\[0\]\.type "web_search_call" is not supported/);
  await refused({ input: 'hi', tools: [{ type: 'web_search' }] }, 400, /function tools only/);
  await refused({ input: [] }, 400, /at least one message/);
  await refused({ input: 42 }, 400, /input must be a string or an array/);
  await refused({ model: 'nope', input: 'hi' }, 404, /does not exist/);
});
