/**
 * Qwen2 (GGUF architecture `qwen2`, the R1-Distill-Qwen models): the Llama decoder of ./llama.ts
 * with biases on the q/k/v projections and NEOX (half-split) RoPE on unpermuted weights, in both
 * GGUF and HF layouts (../shared/spec/formats-and-api.md §2.3, §2.5). Qwen3 (GGUF `qwen3`, e.g.
 * DeepSeek-R1-0528-Qwen3-8B): no biases, per-head q/k RMSNorm before RoPE, head size from
 * `qwen3.attention.key_length`.
 */
import { type DenseModelOptions, DenseModel, denseConfigFromGguf, loadDenseWeights } from './llama.js';
import type { ModelSource } from './load.js';

/** The loader of a dense architecture whose GGUF weights are used as stored (no Q/K row permutation). */
function storedLayoutLoader(architecture: 'qwen2' | 'qwen3'): (source: ModelSource, options?: DenseModelOptions) => DenseModel {
  return (source, options = {}) => {
    const config = denseConfigFromGguf(source, architecture);
    return new DenseModel(config, loadDenseWeights(config, source), options);
  };
}

export const loadQwen2 = storedLayoutLoader('qwen2');
export const loadQwen3 = storedLayoutLoader('qwen3');
