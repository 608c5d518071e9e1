/**
 * Rotary position embedding tables: the inverse frequencies of each rotated pair and the factor
 * applied to cos/sin, for plain RoPE and the scaled variants (linear, llama3, YaRN, and GGUF's
 * per-frequency divisor table `rope_freqs.weight`). The rotation itself is the backend's `rope`.
 *
 * Plain RoPE: invFreq[i] = base^(-2i/dim), i = 0 .. dim/2 - 1 (pair i turns by pos · invFreq[i]).
 * YaRN follows ../shared/spec/model-and-training.md §2.3-2.4 (HF `_compute_yarn_parameters`,
 * DeepSeek's `yarn_get_mscale`); llama3 follows HF `_compute_llama3_parameters`.
 */

export interface YarnScaling {
  readonly type: 'yarn';
  /** Context extension factor s (DeepSeek-V3: 40). */
  readonly factor: number;
  /** Context length the model was trained with before extension (DeepSeek-V3: 4096). */
  readonly originalContext: number;
  readonly betaFast?: number;
  readonly betaSlow?: number;
  /** DeepSeek's `mscale` and `mscale_all_dim` (cos/sin factor = mscale(s, mscale) / mscale(s, mscaleAllDim)). */
  readonly mscale?: number;
  readonly mscaleAllDim?: number;
  /** Explicit cos/sin factor (HF `attention_factor`), overriding the mscale rule. */
  readonly attentionFactor?: number;
}

export interface Llama3Scaling {
  readonly type: 'llama3';
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContext: number;
}

export type RopeScaling =
  | { readonly type: 'none' }
  /** Position interpolation: every frequency divided by factor. */
  | { readonly type: 'linear'; readonly factor: number }
  | Llama3Scaling
  | YarnScaling
  /** GGUF `rope_freqs.weight`: invFreq[i] = base^(-2i/dim) / factors[i] (how llama3 scaling is stored). */
  | { readonly type: 'freq_factors'; readonly factors: Float32Array };

export interface RopeTables {
  /** dim/2 inverse frequencies (radians per position). */
  readonly invFreq: Float32Array;
  /** Factor multiplied into cos and sin (1 except for YaRN). */
  readonly attentionFactor: number;
}

function checkDim(dim: number): void {
  if (!Number.isInteger(dim) || dim <= 0 || dim % 2 !== 0) throw new Error(`rope dimension must be a positive even integer, got ${dim}`);
}

/** base^(-2i/dim) for i = 0 .. dim/2 - 1, computed in double precision. */
export function baseInvFreqF64(dim: number, base: number): Float64Array {
  checkDim(dim);
  if (!(base > 0)) throw new Error(`rope base (freq_base / rope_theta) must be positive, got ${base}`);
  const out = new Float64Array(dim / 2);
  for (let i = 0; i < out.length; i++) out[i] = Math.pow(base, (-2 * i) / dim);
  return out;
}

/** YaRN's magnitude correction: 1 for s <= 1, else 0.1 · m · ln(s) + 1. */
export function yarnGetMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/** The dimension index (of `dim`) at which a frequency makes `rotations` turns over `originalContext` positions. */
export function yarnCorrectionDim(rotations: number, dim: number, base: number, originalContext: number): number {
  return (dim * Math.log(originalContext / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
}

/** [low, high] pair indices between which YaRN ramps from extrapolation to interpolation. */
export function yarnCorrectionRange(dim: number, base: number, y: YarnScaling): [number, number] {
  const low = Math.floor(yarnCorrectionDim(y.betaFast ?? 32, dim, base, y.originalContext));
  const high = Math.ceil(yarnCorrectionDim(y.betaSlow ?? 1, dim, base, y.originalContext));
  return [Math.max(low, 0), Math.min(high, dim - 1)];
}

/**
 * YaRN inverse frequencies: θ'_i = θ_i · (1 - ramp_i) + (θ_i / s) · ramp_i with
 * ramp_i = clamp((i - low) / (high - low), 0, 1): pairs below `low` keep their frequency,
 * pairs above `high` are interpolated by s.
 */
export function yarnInvFreq(dim: number, base: number, y: YarnScaling): Float32Array {
  if (!(y.factor > 0)) throw new Error(`yarn factor must be positive, got ${y.factor}`);
  const theta = baseInvFreqF64(dim, base);
  const [low, high] = yarnCorrectionRange(dim, base, y);
  const span = high === low ? 0.001 : high - low;
  const out = new Float32Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    const ramp = Math.min(1, Math.max(0, (i - low) / span));
    out[i] = theta[i]! * (1 - ramp) + (theta[i]! / y.factor) * ramp;
  }
  return out;
}

/**
 * The cos/sin factor YaRN applies: the explicit attentionFactor when given, else
 * mscale(s, mscale) / mscale(s, mscaleAllDim) when both are given (1.0 for DeepSeek-V3 and
 * V2-Lite), else mscale(s).
 */
export function yarnAttentionFactor(y: YarnScaling): number {
  if (y.attentionFactor !== undefined) return y.attentionFactor;
  if (y.mscale !== undefined && y.mscaleAllDim !== undefined) {
    return yarnGetMscale(y.factor, y.mscale) / yarnGetMscale(y.factor, y.mscaleAllDim);
  }
  return yarnGetMscale(y.factor);
}

/**
 * DeepSeek's attention softmax scale: headDimK^-0.5 · mscale(s, mscaleAllDim)², or headDimK^-0.5
 * without YaRN (or when mscaleAllDim is missing or 0).
 */
export function yarnSoftmaxScale(headDimK: number, y: YarnScaling | undefined): number {
  const base = 1 / Math.sqrt(headDimK);
  if (!y || !y.mscaleAllDim) return base;
  const m = yarnGetMscale(y.factor, y.mscaleAllDim);
  return base * m * m;
}

/**
 * Llama-3.1 per-frequency divisors (the values llama.cpp's converter stores in `rope_freqs.weight`):
 * 1 for short wavelengths, factor for long ones, a smooth blend in between.
 */
export function llama3FreqFactors(dim: number, base: number, s: Llama3Scaling): Float32Array {
  const theta = baseInvFreqF64(dim, base);
  const lowFreqWavelen = s.originalContext / s.lowFreqFactor;
  const highFreqWavelen = s.originalContext / s.highFreqFactor;
  const out = new Float32Array(theta.length);
  for (let i = 0; i < theta.length; i++) {
    const wavelen = (2 * Math.PI) / theta[i]!;
    if (wavelen < highFreqWavelen) out[i] = 1;
    else if (wavelen > lowFreqWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** Inverse frequencies and cos/sin factor for `dim` rotated values per head. */
export function ropeTables(dim: number, base: number, scaling: RopeScaling = { type: 'none' }): RopeTables {
  const theta = baseInvFreqF64(dim, base);
  switch (scaling.type) {
    case 'none':
      return { invFreq: Float32Array.from(theta), attentionFactor: 1 };
    case 'linear':
      if (!(scaling.factor > 0)) throw new Error(`linear rope scaling factor must be positive, got ${scaling.factor}`);
      return { invFreq: Float32Array.from(theta, (t) => t / scaling.factor), attentionFactor: 1 };
    case 'llama3': {
      const factors = llama3FreqFactors(dim, base, scaling);
      return { invFreq: Float32Array.from(theta, (t, i) => t / factors[i]!), attentionFactor: 1 };
    }
    case 'freq_factors':
      if (scaling.factors.length !== theta.length) {
        throw new Error(`rope frequency factors have ${scaling.factors.length} values, expected ${theta.length} (rope dimension ${dim} / 2)`);
      }
      return { invFreq: Float32Array.from(theta, (t, i) => t / scaling.factors[i]!), attentionFactor: 1 };
    case 'yarn':
      return { invFreq: yarnInvFreq(dim, base, scaling), attentionFactor: yarnAttentionFactor(scaling) };
  }
}
