/**
 * POST /v1/completions: batches of prompts (strings or token ids), `echo` with the prompt's own
 * token logprobs (what lm-evaluation-harness's loglikelihood reads), `max_tokens: 0` to score only,
 * streaming of all of it, and the requests it refuses. Prompt scores are checked against the
 * model's own logits over the whole prompt, computed here in one forward.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { logSumExp } from '../../src/generate/sampling.js';
import { MAX_PROMPTS } from '../../src/server/routes/completions.js';
import { loadForServing, readSse, startTestServer, type TestServer } from './helpers.js';

let t: TestServer;
let reference: ReturnType<typeof loadForServing>;

before(async () => {
  // prompt chunks of 32 tokens, so that a prompt is scored over several forwards
  t = await startTestServer({ scheduler: { prefillChunk: 32 } });
  reference = loadForServing(t.modelPath);
});
after(() => t.close());

interface Logprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}
interface Choice {
  index: number;
  text: string;
  logprobs: Logprobs | null;
  finish_reason: string;
}
interface CompletionBody {
  choices: Choice[];
  usage: { prompt_tokens: number; completion_tokens: number; prompt_cache_hit_tokens: number };
}

async function complete(body: Record<string, unknown>): Promise<{ status: number; json: CompletionBody & { error?: { message: string; param?: string | null } } }> {
  const r = await fetch(`${t.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', temperature: 0, ...body }) });
  return { status: r.status, json: (await r.json()) as CompletionBody & { error?: { message: string; param?: string | null } } };
}

/** The ids the server reads for a text prompt: BOS, then the text without special-token parsing. */
function idsOf(text: string): number[] {
  const tk = reference.tokenizer;
  return [...Array.from(tk.encode('', { addSpecialTokens: true })), ...Array.from(tk.encode(text, { addSpecialTokens: false, parseSpecial: false }))];
}

/** log P(ids[i] | ids[<i]) for i >= 1 and the argmax at each position, from one forward over all of them. */
function expectedScores(ids: readonly number[]): { logprobs: number[]; argmax: number[] } {
  const model = reference.model;
  const vocab = model.info.vocabSize;
  const logits = model.forward(Int32Array.from(ids), model.newCache(ids.length + 1), { allLogits: true });
  const logprobs: number[] = [];
  const argmax: number[] = [];
  for (let i = 1; i < ids.length; i++) {
    const row = logits.subarray((i - 1) * vocab, i * vocab);
    logprobs.push(row[ids[i]!]! - logSumExp(row));
    let best = 0;
    for (let v = 1; v < vocab; v++) if (row[v]! > row[best]!) best = v;
    argmax.push(best);
  }
  return { logprobs, argmax };
}

function assertScores(report: Logprobs, ids: readonly number[], what: string): void {
  const expected = expectedScores(ids);
  assert.equal(report.token_logprobs[0], null, `${what}: the first token has no score`);
  assert.equal(report.top_logprobs[0], null);
  for (let i = 1; i < ids.length; i++) {
    const got = report.token_logprobs[i]!;
    assert.ok(Math.abs(got - expected.logprobs[i - 1]!) < 1e-4, `${what}: token ${i}: ${got} vs ${expected.logprobs[i - 1]}`);
    const top = report.top_logprobs[i]!;
    const [bestText, bestLogprob] = Object.entries(top).sort((a, b) => b[1] - a[1])[0]!;
    assert.equal(bestText, reference.tokenizer.decode([expected.argmax[i - 1]!]), `${what}: token ${i}: the likeliest token`);
    assert.ok(bestLogprob >= got - 1e-6, 'the top alternative is at least as likely as the prompt token');
  }
}

const TEXT = 'The quick brown fox jumps over the lazy dog; héllo wörld, ünïcode bytes. '.repeat(2);

test('echo with logprobs: every prompt token scored given the ones before it (over several prompt chunks), then the generated ones', async () => {
  const ids = idsOf(TEXT);
  assert.ok(ids.length > 3 * 32, 'the prompt spans several 32-token chunks');
  const { status, json } = await complete({ prompt: TEXT, echo: true, logprobs: 2, max_tokens: 3 });
  assert.equal(status, 200, JSON.stringify(json));
  const choice = json.choices[0]!;
  const lp = choice.logprobs!;
  assert.equal(lp.tokens.length, ids.length + 3, 'prompt tokens, then the 3 generated');
  assertScores(lp, ids, 'echo');
  assert.ok(choice.text.startsWith(TEXT), 'the text starts with the prompt');
  const generated = choice.text.slice(TEXT.length);
  // the generated part is what the same request gives without echo
  const plain = await complete({ prompt: TEXT, logprobs: 2, max_tokens: 3 });
  assert.equal(generated, plain.json.choices[0]!.text);
  const plainScores = plain.json.choices[0]!.logprobs!.token_logprobs as number[];
  // the same up to rounding: this request's last prompt row came from a many-row forward
  lp.token_logprobs.slice(ids.length).forEach((x, i) => assert.ok(Math.abs(x! - plainScores[i]!) < 1e-5, `generated token ${i}: ${x} vs ${plainScores[i]}`));
  // offsets point into the text: BOS at 0, each later token where its text starts
  assert.equal(lp.text_offset[0], 0);
  for (let i = 1; i < lp.text_offset.length; i++) assert.ok(lp.text_offset[i]! >= lp.text_offset[i - 1]!, 'offsets never go back');
  assert.equal(lp.text_offset[ids.length], TEXT.length, 'the first generated token starts right after the prompt');
  assert.equal(choice.text.slice(lp.text_offset[5]!, lp.text_offset[6]!), lp.tokens[5], 'an ASCII token sits at its offset');
  assert.equal(json.usage.prompt_tokens, ids.length);
  assert.equal(json.usage.completion_tokens, 3);
});

test('a scored prompt is computed afresh even when its prefix is cached, and gives the same scores', async () => {
  const prompt = 'Cached prefix, then scored again and again.';
  await complete({ prompt, max_tokens: 2 }); // leaves the prompt in a cache
  const warm = await complete({ prompt, max_tokens: 2 });
  assert.ok(warm.json.usage.prompt_cache_hit_tokens > 0, 'an unscored request reuses the cached prefix');
  const first = await complete({ prompt, echo: true, logprobs: 1, max_tokens: 1 });
  const second = await complete({ prompt, echo: true, logprobs: 1, max_tokens: 1 });
  assert.equal(first.json.usage.prompt_cache_hit_tokens, 0);
  assert.equal(second.json.usage.prompt_cache_hit_tokens, 0);
  assert.deepEqual(second.json.choices[0]!.logprobs, first.json.choices[0]!.logprobs);
  assertScores(first.json.choices[0]!.logprobs!, idsOf(prompt), 'cached prefix');
});

test('max_tokens 0 with echo scores the prompt and generates nothing', async () => {
  const { status, json } = await complete({ prompt: 'Score me', echo: true, logprobs: 0, max_tokens: 0 });
  assert.equal(status, 200, JSON.stringify(json));
  const choice = json.choices[0]!;
  assert.equal(choice.text, 'Score me');
  assert.equal(choice.finish_reason, 'length');
  assert.equal(json.usage.completion_tokens, 0);
  assert.equal(choice.logprobs!.tokens.length, idsOf('Score me').length);
  assert.deepEqual(choice.logprobs!.top_logprobs.slice(1), choice.logprobs!.top_logprobs.slice(1).map(() => ({})), 'logprobs 0: no alternatives');
  // echo alone returns the prompt's text, without scores
  const echoOnly = await complete({ prompt: 'Score me', echo: true, max_tokens: 0 });
  assert.equal(echoOnly.json.choices[0]!.text, 'Score me');
  assert.equal(echoOnly.json.choices[0]!.logprobs, null);
});

test('lm-evaluation-harness loglikelihood: token-id prompts in a batch, one choice each in order, no BOS added', async () => {
  const contexts = ['Question: 2+2=', 'The sky is'];
  const continuations = [' 4', ' blue'];
  const tk = reference.tokenizer;
  const requests = contexts.map((c, i) => ({
    ctx: Array.from(tk.encode(c, { addSpecialTokens: false })),
    all: Array.from(tk.encode(c + continuations[i], { addSpecialTokens: false })),
  }));
  // the payload lm-eval's local-completions model sends for loglikelihood requests
  const { status, json } = await complete({ prompt: requests.map((r) => r.all), echo: true, logprobs: 1, max_tokens: 1, seed: 1234 });
  assert.equal(status, 200, JSON.stringify(json));
  assert.deepEqual(json.choices.map((c) => c.index), [0, 1]);
  requests.forEach((r, i) => {
    const lp = json.choices[i]!.logprobs!;
    assert.equal(lp.tokens.length, r.all.length + 1, 'the prompt as given (no BOS) and one generated token');
    assertScores(lp, r.all, `prompt ${i}`);
    // what lm-eval computes from the reply
    const continuation = lp.token_logprobs.slice(r.ctx.length, -1) as number[];
    const expected = expectedScores(r.all).logprobs.slice(r.ctx.length - 1);
    assert.equal(continuation.length, r.all.length - r.ctx.length);
    assert.ok(Math.abs(continuation.reduce((s, x) => s + x, 0) - expected.reduce((s, x) => s + x, 0)) < 1e-4);
    assert.ok(json.choices[i]!.text.startsWith(contexts[i]! + continuations[i]!), 'echo of token ids is their text');
  });
  assert.equal(json.usage.prompt_tokens, requests[0]!.all.length + requests[1]!.all.length, 'usage sums the batch');
  assert.equal(json.usage.completion_tokens, 2);
});

test('a batch of text prompts gives each the choice it gets alone; the openai SDK reads it', async () => {
  const prompts = ['Once upon a time', 'In the beginning', 'Hello'];
  const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'sk-local', maxRetries: 0 });
  const batch = await client.completions.create({ model: 'tiny', prompt: prompts, max_tokens: 5, temperature: 0 });
  assert.equal(batch.choices.length, 3);
  for (const [i, p] of prompts.entries()) {
    const alone = await client.completions.create({ model: 'tiny', prompt: p, max_tokens: 5, temperature: 0 });
    assert.equal(batch.choices[i]!.index, i);
    assert.equal(batch.choices[i]!.text, alone.choices[0]!.text, `prompt ${i}`);
  }
  const scored = await client.completions.create({ model: 'tiny', prompt: 'Hello there', echo: true, logprobs: 1, max_tokens: 0 });
  assert.equal(scored.choices[0]!.logprobs!.token_logprobs![0], null);
  assert.equal(scored.choices[0]!.logprobs!.tokens!.length, idsOf('Hello there').length);
});

test('streamed: the echo (with its scores) comes first, then the tokens; per choice the same as not streamed', async () => {
  const body = { prompt: ['Stream me', 'And me too'], echo: true, logprobs: 1, max_tokens: 4 };
  const whole = await complete(body);
  const r = await fetch(`${t.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'tiny', temperature: 0, stream: true, ...body }) });
  assert.equal(r.status, 200);
  const sse = await readSse(r);
  assert.ok(sse.done);
  const texts = ['', ''];
  const tokens: string[][] = [[], []];
  const scores: (number | null)[][] = [[], []];
  const finishes: (string | null)[] = [null, null];
  let usage: CompletionBody['usage'] | undefined;
  for (const event of sse.events as { choices: Choice[]; usage?: CompletionBody['usage'] }[]) {
    for (const c of event.choices) {
      if (texts[c.index] === '') assert.equal(c.text, body.prompt[c.index], 'the first chunk of a choice is its echo');
      texts[c.index] += c.text;
      tokens[c.index]!.push(...(c.logprobs?.tokens ?? []));
      scores[c.index]!.push(...(c.logprobs?.token_logprobs ?? []));
      if (c.finish_reason) finishes[c.index] = c.finish_reason;
    }
    if (event.usage) usage = event.usage;
  }
  for (const i of [0, 1]) {
    const choice = whole.json.choices[i]!;
    assert.equal(texts[i], choice.text);
    assert.deepEqual(tokens[i], choice.logprobs!.tokens);
    assert.deepEqual(scores[i], choice.logprobs!.token_logprobs);
    assert.equal(finishes[i], choice.finish_reason);
  }
  assert.deepEqual(usage, whole.json.usage);
});

test('bad prompts and options are refused with 400 (422 out of range) naming the problem', async () => {
  const vocab = reference.model.info.vocabSize;
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ prompt: [] }, /prompt must be a string, an array/],
    [{ prompt: [[]] }, /prompt\[0\] must not be empty/],
    [{ prompt: [1, 2, vocab] }, new RegExp(`prompt\\[2\\] must be a token id from 0 to ${vocab - 1}, got ${vocab}`)],
    [{ prompt: [[1, 2], [3, -1]] }, /prompt\[1\]\[1\] must be a token id/],
    [{ prompt: [[1, 2.5]] }, /prompt\[0\]\[1\] must be a token id/],
    [{ prompt: ['a', [1]] }, /not a mix/],
    [{ prompt: [{ text: 'a' }] }, /prompt must be a string/],
    [{ prompt: 42 }, /prompt must be a string/],
    [{ prompt: Array.from({ length: MAX_PROMPTS + 1 }, () => 'x') }, new RegExp(`at most ${MAX_PROMPTS} per request`)],
    [{ prompt: 'a', max_tokens: 0 }, /max_tokens 0 generates nothing; it needs echo/],
    [{ prompt: 'a', echo: true, suffix: 'b' }, /echo and suffix/],
    [{ prompt: ['a', 'b'], suffix: 'c' }, /suffix \(fill in the middle\) takes one prompt/],
    [{ prompt: 'a', echo: 'yes' }, /echo/],
  ];
  for (const [body, message] of cases) {
    const { status, json } = await complete(body);
    assert.equal(status, 400, `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(json)}`);
    assert.match(json.error!.message, message);
  }
  for (const [body, message] of [[{ prompt: 'a', max_tokens: -1 }, /max_tokens must be >= 0/], [{ prompt: 'a', logprobs: 21 }, /logprobs must be <= 20/]] as const) {
    const { status, json } = await complete(body);
    assert.equal(status, 422, 'out of range, as for chat completions');
    assert.match(json.error!.message, message);
  }
  // a prompt of the batch beyond the context is refused before anything runs
  const long = await complete({ prompt: ['short', 'x'.repeat(2000)], max_tokens: 1 });
  assert.equal(long.status, 400);
  assert.match(long.json.error!.message, /maximum context length .* tokens in the prompt/);
  assert.equal(long.json.error!.param, 'prompt', 'the field a completion request sent (not messages)');
  assert.equal(t.server.ctx.scheduler.activeCount, 0);
  assert.equal((await complete({ prompt: 'still serving', max_tokens: 1 })).status, 200);
});
