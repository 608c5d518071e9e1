/**
 * MLA in its absorbed form for the rows of several sequences at once, as a model's forwardBatch
 * runs it (continuous batching: a few decode steps and prompt chunks of different sequences, each
 * sequence attending to its own cache). Same maths as mlaForwardSegments (./mla.ts), in fewer
 * kernel calls and thread-pool wake-ups, which is what a batch of small decode steps costs:
 *  - the latents of all rows are normalized by one rmsNorm call (gathered into one block and
 *    scattered back) instead of one call per row;
 *  - the attention of every sequence is one Backend.attentionSegments call where the backend has
 *    it (native), otherwise one attention call per sequence; small ones run on the calling thread
 *    (the kernel would otherwise wake the pool for a few microseconds of work: microseconds of
 *    wake-up on an idle machine, up to a scheduler time slice on a busy one);
 *  - with the layer's fused weights (`MlaFusedWeights`, ./mla.ts: W_UK absorbed into the query
 *    projection, W_UV into the output projection, softmax scale included), the 2·H per-head
 *    products become two matmuls, as in the single-sequence forward of a small model.
 */
import type { Backend, AttentionParams } from '../tensor/backend.js';
import { withSerialKernels } from '../tensor/index.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { attendSegments, attentionIsSmall } from './attention.js';
import { smallMatmul } from './small-matmul.js';
import { type MlaConfig, type MlaFusedWeights, type MlaSegment, type MlaWeights, absorbQueryHeads, computeLatents, placeSegments, projectValueHeads } from './mla.js';
import type { ScratchBuffers } from './scratch.js';

/**
 * The MLA output [tokens, hidden] (a scratch buffer) for x [tokens, hidden] (already
 * RMS-normalized) whose rows belong to `segments`; appends each segment's latents to its cache.
 */
export function mlaForwardBatch(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, x: Float32Array, tokens: number, segments: readonly MlaSegment[],
  scratch: ScratchBuffers, fused?: MlaFusedWeights,
): Float32Array {
  const { heads: H, kvLoraRank: r, qkRopeHeadDim: rope, vHeadDim: vDim } = cfg;
  const width = r + rope;
  const positions = scratch.i32('mlab.positions', tokens);
  placeSegments(segments, tokens, width, positions);
  const qAbs = absorbedQueries(backend, cfg, w, x, tokens, positions, scratch, fused);

  // Latents [c_kv | k_pe] of every row: one normalization of all c_kv, one rope, then into the caches.
  const latents = scratch.f32('mlab.latents', tokens * width);
  computeLatents(backend, cfg, w, x, tokens, positions, latents, scratch, 'mlab');
  for (const seg of segments) seg.cache.rows.set(latents.subarray(seg.row * width, (seg.row + seg.count) * width), seg.startPos * width);

  // Each segment's queries attend to its own cache: K = [c_kv | k_pe], V = c_kv (one KV head).
  const oLat = scratch.f32('mlab.oLat', tokens * H * r);
  const params: AttentionParams = {
    queries: 0, heads: H, kvHeads: 1, headDimK: width, headDimV: r, startPos: 0, scale: fused ? 1 : cfg.softmaxScale,
    kTokenStride: width, kHeadStride: 0, vTokenStride: width, vHeadStride: 0,
  };
  if (backend.attentionSegments) {
    const segs = scratch.i32('mlab.segments', 3 * segments.length);
    segments.forEach((seg, i) => {
      segs[3 * i] = seg.row;
      segs[3 * i + 1] = seg.count;
      segs[3 * i + 2] = seg.startPos;
    });
    const caches = segments.map((seg) => seg.cache.rows);
    const attend = (): void => backend.attentionSegments!(oLat, qAbs, caches, segs, { heads: H, headDimK: width, headDimV: r, stride: width, scale: params.scale });
    // all on the calling thread unless some segment's attention is large enough to pay a pool wake-up
    if (segments.every((seg) => attentionIsSmall(H, seg.startPos + seg.count, width, r))) withSerialKernels(attend);
    else attend();
  } else {
    attendEach(backend, segments, tokens, qAbs, oLat, params, H, width, r);
  }

  const out = scratch.f32('mlab.out', tokens * cfg.hiddenSize);
  if (fused) {
    smallMatmul(backend, out, oLat, tokens, fused.ov);
    return out;
  }
  // o[h] = W_UV[h] o_lat[h] for every row, then the output projection.
  const attnOut = scratch.f32('mlab.attnOut', tokens * H * vDim);
  projectValueHeads(backend, cfg, w.vUp, oLat, attnOut, tokens, scratch, 'mlab');
  smallMatmul(backend, out, attnOut, tokens, w.o);
  return out;
}

/** Without Backend.attentionSegments: one attention call per segment (the small ones on the calling thread). */
function attendEach(
  backend: Backend, segments: readonly MlaSegment[], tokens: number, qAbs: Float32Array, oLat: Float32Array, params: AttentionParams, H: number, width: number, r: number,
): void {
  const whole = segments.length === 1 && segments[0]!.row === 0 && segments[0]!.count === tokens;
  const attend = (seg: MlaSegment): void => {
    params.queries = seg.count;
    params.startPos = seg.startPos;
    const rows = seg.cache.rows;
    backend.attention(
      whole ? oLat : oLat.subarray(seg.row * H * r, (seg.row + seg.count) * H * r),
      whole ? qAbs : qAbs.subarray(seg.row * H * width, (seg.row + seg.count) * H * width), rows, rows, params,
    );
  };
  attendSegments(segments, H, width, r, attend);
}

/** The absorbed queries [tokens, H, kvLora + rope], rotated at each row's position (scaled when fused). */
function absorbedQueries(
  backend: Backend, cfg: MlaConfig, w: MlaWeights, x: Float32Array, tokens: number, positions: Int32Array,
  scratch: ScratchBuffers, fused: MlaFusedWeights | undefined,
): Float32Array {
  const { heads: H, kvLoraRank: r, qkNopeHeadDim: nope, qkRopeHeadDim: rope } = cfg;
  const qk = nope + rope;
  const width = r + rope;
  let input = x;
  let qUp: WeightMatrix;
  if (w.qA && w.qB && w.qANorm) {
    input = scratch.f32('mlab.cq', tokens * w.qA.rows);
    smallMatmul(backend, input, x, tokens, w.qA);
    backend.rmsNorm(input, input, w.qANorm, tokens, w.qA.rows, cfg.rmsNormEps);
    qUp = w.qB;
  } else if (w.q) {
    qUp = w.q;
  } else {
    throw new Error('MLA layer has neither q_a/q_b nor q weights');
  }
  const qAbs = scratch.f32('mlab.qAbs', tokens * H * width);
  const ropeParams = (tokenStride: number, headStride: number, offset: number) => ({
    tokens, heads: H, ropeDim: rope, positions, invFreq: cfg.invFreq, style: 'interleaved' as const, attentionFactor: cfg.ropeAttentionFactor, tokenStride, headStride, offset,
  });
  if (fused) {
    smallMatmul(backend, qAbs, input, tokens, fused.qAbs);
    backend.rope(qAbs, ropeParams(H * width, width, r));
    return qAbs;
  }
  const q = scratch.f32('mlab.q', tokens * H * qk);
  smallMatmul(backend, q, input, tokens, qUp);
  backend.rope(q, ropeParams(H * qk, qk, nope));
  absorbQueryHeads(backend, cfg, w.kUpT, q, qAbs, tokens, scratch, 'mlab');
  return qAbs;
}
