/** Tiny llama GGUF files (DeepSeek-V3 tokenizer, llama3 rope scaling) against llama.cpp; see ./dense-oracle.ts. */
import { test } from 'node:test';
import { checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('llama matches llama.cpp at f32, f16, q8_0, q4_0 and q4_k', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'llama', tokenizer: 'deepseek-v3', llama3RopeScaling: true, seed: 31 },
    dtypes: ['f16', 'q8_0', 'q4_0', 'q4_k'],
    // Measured (llama.cpp rounds activations to f16 / 8 bits): f16 0.010, q8_0 0.31, q4_0 0.28,
    // q4_k 0.41. q4_k has extra room for the native backend's SIMD-level-dependent path.
    // nativeBounds: with f32 activations (no AVX-512 VNNI, or FRUGAL_INT8=0); with int8 prefill the bound is INT8_PREFILL_BOUND
    nativeBounds: { f16: 0.02, q8_0: 0.5, q4_0: 0.45, q4_k: 0.8 },
  });
});
