/**
 * `npm run bench:serve`: aggregate decode throughput of the server with 1 stream vs 8 concurrent
 * streams on a tiny random-weight model (continuous batching: the 8 streams decode together).
 * Prints tokens/s for each and their ratio. Loopback only, a few seconds.
 *
 *   node dist/bench/serve.js [--hidden 256] [--layers 4] [--tokens 64] [--streams 8]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/models/load.js';
import { writeTinyDenseGguf } from '../src/models/tiny.js';
import { createServer } from '../src/server/app.js';

const { values } = parseArgs({
  options: {
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '64' },
    streams: { type: 'string', default: '8' },
  },
});
const hidden = Number(values.hidden);
const layers = Number(values.layers);
const tokens = Number(values.tokens);
const streams = Number(values.streams);

const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-serve-'));
const path = join(dir, 'bench.gguf');
writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: 1024, hiddenSize: hidden, layers, heads: 4, kvHeads: 2, ffSize: hidden * 4, seed: 3 });
const server = await createServer({
  models: [{ id: 'bench', path }],
  registry: {
    load: (p) => {
      const l = loadModel(p);
      return { model: l.model, tokenizer: l.tokenizer!, chatTemplate: l.chatTemplate };
    },
  },
  scheduler: { maxActive: streams, maxQueue: streams },
});
const url = await server.listen({ host: '127.0.0.1', port: 0 });

/** One streamed completion of exactly `tokens` tokens (no stop token); returns the tokens generated. */
async function stream(i: number): Promise<number> {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'deepseek-chat', messages: [{ role: 'user', content: `stream number ${i}` }], max_tokens: tokens, stream: true,
      stream_options: { include_usage: true }, temperature: 1, seed: i,
    }),
  });
  const text = await r.text();
  const usage = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as { usage: { completion_tokens: number } | null }).find((c) => c.usage)?.usage;
  return usage?.completion_tokens ?? 0;
}

async function measure(n: number): Promise<{ tokens: number; seconds: number; rate: number }> {
  const start = performance.now();
  const counts = await Promise.all(Array.from({ length: n }, (_, i) => stream(i)));
  const seconds = (performance.now() - start) / 1000;
  const total = counts.reduce((a, b) => a + b, 0);
  return { tokens: total, seconds, rate: total / seconds };
}

await measure(1); // warm-up (model load, JIT)
const one = await measure(1);
const many = await measure(streams);
const batched = (server.ctx.registry.get('bench').model as { forwardBatch?: unknown }).forwardBatch !== undefined;
console.log(`model: llama, hidden ${hidden}, ${layers} layers, byte vocabulary; ${tokens} tokens per stream`);
console.log(`1 stream:  ${one.tokens} tokens in ${one.seconds.toFixed(2)} s = ${one.rate.toFixed(1)} tokens/s`);
console.log(`${streams} streams: ${many.tokens} tokens in ${many.seconds.toFixed(2)} s = ${many.rate.toFixed(1)} tokens/s aggregate`);
console.log(`ratio: ${(many.rate / one.rate).toFixed(2)}x (${batched ? 'batched forward (forwardBatch)' : 'no forwardBatch on this model: sequences stepped one after another each round'})`);
await server.close();
rmSync(dir, { recursive: true, force: true });
