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
  /**
   * Makes this cache hold exactly the tokens of `source`, a cache of the same model (for prompts
   * prefilled once and sampled many times). Optional: cache types without it cannot be copied.
   */
  assign?(source: KvCache): void;
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
  /**
   * Several sequences in one pass (continuous batching): every weight matmul runs once over all
   * items' tokens together, each item attending to its own cache. Returns each item's
   * last-position logits [vocabSize] and advances each cache exactly like
   * `forward(item.tokens, item.cache)` would. Each item needs at least one token and a cache of
   * its own (no cache twice in one call). The arrays may be views of one buffer; the caller may
   * write into them.
   */
  forwardBatch(items: readonly BatchItem[]): Float32Array[];
  /**
   * The final-normalized hidden states [tokens.length, hidden] (what the output head reads) of
   * `tokens` at positions cache.length, ..., appended to the cache like forward; no logits
   * (embeddings pool these). Optional: a model without it serves no embeddings.
   */
  hiddenStates?(tokens: Int32Array, cache: KvCache): Float32Array;
}

/** One sequence's share of a forwardBatch call. */
export interface BatchItem {
  readonly tokens: Int32Array;
  readonly cache: KvCache;
}

/** Checks the batch-wide rules of forwardBatch (non-empty items, distinct caches). */
export function checkBatchItems(items: readonly BatchItem[], what: string): void {
  if (!Array.isArray(items)) throw new Error(`${what}: items must be an array of { tokens, cache }`);
  const seen = new Set<KvCache>();
  items.forEach((item, i) => {
    if (!(item?.tokens instanceof Int32Array)) throw new Error(`${what}: item ${i} needs tokens as an Int32Array`);
    if (item.tokens.length === 0) throw new Error(`${what}: item ${i} has no tokens`);
    if (seen.has(item.cache)) throw new Error(`${what}: item ${i} uses a cache that an earlier item already uses`);
    seen.add(item.cache);
  });
}

/**
 * forwardBatch done one item after another with `forward` (same results, no shared matmul):
 * for CausalLM implementations without a batched path (test fakes, simple models).
 */
export function forwardEach(model: Pick<CausalLM, 'forward'>, items: readonly BatchItem[]): Float32Array[] {
  checkBatchItems(items, 'forwardBatch');
  return items.map((item) => model.forward(item.tokens, item.cache));
}
