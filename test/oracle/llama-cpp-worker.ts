/**
 * Child-process worker that runs llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU library) on a GGUF
 * file, answering one request (../tools/child-worker.ts). Run only through ./llama-cpp.ts, which
 * kills it after a timeout (a malformed file can make llama.cpp hang, ../shared/spec/llama-cpp-oracle.md).
 */
import { serveOneRequest } from '../tools/child-worker.js';
import type { LlamaOracleRequest, LlamaOracleResult } from './llama-cpp.js';


function topLogProbs(probabilities: Map<number, number>, top: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [token, p] of probabilities) {
    if (out.length >= top) break;
    out.push([token, Math.log(p)]);
  }
  return out;
}

type Llama = Awaited<ReturnType<typeof import('node-llama-cpp').getLlama>>;

async function runModel(llama: Llama, request: LlamaOracleRequest): Promise<LlamaOracleResult[]> {
  const model = await llama.loadModel({ modelPath: request.modelPath });
  const longest = Math.max(16, ...request.jobs.map((j) => j.tokens.length + (j.kind === 'greedy' ? j.count : 0)));
  const context = await model.createContext({ contextSize: Math.max(longest + 8, 64), batchSize: Math.max(longest + 8, 64), threads: request.threads ?? 1, sequences: 1,
    // An f32 KV cache and no flash attention: llama.cpp's defaults (f16 cache) would round keys and values.
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false });
  const sequence = context.getSequence();
  const results: LlamaOracleResult[] = [];
  const nextOptions = (probabilities: boolean) => ({ generateNext: { token: true, probabilities, options: { temperature: 0 } } });
  for (const job of request.jobs) {
    await sequence.clearHistory();
    if (job.kind === 'logprobs') {
      const wanted = new Set(job.positions ?? (job.allPositions ? job.tokens.map((_, i) => i) : [job.tokens.length - 1]));
      const input = job.tokens.map((t, i) => (wanted.has(i) ? ([t, nextOptions(true)] as const) : t));
      const output = await sequence.controlledEvaluate(input as Parameters<typeof sequence.controlledEvaluate>[0]);
      const positions: [number, number][][] = [];
      const argmax: number[] = [];
      for (let i = 0; i < job.tokens.length; i++) {
        if (!wanted.has(i)) continue;
        const next = output[i]?.next;
        if (!next?.probabilities) throw new Error(`no probabilities for position ${i}`);
        positions.push(topLogProbs(next.probabilities, job.top ?? 64));
        argmax.push(next.token ?? -1);
      }
      results.push({ kind: 'logprobs', positions, argmax });
    } else {
      const generated: number[] = [];
      type Input = Parameters<typeof sequence.controlledEvaluate>[0];
      let input = job.tokens.map((t, i) => (i === job.tokens.length - 1 ? [t, nextOptions(false)] : t)) as Input;
      while (generated.length < job.count) {
        const output = await sequence.controlledEvaluate(input);
        const token = output[input.length - 1]?.next.token;
        if (token === undefined || token === null) throw new Error(`no token generated after ${generated.length} steps`);
        generated.push(token);
        input = [[token, nextOptions(false)]] as Input;
      }
      results.push({ kind: 'greedy', tokens: generated });
    }
  }
  await context.dispose();
  await model.dispose();
  return results;
}

/** Runs each model's jobs in turn, loading the llama.cpp library once. */
async function run(requests: LlamaOracleRequest[]): Promise<LlamaOracleResult[][]> {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_level, message) => process.stderr.write(`${message}\n`) });
  const results: LlamaOracleResult[][] = [];
  for (const request of requests) results.push(await runModel(llama, request));
  await llama.dispose();
  return results;
}

await serveOneRequest<LlamaOracleRequest[], LlamaOracleResult[][]>(run);
