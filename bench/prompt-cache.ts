/**
 * `npm run bench:cache`: time to first token of the NEXT turn of a long conversation, with the
 * server's prefix KV cache (the earlier turns are reused: prompt_cache_hit_tokens) against the same
 * server with no cache kept between requests (cacheSlots 0: the whole prompt is prefilled again).
 * Random-weight llama with a byte vocabulary (one token per byte), so the conversation length in
 * tokens is exact. Loopback only, some seconds.
 *
 *   node dist/bench/prompt-cache.js [--hidden 256] [--layers 4] [--history 3000] [--repeats 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeTinyDenseGguf } from '../src/models/tiny.js';
import { createServer } from '../src/server/app.js';
import { describeBackend } from '../src/tensor/index.js';

const { values } = parseArgs({
  options: {
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '4' },
    history: { type: 'string', default: '3000' },
    repeats: { type: 'string', default: '3' },
  },
});
const hidden = Number(values.hidden);
const layers = Number(values.layers);
const historyBytes = Number(values.history);
const repeats = Number(values.repeats);

const dir = mkdtempSync(join(tmpdir(), 'frugal-bench-cache-'));
const path = join(dir, 'bench.gguf');
writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', contextLength: historyBytes + 1024, hiddenSize: hidden, layers, heads: 4, kvHeads: 2, ffSize: hidden * 4, seed: 5 });

type Message = { role: 'user' | 'assistant'; content: string };

/** A conversation of about `bytes` bytes over several turns (deterministic text). */
function conversation(bytes: number, seed: number): Message[] {
  const messages: Message[] = [];
  let size = 0;
  for (let turn = 0; size < bytes; turn++) {
    const content = `turn ${turn} of conversation ${seed}: ` + 'the quick brown fox jumps over the lazy dog. '.repeat(6);
    messages.push({ role: turn % 2 === 0 ? 'user' : 'assistant', content });
    size += content.length + 8;
  }
  if (messages[messages.length - 1]!.role === 'assistant') messages.push({ role: 'user', content: 'and then?' });
  return messages;
}

interface Turn { ttftMs: number; hit: number; promptTokens: number }

async function ask(url: string, messages: Message[]): Promise<Turn> {
  const start = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'deepseek-chat', messages, max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ttftMs = -1;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    // the first chunk that carries generated text (the role chunk comes before any token)
    if (ttftMs < 0 && /"(content|reasoning_content)":"[^"]/.test(text)) ttftMs = performance.now() - start;
  }
  const usage = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as { usage: { prompt_tokens: number; prompt_cache_hit_tokens?: number } | null }).find((c) => c.usage)?.usage;
  if (!usage) throw new Error(`no usage in the stream: ${text.slice(0, 300)}`);
  return { ttftMs: ttftMs < 0 ? performance.now() - start : ttftMs, hit: usage.prompt_cache_hit_tokens ?? 0, promptTokens: usage.prompt_tokens };
}

async function secondTurns(cacheSlots: number): Promise<Turn[]> {
  const server = await createServer({
    models: [{ id: 'bench', path }],
    registry: { cacheSlots },
  });
  const url = await server.listen({ host: '127.0.0.1', port: 0 });
  const turns: Turn[] = [];
  try {
    await ask(url, conversation(200, 999)); // warm-up (load, JIT)
    for (let r = 0; r < repeats; r++) {
      const history = conversation(historyBytes, r);
      await ask(url, history); // the first turn fills the cache (when there is one)
      turns.push(await ask(url, [...history, { role: 'assistant', content: 'I see.' }, { role: 'user', content: 'Say more.' }]));
    }
  } finally {
    await server.close();
  }
  return turns;
}

const cached = await secondTurns(4);
const uncached = await secondTurns(0);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`model: llama hidden ${hidden}, ${layers} layers, byte vocabulary (random weights); ${describeBackend()}`);
console.log(`second turn of a ${cached[0]!.promptTokens}-token conversation, ${repeats} conversations:`);
console.log(`  prefix cache on:  TTFT median ${median(cached.map((t) => t.ttftMs)).toFixed(1)} ms, prompt_cache_hit_tokens ${cached.map((t) => t.hit).join(', ')}`);
console.log(`  prefix cache off: TTFT median ${median(uncached.map((t) => t.ttftMs)).toFixed(1)} ms, prompt_cache_hit_tokens ${uncached.map((t) => t.hit).join(', ')}`);
console.log(`  speedup of the time to first token: ${(median(uncached.map((t) => t.ttftMs)) / median(cached.map((t) => t.ttftMs))).toFixed(1)}x`);
rmSync(dir, { recursive: true, force: true });
