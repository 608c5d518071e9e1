/**
 * `npm run bench:serve`: aggregate decode throughput of the server with 1 stream vs 8 concurrent
 * streams (continuous batching: the 8 streams decode together), on a tiny random-weight model or
 * on a given GGUF (`--model models/frugal-r1-tiny.gguf`: its answers end at EOS, so requests have
 * different lengths).
 *
 * Both sides serve the same work: `streams x rounds` streamed requests (64 by default: with 16, an
 * 8-stream measurement lasted a few tenths of a second, much of it still JIT warm-up; with 32 the
 * steady window below was a fraction of a second; request i: its own prompt
 * and seed i; the prompts are test problems of the shipped model's task families, which it answers
 * with a worked thought, as its users would ask). "1 stream" sends them one after another; "8 streams" keeps 8 requests in flight
 * (each client sends its next request as soon as its last one ends). Each measurement is repeated
 * (1 and 8 streams interleaved) and the median ratio is printed with the range, plus the CPU time
 * the server process spent per token.
 *
 * Two rates per measurement: "all" counts every token from the first request sent to the last
 * answer; "steady" counts only the window in which every client is busy, from the moment the last
 * client gets its first answer (the 8 prompts that arrive together have been read) to the moment
 * the first client runs out of requests (after it, fewer than 8 streams remain: the drain, whose
 * length depends on how long the last answers happen to be). A request's tokens count in the window
 * in proportion to the part of its time inside it. With 1 stream the two nearly agree; the steady
 * rate is what "8 concurrent streams" measures, the other one is printed beside it. The clients run in a child process (this file with
 * `--client`), as real clients run elsewhere: in the server's process they took the main thread
 * from the server for every chunk they read. Loopback only, some seconds.
 *
 *   node dist/bench/serve.js [--model FILE] [--hidden 256] [--layers 4] [--tokens 128] [--streams 8] [--rounds 8] [--repeats 5]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
    rounds: { type: 'string', default: '8' },
    repeats: { type: 'string', default: '5' },
    model: { type: 'string' },
    client: { type: 'string' },
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

interface Measurement {
  tokens: number;
  seconds: number;
  rate: number;
  /** Tokens per second while every client was busy (see the top of this file). */
  steadyRate: number;
  /** CPU microseconds of the server process (user + system, all threads) per generated token. */
  cpuPerToken: number;
}

/** The client side (child process): runs `measure` requests on the server at `url`, as asked by the parent. */
async function runClient(url: string): Promise<void> {
  /** Keep-alive connections, like a real client library. */
  const agent = new Agent({ keepAlive: true, maxSockets: streams });
  /** One streamed completion of up to `tokens` tokens; returns the tokens generated (from the usage chunk). */
  const stream = (i: number): Promise<number> => {
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
  };
  process.on('message', (n: number) => {
    void (async () => {
      let next = 0;
      /** Per client, its requests: when sent, when answered, tokens generated. */
      const done: { start: number; end: number; tokens: number }[][] = Array.from({ length: n }, () => []);
      const client = async (c: number): Promise<void> => {
        while (next < requests) {
          const start = performance.now();
          const generated = await stream(next++);
          done[c]!.push({ start, end: performance.now(), tokens: generated });
        }
      };
      const start = performance.now();
      await Promise.all(Array.from({ length: n }, (_, c) => client(c)));
      const seconds = (performance.now() - start) / 1000;
      const all = done.flat();
      const tokens = all.reduce((sum, r) => sum + r.tokens, 0);
      const busy = done.filter((list) => list.length > 0);
      const from = Math.max(...busy.map((list) => list[0]!.end));
      const to = Math.min(...busy.map((list) => list[list.length - 1]!.end));
      let steadyTokens = 0;
      for (const r of all) steadyTokens += (r.tokens * Math.max(0, Math.min(r.end, to) - Math.max(r.start, from))) / Math.max(r.end - r.start, 1e-9);
      const steady = to > from ? { steadyTokens, steadySeconds: (to - from) / 1000 } : { steadyTokens: tokens, steadySeconds: seconds };
      process.send!({ tokens, seconds, ...steady });
    })();
  });
  process.on('disconnect', () => agent.destroy());
}

if (values.client !== undefined) {
  await runClient(values.client);
} else {
  await runServer();
}

async function runServer(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-serve-'));
  const path = values.model ?? join(dir, 'bench.gguf');
  if (values.model === undefined) writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: 1024, hiddenSize: hidden, layers, heads: 4, kvHeads: 2, ffSize: hidden * 4, seed: 3 });
  const server = await createServer({
    models: [{ id: 'bench', path }],
    scheduler: { maxActive: streams, maxQueue: streams },
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const client: ChildProcess = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--client', url]);

  /** All `requests` requests with `n` of them in flight at a time (sent by the client process). */
  function measure(n: number): Promise<Measurement> {
    const cpu = process.cpuUsage();
    return new Promise((resolve) => {
      client.once('message', (m: { tokens: number; seconds: number; steadyTokens: number; steadySeconds: number }) => {
        const used = process.cpuUsage(cpu);
        resolve({
          tokens: m.tokens, seconds: m.seconds, rate: m.tokens / m.seconds, steadyRate: m.steadyTokens / m.steadySeconds,
          cpuPerToken: (used.user + used.system) / Math.max(m.tokens, 1),
        });
      });
      client.send(n);
    });
  }

  await measure(1); // warm-up (model load, JIT)
  await measure(streams);
  const ones: Measurement[] = [];
  const manys: Measurement[] = [];
  const ratios: number[] = [];
  const steadyRatios: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const one = await measure(1);
    const many = await measure(streams);
    ones.push(one);
    manys.push(many);
    ratios.push(many.rate / one.rate);
    steadyRatios.push(many.steadyRate / one.steadyRate);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const batched = (server.ctx.registry.get('bench').model as { forwardBatch?: unknown }).forwardBatch !== undefined;
  const { describeBackend } = await import('../src/tensor/index.js');
  const line = (label: string, ms: Measurement[]): string =>
    `${label} steady median ${median(ms.map((m) => m.steadyRate)).toFixed(1)} tokens/s (${ms.map((m) => m.steadyRate.toFixed(0)).join(', ')}); ` +
    `all ${median(ms.map((m) => m.rate)).toFixed(1)} (${ms.map((m) => m.rate.toFixed(0)).join(', ')}); ` +
    `CPU ${median(ms.map((m) => m.cpuPerToken)).toFixed(0)} us per token`;
  const range = (xs: number[]): string => `${median(xs).toFixed(2)}x (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}x)`;
  console.log(`model: ${values.model ?? `llama, hidden ${hidden}, ${layers} layers, byte vocabulary (random weights)`}; ${requests} requests of up to ${tokens} tokens ` +
    `(${(ones[0]!.tokens / requests).toFixed(1)} generated on average); ${describeBackend()}`);
  console.log(line('1 stream: ', ones));
  console.log(line(`${streams} streams:`, manys));
  console.log(`ratio (median, range over ${repeats} interleaved repeats): steady ${range(steadyRatios)}; all, with the drain: ${range(ratios)} ` +
    `(${batched ? 'batched forward (forwardBatch)' : 'no forwardBatch on this model: sequences stepped one after another each round'})`);
  client.disconnect();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
