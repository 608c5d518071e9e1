/**
 * Multi-head Latent Attention (DeepSeek-V2/V3), named after the paper and the official
 * `inference/model.py` (../shared/spec/model-and-training.md §2):
 *
 *   c_q  = RMSNorm(W_DQ x)              (q_lora_rank > 0; else q = W_Q x)
 *   q    = W_UQ c_q, per head [q_nope | q_pe]
 *   a    = W_DKV x = [c_kv | k_pe]      (k_pe: one rope key shared by every head)
 *   c_kv = RMSNorm(c_kv); q_pe, k_pe = RoPE(interleaved, YaRN)
 *
 * Two equivalent ways to attend, both reading the same cache, which stores per token and per
 * layer only the normalized latent and the rotated rope key (kv_lora_rank + qk_rope_head_dim values):
 *  - absorbed (decoding): q_lat[h] = W_UK[h]ᵀ q_nope[h]; attention over rows [c_kv | k_pe] with
 *    one KV head (K dim kvLora + rope, V = c_kv); o[h] = W_UV[h] o_lat[h].
 *  - plain (what training uses): materialise k_nope, v = W_UKV c_kv for every cached token and run
 *    ordinary multi-head attention with K = [k_nope | k_pe], V = v.
 */
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { byteSize } from '../tensor/dtype.js';
import { type ScratchBuffers, f32Buffer } from './scratch.js';
import { smallMatmul } from './small-matmul.js';

export interface MlaConfig {
  readonly hiddenSize: number;
  readonly heads: number;
  /** 0 = no query compression (V2-Lite): q = W_Q x. */
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly qkNopeHeadDim: number;
  readonly qkRopeHeadDim: number;
  readonly vHeadDim: number;
  readonly rmsNormEps: number;
  /** qkRopeHeadDim / 2 inverse frequencies (YaRN-corrected when rope scaling is on). */
  readonly invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's rope attention factor; 1 for DeepSeek-V3). */
  readonly ropeAttentionFactor: number;
  /** Softmax scale: qk_head_dim^-0.5 · mscale² (§2.3). */
  readonly softmaxScale: number;
}

/**
 * The weights of one MLA layer. The up-projection of the latent is held per head:
 * `kUpT[h]` = W_UK[h]ᵀ ([kvLora rows, nope cols], GGUF's attn_k_b slice) and
 * `vUp[h]` = W_UV[h] ([v rows, kvLora cols]).
 */
export interface MlaWeights {
  readonly qA?: WeightMatrix;
  readonly qANorm?: Float32Array;
  readonly qB?: WeightMatrix;
  readonly q?: WeightMatrix;
  readonly kvA: WeightMatrix;
  readonly kvANorm: Float32Array;
  readonly kUpT: readonly WeightMatrix[];
  readonly vUp: readonly WeightMatrix[];
  readonly o: WeightMatrix;
}

export type MlaMode = 'absorbed' | 'plain';

/** Values the MLA cache keeps per token per layer. */
export function mlaCacheWidth(cfg: Pick<MlaConfig, 'kvLoraRank' | 'qkRopeHeadDim'>): number {
  return cfg.kvLoraRank + cfg.qkRopeHeadDim;
}

/** Values full multi-head attention would cache per token per layer with the same head sizes. */
export function mhaCacheWidth(cfg: Pick<MlaConfig, 'heads' | 'qkNopeHeadDim' | 'qkRopeHeadDim' | 'vHeadDim'>): number {
  return cfg.heads * (cfg.qkNopeHeadDim + cfg.qkRopeHeadDim) + cfg.heads * cfg.vHeadDim;
}

// ---------------------------------------------------------------------------------------------

/**
 * Per-layer MLA cache: up to `capacity` rows of [c_kv (kvLora) | k_pe (rope)], in f32. Storage
 * grows (doubling) as tokens arrive, so a cache sized for a 160K context costs nothing up front.
 */
export class MlaLayerCache {
  readonly width: number;
  private buffer: Float32Array;
  constructor(readonly capacity: number, cfg: Pick<MlaConfig, 'kvLoraRank' | 'qkRopeHeadDim'>, initialTokens = 256) {
    this.width = mlaCacheWidth(cfg);
    this.buffer = new Float32Array(Math.min(capacity, initialTokens) * this.width);
  }
  /** The rows stored so far (and spare room): row s starts at s · width. */
  get rows(): Float32Array {
    return this.buffer;
  }
  /** Makes room for `tokens` rows (at most capacity), keeping the stored ones. */
  reserve(tokens: number): void {
    if (tokens > this.capacity) throw new Error(`MLA cache overflow: ${tokens} tokens exceed its capacity of ${this.capacity}`);
    if (tokens * this.width <= this.buffer.length) return;
    let size = Math.max(1, this.buffer.length / this.width);
    while (size < tokens) size *= 2;
    const grown = new Float32Array(Math.min(size, this.capacity) * this.width);
    grown.set(this.buffer);
    this.buffer = grown;
  }
}

/** Weight rows [start, start + count) as a WeightMatrix sharing storage (fp8 slices must start on a 128-row block). */
export function sliceRows(w: WeightMatrix, start: number, count: number): WeightMatrix {
  if (start < 0 || count < 0 || start + count > w.rows) {
    throw new Error(`row slice [${start}, ${start + count}) outside a weight of ${w.rows} rows`);
  }
  const bytes = byteSize(w.dtype, w.cols);
  const data = w.data.subarray(start * bytes, (start + count) * bytes);
  if (w.dtype !== 'fp8_e4m3') return { dtype: w.dtype, rows: count, cols: w.cols, data };
  if (start % 128 !== 0) throw new Error(`fp8 row slice must start on a 128-row block, got row ${start}`);
  const blockCols = Math.ceil(w.cols / 128);
  const scales = w.blockScales!.subarray((start / 128) * blockCols, Math.ceil((start + count) / 128) * blockCols);
  return { dtype: w.dtype, rows: count, cols: w.cols, data, blockScales: scales };
}

/** A dense f32 WeightMatrix over `values` ([rows, cols], row-major). */
export function f32Weight(values: Float32Array, rows: number, cols: number): WeightMatrix {
  if (values.length !== rows * cols) throw new Error(`f32 weight [${rows}, ${cols}] needs ${rows * cols} values, got ${values.length}`);
  return { dtype: 'f32', rows, cols, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Dequantizes a whole weight to f32 values [rows, cols]. */
export function dequantizeAll(backend: Backend, w: WeightMatrix): Float32Array {
  const out = new Float32Array(w.rows * w.cols);
  backend.dequantizeRows(out, w, 0, w.rows);
  return out;
}

/**
 * Splits HF's kv_b_proj ([heads·(nope + v), kvLora]) into the per-head matrices MLA uses:
 * kUpT[h] = W_UK[h]ᵀ in f32, vUp[h] = W_UV[h] (a view when the dtype allows, else f32).
 */
export function splitKvB(backend: Backend, kvB: WeightMatrix, cfg: Pick<MlaConfig, 'heads' | 'kvLoraRank' | 'qkNopeHeadDim' | 'vHeadDim'>): {
  kUpT: WeightMatrix[];
  vUp: WeightMatrix[];
} {
  const { heads, kvLoraRank: r, qkNopeHeadDim: nope, vHeadDim: v } = cfg;
  if (kvB.rows !== heads * (nope + v) || kvB.cols !== r) {
    throw new Error(`kv_b weight is [${kvB.rows}, ${kvB.cols}], expected [${heads * (nope + v)}, ${r}]`);
  }
  const viewable = kvB.dtype !== 'fp8_e4m3' || ((nope + v) % 128 === 0 && nope % 128 === 0);
  const all = viewable ? undefined : dequantizeAll(backend, kvB);
  const kUpT: WeightMatrix[] = [];
  const vUp: WeightMatrix[] = [];
  const uk = new Float32Array(nope * r);
  for (let h = 0; h < heads; h++) {
    const base = h * (nope + v);
    backend.dequantizeRows(uk, kvB, base, nope);
    const t = new Float32Array(r * nope);
    for (let i = 0; i < nope; i++) for (let j = 0; j < r; j++) t[j * nope + i] = uk[i * r + j]!;
    kUpT.push(f32Weight(t, r, nope));
    vUp.push(all ? f32Weight(all.slice((base + nope) * r, (base + nope + v) * r), v, r) : sliceRows(kvB, base + nope, v));
  }
  return { kUpT, vUp };
}

/** W_UKV ([heads·(nope + v), kvLora], f32) rebuilt from the per-head matrices (for the plain form). */
export function mergedKvUp(backend: Backend, weights: MlaWeights, cfg: MlaConfig): Float32Array {
  const { heads, kvLoraRank: r, qkNopeHeadDim: nope, vHeadDim: v } = cfg;
  const out = new Float32Array(heads * (nope + v) * r);
  const kt = new Float32Array(r * nope);
  for (let h = 0; h < heads; h++) {
    const base = h * (nope + v) * r;
    backend.dequantizeRows(kt, weights.kUpT[h]!, 0, r);
    for (let j = 0; j < r; j++) for (let i = 0; i < nope; i++) out[base + i * r + j] = kt[j * nope + i]!;
    backend.dequantizeRows(out.subarray(base + nope * r, base + (nope + v) * r), weights.vUp[h]!, 0, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * One MLA layer over `tokens` new tokens x ([tokens, hidden], already RMS-normalized) at
 * positions startPos.. ; appends their latents to `cache` (rows startPos..) and returns the
 * attention output [tokens, hidden]. `plainKvUp` (from mergedKvUp) is needed only in plain mode.
 */
export function mlaForward(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, x: Float32Array, tokens: number, startPos: number,
  cache: MlaLayerCache, mode: MlaMode = 'absorbed', plainKvUp?: Float32Array,
): Float32Array {
  return mlaForwardSegments(backend, cfg, w, x, tokens, [{ row: 0, count: tokens, startPos, cache }], mode, plainKvUp);
}

/** Rows row .. row + count - 1 of the input belong to one sequence at positions startPos.. with its own cache. */
export interface MlaSegment {
  readonly row: number;
  readonly count: number;
  readonly startPos: number;
  readonly cache: MlaLayerCache;
}

/**
 * Checks the segments against `tokens` rows and the layer's cache width, makes room in each
 * cache, and writes each row's position (its segment's startPos onwards) into `positions`.
 */
export function placeSegments(segments: readonly MlaSegment[], tokens: number, width: number, positions: Int32Array): void {
  for (const seg of segments) {
    if (seg.row < 0 || seg.count <= 0 || seg.row + seg.count > tokens) throw new Error(`MLA segment rows [${seg.row}, ${seg.row + seg.count}) outside the ${tokens} rows`);
    if (seg.cache.width !== width) throw new Error(`MLA cache rows hold ${seg.cache.width} values, this layer needs ${width}`);
    seg.cache.reserve(seg.startPos + seg.count);
    for (let t = 0; t < seg.count; t++) positions[seg.row + t] = seg.startPos + t;
  }
}

/**
 * latents [tokens, kvLora + rope] = [RMSNorm(c_kv) | RoPE(k_pe)] of x: the kv down-projection, the
 * c_kv of all rows normalized in one call (gathered into `${prefix}.cKv` and back), one rope.
 */
export function computeLatents(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, x: Float32Array, tokens: number, positions: Int32Array, latents: Float32Array,
  scratch: ScratchBuffers | undefined, prefix: string,
): void {
  const { kvLoraRank: r, qkRopeHeadDim: rope } = cfg;
  const width = r + rope;
  smallMatmul(backend, latents, x, tokens, w.kvA);
  if (tokens === 1) {
    const latent = latents.subarray(0, r);
    backend.rmsNorm(latent, latent, w.kvANorm, 1, r, cfg.rmsNormEps);
  } else {
    const cKv = f32Buffer(scratch, `${prefix}.cKv`, tokens * r);
    for (let t = 0; t < tokens; t++) copyValues(cKv, t * r, latents, t * width, r);
    backend.rmsNorm(cKv, cKv, w.kvANorm, tokens, r, cfg.rmsNormEps);
    for (let t = 0; t < tokens; t++) copyValues(latents, t * width, cKv, t * r, r);
  }
  backend.rope(latents, {
    tokens, heads: 1, tokenStride: width, headStride: width, offset: r, ropeDim: rope,
    positions, invFreq: cfg.invFreq, style: 'interleaved', attentionFactor: cfg.ropeAttentionFactor,
  });
}

/** attnOut [tokens, H, vDim] = W_UV[h] · oLat[h] for every head of every row (buffers `${prefix}.oHead`, `${prefix}.vHead`). */
export function projectValueHeads(
  backend: Backend, cfg: MlaConfig, vUp: readonly WeightMatrix[], oLat: Float32Array, attnOut: Float32Array, tokens: number,
  scratch: ScratchBuffers | undefined, prefix: string,
): void {
  const { heads: H, kvLoraRank: r, vHeadDim: vDim } = cfg;
  if (tokens === 1) {
    for (let h = 0; h < H; h++) backend.matmul(attnOut.subarray(h * vDim, (h + 1) * vDim), oLat.subarray(h * r, (h + 1) * r), 1, vUp[h]!);
    return;
  }
  const oHead = f32Buffer(scratch, `${prefix}.oHead`, tokens * r);
  const vHead = f32Buffer(scratch, `${prefix}.vHead`, tokens * vDim);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < tokens; t++) copyValues(oHead, t * r, oLat, (t * H + h) * r, r);
    backend.matmul(vHead, oHead, tokens, vUp[h]!);
    for (let t = 0; t < tokens; t++) copyValues(attnOut, (t * H + h) * vDim, vHead, t * vDim, vDim);
  }
}

/**
 * The absorbed queries q' = [W_UK[h]ᵀ q_nope | q_pe] of every head, for q [tokens, H, qk] into
 * qAbs [tokens, H, r + rope] (scratch buffers named `${prefix}.qNope` and `${prefix}.qLat`).
 */
export function absorbQueryHeads(
  backend: Backend, cfg: MlaConfig, kUpT: readonly WeightMatrix[], q: Float32Array, qAbs: Float32Array, tokens: number,
  scratch: ScratchBuffers | undefined, prefix: string,
): void {
  const { heads: H, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope } = cfg;
  const qk = nope + rope;
  const width = r + rope;
  if (tokens === 1) {
    for (let h = 0; h < H; h++) {
      backend.matmul(qAbs.subarray(h * width, h * width + r), q.subarray(h * qk, h * qk + nope), 1, kUpT[h]!);
      copyValues(qAbs, h * width + r, q, h * qk + nope, rope);
    }
    return;
  }
  const qNope = f32Buffer(scratch, `${prefix}.qNope`, tokens * nope);
  const qLat = f32Buffer(scratch, `${prefix}.qLat`, tokens * r);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < tokens; t++) copyValues(qNope, t * nope, q, (t * H + h) * qk, nope);
    backend.matmul(qLat, qNope, tokens, kUpT[h]!);
    for (let t = 0; t < tokens; t++) {
      const dst = (t * H + h) * width;
      copyValues(qAbs, dst, qLat, t * r, r);
      copyValues(qAbs, dst + r, q, (t * H + h) * qk + nope, rope);
    }
  }
}

/** dst[dstAt ..] = src[srcAt .. srcAt + n) (a loop for short runs: no subarray to allocate). */
export function copyValues(dst: Float32Array, dstAt: number, src: Float32Array, srcAt: number, n: number): void {
  if (n > 64) {
    dst.set(src.subarray(srcAt, srcAt + n), dstAt);
    return;
  }
  for (let i = 0; i < n; i++) dst[dstAt + i] = src[srcAt + i]!;
}

/**
 * MLA for several sequences at once: every projection runs once over all `tokens` rows of x (each
 * row rotated at its own position); each segment's latents go into its own cache and its
 * queries attend only to that cache. With `scratch`, the work buffers and the returned output
 * are scratch buffers (valid until the next call with the same scratch).
 */
export function mlaForwardSegments(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, x: Float32Array, tokens: number, segments: readonly MlaSegment[],
  mode: MlaMode = 'absorbed', plainKvUp?: Float32Array, scratch?: ScratchBuffers,
): Float32Array {
  const { heads: H, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: vDim } = cfg;
  const qk = nope + rope;
  const width = r + rope;
  const positions = scratch ? scratch.i32('mla.positions', tokens) : new Int32Array(tokens);
  placeSegments(segments, tokens, width, positions);
  const whole = segments.length === 1 && segments[0]!.row === 0 && segments[0]!.count === tokens;

  // Queries: [tokens, H, nope + rope].
  const q = f32Buffer(scratch, 'mla.q', tokens * H * qk);
  if (w.qA && w.qB && w.qANorm) {
    const cq = f32Buffer(scratch, 'mla.cq', tokens * w.qA.rows);
    smallMatmul(backend, cq, x, tokens, w.qA);
    backend.rmsNorm(cq, cq, w.qANorm, tokens, w.qA.rows, cfg.rmsNormEps);
    smallMatmul(backend, q, cq, tokens, w.qB);
  } else if (w.q) {
    smallMatmul(backend, q, x, tokens, w.q);
  } else {
    throw new Error('MLA layer has neither q_a/q_b nor q weights');
  }
  backend.rope(q, {
    tokens, heads: H, tokenStride: H * qk, headStride: qk, offset: nope, ropeDim: rope,
    positions, invFreq: cfg.invFreq, style: 'interleaved', attentionFactor: cfg.ropeAttentionFactor,
  });

  // Latent and rope key for every row, then into each sequence's cache.
  const latents = f32Buffer(scratch, 'mla.latents', tokens * width);
  computeLatents(backend, cfg, w, x, tokens, positions, latents, scratch, 'mla');
  for (const seg of segments) seg.cache.rows.set(whole ? latents : latents.subarray(seg.row * width, (seg.row + seg.count) * width), seg.startPos * width);

  const attnOut = f32Buffer(scratch, 'mla.attnOut', tokens * H * vDim);
  if (mode === 'absorbed') {
    // q' = [W_UK[h]ᵀ q_nope | q_pe] per head.
    const qAbs = f32Buffer(scratch, 'mla.qAbs', tokens * H * width);
    absorbQueryHeads(backend, cfg, w.kUpT, q, qAbs, tokens, scratch, 'mla');
    const oLat = f32Buffer(scratch, 'mla.oLat', tokens * H * r);
    for (const seg of segments) {
      backend.attention(
        whole ? oLat : oLat.subarray(seg.row * H * r, (seg.row + seg.count) * H * r),
        whole ? qAbs : qAbs.subarray(seg.row * H * width, (seg.row + seg.count) * H * width),
        seg.cache.rows, seg.cache.rows, {
          queries: seg.count, heads: H, kvHeads: 1, headDimK: width, headDimV: r, startPos: seg.startPos, scale: cfg.softmaxScale,
          kTokenStride: width, kHeadStride: 0, vTokenStride: width, vHeadStride: 0,
        },
      );
    }
    projectValueHeads(backend, cfg, w.vUp, oLat, attnOut, tokens, scratch, 'mla');
  } else {
    if (!plainKvUp) throw new Error('plain MLA needs the merged kv up-projection (mergedKvUp)');
    for (const seg of segments) {
      plainAttention(backend, cfg, plainKvUp, seg.cache, seg.startPos + seg.count,
        attnOut.subarray(seg.row * H * vDim, (seg.row + seg.count) * H * vDim), q.subarray(seg.row * H * qk, (seg.row + seg.count) * H * qk), seg.count, seg.startPos);
    }
  }
  const out = f32Buffer(scratch, 'mla.out', tokens * cfg.hiddenSize);
  smallMatmul(backend, out, attnOut, tokens, w.o);
  return out;
}

/** Plain-form attention for one sequence: materialise K = [k_nope | k_pe] and V per head for its `keys` cached tokens. */
function plainAttention(
  backend: Backend, cfg: MlaConfig, plainKvUp: Float32Array, cache: MlaLayerCache, keys: number,
  out: Float32Array, q: Float32Array, queries: number, startPos: number,
): void {
  const { heads: H, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: vDim } = cfg;
  const qk = nope + rope;
  const width = r + rope;
  const kvw = H * (nope + vDim);
  const latents = new Float32Array(keys * r);
  for (let s = 0; s < keys; s++) latents.set(cache.rows.subarray(s * width, s * width + r), s * r);
  const kv = new Float32Array(keys * kvw);
  backend.gemm(false, true, keys, kvw, r, 1, latents, r, plainKvUp, r, 0, kv, kvw);
  const k = new Float32Array(keys * H * qk);
  const v = new Float32Array(keys * H * vDim);
  for (let s = 0; s < keys; s++) {
    const kPe = cache.rows.subarray(s * width + r, (s + 1) * width);
    for (let h = 0; h < H; h++) {
      const src = s * kvw + h * (nope + vDim);
      k.set(kv.subarray(src, src + nope), (s * H + h) * qk);
      k.set(kPe, (s * H + h) * qk + nope);
      v.set(kv.subarray(src + nope, src + nope + vDim), (s * H + h) * vDim);
    }
  }
  backend.attention(out, q, k, v, {
    queries, heads: H, kvHeads: H, headDimK: qk, headDimV: vDim, startPos, scale: cfg.softmaxScale,
    kTokenStride: H * qk, kHeadStride: qk, vTokenStride: H * vDim, vHeadStride: vDim,
  });
}

// ---------------------------------------------------------------------------------------------
// One sequence of a small model, with fused weights

/**
 * One MLA layer's weights multiplied together ahead of time, for a small model whose decode step
 * costs kernel calls rather than arithmetic:
 *  - qAbs [H·(kvLora + rope), qIn] maps the query input (c_q, or x without q-lora) straight to
 *    the absorbed queries: per head, softmaxScale · [W_UK[h]ᵀ W_UQ_nope[h] ; W_UQ_rope[h]].
 *  - ov [hidden, H·kvLora] maps the attention's latent outputs straight to the layer output:
 *    W_O · blockdiag(W_UV[h]).
 * Two matmuls then replace the 2·H per-head products, and the softmax scale is already applied.
 */
export interface MlaFusedWeights {
  readonly qAbs: WeightMatrix;
  readonly ov: WeightMatrix;
}

/**
 * f32 values the fused weights of one layer would hold, or undefined when the layer cannot be
 * fused: only f32 weights are (a quantized model keeps multiplying its quantized weights, with
 * the activation rounding that goes with them, as llama.cpp does).
 */
export function mlaFusedWeightValues(cfg: MlaConfig, w: MlaWeights): number | undefined {
  const qUp = w.qB ?? w.q;
  if (!qUp || [qUp, w.o, ...w.kUpT, ...w.vUp].some((m) => m.dtype !== 'f32')) return undefined;
  return cfg.heads * mlaCacheWidth(cfg) * qUp.cols + cfg.hiddenSize * cfg.heads * cfg.kvLoraRank;
}

/** Builds the fused weights of one layer (f32, whatever the dtype of the originals). */
export function fuseMlaWeights(backend: Backend, cfg: MlaConfig, w: MlaWeights): MlaFusedWeights {
  const { heads: H, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope, vHeadDim: vDim, hiddenSize: d } = cfg;
  const qk = nope + rope;
  const width = r + rope;
  const qUp = w.qB ?? w.q;
  if (!qUp) throw new Error('MLA layer has neither q_a/q_b nor q weights');
  const qIn = qUp.cols;
  const q = dequantizeAll(backend, qUp);
  const qAbs = new Float32Array(H * width * qIn);
  const kUp = new Float32Array(r * nope);
  for (let h = 0; h < H; h++) {
    backend.dequantizeRows(kUp, w.kUpT[h]!, 0, r);
    const at = h * width * qIn;
    // rows [at, at + r): scale · W_UK[h]ᵀ · W_UQ_nope[h]
    backend.gemm(false, false, r, qIn, nope, cfg.softmaxScale, kUp, nope, q.subarray(h * qk * qIn), qIn, 0, qAbs.subarray(at), qIn);
    const ropeRows = q.subarray((h * qk + nope) * qIn, (h + 1) * qk * qIn);
    for (let i = 0; i < ropeRows.length; i++) qAbs[at + r * qIn + i] = ropeRows[i]! * cfg.softmaxScale;
  }
  const o = dequantizeAll(backend, w.o);
  const ov = new Float32Array(d * H * r);
  const vUp = new Float32Array(vDim * r);
  for (let h = 0; h < H; h++) {
    backend.dequantizeRows(vUp, w.vUp[h]!, 0, vDim);
    // columns [h·r, (h+1)·r) of ov: W_O[:, h·v .. (h+1)·v) · W_UV[h]
    backend.gemm(false, false, d, r, vDim, 1, o.subarray(h * vDim), H * vDim, vUp, r, 0, ov.subarray(h * r), H * r);
  }
  return { qAbs: f32Weight(qAbs, H * width, qIn), ov: f32Weight(ov, d, H * r) };
}

/** Most attention scores (query rows · heads · keys) computed at once by mlaForwardFused. */
const SCORE_VALUES = 1 << 20;
/** Most query rows whose attention mlaForwardFused hands to Backend.attentionSegments (decode steps, verifies, drafts). */
const SEGMENT_QUERY_ROWS = 16;
/**
 * Most heads for that: the segment kernel reads the cached keys once per head or pair of heads,
 * where the scores matmul reads them once for all heads.
 */
const SEGMENT_HEADS = 8;

/**
 * MLA (absorbed form) for `tokens` new tokens of ONE sequence with the fused weights: the same
 * maths as mlaForwardSegments in fewer kernel calls. Attention over the cache: up to 16 query rows
 * (a decode step, a verify, a draft) of up to 8 heads in one Backend.attentionSegments call where
 * the backend has it, each row on its own; more rows (a prompt) or heads, or a backend without it,
 * as two matmuls and a softmax (scores = q'·K over the cached rows, causal mask among the new
 * rows, then the probabilities times the latents) in blocks of queries (at most `maxScores`
 * scores at once). A decode step's row and the same row in a verify get the same bits. Every row enters the cache;
 * only the last `queryRows` rows attend (a caller that needs only the last rows' outputs, such
 * as a one-layer drafter, skips the others' queries). The returned output [queryRows, hidden] is
 * a scratch buffer.
 */
export function mlaForwardFused(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, fused: MlaFusedWeights, x: Float32Array, tokens: number, startPos: number,
  cache: MlaLayerCache, scratch: ScratchBuffers, queryRows = tokens, maxScores = SCORE_VALUES,
): Float32Array {
  const { heads: H, kvLoraRank: r, qkRopeHeadDim: rope } = cfg;
  const width = r + rope;
  if (cache.width !== width) throw new Error(`MLA cache rows hold ${cache.width} values, this layer needs ${width}`);
  if (!Number.isInteger(queryRows) || queryRows < 1 || queryRows > tokens) throw new Error(`MLA query rows must be 1..${tokens}, got ${queryRows}`);
  const keys = startPos + tokens;
  cache.reserve(keys);
  const positions = scratch.i32('mla.positions', tokens);
  for (let t = 0; t < tokens; t++) positions[t] = startPos + t;
  const skipped = tokens - queryRows;
  const xq = skipped === 0 ? x : x.subarray(skipped * cfg.hiddenSize);

  // Absorbed, scaled queries [queryRows, H, width], rotated.
  const qAbs = scratch.f32('mla.qAbs', queryRows * H * width);
  if (w.qA && w.qANorm) {
    const cq = scratch.f32('mla.cq', queryRows * w.qA.rows);
    smallMatmul(backend, cq, xq, queryRows, w.qA);
    backend.rmsNorm(cq, cq, w.qANorm, queryRows, w.qA.rows, cfg.rmsNormEps);
    smallMatmul(backend, qAbs, cq, queryRows, fused.qAbs);
  } else {
    smallMatmul(backend, qAbs, xq, queryRows, fused.qAbs);
  }
  backend.rope(qAbs, {
    tokens: queryRows, heads: H, tokenStride: H * width, headStride: width, offset: r, ropeDim: rope,
    positions: skipped === 0 ? positions : positions.subarray(skipped), invFreq: cfg.invFreq, style: 'interleaved', attentionFactor: cfg.ropeAttentionFactor,
  });

  // The new rows' latents and rope keys, straight into the cache; several rows' latents are
  // normalized in one call on a contiguous copy.
  const rows = cache.rows;
  computeLatents(backend, cfg, w, x, tokens, positions, rows.subarray(startPos * width, keys * width), scratch, 'mla');

  const oLat = scratch.f32('mla.oLat', queryRows * H * r);
  if (queryRows <= SEGMENT_QUERY_ROWS && H <= SEGMENT_HEADS && backend.attentionSegments) {
    // a decode step, a verify, a draft: each row's scores, softmax and values in one native call
    // (per row, so a row's bits do not depend on how many rows share the call)
    const segment = scratch.i32('mla.segment', 3);
    segment[0] = 0;
    segment[1] = queryRows;
    segment[2] = startPos + skipped;
    backend.attentionSegments(oLat, qAbs, [rows], segment, { heads: H, headDimK: width, headDimV: r, stride: width, scale: 1 });
  } else {
    attendInBlocks(backend, H, width, r, keys, startPos + skipped, queryRows, qAbs, rows, oLat, scratch, maxScores);
  }
  const out = scratch.f32('mla.out', queryRows * cfg.hiddenSize);
  smallMatmul(backend, out, oLat, queryRows, fused.ov);
  return out;
}

/**
 * mlaForwardFused's attention for many query rows (a prompt): per block of queries, scores
 * [rows·H, keys] (query j sees keys 0 .. first + j), softmax, then times the latents.
 */
function attendInBlocks(
  backend: Backend, H: number, width: number, r: number, keys: number, first: number, queryRows: number,
  qAbs: Float32Array, rows: Float32Array, oLat: Float32Array, scratch: ScratchBuffers, maxScores: number,
): void {
  const block = Math.max(1, Math.min(queryRows, Math.floor(maxScores / (H * keys))));
  const scores = scratch.f32('mla.scores', block * H * keys);
  for (let j0 = 0; j0 < queryRows; j0 += block) {
    const n = Math.min(block, queryRows - j0);
    const seen = first + j0 + 1; // keys the block's first query sees
    const used = Math.min(keys, seen + n - 1); // keys its last query sees
    const s = scores.subarray(0, n * H * used);
    backend.matmul(s, qAbs.subarray(j0 * H * width, (j0 + n) * H * width), n * H, f32Weight(rows.subarray(0, used * width), used, width));
    for (let j = 0; j < n - 1; j++) {
      for (let h = 0; h < H; h++) s.fill(-Infinity, (j * H + h) * used + seen + j, (j * H + h + 1) * used);
    }
    backend.softmax(s, n * H, used);
    backend.gemm(false, false, n * H, r, used, 1, s, used, rows, width, 0, oLat.subarray(j0 * H * r), r);
  }
}
