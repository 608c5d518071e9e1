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
import { EXP_PREFIX_BLOCK } from '../tensor/backend.js';
import { getBackend } from '../tensor/index.js';
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

/** Buckets of the nucleus search (see Sampler.nucleus). */
export const BUCKETS = 1024;

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
  // Work buffers, sized on first use (vocabulary-sized) and reused every step.
  private z = new Float32Array(0);
  /** exp((z - max) / T) of every token (whole-vocabulary steps). */
  private full = new Float64Array(0);
  /** Candidate ids and their weights: ids[0..count), weights[0..count). */
  private ids = new Int32Array(0);
  private weights = new Float64Array(0);
  private readonly bucketMass = new Float64Array(BUCKETS + 1);
  private bucket = new Uint16Array(0);
  /** The crossing bucket's ids (nucleus), before they join ids. */
  private crossingIds = new Int32Array(0);
  private count = 0;
  /** The last step samples over `full` (no filter) rather than the candidate list. */
  private wholeVocab = false;
  /** Σ full of a whole-vocabulary step (in index order), and its running sums at each block's end (Backend.expShifted's prefix). */
  private wholeTotal = 0;
  private prefix = new Float64Array(0);
  /** The argmax, when the last step was greedy (temperature 0), else -1. */
  private greedyId = -1;
  private maxLogit = 0;
  private vocabLimit = Infinity;

  constructor(options: SamplingOptions = {}, vocabSize?: number) {
    this.options = resolveSamplingOptions(options, vocabSize);
    this.seed = Number.isNaN(this.options.seed) ? randomSeed() : this.options.seed;
    this.rng = new Rng(this.seed);
    const w = this.options.repetitionWindow;
    this.window = w > 0 && this.options.repetitionPenalty !== 1 ? new Int32Array(w) : null;
  }

  /** Ids at or above `n` are never sampled (the model's padding rows beyond the tokenizer's vocabulary). */
  limitVocabulary(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new Error(`vocabulary limit must be an integer >= 1, got ${n}`);
    this.vocabLimit = n;
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
    this.prepare(logits);
    if (this.greedyId >= 0) return this.greedyId;
    const w = this.wholeVocab ? this.full : this.weights;
    const n = this.wholeVocab ? this.full.length : this.count;
    let total = 0;
    if (this.wholeVocab) total = this.wholeTotal;
    else for (let j = 0; j < n; j++) total += w[j]!;
    const target = this.rng.nextFloat() * total;
    let cum = 0;
    let last = -1;
    let from = 0;
    if (this.wholeVocab) {
      // The running sum is the same sequence of additions (adding a zero weight changes nothing),
      // so start at the block where it first exceeds the target, from the sum before that block.
      const prefix = this.prefix;
      let lo = 0;
      let hi = prefix.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (prefix[mid]! > target) hi = mid;
        else lo = mid + 1;
      }
      from = lo * EXP_PREFIX_BLOCK;
      cum = lo > 0 ? prefix[lo - 1]! : 0;
    }
    for (let j = from; j < n; j++) {
      const wj = w[j]!;
      if (wj <= 0) continue;
      last = j;
      cum += wj;
      if (cum > target) break;
    }
    return this.wholeVocab ? last : this.ids[last]!;
  }

  /**
   * The distribution sample() would draw from for these logits, as ids and probabilities (for
   * tests and diagnostics; allocates). Greedy gives the argmax with probability 1.
   */
  distribution(logits: Float32Array): CandidateDistribution {
    this.prepare(logits);
    if (this.greedyId >= 0) return { ids: Int32Array.of(this.greedyId), probs: Float64Array.of(1) };
    const w = this.wholeVocab ? this.full : this.weights.subarray(0, this.count);
    const ids = this.wholeVocab ? Int32Array.from({ length: w.length }, (_, i) => i) : this.ids.slice(0, this.count);
    let total = 0;
    for (let j = 0; j < w.length; j++) total += w[j]!;
    return { ids, probs: Float64Array.from(w, (x) => x / total) };
  }

  /** The penalized, biased logits of the last step (before temperature); a view. */
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

  /** Bias and penalties into this.z; returns the argmax. */
  private process(logits: Float32Array): number {
    const V = logits.length;
    if (V === 0) throw new Error('cannot sample from empty logits');
    if (this.z.length !== V) {
      this.z = new Float32Array(V);
      this.full = new Float64Array(V);
      this.ids = new Int32Array(V);
      this.weights = new Float64Array(V);
      this.bucket = new Uint16Array(V);
    }
    const z = this.z;
    z.set(logits);
    if (this.vocabLimit < V) z.fill(-Infinity, this.vocabLimit);
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
        if (id >= 0 && id < V) z[id] = z[id]! - c * o.frequencyPenalty - o.presencePenalty;
      }
    }
    const native = getBackend().argmaxLogits;
    const best = native ? native(z, V) : argmaxLogits(z, V);
    if (best <= -2) throw new Error(`logits contain NaN (token ${-2 - best})`);
    const m = best < 0 ? -Infinity : z[best]!;
    if (best < 0 || m === Infinity) throw new Error('logits have no finite maximum: every token is banned or the model output is invalid');
    this.maxLogit = m;
    return best;
  }

  /** Processes the logits and selects the candidates (or greedy id) of this step. */
  private prepare(logits: Float32Array): void {
    const best = this.process(logits);
    const o = this.options;
    this.wholeVocab = false;
    this.greedyId = -1;
    const invT = 1 / o.temperature;
    // a temperature so small that 1/T overflows (1e-320) is the greedy limit, as T -> 0 is
    if (!Number.isFinite(invT)) {
      this.greedyId = best;
      return;
    }
    const z = this.z;
    const V = z.length;
    const m = this.maxLogit;
    // min-p keeps z >= max + T ln(minP); the kept set is a prefix of the sorted order, so it
    // intersects with the top-k/top-p prefixes by filtering.
    const minThreshold = o.minP > 0 ? m + o.temperature * Math.log(o.minP) : -Infinity;
    if (o.topK > 0 && o.topK < V) {
      selectTopInto(z, o.topK, this.ids);
      let n = o.topK;
      let mass = 0;
      for (let j = 0; j < n; j++) mass += this.weights[j] = Math.exp((z[this.ids[j]!]! - m) * invT);
      if (o.topP < 1) n = this.prefixReaching(0, n, o.topP * mass, 0) || n;
      while (n > 1 && z[this.ids[n - 1]!]! < minThreshold) n--;
      this.count = n;
      return;
    }
    if (o.topP >= 1 && o.minP === 0) {
      const full = this.full;
      const exp = getBackend().expShifted ?? expShifted;
      if (this.prefix.length !== Math.ceil(V / EXP_PREFIX_BLOCK)) this.prefix = new Float64Array(Math.ceil(V / EXP_PREFIX_BLOCK));
      this.wholeTotal = exp(full, z, V, m, invT, this.prefix);
      this.wholeVocab = true;
      return;
    }
    if (o.topP >= 1) {
      let n = 0;
      for (let i = 0; i < V; i++) {
        if (z[i]! >= minThreshold) {
          this.ids[n] = i;
          this.weights[n++] = Math.exp((z[i]! - m) * invT);
        }
      }
      this.count = n;
      return;
    }
    this.nucleus(invT);
    let n = this.count;
    let kept = 0;
    for (let j = 0; j < n; j++) {
      if (z[this.ids[j]!]! >= minThreshold) {
        this.ids[kept] = this.ids[j]!;
        this.weights[kept++] = this.weights[j]!;
      }
    }
    this.count = kept;
  }

  /**
   * Top-p over the whole vocabulary without sorting it: tokens are bucketed by their log-ratio to
   * the top token (1024 buckets spanning the actual range); whole buckets are taken from the top
   * until the one where the mass reaches p, and only that bucket is sorted to find the exact cut.
   * The result equals cutting the fully sorted list (ties broken by lower id).
   */
  private nucleus(invT: number): void {
    const z = this.z;
    const V = z.length;
    const m = this.maxLogit;
    const full = this.full;
    const mass = this.bucketMass;
    const bucket = this.bucket;
    const native = getBackend().softmaxBuckets;
    const total = native ? native(full, z, V, m, invT, BUCKETS, bucket, mass) : softmaxBuckets(full, z, V, m, invT, bucket, mass);
    const goal = this.options.topP * total;
    let cum = 0;
    let cross = 0;
    while (cross < BUCKETS && cum + mass[cross]! < goal) cum += mass[cross++]!;
    // Ids of the buckets above the crossing one (all kept), then the crossing bucket's ids.
    let n = 0;
    let inCrossing = 0;
    const crossingIds = this.crossingIds.length === V ? this.crossingIds : (this.crossingIds = new Int32Array(V));
    for (let i = 0; i < V; i++) {
      const b = bucket[i]!;
      if (b < cross) this.ids[n++] = i;
      else if (b === cross) crossingIds[inCrossing++] = i;
    }
    this.ids.set(crossingIds.subarray(0, inCrossing), n);
    const c = n + inCrossing;
    const crossing = this.ids.subarray(n, c);
    crossing.sort((a, b) => z[b]! - z[a]! || a - b);
    for (let j = 0; j < c; j++) this.weights[j] = full[this.ids[j]!]!;
    const cut = this.prefixReaching(n, c, goal, cum);
    this.count = cut || c;
  }

  /** Smallest end in (from, to] with cum + sum(weights[from..end)) >= goal, or 0 if none. */
  private prefixReaching(from: number, to: number, goal: number, cum: number): number {
    for (let j = from; j < to; j++) {
      cum += this.weights[j]!;
      if (cum >= goal) return j + 1;
    }
    return 0;
  }
}

/** Backend.argmaxLogits in JavaScript: the first largest index, -1 for none, -2 - i for a NaN at i. */
export function argmaxLogits(z: Float32Array, V: number): number {
  let best = -1;
  let m = -Infinity;
  for (let i = 0; i < V; i++) {
    const v = z[i]!;
    if (v > m) {
      m = v;
      best = i;
    } else if (v !== v) {
      return -2 - i;
    }
  }
  return best;
}

/**
 * Backend.expShifted in JavaScript, whose bits the native one reproduces: out[i] =
 * Math.exp((z[i] - shift) · scale), their sum in index order, and with `prefix` that running sum at
 * the end of every EXP_PREFIX_BLOCK entries.
 */
export function expShifted(out: Float64Array, z: Float32Array, n: number, shift: number, scale: number, prefix?: Float64Array): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += out[i] = Math.exp((z[i]! - shift) * scale);
    if (prefix && (i % EXP_PREFIX_BLOCK === EXP_PREFIX_BLOCK - 1 || i === n - 1)) prefix[Math.floor(i / EXP_PREFIX_BLOCK)] = total;
  }
  return total;
}

/**
 * Top-p's weights and buckets (Backend.softmaxBuckets, whose bits these loops define): full[i] =
 * exp((z[i] - m) · invT), each token's bucket by its log-ratio to the top token over the actual
 * range (1024 buckets; -Infinity in the last), and each bucket's mass. Returns the total weight.
 */
export function softmaxBuckets(full: Float64Array, z: Float32Array, V: number, m: number, invT: number, bucket: Uint16Array, mass: Float64Array): number {
  const total = expShifted(full, z, V, m, invT);
  let minFinite = m;
  for (let i = 0; i < V; i++) {
    const v = z[i]!;
    if (v < minFinite && v !== -Infinity) minFinite = v;
  }
  const span = (m - minFinite) * invT;
  const scale = span > 0 ? BUCKETS / span : 0;
  mass.fill(0);
  for (let i = 0; i < V; i++) {
    const v = z[i]!;
    // (m - v)·invT·scale is >= 0 (and +Infinity only for v = -Infinity): truncation is Math.floor
    const t = (m - v) * invT * scale;
    const b = v === -Infinity ? BUCKETS : t >= BUCKETS - 1 ? BUCKETS - 1 : t | 0;
    bucket[i] = b;
    mass[b]! += full[i]!;
  }
  return total;
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
