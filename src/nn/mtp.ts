/**
 * DeepSeek-V3 Multi-Token Prediction module, depth 1 (../shared/spec/model-and-training.md §4):
 *
 *   h'_i = eh_proj( concat( enorm(Emb(t_{i+1})), hnorm(h_i) ) )    -- embedding first
 *   h''  = TRM(h')                                                 -- one full decoder block, own cache
 *   P    = softmax( head( shared_head.norm(h'') ) )                 -- predicts t_{i+2}
 *
 * `h_i` is the main model's final-normalized hidden state at position i (what llama.cpp and
 * vLLM hand to the MTP block). The embedding and head default to the main model's when the
 * checkpoint has no copies.
 */
import type { Backend } from '../tensor/backend.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import { type ScratchBuffers, f32Buffer } from './scratch.js';
import { smallMatmul } from './small-matmul.js';

export interface MtpWeights {
  readonly enorm: Float32Array;
  readonly hnorm: Float32Array;
  /** [hidden, 2·hidden]. */
  readonly ehProj: WeightMatrix;
  /** shared_head.norm (falls back to the main output norm). */
  readonly headNorm?: Float32Array;
  /** shared_head.head (falls back to the main lm_head). */
  readonly head?: WeightMatrix;
  /** embed_tokens copy (falls back to the main embedding). */
  readonly embed?: WeightMatrix;
}

export interface MtpContext {
  readonly backend: Backend;
  readonly hiddenSize: number;
  readonly rmsNormEps: number;
  readonly embed: WeightMatrix;
  readonly outputNorm: Float32Array;
  readonly output: WeightMatrix;
  /**
   * Runs the module's decoder block in place on x [tokens, hidden] at positions startPos...;
   * every row enters its cache, and at least the last `outRows` rows of x are brought through it.
   */
  readonly block: (x: Float32Array, tokens: number, outRows: number) => void;
  /** Work buffers reused across calls (the returned logits are always fresh). */
  readonly scratch?: ScratchBuffers;
}

/**
 * Draft logits [n, vocab] for n positions: hidden [n, hidden] (main model, final-normalized)
 * and nextTokens [n] (the token that follows each of those positions).
 */
export function mtpForward(ctx: MtpContext, w: MtpWeights, hidden: Float32Array, nextTokens: Int32Array): Float32Array {
  return mtpForwardStates(ctx, w, hidden, nextTokens, nextTokens.length).logits;
}

/**
 * mtpForward for the last `logitRows` positions: their logits [logitRows, vocab] and the
 * module's output states [logitRows, hidden] (after shared_head.norm), both fresh. All n
 * positions enter the module's cache.
 */
export function mtpForwardStates(
  ctx: MtpContext, w: MtpWeights, hidden: Float32Array, nextTokens: Int32Array, logitRows: number,
): { logits: Float32Array; states: Float32Array } {
  const { backend, hiddenSize: d, rmsNormEps: eps } = ctx;
  const n = nextTokens.length;
  if (hidden.length !== n * d) throw new Error(`MTP hidden states hold ${hidden.length} values, expected ${n}·${d}`);
  if (!Number.isInteger(logitRows) || logitRows < 1 || logitRows > n) throw new Error(`MTP logit rows must be 1..${n}, got ${logitRows}`);
  if (w.ehProj.rows !== d || w.ehProj.cols !== 2 * d) {
    throw new Error(`MTP eh_proj is [${w.ehProj.rows}, ${w.ehProj.cols}], expected [${d}, ${2 * d}]`);
  }
  const scratch = ctx.scratch;
  // cat = [enorm(emb) | hnorm(hidden)] per position; for one position the halves are views of cat.
  const cat = f32Buffer(scratch, 'mtp.cat', n * 2 * d);
  const emb = n === 1 ? cat.subarray(0, d) : f32Buffer(scratch, 'mtp.emb', n * d);
  const h = n === 1 ? cat.subarray(d, 2 * d) : f32Buffer(scratch, 'mtp.h', n * d);
  backend.embeddingGather(emb, w.embed ?? ctx.embed, nextTokens);
  backend.rmsNorm(emb, emb, w.enorm, n, d, eps);
  backend.rmsNorm(h, hidden, w.hnorm, n, d, eps);
  if (n > 1) {
    for (let i = 0; i < n; i++) {
      cat.set(emb.subarray(i * d, (i + 1) * d), i * 2 * d);
      cat.set(h.subarray(i * d, (i + 1) * d), i * 2 * d + d);
    }
  }
  const x = f32Buffer(scratch, 'mtp.x', n * d);
  smallMatmul(backend, x, cat, n, w.ehProj);
  ctx.block(x, n, logitRows);
  const states = new Float32Array(logitRows * d);
  backend.rmsNorm(states, x.subarray((n - logitRows) * d), w.headNorm ?? ctx.outputNorm, logitRows, d, eps);
  const head = w.head ?? ctx.output;
  const logits = new Float32Array(logitRows * head.rows);
  smallMatmul(backend, logits, states, logitRows, head);
  return { logits, states };
}
