import { type Var, result } from './var.js';
import { outputFloats } from './pool.js';
import { gemm } from './compute.js';
import { nativeKernelsFor } from './native-kernels.js';

export interface AttentionShape {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDimK: number;
  headDimV: number;
  scale: number;
  causal: boolean;
}

/**
 * Scaled dot-product self-attention with grouped KV heads:
 *   q [B, T, H, Dk], k [B, T, Hkv, Dk], v [B, T, Hkv, Dv] → out [B, T, H, Dv],
 *   out[b,t,h] = Σ_s softmax_s(scale · q[b,t,h] · k[b,s,g(h)]) · v[b,s,g(h)],  g(h) = floor(h / (H / Hkv)),
 * with s ≤ t when causal (the default). scale defaults to 1/sqrt(Dk) (pass MLA's 192^-0.5 · mscale²).
 * The forward keeps the probabilities P [B, H, T, T]; the backward is four GEMMs per head:
 *   dP = dO · Vᵀ,  dS = P ∘ (dP − rowsum(dP ∘ P)),  dQ = scale · dS · K,  dK = scale · dSᵀ · Q,  dV = Pᵀ · dO.
 */
export function attention(q: Var, k: Var, v: Var, options: { scale?: number; causal?: boolean } = {}): Var {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new Error(`attention: q ${q.toString()}, k ${k.toString()}, v ${v.toString()} must be [batch, seq, heads, dim]`);
  const [batch, seq, heads, headDimK] = q.shape as [number, number, number, number];
  const kvHeads = k.shape[2]!;
  const headDimV = v.shape[3]!;
  if (k.shape[0] !== batch || k.shape[1] !== seq || k.shape[3] !== headDimK) throw new Error(`attention: k ${k.toString()} does not match q ${q.toString()}`);
  if (v.shape[0] !== batch || v.shape[1] !== seq || v.shape[2] !== kvHeads) throw new Error(`attention: v ${v.toString()} does not match k ${k.toString()}`);
  if (kvHeads === 0 || heads % kvHeads !== 0) throw new Error(`attention: ${heads} query heads are not a multiple of ${kvHeads} kv heads`);
  const shape: AttentionShape = {
    batch, seq, heads, kvHeads, headDimK, headDimV,
    scale: options.scale ?? 1 / Math.sqrt(headDimK), causal: options.causal ?? true,
  };
  const value = outputFloats(batch * seq * heads * headDimV);
  const probs = outputFloats(batch * heads * seq * seq);
  attentionKernels.forward(value, probs, q.value, k.value, v.value, shape);
  return result(value, [batch, seq, heads, headDimV], [q, k, v], (out) => () => {
    attentionKernels.backward(
      q.requiresGrad ? q.gradBuffer() : null, k.requiresGrad ? k.gradBuffer() : null, v.requiresGrad ? v.gradBuffer() : null,
      out.grad!, probs, q.value, k.value, v.value, shape,
    );
  });
}

interface HeadView {
  qOff: number;
  kOff: number;
  vOff: number;
  oOff: number;
  pOff: number;
}

function headView(s: AttentionShape, b: number, h: number): HeadView {
  const g = Math.floor(h / (s.heads / s.kvHeads));
  return {
    qOff: b * s.seq * s.heads * s.headDimK + h * s.headDimK,
    kOff: b * s.seq * s.kvHeads * s.headDimK + g * s.headDimK,
    vOff: b * s.seq * s.kvHeads * s.headDimV + g * s.headDimV,
    oOff: b * s.seq * s.heads * s.headDimV + h * s.headDimV,
    pOff: (b * s.heads + h) * s.seq * s.seq,
  };
}

export function attentionForward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): void {
  const T = s.seq;
  for (let b = 0; b < s.batch; b++) {
    for (let h = 0; h < s.heads; h++) {
      const at = headView(s, b, h);
      const p = probs.subarray(at.pOff, at.pOff + T * T);
      gemm(false, true, T, T, s.headDimK, s.scale, q.subarray(at.qOff), s.heads * s.headDimK, k.subarray(at.kOff), s.kvHeads * s.headDimK, 0, p, T);
      for (let i = 0; i < T; i++) {
        const row = i * T;
        const last = s.causal ? i : T - 1;
        let max = -Infinity;
        for (let j = 0; j <= last; j++) if (p[row + j]! > max) max = p[row + j]!;
        let total = 0;
        for (let j = 0; j <= last; j++) {
          const e = Math.exp(p[row + j]! - max);
          p[row + j] = e;
          total += e;
        }
        const inv = 1 / total;
        for (let j = 0; j <= last; j++) p[row + j]! *= inv;
        for (let j = last + 1; j < T; j++) p[row + j] = 0;
      }
      gemm(false, false, T, s.headDimV, T, 1, p, T, v.subarray(at.vOff), s.kvHeads * s.headDimV, 0, out.subarray(at.oOff), s.heads * s.headDimV);
    }
  }
}

/** Accumulates (+=) into dq, dk, dv where not null. */
export function attentionBackward(
  dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null,
  dout: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape,
): void {
  const T = s.seq;
  const ldq = s.heads * s.headDimK;
  const ldk = s.kvHeads * s.headDimK;
  const ldv = s.kvHeads * s.headDimV;
  const ldo = s.heads * s.headDimV;
  const dS = new Float32Array(T * T);
  for (let b = 0; b < s.batch; b++) {
    for (let h = 0; h < s.heads; h++) {
      const at = headView(s, b, h);
      const p = probs.subarray(at.pOff, at.pOff + T * T);
      const dO = dout.subarray(at.oOff);
      if (dv !== null) gemm(true, false, T, s.headDimV, T, 1, p, T, dO, ldo, 1, dv.subarray(at.vOff), ldv);
      if (dq === null && dk === null) continue;
      gemm(false, true, T, T, s.headDimV, 1, dO, ldo, v.subarray(at.vOff), ldv, 0, dS, T);
      for (let i = 0; i < T; i++) {
        const row = i * T;
        let dot = 0;
        for (let j = 0; j < T; j++) dot += dS[row + j]! * p[row + j]!;
        for (let j = 0; j < T; j++) dS[row + j] = p[row + j]! * (dS[row + j]! - dot);
      }
      if (dq !== null) gemm(false, false, T, s.headDimK, T, s.scale, dS, T, k.subarray(at.kOff), ldk, 1, dq.subarray(at.qOff), ldq);
      if (dk !== null) gemm(true, false, T, s.headDimK, T, s.scale, dS, T, q.subarray(at.qOff), ldq, 1, dk.subarray(at.kOff), ldk);
    }
  }
}

/**
 * The kernels this op runs (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const attentionKernels: { forward: typeof attentionForward; backward: typeof attentionBackward } = {
  forward: attentionForward, backward: attentionBackward, ...nativeKernelsFor('attention'),
};
