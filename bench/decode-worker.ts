/**
 * Child process of the decode benchmark (bench/decode.ts): loads one GGUF file in one engine
 * (frugal's loadModel, or llama.cpp through node-llama-cpp 3.21.1 with its prebuilt CPU library),
 * then times, `reps` times each, the prefill of `prompt` tokens on an empty cache and `decode`
 * greedy single-token steps after it. An untimed warm-up first (the first WARMUP_TOKENS prompt
 * tokens and 2 decode steps) faults the mapped weights in and warms the JIT, so that a worker of
 * one rep measures what a rep of a longer run would. Each engine runs in its own process so that its peak
 * resident memory (maxRSS, reported back) is its own. Answers one request (test/tools/child-worker.ts).
 */
import { serveOneRequest } from '../test/tools/child-worker.js';

export interface DecodeBenchRequest {
  engine: 'frugal' | 'llama.cpp';
  modelPath: string;
  prompt: number[];
  decode: number;
  reps: number;
  threads: number;
}

export interface DecodeBenchResult {
  /** Seconds per prefill run (one per rep). */
  prefill: number[];
  /** Seconds per decode run of `decode` tokens (one per rep). */
  decode: number[];
  loadSeconds: number;
  /** Peak resident set of the worker process, bytes. */
  maxRss: number;
  /** The greedy tokens of the first rep (a sanity check that both engines really decode). */
  tokens: number[];
  /** Extra facts about the engine (backend, SIMD level). */
  note: string;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

/** Prompt tokens of the untimed warm-up. */
const WARMUP_TOKENS = 16;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

async function runFrugal(request: DecodeBenchRequest): Promise<DecodeBenchResult> {
  process.env.FRUGAL_THREADS = String(request.threads);
  const { loadModel } = await import('../src/models/load.js');
  const { describeBackend, getBackend } = await import('../src/tensor/index.js');
  const t0 = now();
  const { model } = loadModel(request.modelPath, { tokenizer: false });
  const loadSeconds = now() - t0;
  const prefill: number[] = [];
  const decode: number[] = [];
  let tokens: number[] = [];
  const capacity = request.prompt.length + request.decode + 1;
  const warm = model.newCache(capacity);
  let warmLogits = model.forward(Int32Array.from(request.prompt.slice(0, WARMUP_TOKENS)), warm);
  for (let i = 0; i < 2; i++) warmLogits = model.forward(Int32Array.of(argmax(warmLogits)), warm);
  for (let r = 0; r < request.reps; r++) {
    const cache = model.newCache(capacity);
    const start = now();
    let logits = model.forward(Int32Array.from(request.prompt), cache);
    prefill.push(now() - start);
    const generated: number[] = [];
    const step = new Int32Array(1);
    const decodeStart = now();
    for (let i = 0; i < request.decode; i++) {
      step[0] = argmax(logits);
      generated.push(step[0]);
      logits = model.forward(step, cache);
    }
    decode.push(now() - decodeStart);
    if (r === 0) tokens = generated;
  }
  return { prefill, decode, loadSeconds, maxRss: process.resourceUsage().maxRSS * 1024, tokens, note: describeBackend(getBackend()) };
}

async function runLlamaCpp(request: DecodeBenchRequest): Promise<DecodeBenchResult> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_level, message) => process.stderr.write(`${message}\n`) });
  const t0 = now();
  const model = await llama.loadModel({ modelPath: request.modelPath });
  const loadSeconds = now() - t0;
  const size = request.prompt.length + request.decode + 8;
  const context = await model.createContext({ contextSize: size, batchSize: request.prompt.length, threads: request.threads, sequences: 1 });
  const sequence = context.getSequence();
  type Input = Parameters<typeof sequence.controlledEvaluate>[0];
  const next = { generateNext: { token: true, options: { temperature: 0 } } };
  const prefill: number[] = [];
  const decode: number[] = [];
  let tokens: number[] = [];
  const warmPrompt = request.prompt.slice(0, WARMUP_TOKENS).map((t, i, all) => (i === all.length - 1 ? [t, next] : t)) as Input;
  let warmToken = (await sequence.controlledEvaluate(warmPrompt))[WARMUP_TOKENS - 1]?.next?.token;
  for (let i = 0; i < 2 && warmToken !== undefined && warmToken !== null; i++) warmToken = (await sequence.controlledEvaluate([[warmToken, next]] as Input))[0]?.next?.token;
  for (let r = 0; r < request.reps; r++) {
    await sequence.clearHistory();
    const prompt = request.prompt.map((t, i) => (i === request.prompt.length - 1 ? [t, next] : t)) as Input;
    const start = now();
    const out = await sequence.controlledEvaluate(prompt);
    prefill.push(now() - start);
    let token = out[request.prompt.length - 1]?.next?.token;
    const generated: number[] = [];
    const decodeStart = now();
    for (let i = 0; i < request.decode; i++) {
      if (token === undefined || token === null) throw new Error(`llama.cpp produced no token at step ${i}`);
      generated.push(token);
      const o = await sequence.controlledEvaluate([[token, next]] as Input);
      token = o[0]?.next?.token;
    }
    decode.push(now() - decodeStart);
    if (r === 0) tokens = generated;
  }
  await context.dispose();
  await model.dispose();
  const note = `llama.cpp (node-llama-cpp 3.21.1, ${llama.buildType} build, gpu ${String(llama.gpu)})`;
  await llama.dispose();
  return { prefill, decode, loadSeconds, maxRss: process.resourceUsage().maxRSS * 1024, tokens, note };
}

if (process.argv[1]?.endsWith('decode-worker.js')) {
  await serveOneRequest<DecodeBenchRequest, DecodeBenchResult>((request) => (request.engine === 'frugal' ? runFrugal(request) : runLlamaCpp(request)));
}
