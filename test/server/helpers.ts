/**
 * Test servers: a tiny random-weight model (src/models/tiny.ts, byte tokenizer) written to a temp
 * dir and served in-process on a loopback port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { run as admin } from '../../src/cli/admin.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { createServer, type FrugalServer, type ServerOptions } from '../../src/server/app.js';
import { loadForServing, type LoadedForServing } from '../../src/server/models.js';
import type { BatchItem, CausalLM, KvCache } from '../../src/models/model.js';
import OpenAI from 'openai';

export { loadForServing };

/**
 * The model with every forward (and every batched forward) made to last at least `ms`, so that a
 * test's timing (a slot held, a queue timeout, keep-alive comments) does not depend on the machine.
 */
export function slowedModel<M extends CausalLM>(model: M, ms: number): M {
  const wait = (): void => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  return Object.assign(Object.create(model) as M, {
    forward(tokens: Int32Array, cache: KvCache, opts?: { allLogits?: boolean }): Float32Array {
      wait();
      return model.forward(tokens, cache, opts);
    },
    forwardBatch(items: readonly BatchItem[]): Float32Array[] {
      wait();
      return model.forwardBatch(items);
    },
  });
}

/** `loadForServing` with the model slowed as `slowedModel` does. */
export function loadSlowedForServing(ms: number): (path: string) => LoadedForServing {
  return (path) => {
    const loaded = loadForServing(path);
    return { ...loaded, model: slowedModel(loaded.model, ms) };
  };
}

export interface TestServer {
  server: FrugalServer;
  url: string;
  dir: string;
  modelPath: string;
  close(): Promise<void>;
}

export function tinyModelFile(dir: string, contextLength = 1024): string {
  const path = join(dir, 'tiny.gguf');
  writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength, seed: 7, layers: 1, hiddenSize: 32, heads: 2, kvHeads: 1, ffSize: 64 });
  return path;
}

export async function startTestServer(options: Partial<ServerOptions> & { contextLength?: number; dbFile?: string } = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-serve-'));
  const modelPath = tinyModelFile(dir, options.contextLength);
  const server = await createServer({
    models: [{ id: 'tiny', path: modelPath }],
    registry: { load: loadForServing },
    dbPath: options.dbFile ?? join(dir, 'frugal.db'),
    ...options,
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    server,
    url,
    dir,
    modelPath,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads an SSE body into its `data:` payloads (and counts comment lines). */
export async function readSse(response: Response): Promise<{ events: unknown[]; comments: number; done: boolean }> {
  const text = await response.text();
  const events: unknown[] = [];
  let comments = 0;
  let done = false;
  for (const block of text.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments++;
      else if (line === 'data: [DONE]') done = true;
      else if (line.startsWith('data: ')) events.push(JSON.parse(line.slice(6)));
    }
  }
  return { events, comments, done };
}

/**
 * A test server whose random model's thought ends (a reasoning budget forces `</think>`, so an
 * answer has both parts) and the official `openai` client on it.
 */
export async function startReasoningServer(): Promise<{ t: TestServer; client: OpenAI }> {
  const t = await startTestServer({ settings: { defaultReasoningBudget: 6 } });
  return { t, client: new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'sk-local', maxRetries: 0 }) };
}

/** Runs `frugal admin --db <db> ...args` in-process (it must succeed); returns what it printed. */
export async function adminCommand(db: string, ...args: string[]): Promise<string> {
  const log = console.log;
  const err = console.error;
  let out = '';
  console.log = (...parts: unknown[]) => (out += parts.join(' ') + '\n');
  console.error = () => {};
  try {
    assert.equal(await admin(['--db', db, ...args]), 0, `frugal admin ${args.join(' ')}`);
  } finally {
    console.log = log;
    console.error = err;
  }
  return out.trim();
}
