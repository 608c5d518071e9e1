/** Tiny qwen2 GGUF files (Qwen2.5 tokenizer) against llama.cpp; see ./dense-oracle.ts. */
import { test } from 'node:test';
import { checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('qwen2 matches llama.cpp at f32, q8_0, q4_0 and q4_k', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'qwen2', tokenizer: 'qwen2.5', seed: 21 },
    dtypes: ['q8_0', 'q4_0', 'q4_k'],
    nativeBounds: { q8_0: 1, q4_0: 1, q4_k: 1 },
  });
});
