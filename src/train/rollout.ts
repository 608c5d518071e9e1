/**
 * Rollouts for the R1 recipe stages: sampling completions from the CURRENT policy with the
 * inference engine (KV cache), and the matching per-token log-probabilities from the TrainModel
 * forward (autograd) for the losses.
 *
 * The inference model is built from a snapshot of the TrainModel's tensors (HF names): DeepSeek
 * configs in memory through deepseekFromHfTensors, dense Llama/Qwen2 configs through a temporary
 * HF directory read by loadModel (the dense loader has no in-memory entry point). Rebuild it after
 * every optimizer step (`PolicySampler.refresh`).
 *
 * Many completions are sampled together with `completeAll` (the engine's `completeMany`: batched
 * decoding, src/train/rollout-batch.ts), each from its own rng stream, so that a stage's results do
 * not depend on the batching.
 *
 * Log-probabilities recorded while sampling are those of the untempered policy (log softmax of
 * the raw logits), so that they can be compared with TrainModel's: test/train/rollout.test.ts
 * checks that the two definitions agree.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Var, constant } from '../autograd/var.js';
import { tokenLogProbs } from '../autograd/loss.js';
import { Random } from '../autograd/random.js';
import { hfConfigToObject } from '../formats/hf-config.js';
import { deepseekFromHfTensors } from '../models/deepseek-v3-hf.js';
import { memoryHfSource } from '../models/deepseek-v3-tiny.js';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { writeModelDir } from './checkpoint.js';
import type { NamedTensor, TrainModel } from './model.js';
import { DEFAULT_MAX_BATCH, completeBatched } from './rollout-batch.js';
import { CompletionDraft, completionCapacity } from './sampling.js';

export { logSoftmaxAt, sampleToken } from './sampling.js';

/** The text <-> token ids mapping the stages need (a Tokenizer, or a small codec in tests). */
export interface Codec {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** Generation stops at this token (it is part of the completion, as the training target). */
  eosId: number;
}

/**
 * A Codec over a Tokenizer: control tokens in the text (R1 chat markers, EOS) are parsed. Ids the
 * model can emit beyond the tokenizer's vocabulary (padded embedding rows) decode as U+FFFD.
 */
export function tokenizerCodec(tokenizer: Tokenizer, eosId = tokenizer.eosId): Codec {
  if (eosId === undefined) throw new Error('tokenizer: no EOS token (set eos_token in tokenizer_config.json or pass one)');
  const decode = (ids: readonly number[]): string => {
    let text = '';
    let run: number[] = [];
    for (const id of ids) {
      if (id < tokenizer.vocabSize) {
        run.push(id);
        continue;
      }
      text += tokenizer.decode(run, { skipSpecialTokens: true }) + '\uFFFD';
      run = [];
    }
    return text + tokenizer.decode(run, { skipSpecialTokens: true });
  };
  return { encode: (text) => tokenizer.encode(text, { parseSpecial: true }), decode, eosId };
}

export interface SampleOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 = off. */
  topP: number;
  maxTokens: number;
  /** Stop once the decoded completion contains this text (e.g. '</answer>' for base models). */
  stopText?: string;
}

export interface Completion {
  tokens: number[];
  /** log π(token) under the untempered policy, one per token. */
  logprobs: number[];
  text: string;
  finish: 'stop' | 'length';
}

/** What the stages sample from: the inference engine in production, a scripted fake in tests. */
export interface Policy {
  complete(prompt: readonly number[], options: SampleOptions, rng: Random): Completion;
  /**
   * One completion per prompt, prompt i sampled with rngs[i]: the same completions as calling
   * `complete` for each in turn, computed together where the policy can (batched decoding).
   */
  completeMany?(prompts: readonly (readonly number[])[], options: SampleOptions, rngs: readonly Random[]): Completion[];
}

/** `policy.completeMany` where the policy has it, else `complete` for each prompt in order. */
export function completeAll(policy: Policy, prompts: readonly (readonly number[])[], options: SampleOptions, rngs: readonly Random[]): Completion[] {
  if (rngs.length !== prompts.length) throw new Error(`completeMany: ${prompts.length} prompts but ${rngs.length} rng streams`);
  if (policy.completeMany) return policy.completeMany(prompts, options, rngs);
  return prompts.map((prompt, i) => policy.complete(prompt, options, rngs[i]!));
}

/** Snapshot of a model's tensors (copies), so that later optimizer steps cannot leak into it. */
export function snapshotTensors(model: TrainModel): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of model.tensors()) out.set(name, { shape: [...t.shape], values: Float32Array.from(t.values) });
  return out;
}

/** An inference-engine model with the TrainModel's current weights. */
export function inferenceModel(model: TrainModel): CausalLM {
  const tensors = snapshotTensors(model);
  if (model.isDeepseek) {
    return deepseekFromHfTensors(hfConfigToObject(model.config), memoryHfSource(tensors, undefined, 'policy'), { fp8: 'f32' });
  }
  const dir = mkdtempSync(join(tmpdir(), 'frugal-policy-'));
  try {
    writeModelDir(dir, model.config, tensors);
    return loadModel(dir, { tokenizer: false }).model;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The inference engine as a Policy (one KV cache per completion; `completeMany` decodes many together). */
export class EnginePolicy implements Policy {
  constructor(readonly lm: CausalLM, readonly codec: Codec, readonly maxBatch = DEFAULT_MAX_BATCH) {}

  complete(prompt: readonly number[], options: SampleOptions, rng: Random): Completion {
    const capacity = completionCapacity(prompt, options, this.lm.info.contextLength);
    const cache = this.lm.newCache(capacity);
    const draft = new CompletionDraft(prompt.length, capacity, options, rng, this.codec);
    let logits = this.lm.forward(Int32Array.from(prompt), cache);
    while (draft.accept(logits)) logits = this.lm.forward(Int32Array.of(draft.last), cache);
    return draft.result();
  }

  completeMany(prompts: readonly (readonly number[])[], options: SampleOptions, rngs: readonly Random[]): Completion[] {
    return completeBatched(this.lm, this.codec, prompts, options, rngs, this.maxBatch);
  }
}

/** A prompt and one completion of it, as token ids. */
export interface Sequence {
  prompt: readonly number[];
  completion: readonly number[];
}

/**
 * Right-padded batch of prompt+completion sequences: ids [B, T] (inputs), targets [B·T] (next
 * token, 0 on padding), and for each completion token its row index (b·T + position).
 * Causal attention and token-wise routing make the padding invisible to the real positions.
 */
export function packSequences(sequences: readonly Sequence[], pad = 0): { ids: Int32Array; targets: Int32Array; batch: number; seq: number; rows: Int32Array[] } {
  if (sequences.length === 0) throw new Error('packSequences: no sequences');
  let seq = 1;
  for (const s of sequences) {
    if (s.prompt.length === 0) throw new Error('packSequences: a sequence has an empty prompt');
    seq = Math.max(seq, s.prompt.length + s.completion.length - 1);
  }
  const batch = sequences.length;
  const ids = new Int32Array(batch * seq).fill(pad);
  const targets = new Int32Array(batch * seq).fill(pad);
  const rows: Int32Array[] = [];
  sequences.forEach((s, b) => {
    const all = [...s.prompt, ...s.completion];
    for (let t = 0; t < all.length - 1; t++) {
      ids[b * seq + t] = all[t]!;
      targets[b * seq + t] = all[t + 1]!;
    }
    const r = new Int32Array(s.completion.length);
    for (let j = 0; j < s.completion.length; j++) r[j] = b * seq + s.prompt.length - 1 + j;
    rows.push(r);
  });
  return { ids, targets, batch, seq, rows };
}

/**
 * Per-row log π(target) of a packed batch under the TrainModel: a Var [B·T] (graph kept when grad
 * is enabled), plus the logits values for entropy.
 */
export function packedLogProbs(model: TrainModel, packed: ReturnType<typeof packSequences>, temperature = 1): { logp: Var; logits: Float32Array } {
  const logits = model.logits(packed.ids, packed.batch, packed.seq);
  return { logp: tokenLogProbs(logits, packed.targets, temperature), logits: logits.value };
}

/** Values of log π(completion tokens) per sequence, from a packed forward (no gradient needed). */
export function completionLogProbs(model: TrainModel, sequences: readonly Sequence[]): number[][] {
  const packed = packSequences(sequences);
  const { logp } = packedLogProbs(model, packed);
  return packed.rows.map((r) => Array.from(r, (row) => logp.value[row]!));
}

/** Mean entropy (nats) of the policy softmax(logits / T) at the given rows of a [rows, vocab] logits array. */
export function meanEntropy(logits: Float32Array, vocab: number, rows: Iterable<number>, temperature = 1): number {
  const inverse = 1 / temperature;
  let total = 0;
  let n = 0;
  for (const r of rows) {
    const base = r * vocab;
    let max = -Infinity;
    for (let c = 0; c < vocab; c++) if (logits[base + c]! > max) max = logits[base + c]!;
    let z = 0;
    let s = 0;
    for (let c = 0; c < vocab; c++) {
      const x = (logits[base + c]! - max) * inverse;
      const e = Math.exp(x);
      z += e;
      s += e * x;
    }
    total += Math.log(z) - s / z;
    n++;
  }
  return n === 0 ? 0 : total / n;
}

/** A constant Var (helper for callers that build losses from plain arrays). */
export function constantOf(values: Float32Array): Var {
  return constant(values, [values.length]);
}

/** Seeded stream for (seed, step, index): independent of how many draws came before (resumable). */
export function streamRng(seed: number, step: number, index = 0): Random {
  return new Random(((seed * 1000003) ^ (step * 7919) ^ (index * 104729)) >>> 0);
}
