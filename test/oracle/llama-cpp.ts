/**
 * llama.cpp as an oracle (../shared/spec/llama-cpp-oracle.md): next-token log-probabilities and
 * greedy continuations for a GGUF file, computed by node-llama-cpp in a child process
 * (./llama-cpp-worker.ts) that is killed after a timeout. Every failure throws: an oracle test
 * must fail loudly, never skip, when llama.cpp cannot run.
 *
 * llama.cpp exposes probabilities, not logits: compare log-softmax with log-softmax
 * (see logSoftmax and compareLogProbs below). Probabilities below ~e^-87 of the top underflow to 0.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../../src/tensor/backend.js';
import { f16ToF32, f32ToF16 } from '../../src/tensor/quant/index.js';
import { callWorker } from '../tools/child-worker.js';

export type LlamaOracleJob =
  /**
   * Log-probabilities of the top `top` tokens (default 64) after the token at each of `positions`
   * (ascending), or after every token (allPositions), else after the last token.
   */
  | { kind: 'logprobs'; tokens: number[]; top?: number; allPositions?: boolean; positions?: number[] }
  /** `count` tokens chosen greedily (temperature 0) after `tokens`. */
  | { kind: 'greedy'; tokens: number[]; count: number };

export interface LlamaOracleRequest {
  modelPath: string;
  jobs: LlamaOracleJob[];
  threads?: number;
}

export type LlamaOracleResult =
  /** positions[k] = [token, log p] for the k-th requested position, most likely first; argmax[k] = the greedy token. */
  | { kind: 'logprobs'; positions: [number, number][][]; argmax: number[] }
  | { kind: 'greedy'; tokens: number[] };

const workerPath = fileURLToPath(new URL('./llama-cpp-worker.js', import.meta.url));

/** Runs the jobs in one llama.cpp process. Throws on failure or after timeoutMs. */
export async function runLlamaCpp(request: LlamaOracleRequest, timeoutMs = 120_000): Promise<LlamaOracleResult[]> {
  return (await runLlamaCppModels([request], timeoutMs))[0]!;
}

/**
 * Runs several models' jobs in one llama.cpp process (the library loads once), in order; the
 * results are per request. Throws on any failure or after timeoutMs.
 */
export function runLlamaCppModels(requests: LlamaOracleRequest[], timeoutMs = 300_000): Promise<LlamaOracleResult[][]> {
  const what = requests.map((r) => r.modelPath).join(', ');
  const missing = requests.find((r) => !existsSync(r.modelPath));
  if (missing) return Promise.reject(new Error(`llama.cpp oracle: model file not found: ${missing.modelPath}`));
  return callWorker<LlamaOracleResult[][]>(workerPath, requests, { what: `llama.cpp on ${what}`, timeoutMs });
}

/** llama.cpp's log-probabilities of the `top` most likely next tokens after `tokens`, most likely first. */
export async function llamaCppNextTokenLogProbs(modelPath: string, tokens: number[], top = 64): Promise<[number, number][]> {
  const [result] = await runLlamaCpp({ modelPath, jobs: [{ kind: 'logprobs', tokens, top }] });
  if (result?.kind !== 'logprobs') throw new Error('llama.cpp oracle: unexpected reply');
  return result.positions[0]!;
}

/** llama.cpp's greedy (temperature 0) continuation of `tokens`, `count` tokens long. */
export async function llamaCppGreedy(modelPath: string, tokens: number[], count: number): Promise<number[]> {
  const [result] = await runLlamaCpp({ modelPath, jobs: [{ kind: 'greedy', tokens, count }] });
  if (result?.kind !== 'greedy') throw new Error('llama.cpp oracle: unexpected reply');
  return result.tokens;
}

/** log-softmax of one row of logits, in double precision. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/**
 * Largest |ours - theirs| over llama.cpp's listed tokens (their top tokens, p > 0), with our
 * log-softmax of `logits`; also whether the two argmaxes agree.
 */
export function compareLogProbs(logits: ArrayLike<number>, theirs: [number, number][]): { maxError: number; worstToken: number; sameTop: boolean } {
  const ours = logSoftmax(logits);
  let maxError = 0;
  let worstToken = -1;
  for (const [token, lp] of theirs) {
    if (!Number.isFinite(lp)) continue;
    const e = Math.abs(ours[token]! - lp);
    if (e > maxError) { maxError = e; worstToken = token; }
  }
  let best = 0;
  for (let i = 1; i < ours.length; i++) if (ours[i]! > ours[best]!) best = i;
  return { maxError, worstToken, sameTop: theirs.length > 0 && best === theirs[0]![0] };
}

/**
 * A backend that rounds the activations entering every Q8_0 matmul to Q8_0 exactly as ggml's CPU
 * quantize_row_q8_0 does (d = amax/127 stored as f16, q = round-to-even(x · 127/amax)): llama.cpp
 * multiplies Q8_0 weights with Q8_0-quantized activations.
 */
export function ggmlQ8ActivationBackend(base: Backend): Backend {
  const roundActivations = (x: Float32Array): Float32Array => {
    const out = new Float32Array(x.length);
    for (let b = 0; b < x.length; b += 32) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
      const d = f16ToF32(f32ToF16(Math.fround(amax / 127)));
      const id = amax ? Math.fround(127 / amax) : 0;
      for (let j = 0; j < 32; j++) {
        const v = Math.fround(x[b + j]! * id);
        const q = Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
        out[b + j] = q * d;
      }
    }
    return out;
  };
  return {
    ...base,
    matmul(out, x, m, w) {
      base.matmul(out, w.dtype === 'q8_0' ? roundActivations(x.subarray(0, m * w.cols)) : x, m, w);
    },
  };
}
