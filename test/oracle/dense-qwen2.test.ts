/** Tiny qwen2 GGUF files (Qwen2.5 tokenizer) against llama.cpp; see ./dense-oracle.ts. */
import { test } from 'node:test';
import { LOW_BITS, checkDenseAgainstLlamaCpp } from './dense-oracle.js';

test('qwen2 matches llama.cpp at f32, q8_0, q4_0, q4_k, iq4_xs (with iq4_nl) and q2_k / q3_k / q5_1', { timeout: 900_000 }, async (t) => {
  await checkDenseAgainstLlamaCpp(t, {
    base: { architecture: 'qwen2', tokenizer: 'qwen2.5', seed: 21 },
    // iq4_xs: ffn_down (rows of 256) as IQ4_XS, the other matrices (rows of 64) as IQ4_NL, as
    // llama-quantize falls back, so one file covers both types.
    // LOW_BITS: one file with ffn_down as Q2_K (layer 0) and Q3_K (layer 1), every other matrix
    // (and the tied output) as Q5_1.
    dtypes: ['q8_0', 'q4_0', 'q4_k', 'iq4_xs', LOW_BITS],
    // Measured with f32 prefill activations (llama.cpp rounds activations to 8 bits; logits span
    // about ±25 here): q8_0 0.39, q4_0 0.38, q4_k 0.44, iq4_xs 0.33 (llama.cpp rounds iq4 activations
    // to q8_0 / q8_K; the ref backend against llama.cpp on the dequantized weights: 4.4e-5),
    // q2_k-q3_k-q5_1 0.32 (llama.cpp rounds activations to q8_K for Q2_K / Q3_K and to q8_1 for
    // Q5_1; ref backend vs llama.cpp on the dequantized weights 4.9e-5). On avx512-vnni the default
    // backend rounds x to int8 as llama.cpp does for all of these types, prefill (m > 16, as for this
    // 18-token prompt; native/src/gemm_int8.h) and decode (m <= 16; test/tensor/int8-matmul.test.ts),
    // Q5_1's minimums against ggml's f16 q8_1 block sums: iq4_xs then 5.1e-5 from llama.cpp's iq4_xs,
    // q2_k-q3_k-q5_1 4.7e-5 (INT8_PREFILL_BOUND; with the q8_1 sums in f32 instead it was 0.32).
    // q4_k has extra room for the native backend's SIMD-level-dependent path.
    // nativeBounds: with f32 activations (no AVX-512 VNNI, or FRUGAL_INT8=0); with int8 prefill the bound is INT8_PREFILL_BOUND
    nativeBounds: { q8_0: 0.6, q4_0: 0.6, q4_k: 0.8, iq4_xs: 0.6, [LOW_BITS]: 0.6 },
  });
});
