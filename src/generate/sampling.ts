/**
 * Token sampling. One Sampler per sequence: it keeps the seeded generator and the token history
 * the penalties need. Order of operations (HF transformers / vLLM order):
 *
 *   logit bias -> repetition penalty -> frequency/presence penalties -> temperature
 *   -> top-k -> top-p (on the top-k renormalized distribution) -> min-p -> draw
 *
 * temperature 0 is greedy: argmax of the penalized logits (top-k/top-p/min-p are then moot).
 * Repetition penalty (llama.cpp / HF): for each distinct token among the last `repetitionWindow`
 * context tokens (prompt and generated), a positive logit is divided by the penalty and a negative
 * one multiplied. Frequency/presence penalties (OpenAI): logit -= count * frequency +
 * (count > 0) * presence, counts over generated tokens only.
 *
 * Per step the sampler works in buffers it allocates once (vocab-sized); top-k/top-p select
 * candidates with a bounded heap instead of sorting the whole vocabulary.
 */
import { Rng, randomSeed } from './rng.js';

export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 = off. Default 0. */
  topK?: number;
  /** Nucleus: keep the smallest top set whose probability reaches p; 1 = off. Default 1. */
  topP?: number;
  /** Keep tokens whose probability is at least minP times the top token's; 0 = off. Default 0. */
  minP?: number;
  /** Repetition penalty (> 0); 1 = off. Default 1. */
  repetitionPenalty?: number;
  /** How many recent context tokens the repetition penalty looks at; -1 = all. Default 64. */
  repetitionWindow?: number;
  /** OpenAI frequency penalty (per occurrence in the generated text). Default 0. */
  frequencyPenalty?: number;
  /** OpenAI presence penalty (once per token present in the generated text). Default 0. */
  presencePenalty?: number;
  /** Added to the logit of each listed token id (-Infinity bans a token). */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
  /** Seed of the generator; random when omitted. */
  seed?: number;
}

export interface ResolvedSamplingOptions {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly repetitionWindow: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly logitBias: ReadonlyMap<number, number>;
  readonly seed: number;
}

/** Checks the options and fills in defaults; throws an Error naming the bad option. */
export function resolveSamplingOptions(options: SamplingOptions = {}, vocabSize?: number): ResolvedSamplingOptions {
  const num = (name: keyof SamplingOptions, fallback: number, ok: (v: number) => boolean, rule: string): number => {
    const value = options[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new Error(`sampling option ${name} must be ${rule}, got ${String(value)}`);
    }
    return value;
  };
  const bias = new Map<number, number>();
  const rawBias = options.logitBias;
  if (rawBias !== undefined) {
    const entries = rawBias instanceof Map ? [...rawBias.entries()] : Object.entries(rawBias).map(([k, v]) => [Number(k), v] as const);
    for (const [id, value] of entries) {
      if (!Number.isInteger(id) || id < 0 || (vocabSize !== undefined && id >= vocabSize)) {
        throw new Error(`logitBias token id ${id} is not a token id${vocabSize !== undefined ? ` (vocabulary has ${vocabSize})` : ''}`);
      }
      if (typeof value !== 'number' || Number.isNaN(value) || value === Infinity) {
        throw new Error(`logitBias for token ${id} must be a finite number or -Infinity, got ${String(value)}`);
      }
      bias.set(id, value);
    }
  }
  return {
    temperature: num('temperature', 1, (v) => v >= 0, 'a number >= 0'),
    topK: num('topK', 0, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'),
    topP: num('topP', 1, (v) => v > 0 && v <= 1, 'in (0, 1]'),
    minP: num('minP', 0, (v) => v >= 0 && v <= 1, 'in [0, 1]'),
    repetitionPenalty: num('repetitionPenalty', 1, (v) => v > 0, 'a number > 0'),
    repetitionWindow: num('repetitionWindow', 64, (v) => Number.isInteger(v) && v >= -1, 'an integer >= -1'),
    frequencyPenalty: num('frequencyPenalty', 0, () => true, 'a finite number'),
    presencePenalty: num('presencePenalty', 0, () => true, 'a finite number'),
    logitBias: bias,
    seed: num('seed', Number.NaN, () => true, 'a finite number'),
  };
}

/** The distribution a sampling step draws from: candidate ids and their probabilities. */
export interface CandidateDistribution {
  ids: Int32Array;
  probs: Float64Array;
}

export class Sampler {
  readonly options: ResolvedSamplingOptions;
  readonly seed: number;
  private readonly rng: Rng;
  /** Generated-token counts (frequency/presence penalties). */
  private readonly generatedCounts = new Map<number, number>();
  /** Counts of tokens inside the repetition window. */
  private readonly windowCounts = new Map<number, number>();
  private readonly window: Int32Array | null;
  private windowStart = 0;
  private windowFill = 0;
  // Work buffers, sized on first use.
  private z = new Float32Array(0);
  private heap = new Int32Array(0);
  private weights = new Float64Array(0);
  /** Candidates of the last prepared step: heap[0..count) sorted best first, or the whole vocabulary. */
  private count = 0;
  private wholeVocab = false;
  private maxLogit = 0;

  constructor(options: SamplingOptions = {}, vocabSize?: number) {
    this.options = resolveSamplingOptions(options, vocabSize);
    this.seed = Number.isNaN(this.options.seed) ? randomSeed() : this.options.seed;
    this.rng = new Rng(this.seed);
    const w = this.options.repetitionWindow;
    this.window = w > 0 && this.options.repetitionPenalty !== 1 ? new Int32Array(w) : null;
  }

  /** Records prompt tokens: they count for the repetition penalty, not for frequency/presence. */
  observeContext(tokens: ArrayLike<number>): void {
    for (let i = 0; i < tokens.length; i++) this.pushWindow(tokens[i]!);
  }

  /** Records a generated (or forced) output token. */
  accept(id: number): void {
    this.pushWindow(id);
    if (this.options.frequencyPenalty !== 0 || this.options.presencePenalty !== 0) {
      this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
    }
  }

  /** Picks the next token from `logits` (does not record it: call accept). */
  sample(logits: Float32Array): number {
    if (this.prepare(logits)) return this.count; // greedy: prepare left the argmax in count
    const invT = 1 / this.options.temperature;
    const z = this.z;
    const m = this.maxLogit;
    if (this.wholeVocab) {
      let total = 0;
      for (let i = 0; i < z.length; i++) total += Math.exp((z[i]! - m) * invT);
      const target = this.rng.nextFloat() * total;
      let cum = 0;
      let last = -1;
      for (let i = 0; i < z.length; i++) {
        const w = Math.exp((z[i]! - m) * invT);
        if (w > 0) last = i;
        cum += w;
        if (cum > target && w > 0) return i;
      }
      return last;
    }
    let total = 0;
    for (let j = 0; j < this.count; j++) total += this.weights[j]!;
    const target = this.rng.nextFloat() * total;
    let cum = 0;
    let last = this.heap[0]!;
    for (let j = 0; j < this.count; j++) {
      const w = this.weights[j]!;
      if (w > 0) last = this.heap[j]!;
      cum += w;
      if (cum > target && w > 0) return this.heap[j]!;
    }
    return last;
  }

  /**
   * The distribution sample() would draw from for these logits, as ids and probabilities (for
   * tests and diagnostics; allocates). Greedy gives the argmax with probability 1.
   */
  distribution(logits: Float32Array): CandidateDistribution {
    if (this.prepare(logits)) return { ids: Int32Array.of(this.count), probs: Float64Array.of(1) };
    const invT = 1 / this.options.temperature;
    if (this.wholeVocab) {
      const probs = new Float64Array(this.z.length);
      let total = 0;
      for (let i = 0; i < probs.length; i++) total += probs[i] = Math.exp((this.z[i]! - this.maxLogit) * invT);
      for (let i = 0; i < probs.length; i++) probs[i]! /= total;
      return { ids: Int32Array.from({ length: probs.length }, (_, i) => i), probs };
    }
    const probs = new Float64Array(this.count);
    let total = 0;
    for (let j = 0; j < this.count; j++) total += probs[j] = this.weights[j]!;
    for (let j = 0; j < this.count; j++) probs[j]! /= total;
    return { ids: this.heap.slice(0, this.count), probs };
  }

  /** The penalized, biased logits of the last prepared step (before temperature); a view. */
  get processedLogits(): Float32Array {
    return this.z;
  }

  private pushWindow(id: number): void {
    if (this.options.repetitionPenalty === 1 || this.options.repetitionWindow === 0) return;
    if (this.window) {
      const cap = this.window.length;
      if (this.windowFill === cap) {
        const old = this.window[this.windowStart]!;
        const c = this.windowCounts.get(old)! - 1;
        if (c === 0) this.windowCounts.delete(old);
        else this.windowCounts.set(old, c);
        this.window[this.windowStart] = id;
        this.windowStart = (this.windowStart + 1) % cap;
      } else {
        this.window[(this.windowStart + this.windowFill) % cap] = id;
        this.windowFill++;
      }
    }
    this.windowCounts.set(id, (this.windowCounts.get(id) ?? 0) + 1);
  }

  /**
   * Applies bias and penalties into this.z and selects the candidate set. Returns true for greedy
   * (argmax id left in this.count), else leaves candidates in heap/weights or sets wholeVocab.
   */
  private prepare(logits: Float32Array): boolean {
    const V = logits.length;
    if (V === 0) throw new Error('cannot sample from empty logits');
    if (this.z.length !== V) {
      this.z = new Float32Array(V);
      this.heap = new Int32Array(V);
      this.weights = new Float64Array(V);
    }
    const z = this.z;
    z.set(logits);
    const o = this.options;
    for (const [id, b] of o.logitBias) if (id < V) z[id] = z[id]! + b;
    if (o.repetitionPenalty !== 1) {
      const p = o.repetitionPenalty;
      for (const id of this.windowCounts.keys()) {
        if (id < 0 || id >= V) continue;
        const v = z[id]!;
        z[id] = v > 0 ? v / p : v * p;
      }
    }
    if (o.frequencyPenalty !== 0 || o.presencePenalty !== 0) {
      for (const [id, c] of this.generatedCounts) {
        if (id < 0 || id >= V) continue;
        z[id] = z[id]! - c * o.frequencyPenalty - o.presencePenalty;
      }
    }
    let best = -1;
    let m = -Infinity;
    for (let i = 0; i < V; i++) {
      const v = z[i]!;
      if (v > m) {
        m = v;
        best = i;
      } else if (Number.isNaN(v)) {
        throw new Error(`logits contain NaN (token ${i})`);
      }
    }
    if (best < 0 || m === Infinity) throw new Error('logits have no finite maximum: every token is banned or the model output is invalid');
    this.maxLogit = m;
    if (o.temperature === 0) {
      this.count = best;
      return true;
    }
    const T = o.temperature;
    const kTop = o.topK > 0 ? Math.min(o.topK, V) : V;
    let kMin = V;
    if (o.minP > 0) {
      const threshold = m + T * Math.log(o.minP);
      kMin = 0;
      for (let i = 0; i < V; i++) if (z[i]! >= threshold) kMin++;
    }
    this.wholeVocab = false;
    if (o.topP >= 1) {
      const n = Math.min(kTop, kMin);
      if (n === V) {
        this.wholeVocab = true;
        return false;
      }
      this.selectTop(n);
      this.fillWeights(n);
      return false;
    }
    if (kTop < V) {
      this.selectTop(kTop);
      this.fillWeights(kTop);
      const n = this.nucleusSize(kTop, this.sumWeights(kTop)) || kTop;
      this.count = Math.min(n, kMin);
      return false;
    }
    // No top-k: grow the sorted prefix until it holds top-p of the whole mass (or reaches the
    // min-p set, which bounds the answer anyway).
    let total = 0;
    const invT = 1 / T;
    for (let i = 0; i < V; i++) total += Math.exp((z[i]! - m) * invT);
    let M = Math.min(kMin, 128);
    for (;;) {
      this.selectTop(M);
      this.fillWeights(M);
      const n = this.nucleusSize(M, total);
      if (n > 0 || M === kMin) {
        this.count = n > 0 ? n : M;
        return false;
      }
      M = Math.min(kMin, M * 2);
    }
  }

  /** Size of the smallest prefix of the sorted candidates whose mass reaches topP * mass; 0 if none of the first n does. */
  private nucleusSize(n: number, mass: number): number {
    const goal = this.options.topP * mass;
    let cum = 0;
    for (let j = 0; j < n; j++) {
      cum += this.weights[j]!;
      if (cum >= goal) return j + 1;
    }
    return 0;
  }

  private sumWeights(n: number): number {
    let s = 0;
    for (let j = 0; j < n; j++) s += this.weights[j]!;
    return s;
  }

  private fillWeights(n: number): void {
    const invT = 1 / this.options.temperature;
    for (let j = 0; j < n; j++) this.weights[j] = Math.exp((this.z[this.heap[j]!]! - this.maxLogit) * invT);
    this.count = n;
  }

  /** Puts the ids of the n best values of z into heap[0..n), best first (ties: lower id first). */
  private selectTop(n: number): void {
    selectTopInto(this.z, n, this.heap);
  }
}

/** Whether token a ranks below token b (smaller value, or equal value and larger id). */
function worse(values: ArrayLike<number>, a: number, b: number): boolean {
  const va = values[a]!;
  const vb = values[b]!;
  return va < vb || (va === vb && a > b);
}

function siftDown(values: ArrayLike<number>, heap: Int32Array, start: number, size: number): void {
  let i = start;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) return;
    let c = l;
    if (l + 1 < size && worse(values, heap[l + 1]!, heap[l]!)) c = l + 1;
    if (!worse(values, heap[c]!, heap[i]!)) return;
    const t = heap[i]!;
    heap[i] = heap[c]!;
    heap[c] = t;
    i = c;
  }
}

/**
 * Writes the indices of the n largest entries of `values` into out[0..n), sorted best first
 * (ties broken by lower index). Uses a bounded min-heap: O(V log n), no allocation.
 */
export function selectTopInto(values: ArrayLike<number>, n: number, out: Int32Array): void {
  const V = values.length;
  if (n > V || n > out.length) throw new Error(`cannot select ${n} of ${V} values into ${out.length} slots`);
  if (n <= 0) return;
  let size = 0;
  for (let i = 0; i < V; i++) {
    if (size < n) {
      // sift up
      let c = size++;
      out[c] = i;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!worse(values, out[c]!, out[p]!)) break;
        const t = out[c]!;
        out[c] = out[p]!;
        out[p] = t;
        c = p;
      }
    } else if (worse(values, out[0]!, i)) {
      out[0] = i;
      siftDown(values, out, 0, size);
    }
  }
  // Heap sort: repeatedly move the worst (root) to the end.
  for (let end = size - 1; end > 0; end--) {
    const t = out[0]!;
    out[0] = out[end]!;
    out[end] = t;
    siftDown(values, out, 0, end);
  }
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** log(sum(exp(logits))) computed stably. */
export function logSumExp(logits: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > m) m = logits[i]!;
  if (m === -Infinity || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i]! - m);
  return m + Math.log(s);
}

/**
 * Log-probabilities under the model's raw distribution (softmax of the unprocessed logits, as
 * OpenAI `logprobs` report): the chosen token's, and the `top` most likely alternatives.
 */
export function tokenLogprobs(logits: Float32Array, id: number, top = 0): { logprob: number; top: TokenLogprob[] } {
  const lse = logSumExp(logits);
  const result: TokenLogprob[] = [];
  if (top > 0) {
    const n = Math.min(top, logits.length);
    const idx = new Int32Array(n);
    selectTopInto(logits, n, idx);
    for (let j = 0; j < n; j++) result.push({ id: idx[j]!, logprob: logits[idx[j]!]! - lse });
  }
  return { logprob: logits[id]! - lse, top: result };
}
