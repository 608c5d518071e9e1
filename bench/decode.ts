// Decode benchmark (npm run bench:decode): frugal against llama.cpp (node-llama-cpp 3.21.1, prebuilt
// CPU library) on the same GGUF files, with the same thread count, in the same run. Models are
// random-weight files of real shapes (bench/decode-models.ts), built once and cached. For each
// file and engine: prefill tok/s (a `prompt`-token prompt on an empty cache) and decode tok/s
// (`decode` greedy single-token steps after it), best of `reps`; decode as % of the bandwidth
// bound (weight bytes read per token / read bandwidth probed in this run); peak RSS of each
// engine's process.
//
// Options: --quick (short prompt and decode, 2 reps), --model-dir DIR, --build-only (just build the files), --threads N, --reps N,
// --prompt N, --decode N, --only NAME[,NAME] (e.g. qwen2-1.5b-q8_0), --engines frugal,llama.cpp
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { DType } from '../src/tensor/dtype.js';
import { loadNativeAddon } from '../src/tensor/native.js';
import { SeededRandom, tinyTokenizerMetadata } from '../src/models/tiny.js';
import { type BenchShape, benchModel, bytesPerToken, DEFAULT_MODEL_DIR } from './decode-models.js';
import { callWorker } from '../test/tools/child-worker.js';
import type { DecodeBenchRequest, DecodeBenchResult } from './decode-worker.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const value = process.argv[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

function intOption(name: string, fallback: number): number {
  const v = option(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

const quick = process.argv.includes('--quick');
const modelDir = option('--model-dir') ?? DEFAULT_MODEL_DIR;
const threads = intOption('--threads', 2);
const reps = intOption('--reps', quick ? 2 : 3);
const promptLength = intOption('--prompt', quick ? 64 : 512);
const decodeLength = intOption('--decode', quick ? 16 : 128);
const only = option('--only')?.split(',');
const engines = (option('--engines') ?? 'frugal,llama.cpp').split(',') as DecodeBenchRequest['engine'][];
for (const e of engines) if (e !== 'frugal' && e !== 'llama.cpp') throw new Error(`--engines: unknown engine '${e}'`);

const CASES: { shape: BenchShape; dtype: DType }[] = [
  { shape: 'qwen2-1.5b', dtype: 'q8_0' },
  { shape: 'qwen2-1.5b', dtype: 'q4_k' },
  { shape: 'qwen2-1.5b', dtype: 'q4_0' },
  { shape: 'deepseek-moe-4l', dtype: 'q8_0' },
  { shape: 'deepseek-moe-4l', dtype: 'q4_k' },
];
const cases = CASES.filter((c) => !only || only.includes(`${c.shape}-${c.dtype}`));
if (cases.length === 0) throw new Error(`--only matched no case; cases: ${CASES.map((c) => `${c.shape}-${c.dtype}`).join(', ')}`);

const workerPath = fileURLToPath(new URL('./decode-worker.js', import.meta.url));

/** Runs one engine on one file in a child process (killed after timeoutMs). */
function runWorker(request: DecodeBenchRequest, timeoutMs: number): Promise<DecodeBenchResult> {
  return callWorker<DecodeBenchResult>(workerPath, request, {
    what: `${request.engine} on ${request.modelPath}`, timeoutMs, env: { ...process.env, FRUGAL_THREADS: String(request.threads) },
  });
}

/** Read bandwidth in GB/s with `threads` threads: best of several short probes over 1 GiB. */
function probeBandwidth(): number {
  const addon = loadNativeAddon();
  let best = 0;
  for (let i = 0; i < 5; i++) {
    const r = addon.probeRead(1 << 30, threads, 2);
    best = Math.max(best, r.bytes / r.seconds / 1e9);
  }
  return best;
}

const log = (line: string) => console.log(line);
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
log(`frugal decode benchmark: ${threads} threads, prompt ${promptLength}, decode ${decodeLength}, best of ${reps} (the engines taking turns, one rep each); load average ${load()}`);

const paths = cases.map((c) => benchModel(c.shape, c.dtype, modelDir, log));
if (process.argv.includes('--build-only')) {
  for (const p of paths) log(`  ${p}: ${(bytesPerToken(p) / 1e6).toFixed(0)} MB of weights read per token`);
  process.exit(0);
}
const bandwidth = probeBandwidth();
log(`read bandwidth (${threads} threads, probeRead): ${bandwidth.toFixed(1)} GB/s`);

type Row = { name: string; engine: string; prefill: number; decode: number; bound: number; rss: number; note: string };
const rows: Row[] = [];
for (let c = 0; c < cases.length; c++) {
  const { shape, dtype } = cases[c]!;
  const path = paths[c]!;
  const vocab = tinyTokenizerMetadata(shape === 'qwen2-1.5b' ? 'qwen2.5' : 'bytes').vocabSize;
  const rng = new SeededRandom(99);
  const prompt = Array.from({ length: promptLength }, () => Math.floor(rng.next() * Math.min(vocab, 150000)));
  const perToken = bytesPerToken(path);
  const bound = (bandwidth * 1e9) / perToken;
  // One rep per worker, the engines taking turns (A B A B ...): on a shared machine whose speed drifts
  // over minutes, each engine's best then comes from the same stretch of time as its peer's.
  const runs = new Map<string, { prefill: number[]; decode: number[]; rss: number; first?: DecodeBenchResult; seconds: number }>();
  for (let rep = 0; rep < reps; rep++) {
    for (const engine of engines) {
      const started = Date.now();
      const result = await runWorker({ engine, modelPath: path, prompt, decode: decodeLength, reps: 1, threads }, 20 * 60_000);
      const run = runs.get(engine) ?? { prefill: [], decode: [], rss: 0, seconds: 0 };
      run.prefill.push(...result.prefill);
      run.decode.push(...result.decode);
      run.rss = Math.max(run.rss, result.maxRss);
      run.first ??= result;
      run.seconds += (Date.now() - started) / 1000;
      runs.set(engine, run);
    }
  }
  for (const engine of engines) {
    const run = runs.get(engine)!;
    const result = run.first!;
    const prefill = promptLength / Math.min(...run.prefill);
    const decode = decodeLength / Math.min(...run.decode);
    rows.push({ name: `${shape}-${dtype}`, engine, prefill, decode, bound, rss: run.rss, note: result.note });
    log(`  ${shape}-${dtype} ${engine}: prefill ${prefill.toFixed(1)} tok/s, decode ${decode.toFixed(2)} tok/s (${(perToken / 1e6).toFixed(0)} MB/token), `
      + `load ${result.loadSeconds.toFixed(1)} s, ${run.seconds.toFixed(0)} s total; first tokens ${result.tokens.slice(0, 6).join(' ')}; ${result.note}`);
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
const rpad = (s: string, n: number) => s.padStart(n);
log('');
log(`| model | engine | prefill tok/s | decode tok/s | decode % of bound | peak RSS MiB | prefill ratio | decode ratio |`);
log(`|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  const peer = rows.find((p) => p.name === r.name && p.engine === 'llama.cpp');
  const ratio = (a: number, b: number | undefined) => (r.engine === 'frugal' && b ? `${(a / b).toFixed(2)}x` : '');
  log(`| ${pad(r.name, 20)} | ${pad(r.engine, 9)} | ${rpad(r.prefill.toFixed(1), 7)} | ${rpad(r.decode.toFixed(2), 6)} | ${rpad(((100 * r.decode) / r.bound).toFixed(0), 3)}% `
    + `(bound ${r.bound.toFixed(1)}) | ${rpad((r.rss / 2 ** 20).toFixed(0), 5)} | ${ratio(r.prefill, peer?.prefill)} | ${ratio(r.decode, peer?.decode)} |`);
}
log(`targets: decode >= 1.0x llama.cpp, prefill >= 0.8x. load average at the end: ${load()}`);
