/**
 * Other real clients: @ai-sdk/deepseek (generateText / streamText, reasoning parts) and the
 * `ollama` client (chat and generate with think: true, streaming and not, tags, show, version).
 * Each answer is compared with the engine run directly on the prompt the server builds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeGguf } from '../../src/cli/quantize.js';
import { modelFileFacts, parameterSizeText } from '../../src/server/routes/ollama.js';
import { openGguf } from '../../src/formats/gguf.js';
import { createDeepSeek } from '@ai-sdk/deepseek';
import { generateText, streamText } from 'ai';
import { Ollama } from 'ollama';
import { collect, generate, type GenerationResult } from '../../src/generate/engine.js';
import { buildChatPrompt, encodePrompt } from '../../src/server/prompt.js';
import type { ChatMessage } from '../../src/tokenizer/chat-template.js';
import { loadForServing, startTestServer, type TestServer } from './helpers.js';

const BUDGET = 5;
let t: TestServer;

before(async () => {
  t = await startTestServer({ settings: { defaultReasoningBudget: BUDGET, defaultSampling: { temperature: 0 } } });
});
after(() => t.close());

async function reference(messages: ChatMessage[], maxTokens: number, thinking = true): Promise<GenerationResult> {
  const loaded = loadForServing(t.modelPath);
  const plan = buildChatPrompt(loaded.tokenizer, { messages, thinking });
  return collect(generate(loaded.model, loaded.tokenizer, { prompt: encodePrompt(loaded.tokenizer, plan.text), sampling: { temperature: 0 }, maxTokens, reasoningBudget: BUDGET, thinking: plan.thinking }));
}

test('@ai-sdk/deepseek generateText and streamText: reasoning arrives as reasoning', async () => {
  const deepseek = createDeepSeek({ baseURL: `${t.url}/v1`, apiKey: 'sk-local' });
  const expected = await reference([{ role: 'user', content: 'Why is the sky blue?' }], 24);
  assert.ok(expected.reasoning.length > 0 && expected.content.length > 0);
  const r = await generateText({ model: deepseek('deepseek-reasoner'), prompt: 'Why is the sky blue?', temperature: 0, maxOutputTokens: 24, maxRetries: 0 });
  assert.equal(r.reasoningText, expected.reasoning);
  assert.equal(r.text, expected.content);
  assert.equal(r.usage.outputTokens, expected.done.usage.completionTokens);

  const s = streamText({ model: deepseek('deepseek-reasoner'), prompt: 'Why is the sky blue?', temperature: 0, maxOutputTokens: 24, maxRetries: 0 });
  let reasoning = '';
  let text = '';
  for await (const part of s.fullStream) {
    if (part.type === 'reasoning-delta') reasoning += part.text;
    if (part.type === 'text-delta') text += part.text;
    if (part.type === 'error') throw part.error;
  }
  assert.equal(reasoning, expected.reasoning);
  assert.equal(text, expected.content);
});

test('ollama client: chat with think: true, streamed and not', async () => {
  const ollama = new Ollama({ host: t.url });
  const messages = [{ role: 'user' as const, content: 'Hello there' }];
  const expected = await reference(messages, 20);
  const r = await ollama.chat({ model: 'tiny', messages, think: true, stream: false, options: { temperature: 0, num_predict: 20 } });
  assert.equal(r.message.thinking, expected.reasoning);
  assert.equal(r.message.content, expected.content);
  assert.equal(r.eval_count, expected.done.usage.completionTokens);
  assert.equal(r.done_reason, expected.done.finishReason === 'length' ? 'length' : 'stop');

  let thinking = '';
  let content = '';
  let last: { done: boolean; eval_count?: number } | undefined;
  for await (const part of await ollama.chat({ model: 'tiny', messages, think: true, stream: true, options: { temperature: 0, num_predict: 20 } })) {
    thinking += part.message.thinking ?? '';
    content += part.message.content;
    last = part;
  }
  assert.equal(thinking, expected.reasoning);
  assert.equal(content, expected.content);
  assert.equal(last?.done, true);
  assert.equal(last?.eval_count, expected.done.usage.completionTokens);
});

test('ollama client: think: false gives no thinking; generate, tags, ps, show, version', async () => {
  const ollama = new Ollama({ host: t.url });
  const messages = [{ role: 'user' as const, content: 'Hello there' }];
  const expected = await reference(messages, 10, false);
  const r = await ollama.chat({ model: 'tiny:latest', messages, think: false, stream: false, options: { temperature: 0, num_predict: 10 } });
  assert.equal(r.message.thinking, undefined);
  assert.equal(r.message.content, expected.content);

  const g = await ollama.generate({ model: 'tiny', prompt: 'Hello there', think: true, stream: false, options: { temperature: 0, num_predict: 20 } });
  const expectedG = await reference(messages, 20);
  assert.equal(g.thinking, expectedG.reasoning);
  assert.equal(g.response, expectedG.content);

  const tags = await ollama.list();
  assert.deepEqual(tags.models.map((m) => m.name), ['tiny:latest']);
  assert.equal(tags.models[0]!.size, statSync(t.modelPath).size);
  const running = await ollama.ps();
  assert.deepEqual(running.models.map((m) => m.name), ['tiny:latest'], 'the model that answered is loaded');
  assert.equal(running.models[0]!.size, statSync(t.modelPath).size);
  // details as Ollama lists them, from the file's header: architecture, all weights, the weights' type
  const file = openGguf(t.modelPath);
  const weights = file.tensors.reduce((sum, tensor) => sum + tensor.elements, 0);
  file.close();
  assert.ok(weights < 1e6, 'the test model has thousands of weights');
  const expectedDetails = { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: `${(weights / 1e3).toFixed(1)}K`, quantization_level: 'F32' };
  assert.deepEqual({ ...tags.models[0]!.details }, expectedDetails);
  assert.deepEqual({ ...running.models[0]!.details }, expectedDetails);
  const show = await ollama.show({ model: 'tiny' });
  assert.deepEqual({ ...show.details }, expectedDetails);
  assert.deepEqual([...(show as { capabilities?: string[] }).capabilities ?? []].sort(), ['completion', 'insert', 'thinking', 'tools'], 'what /api/chat and /api/generate (suffix) support');
  assert.ok((await ollama.version()).version.length > 0);
});

test('ollama client: a request without prompt or messages only loads the model; suffix asks for fill in the middle', async () => {
  const ollama = new Ollama({ host: t.url });
  const loadGenerate = await ollama.generate({ model: 'tiny', prompt: '', stream: false });
  assert.equal(loadGenerate.done_reason, 'load');
  assert.equal(loadGenerate.response, '');
  assert.equal(loadGenerate.eval_count ?? 0, 0, 'nothing generated');
  const loadChat = await ollama.chat({ model: 'tiny', messages: [], stream: false });
  assert.equal(loadChat.done_reason, 'load');
  assert.equal(loadChat.message.content, '');

  // the same FIM prompt as DeepSeek's /beta/completions builds
  const fim = await ollama.generate({ model: 'tiny', prompt: 'def add(a, b):\n', suffix: '\n    return c', stream: false, options: { temperature: 0, num_predict: 6 } });
  const beta = await (await fetch(`${t.url}/beta/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt: 'def add(a, b):\n', suffix: '\n    return c', max_tokens: 6, temperature: 0 }),
  })).json() as { choices: { text: string }[]; usage: { prompt_tokens: number } };
  assert.equal(fim.prompt_eval_count, beta.usage.prompt_tokens);
  assert.equal(fim.response, beta.choices[0]!.text);
  assert.equal(fim.thinking, undefined, 'fill in the middle has no thought');
});

test('ollama client: keep_alive 0 unloads the model (ollama stop), a load request loads it again', async () => {
  const ollama = new Ollama({ host: t.url });
  await ollama.generate({ model: 'tiny', prompt: '', stream: false });
  assert.deepEqual((await ollama.ps()).models.map((m) => m.name), ['tiny:latest']);
  const stopped = await ollama.generate({ model: 'tiny', prompt: '', keep_alive: 0, stream: false });
  assert.equal(stopped.done_reason, 'unload');
  assert.deepEqual((await ollama.ps()).models, [], 'nothing loaded after the unload');
  const again = await ollama.chat({ model: 'tiny', messages: [], keep_alive: '5m', stream: false });
  assert.equal(again.done_reason, 'load');
  assert.deepEqual((await ollama.ps()).models.map((m) => m.name), ['tiny:latest']);
  const chatStop = await ollama.chat({ model: 'tiny', messages: [], keep_alive: '0s', stream: false });
  assert.equal(chatStop.done_reason, 'unload');
  const r = await ollama.generate({ model: 'tiny', prompt: 'Hello', stream: false, options: { num_predict: 3 } });
  assert.equal(r.done, true, 'a generation loads it on use');
});

test('ollama client: errors carry the server\'s message (unknown model, bad think, unknown route)', async () => {
  const ollama = new Ollama({ host: t.url });
  const failure = async (call: () => Promise<unknown>): Promise<{ message: string; status: number }> => {
    try {
      await call();
    } catch (error) {
      return { message: (error as Error).message, status: (error as { status_code?: number }).status_code ?? 0 };
    }
    return assert.fail('the call should have failed');
  };
  const unknown = await failure(() => ollama.chat({ model: 'llama9', messages: [{ role: 'user', content: 'hi' }], stream: false }));
  assert.equal(unknown.status, 404);
  assert.match(unknown.message, /model 'llama9' does not exist/);
  const think = await failure(() => ollama.generate({ model: 'tiny', prompt: 'hi', think: 'maybe' as unknown as boolean, stream: false }));
  assert.equal(think.status, 400);
  assert.match(think.message, /think must be/);
  const pull = await failure(() => ollama.pull({ model: 'tiny', stream: false }));
  assert.equal(pull.status, 404);
  assert.match(pull.message, /no route POST \/api\/pull/);
});

test('Ollama model details: llama.cpp\'s file-type name when the file has one, sizes in K, M and B, nothing for a missing or foreign file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-facts-'));
  try {
    const q8 = join(dir, 'q8.gguf');
    quantizeGguf(t.modelPath, q8, 'q8_0');
    assert.equal(modelFileFacts(q8).quantizationLevel, 'Q8_0');
    const text = join(dir, 'notes.gguf');
    writeFileSync(text, 'not a model');
    assert.deepEqual({ ...modelFileFacts(text), modified: '' }, { size: 11, modified: '', family: '', parameterSize: '', quantizationLevel: '' });
    assert.equal(modelFileFacts(join(dir, 'gone.gguf')).size, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual([999, 1500, 2_030_000, 7_615_616_512].map(parameterSizeText), ['1.0K', '1.5K', '2.0M', '7.6B']);
  assert.equal(parameterSizeText(0), '');
});
