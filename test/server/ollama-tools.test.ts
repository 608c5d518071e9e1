/**
 * Ollama's function calling through the `ollama` npm client: the tools reach the prompt, and an
 * answer in the DeepSeek call format comes back as `message.tool_calls` (arguments as an object),
 * streamed or not; an answer without a call stays content. The model is scripted: it writes a
 * fixed text (byte tokens) whatever the prompt, so the test controls what the server must parse.
 * Also: the Ollama routes use the model's own chat template (ChatML here), like the OpenAI route.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import type { CausalLM, KvCache } from '../../src/models/model.js';
import { TOOL_CALL_BEGIN, TOOL_CALL_END, TOOL_CALLS_BEGIN, TOOL_CALLS_END, TOOL_SEP } from '../../src/server/tools.js';
import { loadForServing, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;

class CountingCache implements KvCache {
  length = 0;
  constructor(readonly capacity: number) {}
  truncate(length: number): void {
    this.length = length;
  }
  get bytes(): number {
    return 1;
  }
}

/** A model that writes `script` (token ids), then its EOS, after any prompt (of 2 tokens or more). */
function scriptedModel(vocabSize: number, eos: number, script: () => number[]): CausalLM {
  const starts = new WeakMap<KvCache, number>();
  return {
    info: { architecture: 'llama', vocabSize, contextLength: 4096, parameterCount: 1, cacheValuesPerToken: 1 },
    newCache: (capacity = 4096) => new CountingCache(capacity),
    forward(tokens, cache) {
      const c = cache as CountingCache;
      // a fresh cache, or a prompt chunk (several tokens; decode steps feed one): the answer starts after it
      if (c.length === 0 || tokens.length > 1) starts.set(c, c.length + tokens.length);
      c.length += tokens.length;
      const written = c.length - starts.get(c)!;
      const ids = script();
      const logits = new Float32Array(vocabSize);
      logits[written < ids.length ? ids[written]! : eos] = 1000; // certain at any temperature
      return logits;
    },
    forwardBatch(items) {
      return items.map((item) => this.forward(item.tokens, item.cache));
    },
  };
}

let answer = '';

before(async () => {
  t = await startTestServer();
  const tiny = loadForServing(t.modelPath);
  const encode = (text: string): number[] => Array.from(tiny.tokenizer.encode(text, { addSpecialTokens: false }));
  const model = scriptedModel(tiny.model.info.vocabSize, tiny.tokenizer.eosId!, () => encode(answer));
  await t.server.close();
  // no prompt cache (a budget of 0 bytes): every request starts on a fresh cache, where the script starts
  t = await startTestServer({ models: [{ id: 'scripted', path: t.modelPath, loaded: { model, tokenizer: tiny.tokenizer } }], registry: { cacheMemoryBytes: 0 } });
});
after(() => t.close());

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const call = `${TOOL_CALLS_BEGIN}${TOOL_CALL_BEGIN}function${TOOL_SEP}get_weather\n\`\`\`json\n{"city": "Paris"}\n\`\`\`${TOOL_CALL_END}${TOOL_CALLS_END}`;

test('ollama /api/chat with tools: a call comes back in message.tool_calls, streamed or not', async () => {
  const ollama = new Ollama({ host: t.url });
  answer = call;
  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];
  const plain = await ollama.chat({ model: 'scripted', messages, think: false, stream: false });
  const withTools = await ollama.chat({ model: 'scripted', messages, tools, think: false, stream: false });
  assert.equal(plain.message.content, call, 'without tools the text stays content');
  assert.equal(plain.message.tool_calls, undefined);
  assert.deepEqual(withTools.message.tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
  assert.equal(withTools.message.content, '');
  assert.ok(withTools.prompt_eval_count > plain.prompt_eval_count + 20, `the tools are described in the prompt (${withTools.prompt_eval_count} vs ${plain.prompt_eval_count} tokens)`);

  const parts = [];
  for await (const part of await ollama.chat({ model: 'scripted', messages, tools, think: false, stream: true })) parts.push(part);
  const calls = parts.flatMap((p) => p.message.tool_calls ?? []);
  assert.deepEqual(calls, [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }]);
  assert.equal(parts.map((p) => p.message.content).join(''), '', 'no call text leaks into the streamed content');
  assert.equal(parts.at(-1)?.done, true);
});

test('ollama /api/chat with tools: a plain answer stays content; the call history (arguments as objects) is accepted', async () => {
  const ollama = new Ollama({ host: t.url });
  answer = 'It is sunny.';
  const r = await ollama.chat({
    model: 'scripted', tools, think: false, stream: false,
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '22 C and sunny' },
    ],
  });
  assert.equal(r.message.content, 'It is sunny.');
  assert.equal(r.message.tool_calls, undefined);
  const streamed = [];
  for await (const part of await ollama.chat({ model: 'scripted', tools, think: false, stream: true, messages: [{ role: 'user', content: 'hi' }] })) streamed.push(part.message.content);
  assert.equal(streamed.join(''), 'It is sunny.');
});

test("the Ollama routes render the model's own chat template, as the OpenAI route does", async () => {
  const chatml = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const tiny = loadForServing(t.modelPath);
  answer = 'ok';
  const model = scriptedModel(tiny.model.info.vocabSize, tiny.tokenizer.eosId!, () => Array.from(tiny.tokenizer.encode(answer, { addSpecialTokens: false })));
  const s = await startTestServer({ models: [{ id: 'chatml', path: t.modelPath, loaded: { model, tokenizer: tiny.tokenizer, chatTemplate: chatml } }], registry: { cacheMemoryBytes: 0 } });
  try {
    const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hello there' }];
    // the prompt ChatML gives, in byte tokens (this tokenizer adds no BOS)
    const expected = Array.from(tiny.tokenizer.encode('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n', { addSpecialTokens: true })).length;
    const ollama = await new Ollama({ host: s.url }).chat({ model: 'chatml', messages, think: false, stream: false });
    const openai = await (await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'chatml', messages, max_tokens: 4 }) })).json() as { usage: { prompt_tokens: number } };
    assert.equal(openai.usage.prompt_tokens, expected);
    assert.equal(ollama.prompt_eval_count, expected);
    assert.equal(ollama.message.content, 'ok');
  } finally {
    await s.close();
  }
});
