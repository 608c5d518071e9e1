/**
 * The batching scheduler on a tiny model: sequences decoded together give exactly what the
 * engine gives for each alone (greedy), their steps interleave, a model's forwardBatch is used
 * when present, admission beyond the queue is 429, a long wait 503, an abort in the queue ends
 * the request without running it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, generate } from '../../src/generate/engine.js';
import type { KvCache } from '../../src/models/model.js';
import { ApiError } from '../../src/server/errors.js';
import { ServedModel, type LoadedForServing } from '../../src/server/models.js';
import { Scheduler } from '../../src/server/scheduler.js';
import { loadForServing, slowedModel, tinyModelFile } from './helpers.js';

let dir = '';
let loaded: LoadedForServing;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'frugal-sched-'));
  loaded = loadForServing(tinyModelFile(dir, 256));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const prompts = ['first prompt', 'a second, longer prompt here', 'third', 'the fourth one'];
const encode = (text: string): Int32Array => Int32Array.from(loaded.tokenizer.encode(text, { addSpecialTokens: true }));
const options = { sampling: { temperature: 0 }, maxTokens: 12, stopTokenIds: [] as number[], thinking: 'off' as const };

async function runTogether(served: ServedModel, scheduler: Scheduler): Promise<{ tokens: number[][]; order: number[] }> {
  const tokens: number[][] = prompts.map(() => []);
  const order: number[] = [];
  await Promise.all(
    prompts.map((p, i) =>
      scheduler.run({
        model: served, prompt: encode(p), options,
        onEvent: (e) => {
          if (e.type === 'token') {
            tokens[i]!.push(e.id);
            order.push(i);
          }
        },
      }),
    ),
  );
  return { tokens, order };
}

test('sequences decoded together equal each one decoded alone, and interleave', async () => {
  const served = new ServedModel('tiny', loaded, 0, undefined, 2);
  const scheduler = new Scheduler({ maxActive: 4 });
  const { tokens, order } = await runTogether(served, scheduler);
  for (const [i, p] of prompts.entries()) {
    const alone = await collect(generate(loaded.model, loaded.tokenizer, { prompt: encode(p), ...options }));
    assert.deepEqual(tokens[i], alone.tokens, `prompt ${i}`);
  }
  const firstOfLast = order.indexOf(3);
  const lastOfFirst = order.lastIndexOf(0);
  assert.ok(firstOfLast < lastOfFirst, 'the fourth sequence started before the first ended');
  assert.ok(scheduler.stats.batchedForwards > 0, 'the model batches the decode steps (forwardBatch)');
  assert.equal(served.active, 0);
});

test("a model's forwardBatch runs the decode steps of several sequences at once", async () => {
  let calls = 0;
  const model = loaded.model;
  const batching = Object.assign(Object.create(model) as typeof model, {
    forwardBatch(items: { tokens: Int32Array; cache: KvCache }[]): Float32Array[] {
      calls++;
      return items.map((item) => model.forward(item.tokens, item.cache).slice());
    },
  });
  const served = new ServedModel('tiny', { ...loaded, model: batching }, 0, undefined, 2);
  const scheduler = new Scheduler({ maxActive: 4 });
  const batched = await runTogether(served, scheduler);
  const plain = await runTogether(new ServedModel('tiny', loaded, 0, undefined, 2), new Scheduler({ maxActive: 4 }));
  assert.deepEqual(batched.tokens, plain.tokens);
  assert.ok(calls > 0 && scheduler.stats.batchedForwards === calls);
});

test('prompt chunks of sequences still prefilling share the batched forward with the decode steps of the others', async () => {
  const model = loaded.model;
  let mixed = 0;
  let prefillItems = 0;
  const batching = Object.assign(Object.create(model) as typeof model, {
    forwardBatch(items: { tokens: Int32Array; cache: KvCache }[]): Float32Array[] {
      const long = items.filter((item) => item.tokens.length > 1).length;
      prefillItems += long;
      if (long > 0 && long < items.length) mixed++;
      return model.forwardBatch(items);
    },
  });
  const served = new ServedModel('tiny', { ...loaded, model: batching }, 0, undefined, 2);
  // 3-token chunks: the longer prompts still prefill while the short ones decode
  const scheduler = new Scheduler({ maxActive: 4, prefillChunk: 3 });
  const { tokens } = await runTogether(served, scheduler);
  for (const [i, p] of prompts.entries()) {
    const alone = await collect(generate(model, loaded.tokenizer, { prompt: encode(p), ...options }));
    assert.deepEqual(tokens[i], alone.tokens, `prompt ${i}`);
  }
  assert.ok(prefillItems > 0, 'prompt chunks went through forwardBatch');
  assert.ok(mixed > 0, 'some forwardBatch calls mixed prompt chunks and decode steps');
});

test('admission: 429 beyond the queue, 503 after the queue timeout, abort while queued', async () => {
  // 150 tokens at >= 1 ms per step keep the one slot busy far past the 30 ms queue timeout.
  const served = new ServedModel('tiny', { ...loaded, model: slowedModel(loaded.model, 1) }, 0, undefined, 2);
  const scheduler = new Scheduler({ maxActive: 1, maxQueue: 1, queueTimeoutMs: 30 });
  const long = { ...options, maxTokens: 150 };
  const running = scheduler.run({ model: served, prompt: encode('run'), options: long });
  const waiting = scheduler.run({ model: served, prompt: encode('wait'), options: long });
  await assert.rejects(scheduler.run({ model: served, prompt: encode('no room'), options: long }), (e: unknown) => e instanceof ApiError && e.status === 429 && e.retryAfter !== undefined);
  await assert.rejects(waiting, (e: unknown) => e instanceof ApiError && e.status === 503);
  const controller = new AbortController();
  const aborted = scheduler.run({ model: served, prompt: encode('abort me'), options: long, signal: controller.signal });
  controller.abort();
  const result = await aborted;
  assert.equal(result.done.finishReason, 'abort');
  assert.equal(result.done.usage.completionTokens, 0);
  // a client already gone when its request is queued leaves at once, not when the running one ends
  const gone = new AbortController();
  gone.abort();
  let runningEnded = false;
  void running.then(() => (runningEnded = true));
  const late = await scheduler.run({ model: served, prompt: encode('already gone'), options: long, signal: gone.signal });
  assert.equal(late.done.finishReason, 'abort');
  assert.equal(runningEnded, false, 'answered before the running request ended');
  assert.equal((await running).done.finishReason, 'length');
  assert.equal(served.active, 0);
});
