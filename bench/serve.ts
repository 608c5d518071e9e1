/**
 * `npm run bench:serve`: aggregate decode throughput of the server with 1 stream vs 8 concurrent
 * streams (continuous batching: the 8 streams decode together), on a tiny random-weight model or
 * on a given GGUF (`--model models/frugal-r1-tiny.gguf`: its answers end at EOS, so streams have
 * different lengths). Each measurement is repeated (1 and 8 streams interleaved) and the median
 * ratio is printed with the range. Loopback only, some seconds.
 *
 *   node dist/bench/serve.js [--model FILE] [--hidden 256] [--layers 4] [--tokens 128] [--streams 8] [--repeats 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyDenseGguf } from '../src/models/tiny.js';
import { createServer } from '../src/server/app.js';

const { values } = parseArgs({
  options: {
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    streams: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '5' },
    model: { type: 'string' },
  },
});
const hidden = Number(values.hidden);
const layers = Number(values.layers);
const tokens = Number(values.tokens);
const streams = Number(values.streams);
const repeats = Number(values.repeats);

const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-serve-'));
const path = values.model ?? join(dir, 'bench.gguf');
if (values.model === undefined) writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: 1024, hiddenSize: hidden, layers, heads: 4, kvHeads: 2, ffSize: hidden * 4, seed: 3 });
const server = await createServer({
  models: [{ id: 'bench', path }],
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
await measure(streams);
const ones: number[] = [];
const manys: number[] = [];
const ratios: number[] = [];
for (let r = 0; r < repeats; r++) {
  const one = await measure(1);
  const many = await measure(streams);
  ones.push(one.rate);
  manys.push(many.rate);
  ratios.push(many.rate / one.rate);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const batched = (server.ctx.registry.get('bench').model as { forwardBatch?: unknown }).forwardBatch !== undefined;
const { describeBackend } = await import('../src/tensor/index.js');
console.log(`model: ${values.model ?? `llama, hidden ${hidden}, ${layers} layers, byte vocabulary (random weights)`}; up to ${tokens} tokens per stream; ${describeBackend()}`);
console.log(`1 stream:  median ${median(ones).toFixed(1)} tokens/s (${ones.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`${streams} streams: median ${median(manys).toFixed(1)} tokens/s aggregate (${manys.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`ratio: median ${median(ratios).toFixed(2)}x, range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x over ${repeats} interleaved repeats (${batched ? 'batched forward (forwardBatch)' : 'no forwardBatch on this model: sequences stepped one after another each round'})`);
await server.close();
rmSync(dir, { recursive: true, force: true });
