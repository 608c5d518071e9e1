import { type Var, result } from './var.js';
import { outputFloats } from './pool.js';
import { nativeKernelsFor } from './native-kernels.js';

export type RopeStyle = 'interleaved' | 'neox';

/**
 * Rotary position embedding over x [..., heads, dim] (dim = 2 · invFreq.length), one position
 * per token (x.size / (heads · dim) tokens). Pair i rotates by angle positions[t] · invFreq[i]:
 * 'interleaved' pairs (2i, 2i+1) (GPT-J, DeepSeek MLA), 'neox' pairs (i, i + dim/2) (Llama/Qwen2
 * HF layout). cos and sin are scaled by attentionFactor (YaRN mscale; 1 otherwise).
 * The rotation is orthogonal, so the backward rotates the gradient by −angle (times the factor).
 */
export function rope(x: Var, positions: Int32Array, invFreq: Float32Array, style: RopeStyle, attentionFactor = 1): Var {
  if (x.rank < 2) throw new Error(`rope: ${x.toString()} must be [..., heads, dim]`);
  const dim = x.shape[x.rank - 1]!;
  const heads = x.shape[x.rank - 2]!;
  if (dim !== 2 * invFreq.length) throw new Error(`rope: last axis of ${x.toString()} is ${dim}, invFreq has ${invFreq.length} frequencies (needs dim / 2)`);
  const tokens = heads * dim === 0 ? 0 : x.size / (heads * dim);
  if (positions.length !== tokens) throw new Error(`rope: ${positions.length} positions for ${tokens} tokens of ${x.toString()}`);
  const { cos, sin } = rotationTable(positions, invFreq, attentionFactor);
  const value = outputFloats(x.size);
  ropeKernels.rotate(value, x.value, cos, sin, tokens, heads, dim, style, 1);
  return result(value, x.shape, [x], (out) => () => {
    ropeKernels.rotate(x.gradBuffer(), out.grad!, cos, sin, tokens, heads, dim, style, -1, true);
  });
}

interface RotationTable {
  positions: Int32Array;
  invFreq: Float32Array;
  factor: number;
  cos: Float32Array;
  sin: Float32Array;
}

/** The last few tables (a training forward rotates q and k of every layer at the same positions). */
const recentTables: RotationTable[] = [];
const RECENT_TABLES = 4;

/**
 * cos and sin [tokens, dim/2] of positions[t] · invFreq[i], times factor; remembered for the same
 * positions (by value), invFreq and factor (never modified: backward closures keep them).
 */
function rotationTable(positions: Int32Array, invFreq: Float32Array, factor: number): RotationTable {
  const same = (t: RotationTable) => t.invFreq === invFreq && t.factor === factor && t.positions.length === positions.length &&
    t.positions.every((p, i) => p === positions[i]);
  const found = recentTables.find(same);
  if (found) return found;
  const half = invFreq.length;
  const tokens = positions.length;
  const cos = new Float32Array(tokens * half);
  const sin = new Float32Array(tokens * half);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[t]! * invFreq[i]!;
      cos[t * half + i] = Math.cos(angle) * factor;
      sin[t * half + i] = Math.sin(angle) * factor;
    }
  }
  const table = { positions: Int32Array.from(positions), invFreq, factor, cos, sin };
  recentTables.unshift(table);
  recentTables.length = Math.min(recentTables.length, RECENT_TABLES);
  return table;
}

/**
 * out = R(sign · angle) · x per pair, with precomputed cos/sin [tokens, dim/2]. With accumulate,
 * adds into out instead of overwriting it (the backward).
 */
export function ropeRotate(
  out: Float32Array, x: Float32Array, cos: Float32Array, sin: Float32Array,
  tokens: number, heads: number, dim: number, style: RopeStyle, sign: 1 | -1, accumulate = false,
): void {
  const half = dim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * dim;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i]!;
        const s = sign * sin[t * half + i]!;
        const ia = base + (style === 'interleaved' ? 2 * i : i);
        const ib = base + (style === 'interleaved' ? 2 * i + 1 : i + half);
        const a = x[ia]!;
        const b = x[ib]!;
        if (accumulate) {
          out[ia]! += a * c - b * s;
          out[ib]! += a * s + b * c;
        } else {
          out[ia] = a * c - b * s;
          out[ib] = a * s + b * c;
        }
      }
    }
  }
}

/** Standard RoPE inverse frequencies base^(−2i/dim), i < dim/2. */
export function ropeInvFreq(dim: number, base: number): Float32Array {
  if (dim % 2 !== 0) throw new Error(`ropeInvFreq: dim ${dim} is odd`);
  const f = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) f[i] = Math.pow(base, (-2 * i) / dim);
  return f;
}

/**
 * The kernels this op runs (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const ropeKernels: { rotate: typeof ropeRotate } = { rotate: ropeRotate, ...nativeKernelsFor('rope') };
