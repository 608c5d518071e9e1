/**
 * A tiny qwen3 GGUF file (Qwen2.5 tokenizer) against llama.cpp; see ./dense-oracle.ts. Head size
 * 32 with hidden 64 and 4 heads (not hidden / heads), 2 kv heads, random q/k norm weights.
 */
import { test } from 'node:test';
import { checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('qwen3 (q/k norm, head size != hidden / heads) matches llama.cpp at f32', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'qwen3', tokenizer: 'qwen2.5', headDim: 32, seed: 41 },
    dtypes: [],
    nativeBounds: {},
  });
});
