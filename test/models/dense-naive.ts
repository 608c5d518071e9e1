/**
 * An independent, deliberately plain reference for the dense decoder: the HF modeling code's
 * semantics (rotate_half RoPE on unpermuted weights, llama3 frequency scaling from config.json),
 * written with scalar loops in double precision over the f32 HF-layout weights of a tiny model.
 * It shares no code with src/ (no backend, no rope tables, no loader).
 */
import type { TinyDenseModel } from '../../src/models/tiny.js';

type Tensors = TinyDenseModel['tensors'];

function get(t: Tensors, name: string): Float32Array {
  const v = t.get(name);
  if (!v) throw new Error(`naive reference: no tensor ${name}`);
  return v.values;
}

/** y[rows] = W[rows, cols] x[cols] (+ b). */
function matvec(w: Float32Array, x: Float64Array, rows: number, cols: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r]! : 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
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

/** HF rotate_half rope on one head vector in place. */
function ropeHalf(v: Float64Array, offset: number, dim: number, pos: number, freqs: number[]): void {
  const half = dim / 2;
  for (let i = 0; i < half; i++) {
    const a = pos * freqs[i]!;
    const x0 = v[offset + i]!;
    const x1 = v[offset + i + half]!;
    v[offset + i] = x0 * Math.cos(a) - x1 * Math.sin(a);
    v[offset + i + half] = x1 * Math.cos(a) + x0 * Math.sin(a);
  }
}

/** Logits of every position for `tokens` from position 0, as the HF model computes them. */
export function naiveDenseLogits(model: TinyDenseModel, tokens: number[]): Float64Array[] {
  const o = model.options;
  const t = model.tensors;
  const d = o.hiddenSize;
  const hd = model.headDim;
  const eps = o.rmsNormEps;
  const freqs = inverseFrequencies(model);
  const embed = get(t, 'model.embed_tokens.weight');
  const head = o.tiedEmbeddings ? embed : get(t, 'lm_head.weight');
  const keys: Float64Array[][] = Array.from({ length: o.layers }, () => []);
  const values: Float64Array[][] = Array.from({ length: o.layers }, () => []);
  const out: Float64Array[] = [];
  tokens.forEach((token, pos) => {
    let h = Float64Array.from(embed.subarray(token * d, (token + 1) * d));
    for (let l = 0; l < o.layers; l++) {
      const p = `model.layers.${l}`;
      const x = rmsnorm(h, get(t, `${p}.input_layernorm.weight`), eps);
      const bias = (n: string) => t.get(`${p}.self_attn.${n}_proj.bias`)?.values;
      const q = matvec(get(t, `${p}.self_attn.q_proj.weight`), x, o.heads * hd, d, bias('q'));
      const k = matvec(get(t, `${p}.self_attn.k_proj.weight`), x, o.kvHeads * hd, d, bias('k'));
      const v = matvec(get(t, `${p}.self_attn.v_proj.weight`), x, o.kvHeads * hd, d, bias('v'));
      for (let hh = 0; hh < o.heads; hh++) ropeHalf(q, hh * hd, hd, pos, freqs);
      for (let hh = 0; hh < o.kvHeads; hh++) ropeHalf(k, hh * hd, hd, pos, freqs);
      keys[l]!.push(k);
      values[l]!.push(v);
      const mixed = new Float64Array(o.heads * hd);
      const group = o.heads / o.kvHeads;
      for (let hh = 0; hh < o.heads; hh++) {
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
      const attn = matvec(get(t, `${p}.self_attn.o_proj.weight`), mixed, d, o.heads * hd);
      h = h.map((vv, i) => vv + attn[i]!);
      const y = rmsnorm(h, get(t, `${p}.post_attention_layernorm.weight`), eps);
      const gate = matvec(get(t, `${p}.mlp.gate_proj.weight`), y, o.ffSize, d);
      const up = matvec(get(t, `${p}.mlp.up_proj.weight`), y, o.ffSize, d);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(get(t, `${p}.mlp.down_proj.weight`), act, d, o.ffSize);
      h = h.map((vv, i) => vv + down[i]!);
    }
    out.push(matvec(head, rmsnorm(h, get(t, 'model.norm.weight'), eps), model.vocabSize, d));
  });
  return out;
}
