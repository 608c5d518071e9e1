/**
 * Token sampling for the R1 recipe stages, and the per-sequence bookkeeping of one completion
 * (`CompletionDraft`): what the single-sequence (`EnginePolicy.complete`) and the batched
 * (`completeBatched`) decoders share, so that both stop, record and sample the same way.
 */
import type { Random } from '../autograd/random.js';
import type { Codec, Completion, SampleOptions } from './rollout.js';

/** log softmax(logits)[token] in float64. */
export function logSoftmaxAt(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  let total = 0;
  for (const x of logits) total += Math.exp(x - max);
  return logits[token]! - max - Math.log(total);
}

/** Draws a token: argmax at temperature 0, else softmax(logits / T) restricted to the top-p nucleus. */
export function sampleToken(logits: Float32Array, temperature: number, topP: number, rng: Random): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const probs = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += probs[i] = Math.exp((logits[i]! - max) / temperature);
  if (topP >= 1) {
    let u = rng.uniform() * total;
    for (let i = 0; i < probs.length; i++) {
      u -= probs[i]!;
      if (u < 0) return i;
    }
    return probs.length - 1;
  }
  let order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let kept = 0;
  let k = 0;
  while (k < order.length && kept < topP * total) kept += probs[order[k++]!]!;
  order = order.slice(0, Math.max(1, k));
  let u = rng.uniform() * kept;
  for (const i of order) {
    u -= probs[i]!;
    if (u < 0) return i;
  }
  return order[order.length - 1]!;
}

/** The KV cache capacity a completion of `prompt` needs (checks that the prompt leaves room). */
export function completionCapacity(prompt: readonly number[], options: SampleOptions, contextLength: number): number {
  if (prompt.length === 0) throw new Error('complete: empty prompt');
  const capacity = Math.min(contextLength, prompt.length + options.maxTokens);
  if (prompt.length >= capacity) throw new Error(`complete: the prompt has ${prompt.length} tokens, the context holds ${contextLength}`);
  return capacity;
}

/**
 * One completion being sampled with its own rng stream: `accept(logits)` draws the next token,
 * records it and its untempered log-probability, and says whether the sequence goes on (then the
 * token must be fed to the model and the next logits passed to `accept`).
 */
export class CompletionDraft {
  readonly tokens: number[] = [];
  readonly logprobs: number[] = [];
  finish: Completion['finish'] = 'length';

  constructor(
    readonly promptLength: number, readonly capacity: number, private readonly options: SampleOptions,
    private readonly rng: Random, private readonly codec: Pick<Codec, 'decode' | 'eosId'>,
  ) {}

  /** The last sampled token (what to feed next). */
  get last(): number {
    return this.tokens[this.tokens.length - 1]!;
  }

  accept(logits: Float32Array): boolean {
    const o = this.options;
    const token = sampleToken(logits, o.temperature, o.topP, this.rng);
    this.tokens.push(token);
    this.logprobs.push(logSoftmaxAt(logits, token));
    if (token === this.codec.eosId || (o.stopText !== undefined && this.codec.decode(this.tokens).includes(o.stopText))) {
      this.finish = 'stop';
      return false;
    }
    return this.tokens.length < o.maxTokens && this.promptLength + this.tokens.length < this.capacity;
  }

  result(): Completion {
    return { tokens: this.tokens, logprobs: this.logprobs, text: this.codec.decode(this.tokens), finish: this.finish };
  }
}
