/**
 * `npm run bench:serve`: aggregate decode throughput of the server with 1 stream vs 8 concurrent
 * streams (continuous batching: the 8 streams decode together), on a tiny random-weight model or
 * on a given GGUF (`--model models/frugal-r1-tiny.gguf`: its answers end at EOS, so requests have
 * different lengths).
 *
 * Both sides serve the same work: `streams x rounds` streamed requests (request i: its own prompt
 * and seed i; the prompts are test problems of the shipped model's task families, which it answers
 * with a worked thought, as its users would ask). "1 stream" sends them one after another; "8 streams" keeps 8 requests in flight
 * (each client sends its next request as soon as its last one ends). Each measurement is repeated
 * (1 and 8 streams interleaved) and the median ratio is printed with the range, plus the CPU time
 * the process spent per token (the clients run in the same process). Loopback only, some seconds.
 *
 *   node dist/bench/serve.js [--model FILE] [--hidden 256] [--layers 4] [--tokens 128] [--streams 8] [--rounds 2] [--repeats 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyDenseGguf } from '../src/models/tiny.js';
import { createServer } from '../src/server/app.js';
import { getTask } from '../src/train/tasks/index.js';

const { values } = parseArgs({
  options: {
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '128' },
    streams: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '5' },
    model: { type: 'string' },
  },
});
const hidden = Number(values.hidden);
const layers = Number(values.layers);
const tokens = Number(values.tokens);
const streams = Number(values.streams);
const rounds = Number(values.rounds);
const repeats = Number(values.repeats);
const requests = streams * rounds;
const families = ['arithmetic', 'linear', 'countdown'];
const prompts = Array.from({ length: requests }, (_, i) => getTask(families[i % families.length]!).generate(1, { seed: 100 + i, difficulty: 1, split: 'test' })[0]!.prompt);

const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-serve-'));
const path = values.model ?? join(dir, 'bench.gguf');
if (values.model === undefined) writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: 1024, hiddenSize: hidden, layers, heads: 4, kvHeads: 2, ffSize: hidden * 4, seed: 3 });
const server = await createServer({
  models: [{ id: 'bench', path }],
  scheduler: { maxActive: streams, maxQueue: streams },
});
const url = await server.listen({ host: '127.0.0.1', port: 0 });

/** Keep-alive connections for the clients, like a real client library. */
const agent = new Agent({ keepAlive: true, maxSockets: streams });

/**
 * One streamed completion of up to `tokens` tokens; returns the tokens generated (from the usage
 * chunk). A plain node:http client that only collects the bytes, so that the client's own work
 * (it runs in the server's process) stays small beside the server's.
 */
function stream(i: number): Promise<number> {
  const body = JSON.stringify({
    model: 'deepseek-reasoner', messages: [{ role: 'user', content: prompts[i % prompts.length]! }], max_tokens: tokens, stream: true,
    stream_options: { include_usage: true }, temperature: 1, seed: i,
  });
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        const at = text.lastIndexOf('data: {');
        const usage = at < 0 ? undefined : (JSON.parse(text.slice(at + 6, text.indexOf('\n', at))) as { usage?: { completion_tokens: number } | null }).usage;
        resolve(usage?.completion_tokens ?? 0);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Measurement {
  tokens: number;
  seconds: number;
  rate: number;
  /** CPU microseconds of this process (user + system, all threads) per generated token. */
  cpuPerToken: number;
}

/** All `requests` requests with `n` of them in flight at a time. */
async function measure(n: number): Promise<Measurement> {
  let next = 0;
  let total = 0;
  const client = async (): Promise<void> => {
    while (next < requests) {
      const generated = await stream(next++);
      total += generated; // not `total += await`: that would read total before the await
    }
  };
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: n }, client));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { tokens: total, seconds, rate: total / seconds, cpuPerToken: (used.user + used.system) / Math.max(total, 1) };
}

await measure(1); // warm-up (model load, JIT)
await measure(streams);
const ones: Measurement[] = [];
const manys: Measurement[] = [];
const ratios: number[] = [];
for (let r = 0; r < repeats; r++) {
  const one = await measure(1);
  const many = await measure(streams);
  ones.push(one);
  manys.push(many);
  ratios.push(many.rate / one.rate);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const batched = (server.ctx.registry.get('bench').model as { forwardBatch?: unknown }).forwardBatch !== undefined;
const { describeBackend } = await import('../src/tensor/index.js');
const line = (label: string, ms: Measurement[]): string =>
  `${label} median ${median(ms.map((m) => m.rate)).toFixed(1)} tokens/s (${ms.map((m) => m.rate.toFixed(0)).join(', ')}), ` +
  `CPU ${median(ms.map((m) => m.cpuPerToken)).toFixed(0)} us per token`;
console.log(`model: ${values.model ?? `llama, hidden ${hidden}, ${layers} layers, byte vocabulary (random weights)`}; ${requests} requests of up to ${tokens} tokens ` +
  `(${(ones[0]!.tokens / requests).toFixed(1)} generated on average); ${describeBackend()}`);
console.log(line('1 stream: ', ones));
console.log(line(`${streams} streams:`, manys));
console.log(`ratio: median ${median(ratios).toFixed(2)}x, range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x over ${repeats} interleaved repeats (${batched ? 'batched forward (forwardBatch)' : 'no forwardBatch on this model: sequences stepped one after another each round'})`);
agent.destroy();
await server.close();
rmSync(dir, { recursive: true, force: true });
