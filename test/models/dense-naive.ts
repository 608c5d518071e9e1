/**
 * An independent, deliberately plain reference for the dense decoder: the HF modeling code's
 * semantics (rotate_half RoPE on unpermuted weights, llama3 frequency scaling from config.json),
 * written with scalar loops in double precision over the f32 HF-layout weights of a tiny model.
 * It shares no code with src/ (no backend, no rope tables, no loader).
 */
import type { TinyDenseModel } from '../../src/models/tiny.js';

type Tensors = ReadonlyMap<string, { shape: readonly number[]; values: Float32Array }>;

function get(t: Tensors, name: string): Float32Array {
  const v = t.get(name);
  if (!v) throw new Error(`naive reference: no tensor ${name}`);
  return v.values;
}

/** y[rows] = W[rows, cols] x[cols] (+ b). */
export function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r]! : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

export function rmsnorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const k = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * k * w[i]!);
}

function inverseFrequencies(model: TinyDenseModel): number[] {
  const cfg = model.hfConfig;
  const dim = model.headDim;
  const base = cfg.rope_theta as number;
  const freqs: number[] = [];
  for (let i = 0; i < dim / 2; i++) freqs.push(1 / Math.pow(base, (2 * i) / dim));
  const scaling = cfg.rope_scaling as { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number } | undefined;
  if (!scaling) return freqs;
  const lowWavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor;
  const highWavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor;
  return freqs.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / scaling.factor;
    const smooth = (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
    return (1 - smooth) * (f / scaling.factor) + smooth * f;
  });
}

/**
 * HF rotate_half rope on one head vector in place: pair (i, i + dim/2) rotated by pos · freqs[i],
 * cos and sin both multiplied by `scaling` (transformers' attention_scaling; 1 but for yarn).
 */
export function ropeHalf(v: Float64Array, offset: number, dim: number, pos: number, freqs: readonly number[], scaling = 1): void {
  const half = dim / 2;
  for (let i = 0; i < half; i++) {
    const a = pos * freqs[i]!;
    const cos = Math.cos(a) * scaling;
    const sin = Math.sin(a) * scaling;
    const x0 = v[offset + i]!;
    const x1 = v[offset + i + half]!;
    v[offset + i] = x0 * cos - x1 * sin;
    v[offset + i + half] = x1 * cos + x0 * sin;
  }
}

/** What the plain forward needs besides the HF-named tensors. */
export interface NaiveDenseShape {
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  /** Rope of one head vector at `pos`, in place. */
  rope: (v: Float64Array, offset: number, pos: number) => void;
  /** The tensor the output head reads (lm_head.weight, or the embedding when tied). */
  head: string;
}

/** Logits of every position for `tokens` from position 0, as the HF modeling code computes them (Llama / Qwen2 layout). */
export function naiveDenseForward(t: Tensors, shape: NaiveDenseShape, tokens: readonly number[]): Float64Array[] {
  const { heads, kvHeads, headDim: hd, eps } = shape;
  const [vocab, d] = t.get('model.embed_tokens.weight')!.shape as [number, number];
  const layers = [...t.keys()].filter((n) => n.endsWith('.input_layernorm.weight')).length;
  const ff = t.get('model.layers.0.mlp.gate_proj.weight')!.shape[0]!;
  const embed = get(t, 'model.embed_tokens.weight');
  const keys: Float64Array[][] = Array.from({ length: layers }, () => []);
  const values: Float64Array[][] = Array.from({ length: layers }, () => []);
  const out: Float64Array[] = [];
  tokens.forEach((token, pos) => {
    let h = Float64Array.from(embed.subarray(token * d, (token + 1) * d));
    for (let l = 0; l < layers; l++) {
      const p = `model.layers.${l}`;
      const x = rmsnorm(h, get(t, `${p}.input_layernorm.weight`), eps);
      const bias = (n: string) => t.get(`${p}.self_attn.${n}_proj.bias`)?.values;
      const q = matvec(get(t, `${p}.self_attn.q_proj.weight`), x, heads * hd, d, bias('q'));
      const k = matvec(get(t, `${p}.self_attn.k_proj.weight`), x, kvHeads * hd, d, bias('k'));
      const v = matvec(get(t, `${p}.self_attn.v_proj.weight`), x, kvHeads * hd, d, bias('v'));
      for (let hh = 0; hh < heads; hh++) shape.rope(q, hh * hd, pos);
      for (let hh = 0; hh < kvHeads; hh++) shape.rope(k, hh * hd, pos);
      keys[l]!.push(k);
      values[l]!.push(v);
      const mixed = new Float64Array(heads * hd);
      const group = heads / kvHeads;
      for (let hh = 0; hh < heads; hh++) {
        const g = Math.floor(hh / group);
        const scores = keys[l]!.map((kk) => {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[hh * hd + i]! * kk[g * hd + i]!;
          return s / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const w = scores.map((s) => Math.exp(s - max));
        const z = w.reduce((a, b) => a + b, 0);
        for (let s = 0; s < w.length; s++) {
          for (let i = 0; i < hd; i++) mixed[hh * hd + i]! += (w[s]! / z) * values[l]![s]![g * hd + i]!;
        }
      }
      const attn = matvec(get(t, `${p}.self_attn.o_proj.weight`), mixed, d, heads * hd);
      h = h.map((vv, i) => vv + attn[i]!);
      const y = rmsnorm(h, get(t, `${p}.post_attention_layernorm.weight`), eps);
      const gate = matvec(get(t, `${p}.mlp.gate_proj.weight`), y, ff, d);
      const up = matvec(get(t, `${p}.mlp.up_proj.weight`), y, ff, d);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(get(t, `${p}.mlp.down_proj.weight`), act, d, ff);
      h = h.map((vv, i) => vv + down[i]!);
    }
    out.push(matvec(get(t, shape.head), rmsnorm(h, get(t, 'model.norm.weight'), eps), vocab, d));
  });
  return out;
}

/** Logits of every position for `tokens` from position 0, as the HF model computes them. */
export function naiveDenseLogits(model: TinyDenseModel, tokens: number[]): Float64Array[] {
  const o = model.options;
  const freqs = inverseFrequencies(model);
  const hd = model.headDim;
  return naiveDenseForward(model.tensors, {
    heads: o.heads, kvHeads: o.kvHeads, headDim: hd, eps: o.rmsNormEps,
    rope: (v, offset, pos) => ropeHalf(v, offset, hd, pos, freqs),
    head: o.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
  }, tokens);
}
