/** Tiny llama GGUF files (DeepSeek-V3 tokenizer, llama3 rope scaling) against llama.cpp; see ./dense-oracle.ts. */
import { test } from 'node:test';
import { checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('llama matches llama.cpp at f32, f16, q8_0, q4_0 and q4_k', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'llama', tokenizer: 'deepseek-v3', llama3RopeScaling: true, seed: 31 },
    dtypes: ['f16', 'q8_0', 'q4_0', 'q4_k'],
    nativeBounds: { f16: 1, q8_0: 1, q4_0: 1, q4_k: 1 },
  });
});
