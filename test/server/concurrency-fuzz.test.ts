/**
 * Concurrency fuzz of the batching server: a seeded random workload (random start times, prompts
 * sharing prefixes with earlier ones, a prompt that is a whole earlier conversation, one shorter
 * than a cached prompt, n 1..3, streaming or not, stops, logprobs, echo, clients that disconnect
 * while queued, prefilling or decoding, a queue small enough for 429s) against an in-process
 * server. Every request that completes must get exactly what the same request gets alone on a
 * fresh server (greedy, or a fixed seed: the sampler is per request), and once the workload
 * drains nothing may be left running, queued, leased twice or over the cache budget.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CacheSlot } from '../../src/generate/engine.js';
import { createServer, type FrugalServer } from '../../src/server/app.js';
import { ServedModel } from '../../src/server/models.js';
import { Scheduler, type SchedulerOptions } from '../../src/server/scheduler.js';
import { loadForServing, loadSlowedForServing, tinyModelFile } from './helpers.js';
import { prng } from '../formats/helpers.js';

const SHIPPED_MODEL = join(process.cwd(), 'models', 'frugal-r1-tiny.gguf');

let dir = '';
let tinyPath = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-concurrency-'));
  tinyPath = tinyModelFile(dir, 1024);
});
after(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// servers

interface ServerSetup {
  modelPath: string;
  scheduler: SchedulerOptions;
  cacheSlots: number;
  cacheMemoryBytes: number;
  /** Milliseconds every forward lasts at least (so that requests overlap). */
  forwardMs: number;
}

interface Served {
  server: FrugalServer;
  url: string;
  leases: LeaseTracker;
}

/** Watches a pool's acquire/release: a slot leased while already leased, or given back twice, is a bug. */
class LeaseTracker {
  readonly leased = new Set<CacheSlot>();
  readonly errors: string[] = [];

  watch(served: ServedModel): void {
    const pool = served.pool;
    const acquire = pool.acquire.bind(pool);
    const release = pool.release.bind(pool);
    pool.acquire = (prompt, options) => {
      const lease = acquire(prompt, options);
      if (this.leased.has(lease.slot)) this.errors.push('a slot was leased while already leased');
      this.leased.add(lease.slot);
      return lease;
    };
    pool.release = (slot, valid) => {
      if (!this.leased.delete(slot)) this.errors.push('a slot was given back while not leased');
      if (slot.tokens.length !== slot.cache.length) this.errors.push(`a slot was given back holding ${slot.cache.length} tokens but listing ${slot.tokens.length}`);
      release(slot, valid);
    };
  }
}

async function serve(setup: ServerSetup): Promise<Served> {
  const server = await createServer({
    models: [{ id: 'm', path: setup.modelPath }],
    registry: { load: loadSlowedForServing(setup.forwardMs), cacheSlots: setup.cacheSlots, cacheMemoryBytes: setup.cacheMemoryBytes },
    scheduler: setup.scheduler,
    settings: { keepAliveMs: 20 },
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const leases = new LeaseTracker();
  leases.watch(server.ctx.registry.get('m'));
  return { server, url, leases };
}

// ---------------------------------------------------------------------------------------------
// requests and their outcomes

type Body = Record<string, unknown>;

interface ChoiceOutcome {
  text: string;
  finish: string | null;
  tokens: string[];
  logprobs: (number | null)[];
}

interface Outcome {
  kind: 'ok' | 'error' | 'aborted';
  status: number;
  error?: string;
  choices: ChoiceOutcome[];
  completionTokens?: number;
  promptTokens?: number;
}

interface ChunkChoice {
  index: number;
  text: string;
  finish_reason: string | null;
  logprobs: { tokens: string[]; token_logprobs: (number | null)[] } | null;
}

interface Answer {
  choices?: ChunkChoice[];
  usage?: { completion_tokens: number; prompt_tokens: number };
  error?: { message: string };
}

function emptyChoice(): ChoiceOutcome {
  return { text: '', finish: null, tokens: [], logprobs: [] };
}

function addChunk(choices: ChoiceOutcome[], part: ChunkChoice): void {
  const choice = (choices[part.index] ??= emptyChoice());
  choice.text += part.text;
  if (part.finish_reason !== null) choice.finish = part.finish_reason;
  if (part.logprobs) {
    choice.tokens.push(...part.logprobs.tokens);
    choice.logprobs.push(...part.logprobs.token_logprobs);
  }
}

interface ChatChoice {
  index: number;
  finish_reason: string | null;
  message?: ChatMessageBody;
  delta?: ChatMessageBody;
  logprobs: { content: { token: string; logprob: number }[] | null } | null;
}

interface ChatMessageBody {
  content?: string | null;
  reasoning_content?: string | null;
}

/** A chat choice (message or stream delta) as a completion choice: the thought, then a marker, then the answer. */
function fromChat(choice: ChatChoice): ChunkChoice {
  const body = choice.message ?? choice.delta ?? {};
  const reasoning = body.reasoning_content ?? '';
  const content = body.content ?? '';
  const entries = choice.logprobs?.content ?? [];
  return {
    index: choice.index, finish_reason: choice.finish_reason, text: choice.message ? `${reasoning}|${content}` : reasoning + content,
    logprobs: entries.length > 0 ? { tokens: entries.map((e) => e.token), token_logprobs: entries.map((e) => e.logprob) } : null,
  };
}

function normalized(answer: Answer & { object?: string }): Answer {
  if (!answer.object?.startsWith('chat.completion') || !answer.choices) return answer;
  return { ...answer, choices: (answer.choices as unknown as ChatChoice[]).map(fromChat) };
}

function outcomeOf(status: number, answers: Answer[]): Outcome {
  const failed = answers.find((a) => a.error);
  if (failed) return { kind: 'error', status, error: failed.error!.message, choices: [] };
  const choices: ChoiceOutcome[] = [];
  let usage: Answer['usage'];
  for (const answer of answers) {
    for (const part of answer.choices ?? []) addChunk(choices, part);
    usage = answer.usage ?? usage;
  }
  return { kind: 'ok', status, choices, completionTokens: usage?.completion_tokens, promptTokens: usage?.prompt_tokens };
}

function parseStream(text: string): Answer[] {
  const answers: Answer[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('data: ') && line !== 'data: [DONE]') answers.push(JSON.parse(line.slice(6)) as Answer);
  }
  return answers;
}

/** Sends one completion request; `disconnectAfterMs` makes the client go away then. */
async function send(url: string, body: Body, disconnectAfterMs?: number): Promise<Outcome> {
  const controller = new AbortController();
  const timer = disconnectAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), disconnectAfterMs);
  const path = body.messages === undefined ? '/v1/completions' : '/v1/chat/completions';
  try {
    const response = await fetch(`${url}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: controller.signal,
    });
    const text = await response.text();
    const answers = body.stream === true && response.status === 200 ? parseStream(text) : [JSON.parse(text) as Answer];
    return outcomeOf(response.status, answers.map(normalized));
  } catch (error) {
    if (controller.signal.aborted) return { kind: 'aborted', status: 0, choices: [] };
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// the seeded workload

type Rng = () => number;


const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'world', 'cache', 'batch', 'token', 'model', 'server', 'prompt', 'stream', 'again', 'more', 'and'];

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
const between = (rng: Rng, low: number, high: number): number => low + Math.floor(rng() * (high - low + 1));

function words(rng: Rng, count: number): string {
  return Array.from({ length: count }, () => pick(rng, WORDS)).join(' ');
}

/** How a request's prompt comes about. */
type PromptKind =
  | { kind: 'fresh'; text: string }
  | { kind: 'shared'; prefix: string; suffix: string }
  /** An earlier request's prompt cut short (shorter than the cached one). */
  | { kind: 'shorter'; of: number; keep: number }
  /** An earlier request's prompt and answer, then more: a whole earlier conversation as prefix. */
  | { kind: 'conversation'; of: number; suffix: string };

interface PlannedRequest {
  index: number;
  chat: boolean;
  startMs: number;
  prompt: PromptKind;
  options: Body;
  disconnectAfterMs?: number;
}

interface WorkloadOptions {
  seed: number;
  requests: number;
  /** Share of requests sent to /v1/chat/completions (with the model's chat template and its thought). */
  chat: number;
  /** Longest prompt in words (a long one prefills over many rounds). */
  longWords: number;
  sampled: boolean;
}

function planPrompt(rng: Rng, index: number, prefixes: readonly string[]): PromptKind {
  const roll = rng();
  if (index > 2 && roll < 0.15) return { kind: 'conversation', of: between(rng, 0, index - 1), suffix: ` ${words(rng, between(rng, 1, 4))}` };
  if (index > 2 && roll < 0.3) return { kind: 'shorter', of: between(rng, 0, index - 1), keep: rng() };
  if (roll < 0.75) return { kind: 'shared', prefix: pick(rng, prefixes), suffix: ` ${words(rng, between(rng, 1, 6))}` };
  return { kind: 'fresh', text: words(rng, between(rng, 1, 8)) };
}

function planOptions(rng: Rng, sampled: boolean, chat: boolean): Body {
  const options: Body = { max_tokens: between(rng, 1, 24), n: between(rng, 1, 3), stream: rng() < 0.5 };
  if (sampled && rng() < 0.6) Object.assign(options, { temperature: 0.9, top_k: 40, seed: between(rng, 1, 1000) });
  else options.temperature = 0;
  if (rng() < 0.3) options.stop = [pick(rng, ['e', 'a ', 'th', 'o', '\n', 'xyz'])];
  if (chat) {
    if (rng() < 0.3) Object.assign(options, { logprobs: true, top_logprobs: between(rng, 0, 3) });
    if (rng() < 0.5) options.model = 'deepseek-chat'; // no thinking
    return options;
  }
  if (rng() < 0.3) options.logprobs = between(rng, 0, 3);
  if (rng() < 0.1) Object.assign(options, { echo: true, logprobs: between(rng, 0, 2) });
  if (options.echo && rng() < 0.3) options.max_tokens = 0; // scores the prompt, generates nothing
  return options;
}

function planWorkload(options: WorkloadOptions): PlannedRequest[] {
  const rng: Rng = prng(options.seed);
  const prefixes = [words(rng, 6), words(rng, 20), words(rng, options.longWords)];
  return Array.from({ length: options.requests }, (_, index) => {
    const chat = rng() < options.chat;
    const planned: PlannedRequest = { index, chat, startMs: between(rng, 0, 900), prompt: planPrompt(rng, index, prefixes), options: planOptions(rng, options.sampled, chat) };
    if (rng() < 0.2) planned.disconnectAfterMs = between(rng, 0, 120);
    return planned;
  });
}

// ---------------------------------------------------------------------------------------------
// running it

interface Sent {
  planned: PlannedRequest;
  body: Body;
  outcome: Outcome;
}

/** Longest prompt the workload builds (the tiny model's context is 1024 byte tokens, the shipped model's 512 tokens). */
const MAX_PROMPT_BYTES = 800;

function promptText(planned: PlannedRequest, sent: readonly Promise<Sent>[]): Promise<string> | string {
  const p = planned.prompt;
  if (p.kind === 'fresh') return p.text;
  if (p.kind === 'shared') return p.prefix + p.suffix;
  return sent[p.of]!.then((earlier) => {
    const text = typeof earlier.body.prompt === 'string' ? earlier.body.prompt : JSON.stringify(earlier.body.messages);
    if (p.kind === 'shorter') return text.slice(0, Math.max(1, Math.floor(text.length * p.keep)));
    const conversation = text + (earlier.outcome.choices[0]?.text ?? '') + p.suffix;
    // a chain of conversations must stay within the context (the long prefix alone is 120 words)
    return Buffer.byteLength(conversation) > MAX_PROMPT_BYTES ? text.slice(0, MAX_PROMPT_BYTES / 2) + p.suffix : conversation;
  });
}

type ChatTurn = { role: 'user' | 'assistant'; content: string };

/** A chat request's messages: a conversation continues an earlier chat's turns and answer. */
async function chatMessages(planned: PlannedRequest, sent: readonly Promise<Sent>[]): Promise<ChatTurn[]> {
  const p = planned.prompt;
  if (p.kind === 'conversation') {
    const earlier = await sent[p.of]!;
    const turns = earlier.body.messages as ChatTurn[] | undefined;
    const answer = earlier.outcome.choices[0]?.text.split('|').pop() ?? '';
    if (turns && JSON.stringify(turns).length < MAX_PROMPT_BYTES / 2) return [...turns, { role: 'assistant', content: answer }, { role: 'user', content: p.suffix.trim() }];
  }
  return [{ role: 'user', content: await promptText(planned, sent) }];
}

async function bodyOf(planned: PlannedRequest, sent: readonly Promise<Sent>[]): Promise<Body> {
  if (planned.chat) return { model: 'm', messages: await chatMessages(planned, sent), ...planned.options };
  return { model: 'm', prompt: await promptText(planned, sent), ...planned.options };
}

async function runOne(url: string, planned: PlannedRequest, sent: readonly Promise<Sent>[]): Promise<Sent> {
  await new Promise((resolve) => setTimeout(resolve, planned.startMs));
  const body = await bodyOf(planned, sent);
  const outcome = await send(url, body, planned.disconnectAfterMs);
  return { planned, body, outcome };
}

async function runWorkload(url: string, plan: readonly PlannedRequest[]): Promise<Sent[]> {
  const sent: Promise<Sent>[] = [];
  for (const planned of plan) sent.push(runOne(url, planned, sent));
  return Promise.all(sent);
}

// ---------------------------------------------------------------------------------------------
// the checks

/** Waits until the scheduler has nothing running or queued (disconnected requests end at the next round). */
async function drained(served: Served): Promise<void> {
  const scheduler = served.server.ctx.scheduler;
  const deadline = performance.now() + 5000;
  while ((scheduler.activeCount > 0 || scheduler.queueDepth > 0) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function gauge(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  assert.ok(match, `${name} in /metrics`);
  return Number(match[1]);
}

async function checkIdle(served: Served, budgetBytes: number): Promise<void> {
  await drained(served);
  const { scheduler, registry } = served.server.ctx;
  assert.equal(scheduler.activeCount, 0, 'nothing runs');
  assert.equal(scheduler.queueDepth, 0, 'nothing waits');
  for (const model of registry.loadedModels()) assert.equal(model.active, 0, `model ${model.id} has no active request`);
  assert.deepEqual(served.leases.errors, [], 'cache slot leases');
  assert.equal(served.leases.leased.size, 0, 'every leased cache slot was given back');
  assert.ok(registry.cacheBudget.idleBytes <= budgetBytes, `idle cache bytes ${registry.cacheBudget.idleBytes} within ${budgetBytes}`);
  assert.equal(await gauge(served.url, 'frugal_queue_depth'), 0);
  assert.equal(await gauge(served.url, 'frugal_active_generations'), 0);
}

/** The body as the reference server gets it (the same request, complete, alone). */
function referenceOutcome(reference: Served, body: Body): Promise<Outcome> {
  return send(reference.url, body);
}

function describe(sent: Sent): string {
  return `request ${sent.planned.index} ${JSON.stringify(sent.body).slice(0, 400)}`;
}

/** Batched and one-at-a-time forwards may differ in the last bits of float32: logprobs agree to 1e-5 relative. */
const LOGPROB_TOLERANCE = 1e-5;

function withoutLogprobs(outcome: Outcome): Outcome {
  return { ...outcome, choices: outcome.choices.map((c) => ({ ...c, logprobs: [] })) };
}

/** The same tokens, texts, finishes and usage; logprobs within LOGPROB_TOLERANCE. */
function assertSameOutcome(actual: Outcome, expected: Outcome, label: string): void {
  assert.deepEqual(withoutLogprobs(actual), withoutLogprobs(expected), label);
  actual.choices.forEach((choice, i) => {
    const want = expected.choices[i]!.logprobs;
    assert.equal(choice.logprobs.length, want.length, `${label}: choice ${i} logprobs`);
    choice.logprobs.forEach((value, j) => {
      const reference = want[j]!;
      const close = value === reference || (value !== null && reference !== null && Math.abs(value - reference) <= LOGPROB_TOLERANCE * Math.max(1, Math.abs(reference)));
      assert.ok(close, `${label}: choice ${i} logprob ${j}: ${value} vs ${reference}`);
    });
  });
}

interface Tally {
  ok: number;
  rejected: number;
  aborted: number;
  batchedForwards?: number;
  speculativeSteps?: number;
  schedulerAborts?: number;
  cacheHitTokens?: number;
}

async function compareWithReference(results: readonly Sent[], reference: Served): Promise<Tally> {
  const tally: Tally = { ok: 0, rejected: 0, aborted: 0 };
  for (const sent of results) {
    const { outcome } = sent;
    if (outcome.kind === 'aborted') {
      tally.aborted++;
      continue;
    }
    if (outcome.status === 429) {
      tally.rejected++;
      continue;
    }
    assert.equal(outcome.kind, 'ok', `${describe(sent)}: ${outcome.status} ${outcome.error ?? ''}`);
    tally.ok++;
    assertSameOutcome(outcome, await referenceOutcome(reference, sent.body), describe(sent));
  }
  return tally;
}

interface FuzzRun {
  setup: ServerSetup;
  workload: WorkloadOptions;
}

async function fuzz(run: FuzzRun): Promise<Tally> {
  const served = await serve(run.setup);
  // the reference: one request at a time, and no cache kept between requests (as a fresh server)
  const reference = await serve({ ...run.setup, cacheMemoryBytes: 0 });
  try {
    const results = await runWorkload(served.url, planWorkload(run.workload));
    await checkIdle(served, run.setup.cacheMemoryBytes);
    const tally = await compareWithReference(results, reference);
    // the server still answers correctly after the workload
    const again = { model: 'm', prompt: 'hello world', max_tokens: 8, temperature: 0 };
    assert.deepEqual(await send(served.url, again), await send(reference.url, again), 'an answer after the workload');
    await checkIdle(served, run.setup.cacheMemoryBytes);
    await checkIdle(reference, 0);
    const stats = served.server.ctx.scheduler.stats;
    tally.batchedForwards = stats.batchedForwards;
    tally.speculativeSteps = stats.speculativeSteps;
    tally.schedulerAborts = stats.aborted;
    tally.cacheHitTokens = await gauge(served.url, 'frugal_prompt_cache_hit_tokens_total{model="m"}');
    return tally;
  } finally {
    await served.server.close();
    await reference.server.close();
  }
}

const SMALL_QUEUE: SchedulerOptions = { maxActive: 4, maxQueue: 8, prefillChunk: 16 };

/** Seeds to run: FUZZ_SEEDS="1-40" (or "3,7") explores more than the default ones. */
function seeds(defaults: number[]): number[] {
  const given = process.env.FUZZ_SEEDS;
  if (!given) return defaults;
  const range = /^(\d+)-(\d+)$/.exec(given);
  if (range) return Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i);
  return given.split(',').map(Number);
}

test('fuzz: tiny dense model, batching, prefix cache, cancellation and 429s change no answer', async () => {
  for (const seed of seeds([1, 2])) {
    const tally = await fuzz({
      setup: { modelPath: tinyPath, scheduler: SMALL_QUEUE, cacheSlots: 4, cacheMemoryBytes: 4 << 20, forwardMs: 0.5 },
      workload: { seed, requests: 40, chat: 0, longWords: 120, sampled: true },
    });
    console.log(`seed ${seed}: ${JSON.stringify(tally)}`);
    assert.ok(tally.ok >= 5, `seed ${seed}: enough requests completed`);
  }
});

test('fuzz: tiny dense model with n-gram speculative decoding (greedy)', async () => {
  for (const seed of seeds([3])) {
    const speculative = { method: 'ngram' as const, draftTokens: 3, ngram: { minMatch: 1 } };
    const tally = await fuzz({
      setup: { modelPath: tinyPath, scheduler: { ...SMALL_QUEUE, speculative }, cacheSlots: 4, cacheMemoryBytes: 4 << 20, forwardMs: 0.5 },
      workload: { seed, requests: 40, chat: 0, longWords: 120, sampled: false },
    });
    console.log(`ngram seed ${seed}: ${JSON.stringify(tally)}`);
    assert.ok(tally.ok >= 5, `seed ${seed}: enough requests completed`);
    assert.ok((tally.speculativeSteps ?? 0) > 0, 'some steps speculated');
  }
});

test('fuzz: shipped MoE + MLA model with MTP speculative decoding', async () => {
  for (const seed of seeds([3])) {
    const tally = await fuzz({
      setup: { modelPath: SHIPPED_MODEL, scheduler: { ...SMALL_QUEUE, speculative: { method: 'mtp', draftTokens: 2, warn: () => {} } }, cacheSlots: 4, cacheMemoryBytes: 8 << 20, forwardMs: 0 },
      workload: { seed, requests: 30, chat: 0.5, longWords: 80, sampled: process.env.FUZZ_SAMPLED === '1' },
    });
    console.log(`shipped seed ${seed}: ${JSON.stringify(tally)}`);
    assert.ok(tally.ok >= 5, 'enough requests completed');
    assert.ok((tally.speculativeSteps ?? 0) > 0, 'some steps speculated');
  }
});

// ---------------------------------------------------------------------------------------------
// minimized cases of what the fuzz found

test('n choices are admitted all or none: 429 before the stream begins, never an error inside a 200 stream', async () => {
  // one place to run and one to wait: three choices do not fit, two do
  const served = await serve({ modelPath: tinyPath, scheduler: { maxActive: 1, maxQueue: 1 }, cacheSlots: 4, cacheMemoryBytes: 1 << 20, forwardMs: 0 });
  try {
    const body = { model: 'm', prompt: 'hello world', max_tokens: 4, temperature: 0, stream: true };
    const refused = await fetch(`${served.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, n: 3 }) });
    const text = await refused.text();
    assert.equal(refused.status, 429, `three choices with two places: ${refused.status} ${text.slice(0, 200)}`);
    const fitting = await send(served.url, { ...body, n: 2 });
    assert.equal(fitting.kind, 'ok', fitting.error);
    assert.equal(fitting.choices.length, 2);
    assert.ok(fitting.choices.every((c) => c.finish === 'length'));
    await checkIdle(served, 1 << 20);
  } finally {
    await served.server.close();
  }
});
