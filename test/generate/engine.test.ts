import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collect, generate, type CacheSlot } from '../../src/generate/engine.js';
import type { GenerationEvent } from '../../src/generate/events.js';
import { logSumExp } from '../../src/generate/sampling.js';
import { FakeModel, FakeTokenizer, oneHot, scriptedModel } from './fakes.js';

const tok = new FakeTokenizer(['\n', '\n\n', 'A:', 'U:', 'Let', ' me', ' think', '.', 'The', ' answer', ' is', ' 4', '!', 'x', 'y', 'z', ' ']);
const id = (piece: string): number => {
  const i = tok.tokenId(piece);
  if (i === undefined) throw new Error(`no piece ${piece}`);
  return i;
};
const ids = (...pieces: string[]): number[] => pieces.map(id);
const greedy = { temperature: 0 };

/** Prompt ending in an open thought, as the R1 template renders it. */
const prompt = ids('<bos>', 'U:', 'x', 'A:', '<think>', '\n');
const answerScript = ids('Let', ' me', ' think', '.', '\n', '</think>', '\n\n', 'The', ' answer', ' is', ' 4', '!', '<eos>');

test('a pre-filled thought is split into reasoning and content; EOS stops', async () => {
  const model = scriptedModel(tok, prompt.length, answerScript, id('x'));
  const r = await collect(generate(model, tok, { prompt, sampling: greedy }));
  assert.equal(r.reasoning, 'Let me think.');
  assert.equal(r.content, 'The answer is 4!');
  assert.equal(r.done.finishReason, 'stop');
  assert.equal(r.done.stopToken, 0);
  assert.deepEqual(r.tokens, answerScript.slice(0, -1));
  assert.deepEqual(r.done.usage, { promptTokens: prompt.length, cachedTokens: 0, completionTokens: 12, reasoningTokens: 6 });
  assert.ok(r.done.timings.tokensPerSecond > 0);
  // one prefill call with the whole prompt, then one token per step (the EOS is never fed)
  assert.deepEqual(model.calls[0], prompt);
  assert.equal(model.calls.length, 13);
  assert.ok(model.calls.slice(1).every((c) => c.length === 1));
});

test('messages are rendered with the chat template; thinking mode detected from the prompt', async () => {
  const rendered = tok.encode(tok.renderChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: true }), { parseSpecial: true });
  assert.deepEqual(rendered, prompt);
  const model = scriptedModel(tok, prompt.length, answerScript, id('x'));
  const r = await collect(generate(model, tok, { messages: [{ role: 'user', content: 'x' }], sampling: greedy }));
  assert.deepEqual([r.reasoning, r.content], ['Let me think.', 'The answer is 4!']);
  // thinking 'off': the raw text including the tag is content
  const off = await collect(generate(scriptedModel(tok, prompt.length, answerScript, id('x')), tok, { prompt, sampling: greedy, thinking: 'off' }));
  assert.equal(off.content, 'Let me think.\n</think>\n\nThe answer is 4!');
  assert.equal(off.done.usage.reasoningTokens, 0);
});

test('maxTokens ends with length after exactly that many tokens', async () => {
  const model = scriptedModel(tok, prompt.length, answerScript, id('x'));
  const r = await collect(generate(model, tok, { prompt, sampling: greedy, maxTokens: 3 }));
  assert.equal(r.done.finishReason, 'length');
  assert.equal(r.tokens.length, 3);
  assert.equal(r.reasoning, 'Let me think');
  assert.equal(model.forwardedTokens, prompt.length + 2);
});

test('a stop string spanning tokens ends generation and is not emitted', async () => {
  const model = scriptedModel(tok, prompt.length, answerScript, id('x'));
  const events: GenerationEvent[] = [];
  for await (const e of generate(model, tok, { prompt, sampling: greedy, stop: [' is 4'] })) events.push(e);
  const done = events.at(-1)!;
  assert.equal(done.type, 'done');
  assert.equal(done.type === 'done' && done.finishReason, 'stop');
  assert.equal(done.type === 'done' && done.stopString, ' is 4');
  const content = events.filter((e) => e.type !== 'done' && e.channel === 'content').map((e) => (e.type === 'done' ? '' : e.text)).join('');
  assert.equal(content, 'The answer');
  assert.ok(!events.some((e) => e.type !== 'done' && e.text.includes('is')));
});

test('abort mid-stream stops at once with finishReason abort', async () => {
  const model = new FakeModel(tok.pieces.length, () => oneHot(tok.pieces.length, id('x')));
  const controller = new AbortController();
  let tokens = 0;
  let done: GenerationEvent | undefined;
  for await (const e of generate(model, tok, { prompt: ids('<bos>', 'x'), sampling: greedy, signal: controller.signal, thinking: 'off' })) {
    if (e.type === 'token' && ++tokens === 3) controller.abort();
    if (e.type === 'done') done = e;
  }
  assert.equal(tokens, 3);
  assert.equal(done?.type === 'done' && done.finishReason, 'abort');
  assert.equal(done?.type === 'done' && done.usage.completionTokens, 3);
  // the third token was not fed to the model
  assert.equal(model.forwardedTokens, 2 + 2);
  // aborted before it starts: no model work at all
  const model2 = new FakeModel(tok.pieces.length, () => oneHot(tok.pieces.length, id('x')));
  const r = await collect(generate(model2, tok, { prompt: ids('<bos>', 'x'), signal: AbortSignal.abort() }));
  assert.equal(r.done.finishReason, 'abort');
  assert.equal(model2.calls.length, 0);
});

test('an abort from a timer is seen: the loop yields to the event loop between steps', async () => {
  const model = new FakeModel(tok.pieces.length, () => oneHot(tok.pieces.length, id('y')));
  const controller = new AbortController();
  setImmediate(() => setImmediate(() => controller.abort()));
  const r = await collect(generate(model, tok, { prompt: ids('<bos>'), sampling: greedy, signal: controller.signal, maxTokens: 10_000 }));
  assert.equal(r.done.finishReason, 'abort');
  assert.ok(r.tokens.length < 50, `generated ${r.tokens.length} tokens before seeing the abort`);
});

test('a prompt longer than the context fails before any model work', async () => {
  const model = new FakeModel(tok.pieces.length, () => oneHot(tok.pieces.length, id('x')), 8);
  await assert.rejects(collect(generate(model, tok, { prompt: new Array(8).fill(id('x')) })), /prompt is 8 tokens but the context holds 8/);
  await assert.rejects(collect(generate(model, tok, { prompt: [] })), /empty/);
  await assert.rejects(collect(generate(model, tok, { prompt: [1], text: 'x' })), /exactly one of/);
  await assert.rejects(collect(generate(model, tok, { prompt: [1, -3] })), /prompt token 1/);
  await assert.rejects(collect(generate(model, tok, { prompt: [1, 5000] })), /prompt token 1 is 5000, outside the model's vocabulary/);
  assert.equal(model.calls.length, 0);
  // a prompt that fits runs until the context is full
  const r = await collect(generate(model, tok, { prompt: new Array(5).fill(id('x')), sampling: greedy }));
  assert.equal(r.done.finishReason, 'length');
  assert.equal(model.forwardedTokens, 8);
  assert.equal(r.tokens.length, 4); // the last one is sampled from the full cache's logits
});

test('the reasoning budget forces the thought closed and the answer follows', async () => {
  // A model that thinks forever ('x' ...) until it has seen </think>, then answers 'y' and stops.
  const close = id('</think>');
  const V = tok.pieces.length;
  const model = new FakeModel(V, (ctx) => {
    const closedAt = ctx.lastIndexOf(close);
    if (closedAt < prompt.length) return oneHot(V, id('x'));
    return oneHot(V, ctx.length - closedAt > 3 ? 0 : id('y'));
  });
  const events: GenerationEvent[] = [];
  for await (const e of generate(model, tok, { prompt, sampling: greedy, reasoningBudget: 5 })) events.push(e);
  const tokenEvents = events.filter((e) => e.type === 'token');
  const r = await collect((async function* () { yield* events; })());
  assert.equal(r.reasoning, 'xxxxx');
  assert.equal(r.content, 'yy');
  const forced = tokenEvents.filter((e) => e.type === 'token' && e.forced).map((e) => e.type === 'token' && e.id);
  assert.deepEqual(forced, ids('\n', '</think>', '\n\n'));
  assert.equal(r.done.usage.reasoningTokens, 7); // 5 sampled + "\n" + "</think>"
  // the forced tokens went through the model in one call
  assert.ok(model.calls.some((c) => c.join() === forced.join()));
  // budget 0 closes the pre-filled thought before sampling anything
  const r0 = await collect(generate(model, tok, { prompt, sampling: greedy, reasoningBudget: 0 }));
  assert.deepEqual([r0.reasoning, r0.content], ['', 'yy']);
  // max_tokens is a hard cap even when the forced close would pass it (5 sampled + 1 of the 3 forced)
  for (const maxTokens of [5, 6, 7]) {
    const cut = await collect(generate(model, tok, { prompt, sampling: greedy, reasoningBudget: 5, maxTokens }));
    assert.equal(cut.tokens.length, maxTokens, `maxTokens ${maxTokens}`);
    assert.equal(cut.done.finishReason, 'length');
  }
});

test('logprobs are the model distribution log-softmax, with top alternatives', async () => {
  const V = tok.pieces.length;
  const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i) * 3);
  const model = new FakeModel(V, () => logits);
  const lse = logSumExp(logits);
  let n = 0;
  for await (const e of generate(model, tok, { prompt: [1], sampling: { temperature: 1, seed: 4 }, maxTokens: 20, logprobs: true, topLogprobs: 3, stopTokenIds: [] })) {
    if (e.type !== 'token') continue;
    n++;
    assert.ok(Math.abs(e.logprob! - (logits[e.id]! - lse)) < 1e-5);
    const sorted = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
    assert.deepEqual(e.topLogprobs!.map((t) => t.id), sorted.slice(0, 3));
  }
  assert.equal(n, 20);
});

test('seeded sampling is reproducible through the engine', async () => {
  const V = tok.pieces.length;
  const model = new FakeModel(V, (ctx) => Float32Array.from({ length: V }, (_, i) => Math.cos(i * ctx.length)));
  const run = async (seed: number): Promise<number[]> =>
    (await collect(generate(model, tok, { prompt: [1], sampling: { seed, topP: 0.9 }, maxTokens: 30, stopTokenIds: [] }))).tokens;
  assert.deepEqual(await run(5), await run(5));
  assert.notDeepEqual(await run(5), await run(6));
});

test('long prompts prefill in chunks', async () => {
  const model = new FakeModel(tok.pieces.length, () => oneHot(tok.pieces.length, 0));
  const p = new Array(10).fill(id('x'));
  await collect(generate(model, tok, { prompt: p, prefillChunkSize: 4 }));
  assert.deepEqual(model.calls.map((c) => c.length), [4, 4, 2]);
});

test('a cache slot is reused for the common prefix of the next prompt', async () => {
  const model = scriptedModel(tok, prompt.length, answerScript, id('x'));
  const slot: CacheSlot = { cache: model.newCache(100), tokens: [] };
  const first = await collect(generate(model, tok, { prompt, sampling: greedy, cacheSlot: slot }));
  assert.equal(first.done.usage.cachedTokens, 0);
  assert.deepEqual(slot.tokens, [...prompt, ...first.tokens]);
  // next turn: the prompt shares the first prompt as prefix
  const next = [...prompt, id('x'), id('y')];
  const before = model.forwardedTokens;
  const second = await collect(generate(model, tok, { prompt: next, sampling: greedy, cacheSlot: slot, maxTokens: 1 }));
  assert.equal(second.done.usage.cachedTokens, prompt.length);
  assert.equal(model.forwardedTokens - before, 2);
  assert.deepEqual(slot.tokens, next);
});

test("stopScope 'content' ignores stop strings inside the thought", async () => {
  const run = (stopScope: 'all' | 'content') =>
    collect(generate(scriptedModel(tok, prompt.length, answerScript, id('x')), tok, { prompt, sampling: greedy, stop: [' think', ' is'], stopScope }));
  const all = await run('all');
  assert.deepEqual([all.reasoning, all.content, all.done.stopString], ['Let me', '', ' think']);
  const content = await run('content');
  assert.deepEqual([content.reasoning, content.content, content.done.stopString], ['Let me think.', 'The answer', ' is']);
  assert.equal(content.done.finishReason, 'stop');
});

test("the model's padding rows beyond the tokenizer's vocabulary are never sampled", async () => {
  const V = tok.pieces.length;
  const padded = new FakeModel(V + 5, () => Float32Array.from({ length: V + 5 }, (_, i) => (i >= V ? 50 : i === id('z') ? 1 : 0)));
  const sized = Object.assign(Object.create(tok) as FakeTokenizer, { vocabSize: V });
  const r = await collect(generate(padded, sized, { prompt: [1], sampling: greedy, maxTokens: 3, thinking: 'off' }));
  assert.deepEqual(r.tokens, ids('z', 'z', 'z'));
});
