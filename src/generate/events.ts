/** What generate() yields, and the minimal tokenizer shape generation needs. */
import type { Channel } from './reasoning.js';
import type { TokenLogprob } from './sampling.js';

export type { Channel } from './reasoning.js';
export type { TokenLogprob } from './sampling.js';

export type FinishReason = 'stop' | 'length' | 'abort';

/**
 * One generated token. `text` is the output text released at this step on `channel` (it may be
 * empty while text is held back for a possible stop string, tag or incomplete character, and may
 * include text held from earlier tokens). The full output of a channel is the concatenation of
 * `text` over the token and text events of that channel, in order.
 */
export interface TokenEvent {
  type: 'token';
  id: number;
  text: string;
  /** 'reasoning' when the token is part of the thought (including the `</think>` that ends it). */
  channel: Channel;
  /** Log-probability of the token under the model's raw distribution (when requested). */
  logprob?: number;
  /** The most likely tokens at this step with their log-probabilities (when requested). */
  topLogprobs?: TokenLogprob[];
  /** True for tokens the engine inserted (the reasoning budget's `</think>`), not sampled. */
  forced?: boolean;
}

/** Output text not attached to a token: the rest of a step that crossed `</think>`, and text released at the end. */
export interface TextEvent {
  type: 'text';
  text: string;
  channel: Channel;
}

export interface Usage {
  promptTokens: number;
  /** Prompt tokens whose cache entries were reused (not recomputed). */
  cachedTokens: number;
  /** Output tokens (sampled and forced), reasoning included, the final stop token excluded. */
  completionTokens: number;
  reasoningTokens: number;
}

export interface Timings {
  prefillMs: number;
  decodeMs: number;
  /** Prompt tokens computed per second of prefill. */
  prefillTokensPerSecond: number;
  /** Output tokens per second of decode. */
  tokensPerSecond: number;
}

export interface DoneEvent {
  type: 'done';
  finishReason: FinishReason;
  /** What ended a 'stop': the stop token id, or the stop string. */
  stopToken?: number;
  stopString?: string;
  usage: Usage;
  timings: Timings;
  /** Seed the sampler used (to reproduce the output). */
  seed: number;
}

export type GenerationEvent = TokenEvent | TextEvent | DoneEvent;

/** The parts of src/tokenizer's Tokenizer that generation uses. */
export interface GenerationTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean; parseSpecial?: boolean }): ArrayLike<number>;
  decode(ids: ArrayLike<number>): string;
  streamDecoder(): { push(id: number): string; flush(): string };
  readonly eosId?: number | undefined;
  /** Ids the tokenizer knows (model vocabularies may be padded beyond it). */
  readonly vocabSize?: number;
  tokenId(text: string): number | undefined;
}
