import type { WeightMatrix } from './tensor.js';

/** Entries per running sum of Backend.expShifted's `prefix` (native/src/fdlibm_exp.h PREFIX_BLOCK). */
export const EXP_PREFIX_BLOCK = 64;

/**
 * The compute kernels. Two implementations share this interface: `ref` (pure TypeScript, the
 * readable truth, src/tensor/ref.ts) and `native` (the C++ addon, src/tensor/native.ts).
 * Every kernel works on contiguous row-major buffers; shapes are passed explicitly.
 * Kernels write into `out` buffers they are given and allocate nothing in hot paths.
 */
export interface Backend {
  readonly name: 'ref' | 'native';
  /** SIMD level in use: 'avx512' | 'avx512-vnni' | 'avx2' | 'scalar' for native, 'js' for ref. */
  readonly simd: string;
  readonly threads: number;

  /**
   * General f32 GEMM: C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C.
   * op(A) = A (row-major [m,k], leading dimension lda) or Aᵀ when transA (A stored [k,m]);
   * likewise B ([k,n], or [n,k] when transB). beta = 0 ignores C's old contents (even NaN).
   */
  gemm(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number,
    a: Float32Array, lda: number, b: Float32Array, ldb: number,
    beta: number, c: Float32Array, ldc: number,
  ): void;

  /**
   * out[m, w.rows] = x[m, w.cols] · Wᵀ for a weight in any storage dtype (f32, f16, bf16, q8_0,
   * q4_0, q4_1, q5_0, q4_k, q5_k, q6_k, fp8_e4m3 with block scales). m = 1 is matrix x vector.
   */
  matmul(out: Float32Array, x: Float32Array, m: number, w: WeightMatrix): void;

  /** Dequantize rows [rowStart, rowStart + rowCount) of w into out (rowCount · w.cols values). */
  dequantizeRows(out: Float32Array, w: WeightMatrix, rowStart: number, rowCount: number): void;

  /** out[i, :] = row ids[i] of the table, dequantized (token embedding lookup). */
  embeddingGather(out: Float32Array, table: WeightMatrix, ids: Int32Array): void;

  /** out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · weight, for rows r. out may alias x. */
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, rows: number, dim: number, eps: number): void;

  /** In-place numerically stable softmax over each of `rows` rows of `cols` values. */
  softmax(x: Float32Array, rows: number, cols: number): void;

  /** In-place rotary embedding; see RopeParams. */
  rope(x: Float32Array, params: RopeParams): void;

  /** out[i] = silu(gate[i]) · up[i] for i < n, silu(v) = v / (1 + e^-v). out may alias gate or up. */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /** out[i] = a[i] + b[i]. */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out[i] = a[i] · b[i]. */
  mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out[i] += alpha · x[i] (MoE combine, residuals). */
  axpy(out: Float32Array, alpha: number, x: Float32Array, n: number): void;

  /**
   * For each of `rows` rows of `cols` values: the indices and values of the k largest, in
   * descending order of value (ties: lower index first).
   */
  topK(outIndices: Int32Array, outValues: Float32Array, x: Float32Array, rows: number, cols: number, k: number): void;

  /** Scaled dot-product attention with a causal mask and grouped KV heads; see AttentionParams. */
  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, params: AttentionParams): void;

  /**
   * Optional (native; callers fall back to one attention() per segment): attention of the rows of
   * several sequences in one call, each over its own cache with one KV head (MLA's absorbed form).
   * Segment i has rows segments[3i] .. + segments[3i + 1] of q and out, at positions segments[3i + 2]..,
   * attending causally to caches[i]: key s = caches[i][s · stride ..+ headDimK], value s the first
   * headDimV of the same row. Equals attention() per segment to float rounding (exp is approximated to ~2e-7).
   */
  attentionSegments?(out: Float32Array, q: Float32Array, caches: readonly Float32Array[], segments: Int32Array, params: SegmentAttentionParams): void;

  /**
   * Optional (native; callers fall back to per-expert matmuls): out [tokens, hidden] += the routed
   * experts of each token, weighted (experts and weights [tokens, topK]). The f32 weights are
   * k-major panels (src/tensor/panels.ts writePanels), one block per expert: gateUp holds expert
   * e's [gate; up] ([2·width, hidden]) at e·panelLength(2·width, hidden), down its down
   * ([hidden, width]) at e·panelLength(hidden, width). Tokens are grouped per expert (ascending),
   * added in slot order; a token's output has the same bits alone as among other tokens.
   */
  moeExperts?(out: Float32Array, x: Float32Array, experts: Int32Array, weights: Float32Array, gateUp: Float32Array, down: Float32Array, params: MoeExpertsParams): void;

  /**
   * Optional (native; callers fall back to a Math.exp loop): out[i] = Math.exp((z[i] - shift) ·
   * scale) for i < n, bit for bit as V8's Math.exp (fdlibm) computes it, so that seeded sampling
   * (src/generate/sampling.ts) draws the same tokens either way. Returns Σ out[i] in index order;
   * with `prefix` (ceil(n / EXP_PREFIX_BLOCK) entries), prefix[b] is that running sum at the end
   * of block b, which lets the sampler find where a cumulative sum crosses its target by blocks.
   */
  expShifted?(out: Float64Array, z: Float32Array, n: number, shift: number, scale: number, prefix?: Float64Array): number;

  /**
   * Optional (native; callers fall back to JavaScript loops): top-p's buckets in one pass
   * (src/generate/sampling.ts nucleus). full[i] = expShifted's exp((z[i] - m) · invT); bucket[i] =
   * `buckets` for z[i] = -Infinity, else min(buckets - 1, floor((m - z[i]) · invT · scale)) with
   * scale = buckets / ((m - the smallest finite z) · invT), 0 for a zero span; mass[b] (zeroed
   * first, buckets + 1 entries) = Σ full[i] over bucket b. Returns Σ full[i]. Sums in index order,
   * so the results are the bits of the JavaScript loops.
   */
  softmaxBuckets?(full: Float64Array, z: Float32Array, n: number, m: number, invT: number, buckets: number, bucket: Uint16Array, mass: Float64Array): number;

  /**
   * Optional (native; callers fall back to a JavaScript loop): the first index of the largest of
   * z[0..n), -1 when none is larger than -Infinity, or -2 - i when z[i] is the first NaN (the
   * sampler's argmax).
   */
  argmaxLogits?(z: Float32Array, n: number): number;

  /**
   * Optional (native, AVX2 and AVX-512; callers fall back to matmul): out [m, n] = x [m, k] · wᵀ,
   * where wt holds a weight w [n, k] as k-major panels of 16 rows (src/tensor/panels.ts; n padded
   * to a multiple of 16 with zeros): the few rows of a decode step, a verify, a batch or a short
   * prompt of a small model, without horizontal sums. Each output is summed over k in order, one
   * FMA per term, whatever m is. Returns false (and computes nothing) where the active SIMD level
   * has no such kernel.
   */
  matmulKMajor?(out: Float32Array, x: Float32Array, m: number, wt: Float32Array, n: number, k: number): boolean;
}

/** Shapes of Backend.attentionSegments: q [rows, heads, headDimK], out [rows, heads, headDimV]. */
export interface SegmentAttentionParams {
  heads: number;
  headDimK: number;
  headDimV: number;
  /** Elements between consecutive rows of a cache. */
  stride: number;
  scale: number;
}

/** Shapes of Backend.moeExperts: x and out [tokens, hidden]. */
export interface MoeExpertsParams {
  tokens: number;
  hidden: number;
  topK: number;
  experts: number;
  /** Width of one expert's FFN. */
  width: number;
}

/**
 * Rotary embedding over x laid out as [tokens, heads, headStride] (element strides below).
 * In each head, the rotated part is the `ropeDim` values starting at `offset`.
 * Pair i (0 ≤ i < ropeDim/2) rotates by angle positions[t] · invFreq[i]:
 *  - 'interleaved' (GPT-J, DeepSeek's MLA rope part in HF/V3 code): pairs (2i, 2i+1);
 *  - 'neox' (half-split, Llama/Qwen2 in HF layout): pairs (i, i + ropeDim/2).
 * cos and sin are multiplied by `attentionFactor` (YaRN's mscale; 1 otherwise).
 */
export interface RopeParams {
  tokens: number;
  heads: number;
  /** Elements between consecutive tokens. */
  tokenStride: number;
  /** Elements between consecutive heads of one token. */
  headStride: number;
  /** Index of the first rotated value inside a head. */
  offset: number;
  ropeDim: number;
  positions: Int32Array;
  invFreq: Float32Array;
  style: 'interleaved' | 'neox';
  attentionFactor: number;
}

/**
 * out[t, h, :] = softmax(scale · q[t, h, :] · K[s, g(h), :]ᵀ over s ≤ startPos + t) · V[s, g(h), :]
 * with g(h) = floor(h / (heads / kvHeads)) (grouped-query attention).
 * q: [queries, heads, headDimK] contiguous; out: [queries, heads, headDimV] contiguous.
 * k and v rows are addressed with strides so that one cache can hold both (MLA's absorbed form:
 * K = [latent | rope key], V = the latent at offset 0 of the same row):
 *   K[s, g, d] = k[s · kTokenStride + g · kHeadStride + d], V likewise with v, vTokenStride, vHeadStride.
 * Keys s range over 0 .. startPos + queries - 1; query t sits at absolute position startPos + t.
 */
export interface AttentionParams {
  queries: number;
  heads: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  startPos: number;
  scale: number;
  kTokenStride: number;
  kHeadStride: number;
  vTokenStride: number;
  vHeadStride: number;
}
