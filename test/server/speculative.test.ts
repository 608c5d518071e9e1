/**
 * Speculative decoding in the server (`frugal serve --speculative`): a tiny deepseek2 model with an
 * MTP module on the ref backend (batched and one-token forwards agree bit for bit), served with and
 * without speculation. Greedy answers are identical, drafting shows in /metrics, concurrent
 * requests fall back to batched steps and still match, and a sequence that goes from alone to
 * batched and back (the MTP drafter restarts) gives exactly the plain tokens.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, generate } from '../../src/generate/engine.js';
import { loadModel } from '../../src/models/load.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../../src/models/deepseek-v3-tiny.js';
import { refBackend } from '../../src/tensor/ref.js';
import { createServer, type FrugalServer } from '../../src/server/app.js';
import { ServedModel, type LoadedForServing } from '../../src/server/models.js';
import { Scheduler, type JobResult } from '../../src/server/scheduler.js';
import type { ServerSpeculativeOptions } from '../../src/server/speculation.js';

let dir = '';
let withMtp: LoadedForServing;
let withoutMtp: LoadedForServing;

function load(path: string): LoadedForServing {
  const loaded = loadModel(path, { backend: refBackend });
  if (!loaded.tokenizer) throw new Error('no tokenizer');
  return { model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-serve-spec-'));
  writeTinyDeepseekGguf(join(dir, 'mtp.gguf'), tinyDeepseekModel({ mtp: true, seed: 5, contextLength: 256 }));
  writeTinyDeepseekGguf(join(dir, 'plain.gguf'), tinyDeepseekModel({ mtp: false, seed: 5, contextLength: 256 }));
  withMtp = load(join(dir, 'mtp.gguf'));
  withoutMtp = load(join(dir, 'plain.gguf'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Served {
  server: FrugalServer;
  url: string;
  warnings: string[];
}

async function serve(loaded: LoadedForServing, speculative?: Omit<ServerSpeculativeOptions, 'warn'>): Promise<Served> {
  const warnings: string[] = [];
  const server = await createServer({
    models: [{ id: 'ds', path: join(dir, 'unused.gguf'), loaded }],
    scheduler: speculative ? { speculative: { ...speculative, warn: (line) => warnings.push(line) } } : {},
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, url, warnings };
}

interface Completion {
  text: string;
  finish: string;
  usage: { prompt_tokens: number; completion_tokens: number };
}

async function complete(url: string, body: Record<string, unknown>): Promise<Completion> {
  const response = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'ds', temperature: 0, ...body }) });
  const json = (await response.json()) as { choices: { text: string; finish_reason: string }[]; usage: Completion['usage'] };
  assert.equal(response.status, 200, JSON.stringify(json));
  return { text: json.choices[0]!.text, finish: json.choices[0]!.finish_reason, usage: json.usage };
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{model="ds"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const PROMPTS = ['The quick brown fox', 'Hello, hello, hello'];

test('greedy MTP: the same answers as without speculation; drafting shows in /metrics', async () => {
  const plain = await serve(withMtp);
  const spec = await serve(withMtp, { method: 'mtp', draftTokens: 2 });
  try {
    for (const prompt of PROMPTS) {
      for (const extra of [{ max_tokens: 24 }, { max_tokens: 30, stop: ['lo'] }]) {
        const expected = await complete(plain.url, { prompt, ...extra });
        assert.deepEqual(await complete(spec.url, { prompt, ...extra }), expected, `'${prompt}' ${JSON.stringify(extra)}`);
      }
    }
    const drafted = await metric(spec.url, 'frugal_speculative_drafted_tokens_total');
    const accepted = await metric(spec.url, 'frugal_speculative_accepted_tokens_total');
    assert.ok(drafted > 0 && accepted <= drafted, `drafted ${drafted}, accepted ${accepted}`);
    assert.equal(await metric(plain.url, 'frugal_speculative_drafted_tokens_total'), 0);
    assert.ok(spec.server.ctx.scheduler.stats.speculativeSteps > 0);
    // chat with thinking: the same reasoning, content and usage (reasoning tokens included)
    const chat = async (url: string): Promise<unknown> => {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'deepseek-reasoner', temperature: 0, max_tokens: 40, messages: [{ role: 'user', content: 'Hello, hello' }] }),
      });
      assert.equal(response.status, 200);
      const json = (await response.json()) as { choices: { message: unknown; finish_reason: string }[]; usage: unknown };
      return { message: json.choices[0]!.message, finish: json.choices[0]!.finish_reason, usage: json.usage };
    };
    assert.deepEqual(await chat(spec.url), await chat(plain.url));
    // logprobs: no speculation for that request, same answer
    const before = spec.server.ctx.scheduler.stats.draftedTokens;
    const expected = await complete(plain.url, { prompt: PROMPTS[0], max_tokens: 12, logprobs: 1 });
    assert.deepEqual(await complete(spec.url, { prompt: PROMPTS[0], max_tokens: 12, logprobs: 1 }), expected);
    assert.equal(spec.server.ctx.scheduler.stats.draftedTokens, before, 'a logprobs request does not speculate');
  } finally {
    await plain.server.close();
    await spec.server.close();
  }
});

test('two concurrent greedy requests give the same answers as without speculation', async () => {
  const plain = await serve(withMtp);
  const spec = await serve(withMtp, { method: 'mtp', draftTokens: 3 });
  try {
    const bodies = [{ prompt: PROMPTS[0], max_tokens: 40 }, { prompt: PROMPTS[1], max_tokens: 16 }];
    const expected = await Promise.all(bodies.map((b) => complete(plain.url, b)));
    const got = await Promise.all(bodies.map((b) => complete(spec.url, b)));
    assert.deepEqual(got, expected);
    assert.ok(spec.server.ctx.scheduler.stats.batchedForwards > 0, 'the two decoded batched');
  } finally {
    await plain.server.close();
    await spec.server.close();
  }
});

test('n-gram drafting on a repetitive prompt: the same answer, drafts accepted', async () => {
  const plain = await serve(withMtp);
  const spec = await serve(withMtp, { method: 'ngram', draftTokens: 4, ngram: { minMatch: 1 } });
  try {
    const body = { prompt: 'abcabcabcabcabcabc', max_tokens: 32 };
    assert.deepEqual(await complete(spec.url, body), await complete(plain.url, body));
    assert.ok((await metric(spec.url, 'frugal_speculative_accepted_tokens_total')) > 0);
  } finally {
    await plain.server.close();
    await spec.server.close();
  }
});

test('mtp on a model without MTP weights: decodes normally, one warning line', async () => {
  const plain = await serve(withoutMtp);
  const spec = await serve(withoutMtp, { method: 'mtp' });
  try {
    for (const prompt of PROMPTS) assert.deepEqual(await complete(spec.url, { prompt, max_tokens: 10 }), await complete(plain.url, { prompt, max_tokens: 10 }));
    assert.equal(spec.warnings.length, 1);
    assert.match(spec.warnings[0]!, /'ds' has no MTP weights/);
    assert.equal(spec.server.ctx.scheduler.stats.speculativeSteps, 0);
  } finally {
    await plain.server.close();
    await spec.server.close();
  }
});

test('scheduler: a sequence going from alone to batched and back gives exactly the plain tokens', async () => {
  const options = { sampling: { temperature: 0 }, stopTokenIds: [] as number[], thinking: 'off' as const };
  const encode = (text: string): Int32Array => Int32Array.from(withMtp.tokenizer.encode(text, { addSpecialTokens: true }));
  for (const method of ['mtp', 'ngram'] as const) {
    const served = new ServedModel('ds', withMtp, 0, undefined, 2);
    const scheduler = new Scheduler({ maxActive: 4, speculative: { method, draftTokens: 2, ngram: { minMatch: 1 } } });
    const first: number[] = [];
    const second: number[] = [];
    let joined: Promise<JobResult> | undefined;
    let stepsAtJoin = 0;
    let stepsAtSecondEnd = 0;
    const a = await scheduler.run({
      model: served, prompt: encode('abcabcabc The quick'), options: { ...options, maxTokens: 40 },
      onEvent: (e) => {
        if (e.type !== 'token') return;
        first.push(e.id);
        // a second request joins after a few speculative steps and ends well before the first
        if (first.length >= 6 && !joined) {
          stepsAtJoin = scheduler.stats.speculativeSteps;
          joined = scheduler.run({ model: served, prompt: encode('Hello, hello'), options: { ...options, maxTokens: 8 }, onEvent: (f) => void (f.type === 'token' && second.push(f.id)) }).then((r) => {
            stepsAtSecondEnd = scheduler.stats.speculativeSteps;
            return r;
          });
        }
      },
    });
    await joined;
    const alone = async (text: string, maxTokens: number): Promise<number[]> => (await collect(generate(withMtp.model, withMtp.tokenizer, { prompt: encode(text), ...options, maxTokens }))).tokens;
    assert.deepEqual(first, await alone('abcabcabc The quick', 40), `${method}: first`);
    assert.deepEqual(second, await alone('Hello, hello', 8), `${method}: second`);
    assert.equal(a.done.usage.completionTokens, 40);
    assert.ok(a.speculative && a.speculative.drafted > 0, `${method}: ${JSON.stringify(a.speculative)}`);
    assert.ok(scheduler.stats.batchedForwards > 0, `${method}: batched while both ran`);
    assert.ok(stepsAtJoin > 0 && scheduler.stats.speculativeSteps > stepsAtSecondEnd, `${method}: speculative before the join and after the second ended`);
    assert.equal(served.active, 0);
  }
});

test('scheduler: sampled speculative decoding reports every token it emits in the usage', async () => {
  const served = new ServedModel('ds', withMtp, 0, undefined, 2);
  const scheduler = new Scheduler({ speculative: { method: 'ngram', ngram: { minMatch: 1 } } });
  for (const seed of [1, 2, 3]) {
    let tokens = 0;
    const r = await scheduler.run({
      model: served, prompt: Int32Array.from(withMtp.tokenizer.encode('abababababab', { addSpecialTokens: true })),
      options: { sampling: { temperature: 0.8, topK: 20, frequencyPenalty: 0.2, seed }, maxTokens: 24, stopTokenIds: [], thinking: 'off' },
      onEvent: (e) => void (e.type === 'token' && tokens++),
    });
    assert.equal(r.done.usage.completionTokens, tokens);
    assert.equal(tokens, 24);
    assert.equal(r.done.finishReason, 'length');
  }
  assert.ok(scheduler.stats.draftedTokens > 0);
});
