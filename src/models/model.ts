/**
 * What every architecture (src/models/llama.ts, qwen2.ts, deepseek-v3.ts) provides to the
 * generation engine, the CLI and the server.
 */
export interface ModelInfo {
  /** 'llama' | 'qwen2' | 'deepseek2' (GGUF architecture names). */
  readonly architecture: string;
  readonly vocabSize: number;
  readonly contextLength: number;
  /** Parameters in the weights (all experts counted). */
  readonly parameterCount: number;
  /** Values the KV cache stores per token (all layers together). */
  readonly cacheValuesPerToken: number;
}

/** A model's key/value cache for one sequence. */
export interface KvCache {
  /** Tokens cached so far (the position of the next token). */
  readonly length: number;
  readonly capacity: number;
  /** Forget everything after the first `length` tokens (for prefix reuse and speculative decoding). */
  truncate(length: number): void;
  /** Bytes the cache holds in memory. */
  readonly bytes: number;
}

export interface CausalLM {
  readonly info: ModelInfo;
  /** A fresh, empty cache able to hold `capacity` tokens (at most info.contextLength). */
  newCache(capacity?: number): KvCache;
  /**
   * Runs `tokens` at positions cache.length, cache.length + 1, ... and appends them to the cache.
   * Returns the next-token logits: [tokens.length, vocabSize] when allLogits, else [vocabSize]
   * for the last position only.
   */
  forward(tokens: Int32Array, cache: KvCache, options?: { allLogits?: boolean }): Float32Array;
}
