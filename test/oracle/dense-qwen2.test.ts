/** Tiny qwen2 GGUF files (Qwen2.5 tokenizer) against llama.cpp; see ./dense-oracle.ts. */
import { test } from 'node:test';
import { checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('qwen2 matches llama.cpp at f32, q8_0, q4_0, q4_k and iq4_xs (with iq4_nl)', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'qwen2', tokenizer: 'qwen2.5', seed: 21 },
    // iq4_xs: ffn_down (rows of 256) as IQ4_XS, the other matrices (rows of 64) as IQ4_NL, as
    // llama-quantize falls back, so one file covers both types.
    dtypes: ['q8_0', 'q4_0', 'q4_k', 'iq4_xs'],
    // Measured (llama.cpp rounds activations to 8 bits; logits span about ±25 here): q8_0 0.39,
    // q4_0 0.38, q4_k 0.44, iq4_xs 0.33 (our iq4 matmuls keep f32 activations at every level, where
    // llama.cpp rounds them to q8_0; the ref backend against llama.cpp on the dequantized weights: 4.4e-5).
    // q4_k has extra room for the native backend's SIMD-level-dependent path.
    // nativeBounds: with f32 activations (no AVX-512 VNNI, or FRUGAL_INT8=0); with int8 prefill the bound is INT8_PREFILL_BOUND
    nativeBounds: { q8_0: 0.6, q4_0: 0.6, q4_k: 0.8, iq4_xs: 0.6 },
  });
});
