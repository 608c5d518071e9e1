// Shared fixtures for the training tests: tiny HF configs, a generated corpus and a small tokenizer.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HfConfig, parseHfConfig } from '../../src/formats/hf-config.js';
import { tinyTokenizerJson } from '../tokenizer/tiny-tokenizer.js';
import { KNOWN_PATTERNS } from '../../src/tokenizer/pre-tokenizer.js';

/** The fields of a tiny DeepSeek-V3 config.json (d 32, 2 layers: 1 dense + 1 MoE, 4 experts in 2 groups, MTP). */
export function tinyV3Fields(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3',
    vocab_size: 300, hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16,
    num_hidden_layers: 2, first_k_dense_replace: 1, num_attention_heads: 2, num_key_value_heads: 2,
    q_lora_rank: 24, kv_lora_rank: 16, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16,
    n_routed_experts: 4, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 2, topk_group: 1,
    topk_method: 'noaux_tc', scoring_func: 'sigmoid', norm_topk_prob: true, routed_scaling_factor: 2.5,
    num_nextn_predict_layers: 1, max_position_embeddings: 256, rope_theta: 10000, rms_norm_eps: 1e-6,
    rope_scaling: null, initializer_range: 0.05, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 1,
    ...overrides,
  };
}

export function tinyV3(overrides: Record<string, unknown> = {}): HfConfig {
  return parseHfConfig(tinyV3Fields(overrides));
}

export function tinyDense(architecture: 'LlamaForCausalLM' | 'Qwen2ForCausalLM', overrides: Record<string, unknown> = {}): HfConfig {
  return parseHfConfig({
    architectures: [architecture], vocab_size: 300, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rope_theta: 10000, rms_norm_eps: 1e-6,
    initializer_range: 0.05, tie_word_embeddings: false, ...overrides,
  });
}

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `frugal-${prefix}-`));
  created.push(dir);
  return dir;
}

const WORDS = ['the', 'cat', 'dog', 'sat', 'on', 'a', 'mat', 'and', 'ran', 'to', 'red', 'big', 'box', 'sun', 'is', 'hot'];

/** A deterministic, learnable text (a few KB): short sentences from a small grammar. */
export function corpusText(sentences = 300, seed = 1): string {
  let s = seed >>> 0;
  const next = (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const lines: string[] = [];
  for (let i = 0; i < sentences; i++) {
    const a = WORDS[next(4)]!;
    lines.push(`${a === 'a' ? 'a' : 'the'} ${WORDS[1 + next(3)]} ${WORDS[3 + next(2) * 4]} ${WORDS[4 + next(2) * 5]} the ${WORDS[6 + next(3)]}.`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes a tokenizer.json (byte-level BPE with ~40 merges learned on the corpus; < 300 tokens). */
export function writeTinyTokenizer(dir: string, text = corpusText()): string {
  mkdirSync(dir, { recursive: true });
  const json = tinyTokenizerJson(text, { patterns: KNOWN_PATTERNS['deepseek-v3'], merges: 40, addedTokens: [{ content: '<|eos|>', special: true }] });
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(json));
  return path;
}

/** Largest |a - b| over the largest |b|: how far two logit arrays are apart, relative to their scale. */
export function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}
