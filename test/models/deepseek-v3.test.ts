/**
 * DeepSeek-V3 architecture: an independent f64 re-implementation of the spec's naive forward
 * (model-and-training.md §2.2-2.5, §3.1, §4.1) checks the engine's absorbed and plain MLA, the
 * MoE routing, prefill vs decode, the cache size, V2-Lite-style configs and the MTP module.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { MlaLayerCache } from '../../src/nn/mla.js';
import { route } from '../../src/nn/moe.js';
import { deepseekConfigFromHf, deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import { type DeepseekModel, deepseekParameterCounts, describeDeepseekConfig } from '../../src/models/deepseek-v3.js';
import { type HfTensors, type TinyDeepseekModel, fp8Checkpoint, memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';

// ---------------------------------------------------------------------------------------------
// Reference: plain loops in doubles over the HF tensors, written from the spec only.

type Vec = Float64Array;

function refModel(m: TinyDeepseekModel, tensors: HfTensors = m.tensors) {
  const c = m.hfConfig as Record<string, any>;
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  };
  const d = c.hidden_size as number;
  const eps = c.rms_norm_eps as number;
  const H = c.num_attention_heads as number;
  const nope = c.qk_nope_head_dim as number;
  const rope = c.qk_rope_head_dim as number;
  const vDim = c.v_head_dim as number;
  const r = c.kv_lora_rank as number;
  const qk = nope + rope;
  const matvec = (name: string, x: ArrayLike<number>): Vec => {
    const { shape, values } = get(name);
    const [rows, cols] = shape as [number, number];
    const out = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += values[i * cols + j]! * x[j]!;
      out[i] = s;
    }
    return out;
  };
  const rms = (x: ArrayLike<number>, wName: string): Vec => {
    const w = get(wName).values;
    let ss = 0;
    for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
    const k = 1 / Math.sqrt(ss / x.length + eps);
    return Float64Array.from({ length: x.length }, (_, i) => x[i]! * k * w[i]!);
  };
  // YaRN (§2.4) and the softmax scale (§2.3).
  const rs = c.rope_scaling as Record<string, number> | null;
  const mscale = (s: number, mm: number) => (s <= 1 ? 1 : 0.1 * mm * Math.log(s) + 1);
  const freqs = Array.from({ length: rope / 2 }, (_, i) => {
    const theta = c.rope_theta ** (-2 * i / rope);
    if (!rs) return theta;
    const corr = (n: number) => rope * Math.log(rs.original_max_position_embeddings! / (2 * Math.PI * n)) / (2 * Math.log(c.rope_theta));
    const low = Math.max(Math.floor(corr(rs.beta_fast!)), 0);
    const high = Math.min(Math.ceil(corr(rs.beta_slow!)), rope - 1);
    const ramp = Math.min(1, Math.max(0, (i - low) / Math.max(high - low, 0.001)));
    return theta * (1 - ramp) + (theta / rs.factor!) * ramp;
  });
  const ropeFactor = rs ? mscale(rs.factor!, rs.mscale!) / mscale(rs.factor!, rs.mscale_all_dim!) : 1;
  const scale = qk ** -0.5 * (rs ? mscale(rs.factor!, rs.mscale_all_dim!) ** 2 : 1);
  /** Interleaved (GPT-J) rotation of x[off .. off + rope) at position pos (§2.5). */
  const applyRope = (x: Vec, off: number, pos: number) => {
    for (let i = 0; i < rope / 2; i++) {
      const a = pos * freqs[i]!;
      const cos = Math.cos(a) * ropeFactor;
      const sin = Math.sin(a) * ropeFactor;
      const x0 = x[off + 2 * i]!;
      const x1 = x[off + 2 * i + 1]!;
      x[off + 2 * i] = x0 * cos - x1 * sin;
      x[off + 2 * i + 1] = x0 * sin + x1 * cos;
    }
  };
  const swiglu = (p: string, x: Vec): Vec => {
    const g = matvec(`${p}gate_proj.weight`, x);
    const u = matvec(`${p}up_proj.weight`, x);
    return matvec(`${p}down_proj.weight`, g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!));
  };
  const moe = (p: string, x: Vec): Vec => {
    const E = c.n_routed_experts as number;
    const logits = matvec(`${p}gate.weight`, x);
    let s: number[];
    if (c.scoring_func === 'sigmoid') s = Array.from(logits, (l) => 1 / (1 + Math.exp(-l)));
    else {
      const mx = Math.max(...logits);
      const e = Array.from(logits, (l) => Math.exp(l - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      s = e.map((v) => v / sum);
    }
    const bias = tensors.get(`${p}gate.e_score_correction_bias`)?.values;
    const sel = s.map((v, i) => v + (bias ? bias[i]! : 0));
    const groups = c.topk_method === 'greedy' ? 1 : (c.n_group as number);
    if (groups > 1) {
      const per = E / groups;
      const gScore = Array.from({ length: groups }, (_, g) => {
        const members = sel.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
        return c.topk_method === 'group_limited_greedy' ? members[0]! : members[0]! + members[1]!;
      });
      const keep = gScore.map((v, g) => [v, g] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, c.topk_group).map((p2) => p2[1]);
      for (let e = 0; e < E; e++) if (!keep.includes(Math.floor(e / per))) sel[e] = -Infinity;
    }
    const chosen = sel.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, c.num_experts_per_tok).map((p2) => p2[1]);
    let w = chosen.map((e) => s[e]!);
    if (c.norm_topk_prob) {
      const sum = w.reduce((a, b) => a + b, 0);
      w = w.map((v) => v / sum);
    }
    w = w.map((v) => v * c.routed_scaling_factor);
    const out = c.n_shared_experts > 0 ? swiglu(`${p}shared_experts.`, x) : new Float64Array(d);
    chosen.forEach((e, k) => {
      const y = swiglu(`${p}experts.${e}.`, x);
      for (let i = 0; i < d; i++) out[i] += w[k]! * y[i]!;
    });
    return out;
  };
  /** One decoder block over a whole sequence (naive MLA with materialised per-head K/V). */
  const block = (layer: number, xs: Vec[]): Vec[] => {
    const p = `model.layers.${layer}.`;
    const a = `${p}self_attn.`;
    const qs: Vec[] = [];
    const ks: Vec[] = [];
    const vs: Vec[] = [];
    xs.forEach((x, t) => {
      const h = rms(x, `${p}input_layernorm.weight`);
      const q = c.q_lora_rank ? matvec(`${a}q_b_proj.weight`, rms(matvec(`${a}q_a_proj.weight`, h), `${a}q_a_layernorm.weight`)) : matvec(`${a}q_proj.weight`, h);
      for (let hd = 0; hd < H; hd++) applyRope(q, hd * qk + nope, t);
      const kvA = matvec(`${a}kv_a_proj_with_mqa.weight`, h);
      const cKv = rms(kvA.subarray(0, r), `${a}kv_a_layernorm.weight`);
      const kPe = kvA.slice(r);
      applyRope(kPe, 0, t);
      const kv = matvec(`${a}kv_b_proj.weight`, cKv);
      const k = new Float64Array(H * qk);
      const v = new Float64Array(H * vDim);
      for (let hd = 0; hd < H; hd++) {
        k.set(kv.subarray(hd * (nope + vDim), hd * (nope + vDim) + nope), hd * qk);
        k.set(kPe, hd * qk + nope);
        v.set(kv.subarray(hd * (nope + vDim) + nope, (hd + 1) * (nope + vDim)), hd * vDim);
      }
      qs.push(q);
      ks.push(k);
      vs.push(v);
    });
    return xs.map((x, t) => {
      const o = new Float64Array(H * vDim);
      for (let hd = 0; hd < H; hd++) {
        const sc = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let i = 0; i < qk; i++) dot += qs[t]![hd * qk + i]! * ks[s]![hd * qk + i]!;
          return dot * scale;
        });
        const mx = Math.max(...sc);
        const e = sc.map((v) => Math.exp(v - mx));
        const sum = e.reduce((a2, b) => a2 + b, 0);
        for (let s = 0; s <= t; s++) for (let i = 0; i < vDim; i++) o[hd * vDim + i] += (e[s]! / sum) * vs[s]![hd * vDim + i]!;
      }
      const attn = matvec(`${a}o_proj.weight`, o);
      const x1 = x.map((v, i) => v + attn[i]!);
      const h2 = rms(x1, `${p}post_attention_layernorm.weight`);
      const f = layer < c.first_k_dense_replace ? swiglu(`${p}mlp.`, h2) : moe(`${p}mlp.`, h2);
      return x1.map((v, i) => v + f[i]!);
    });
  };
  const embed = (token: number, name = 'model.embed_tokens.weight'): Vec => Float64Array.from(get(name).values.subarray(token * d, (token + 1) * d));
  /** [final-normalized hidden, logits] per position. */
  const forward = (tokens: number[]) => {
    let xs = tokens.map((t) => embed(t));
    for (let l = 0; l < c.num_hidden_layers; l++) xs = block(l, xs);
    const hidden = xs.map((x) => rms(x, 'model.norm.weight'));
    return { hidden, logits: hidden.map((h) => matvec('lm_head.weight', h)) };
  };
  /** MTP module (§4.1): hidden [n] from the main model, nextTokens [n]. */
  const mtp = (hidden: Vec[], nextTokens: number[]) => {
    const n = c.num_hidden_layers as number;
    const p = `model.layers.${n}.`;
    let xs = hidden.map((h, i) => {
      const e = rms(embed(nextTokens[i]!, `${p}embed_tokens.weight`), `${p}enorm.weight`);
      const hh = rms(h, `${p}hnorm.weight`);
      const cat = new Float64Array(2 * d);
      cat.set(e, 0);
      cat.set(hh, d);
      return matvec(`${p}eh_proj.weight`, cat);
    });
    xs = block(n, xs);
    return xs.map((x) => matvec(`${p}shared_head.head.weight`, rms(x, `${p}shared_head.norm.weight`)));
  };
  return { forward, mtp };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function load(m: TinyDeepseekModel, attention: 'absorbed' | 'plain' = 'absorbed'): DeepseekModel {
  return deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { attention });
}

const PROMPT = [5, 17, 200, 3, 99, 42, 7, 128, 64, 1];

// ---------------------------------------------------------------------------------------------

test('MoE routing: sigmoid scores, bias used only for selection, normalization and scaling', () => {
  // 4 experts, top-2, no groups. Scores s = sigmoid(logits); the bias lifts expert 3 above expert 1.
  const logits = Float32Array.from([2, 1, -1, 0]);
  const bias = Float32Array.from([0, 0, 0, 0.5]);
  const s = [2, 1, -1, 0].map((l) => 1 / (1 + Math.exp(-l))); // 0.881, 0.731, 0.269, 0.5
  const cfg = { nExperts: 4, topK: 2, nGroup: 1, topkGroup: 1, scoring: 'sigmoid', groupScore: 'top2sum', normTopkProb: true, routedScalingFactor: 2.5 } as const;
  const r = route(logits, 1, cfg, bias);
  // biased: 0.881, 0.731, 0.269, 1.0 -> experts 3 then 0; weights from the UNBIASED scores.
  assert.deepEqual([...r.experts], [3, 0]);
  const sum = s[3]! + s[0]!;
  assert.ok(Math.abs(r.weights[0]! - (s[3]! / sum) * 2.5) < 1e-6);
  assert.ok(Math.abs(r.weights[1]! - (s[0]! / sum) * 2.5) < 1e-6);
  // Without normalization the raw scores are scaled.
  const raw = route(logits, 1, { ...cfg, normTopkProb: false }, bias);
  assert.ok(Math.abs(raw.weights[0]! - s[3]! * 2.5) < 1e-6);
  // Without the bias the plain top-2 wins.
  assert.deepEqual([...route(logits, 1, cfg).experts], [0, 1]);
});

test('MoE routing: group limit keeps the groups with the best top-2 sums (or best max for V2)', () => {
  // 8 experts in 4 groups of 2, keep 2 groups, top-2 experts. Logits chosen so that sigmoid is monotone:
  // group 0: {3.0, -3.0} top2 = s(3)+s(-3) = 1.0;  group 1: {1.0, 1.0} = 1.462;
  // group 2: {0.9, 0.9} = 1.42;  group 3: {2.0, -4.0} = 0.899.
  const logits = Float32Array.from([3, -3, 1, 1, 0.9, 0.9, 2, -4]);
  const cfg = { nExperts: 8, topK: 2, nGroup: 4, topkGroup: 2, scoring: 'sigmoid', groupScore: 'top2sum', normTopkProb: true, routedScalingFactor: 1 } as const;
  // Kept groups 1 and 2: experts 2, 3 (tie, lower index first) even though expert 0 has the best score.
  assert.deepEqual([...route(logits, 1, cfg).experts], [2, 3]);
  // Group score = max (V2 group_limited_greedy): groups 0 and 3 win -> experts 0 and 6.
  assert.deepEqual([...route(logits, 1, { ...cfg, groupScore: 'max' }).experts], [0, 6]);
  // No group limit: the global top-2.
  assert.deepEqual([...route(logits, 1, { ...cfg, nGroup: 1, topkGroup: 1 }).experts], [0, 6]);
});

test('MoE routing: softmax greedy (V2-Lite) without normalization', () => {
  const logits = Float32Array.from([0.5, 2, 1, -1, 0, 3]);
  const e = [0.5, 2, 1, -1, 0, 3].map(Math.exp);
  const z = e.reduce((a, b) => a + b, 0);
  const r = route(logits, 1, { nExperts: 6, topK: 3, nGroup: 1, topkGroup: 1, scoring: 'softmax', groupScore: 'top2sum', normTopkProb: false, routedScalingFactor: 1 });
  assert.deepEqual([...r.experts], [5, 1, 2]);
  assert.deepEqual([...r.weights].map((w) => w.toFixed(6)), [5, 1, 2].map((i) => (e[i]! / z).toFixed(6)));
});

test('tiny DeepSeek-V3 matches the independent f64 reference (absorbed and plain MLA)', () => {
  const m = tinyDeepseekModel();
  const ref = refModel(m).forward(PROMPT);
  for (const mode of ['absorbed', 'plain'] as const) {
    const model = load(m, mode);
    const logits = model.forward(Int32Array.from(PROMPT), model.newCache(32), { allLogits: true });
    const V = model.info.vocabSize;
    let worst = 0;
    PROMPT.forEach((_, t) => { worst = Math.max(worst, maxAbsDiff(logits.subarray(t * V, (t + 1) * V), ref.logits[t]!)); });
    assert.ok(worst < 1e-4, `${mode}: max |logit - reference| = ${worst}`);
  }
});

test('absorbed and plain MLA give the same logits; batched prefill equals token-by-token decode', () => {
  const m = tinyDeepseekModel({ seed: 11 });
  const absorbed = load(m, 'absorbed');
  const plain = load(m, 'plain');
  const tokens = Int32Array.from(PROMPT);
  const a = absorbed.forward(tokens, absorbed.newCache(32), { allLogits: true });
  const p = plain.forward(tokens, plain.newCache(32), { allLogits: true });
  const diff = maxAbsDiff(a, p);
  assert.ok(diff < 1e-4, `absorbed vs plain: ${diff}`);

  const V = absorbed.info.vocabSize;
  const cache = absorbed.newCache(32);
  let worst = 0;
  tokens.forEach((t, i) => {
    const step = absorbed.forward(Int32Array.of(t), cache);
    worst = Math.max(worst, maxAbsDiff(step, a.subarray(i * V, (i + 1) * V)));
  });
  assert.ok(worst < 1e-4, `prefill vs decode: ${worst}`);
  assert.equal(cache.length, tokens.length);

  // Prefix reuse: truncate, then re-run the tail in one batch.
  cache.truncate(4);
  const tail = absorbed.forward(tokens.subarray(4), cache, { allLogits: true });
  assert.ok(maxAbsDiff(tail, a.subarray(4 * V)) < 1e-4);
});

test('the MLA cache stores exactly kv_lora_rank + qk_rope_head_dim values per token per layer', () => {
  const m = tinyDeepseekModel();
  const model = load(m);
  const o = m.options;
  const cache = model.newCache(20);
  assert.equal(cache.layers.length, o.layers);
  for (const l of cache.layers) assert.equal(l.rows.length, 20 * (o.kvLoraRank + o.qkRopeHeadDim));
  assert.equal(cache.bytes, o.layers * 20 * (o.kvLoraRank + o.qkRopeHeadDim) * 4);
  assert.equal(model.info.cacheValuesPerToken, o.layers * (o.kvLoraRank + o.qkRopeHeadDim));
  const info = model.describe();
  assert.equal(info.mlaCacheValuesPerTokenPerLayer, 48);
  assert.equal(info.mhaCacheValuesPerTokenPerLayer, o.heads * (o.qkNopeHeadDim + o.qkRopeHeadDim) + o.heads * o.vHeadDim);
  // Parameters: every tensor of the HF checkpoint; active = all minus the unchosen experts.
  let all = 0;
  for (const t of m.tensors.values()) all += t.values.length;
  assert.equal(info.parameters, all);
  const perExpert = 3 * o.hiddenSize * o.moeIntermediateSize;
  assert.equal(info.activeParametersPerToken, all - (o.layers - o.firstKDenseReplace) * (o.routedExperts - o.expertsPerToken) * perExpert);
  assert.ok(info.lines.some((l) => l.includes('48 (MLA latent 32 + rope key 16)')));

  // The latent part of each cached row is the RMS-normalized c_kv: check by the norm's weight.
  model.forward(Int32Array.from(PROMPT.slice(0, 3)), cache);
  const w = m.tensors.get('model.layers.0.self_attn.kv_a_layernorm.weight')!.values;
  const row = cache.layers[0]!.rows.subarray(0, 32);
  let ms = 0;
  for (let i = 0; i < 32; i++) ms += (row[i]! / w[i]!) ** 2;
  assert.ok(Math.abs(ms / 32 - 1) < 1e-3, `normalized latent mean square ${ms / 32}`);
  assert.throws(() => model.forward(Int32Array.from(new Array(18).fill(1)), cache), /cache full/);
});

test('V2-Lite-style config (no q compression, softmax greedy routing, mscale 0.707) loads and matches the reference', () => {
  const m = tinyDeepseekModel({
    qLoraRank: 0, scoring: 'softmax', nGroup: 1, topkGroup: 1, normTopkProb: false, routedScalingFactor: 1,
    sharedExperts: 2, expertsPerToken: 2, mscaleAllDim: 0.707, seed: 3,
  });
  assert.equal(m.hfConfig['topk_method'], 'greedy');
  const model = load(m);
  assert.equal(model.weights.layers[0]!.attn.q !== undefined, true);
  const ref = refModel(m).forward(PROMPT);
  const logits = model.forward(Int32Array.from(PROMPT), model.newCache(32), { allLogits: true });
  const V = model.info.vocabSize;
  let worst = 0;
  PROMPT.forEach((_, t) => { worst = Math.max(worst, maxAbsDiff(logits.subarray(t * V, (t + 1) * V), ref.logits[t]!)); });
  assert.ok(worst < 1e-4, `max |logit - reference| = ${worst}`);
  const expected = (1 / Math.sqrt(48)) * (0.1 * 0.707 * Math.log(4) + 1) ** 2;
  assert.ok(Math.abs(model.config.softmaxScale - expected) < 1e-7);
});

test('MTP module: draft logits match the reference; forward ignores it', () => {
  const m = tinyDeepseekModel({ mtp: true, seed: 5 });
  const model = load(m);
  assert.equal(model.weights.mtp.length, 1);
  const ref = refModel(m);
  const { hidden, logits } = ref.forward(PROMPT);
  const out = model.forwardWithHidden(Int32Array.from(PROMPT), model.newCache(32), { allLogits: true });
  assert.ok(maxAbsDiff(out.logits, logits.flatMap((l) => [...l])) < 1e-4);
  // Draft for positions 0..n-2 from (h_i, t_{i+1}).
  const n = PROMPT.length - 1;
  const next = Int32Array.from(PROMPT.slice(1));
  const d = m.options.hiddenSize;
  const mtpCache = model.newMtpCache(32);
  const draft = model.mtpForward(out.hidden.slice(0, n * d), next, mtpCache);
  const refDraft = ref.mtp(hidden.slice(0, n), [...next]);
  const V = model.info.vocabSize;
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, maxAbsDiff(draft.subarray(i * V, (i + 1) * V), refDraft[i]!));
  assert.ok(worst < 1e-4, `MTP max |logit - reference| = ${worst}`);
  assert.equal(mtpCache.length, n);
  // The main model without MTP weights gives the same logits.
  const noMtp = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { loadMtp: false });
  assert.equal(noMtp.weights.mtp.length, 0);
  assert.ok(maxAbsDiff(noMtp.forward(Int32Array.from(PROMPT), noMtp.newCache(32), { allLogits: true }), out.logits) === 0);
  assert.throws(() => noMtp.newMtpCache(), /no MTP module/);
});

test('HF loading errors name the missing or misshapen tensor', () => {
  const m = tinyDeepseekModel();
  const missing = new Map(m.tensors);
  missing.delete('model.layers.1.mlp.experts.5.up_proj.weight');
  assert.throws(() => deepseekFromHfTensors(m.hfConfig, memoryHfSource(missing, undefined, 'ckpt')), /ckpt: tensor 'model\.layers\.1\.mlp\.experts\.5\.up_proj\.weight'.*missing/);
  const bad = new Map(m.tensors);
  const t = bad.get('model.layers.0.self_attn.kv_b_proj.weight')!;
  bad.set('model.layers.0.self_attn.kv_b_proj.weight', { shape: [t.shape[0]! / 2, t.shape[1]! * 2], values: t.values });
  assert.throws(() => deepseekFromHfTensors(m.hfConfig, memoryHfSource(bad, undefined, 'ckpt')), /kv_b_proj\.weight': has shape \[128, 64\], expected \[256, 32\]/);
  assert.throws(() => deepseekFromHfTensors({ ...m.hfConfig, kv_lora_rank: undefined }, memoryHfSource(m.tensors)), /kv_lora_rank/);
});

test('parameter counts from the config alone match the loaded weights (and V3 671B totals)', () => {
  const m = tinyDeepseekModel({ mtp: true });
  const model = load(m);
  const info = model.describe();
  const counts = deepseekParameterCounts(model.config);
  assert.equal(counts.total, info.parameters);
  assert.equal(counts.active, info.activeParametersPerToken);
  // The MTP block's copies of the embedding and head are not counted by the config formula.
  assert.equal(counts.mtp, info.mtpParameters - 2 * m.vocabSize * m.options.hiddenSize);
  const v3 = deepseekConfigFromHf({
    model_type: 'deepseek_v3', vocab_size: 129280, hidden_size: 7168, intermediate_size: 18432, moe_intermediate_size: 2048,
    num_hidden_layers: 61, num_attention_heads: 128, q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64,
    v_head_dim: 128, n_routed_experts: 256, n_shared_experts: 1, num_experts_per_tok: 8, n_group: 8, topk_group: 4, topk_method: 'noaux_tc',
    scoring_func: 'sigmoid', norm_topk_prob: true, routed_scaling_factor: 2.5, first_k_dense_replace: 3, max_position_embeddings: 163840,
    num_nextn_predict_layers: 1, rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 },
  });
  const c = deepseekParameterCounts(v3);
  // Spec §1.2: 671.03B total recomputed from the config, ≈ 37.5B active, MTP 11.5B unique.
  assert.ok(Math.abs(c.total / 1e9 - 671.03) < 0.01, `total ${c.total}`);
  assert.ok(Math.abs(c.active / 1e9 - 37.5) < 0.1, `active ${c.active}`);
  assert.ok(Math.abs(c.mtp / 1e9 - 11.5) < 0.15, `mtp ${c.mtp}`); // 11.61B here: the spec rounds (eh_proj alone is 0.1B)
  assert.ok(Math.abs(v3.softmaxScale - 0.135234) < 1e-6);
  assert.equal(v3.ropeAttentionFactor, 1);
});

test('MLA layer cache grows on demand up to its capacity, keeping stored rows', () => {
  const cache = new MlaLayerCache(1000, { kvLoraRank: 32, qkRopeHeadDim: 16 });
  assert.equal(cache.rows.length, 256 * 48);
  cache.rows.fill(3, 0, 10 * 48);
  cache.reserve(300);
  assert.equal(cache.rows.length, 512 * 48);
  assert.equal(cache.rows[10 * 48 - 1], 3);
  cache.reserve(900);
  assert.equal(cache.rows.length, 1000 * 48);
  assert.throws(() => cache.reserve(1001), /overflow/);
});

test('V2 (236B-style) routing: softmax, group_limited_greedy with max group score, scale 16, matches the reference', () => {
  const m = tinyDeepseekModel({ scoring: 'softmax', scoreBias: false, nGroup: 4, topkGroup: 2, normTopkProb: false, routedScalingFactor: 16, seed: 8 });
  assert.equal(m.hfConfig['topk_method'], 'group_limited_greedy');
  const model = load(m);
  assert.equal(model.config.router.groupScore, 'max');
  const ref = refModel(m).forward(PROMPT);
  const logits = model.forward(Int32Array.from(PROMPT), model.newCache(32), { allLogits: true });
  const V = model.info.vocabSize;
  let worst = 0;
  PROMPT.forEach((_, t) => { worst = Math.max(worst, maxAbsDiff(logits.subarray(t * V, (t + 1) * V), ref.logits[t]!)); });
  assert.ok(worst < 1e-4, `max |logit - reference| = ${worst}`);
});

test('describeDeepseekConfig: MLA vs MHA cache sizes and parameter lines for frugal info', () => {
  const model = load(tinyDeepseekModel());
  const d = describeDeepseekConfig(model.config);
  assert.equal(d.cacheValuesPerToken, model.info.cacheValuesPerToken);
  assert.ok(d.lines.some((l) => l.includes('48 values per token per layer') && l.includes('vs 320 for full MHA (6.7x smaller)')), d.lines.join('\n'));
  assert.ok(d.lines.some((l) => l.includes(`active per token`)));
});

test('FP8 kv_b with 128-aligned heads (V3 head dims) is used as per-head fp8 views and matches its dequantized values', () => {
  const m = tinyDeepseekModel({ heads: 2, qkNopeHeadDim: 128, vHeadDim: 128, qkRopeHeadDim: 64, seed: 19 });
  const fp8 = fp8Checkpoint(m.tensors);
  const kept = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors, fp8.fp8));
  const vUp = kept.weights.layers[0]!.attn.vUp[1]!;
  assert.equal(vUp.dtype, 'fp8_e4m3');
  assert.equal(vUp.blockScales!.length, 1);
  const exact = deepseekFromHfTensors(m.hfConfig, memoryHfSource(fp8.dequantized));
  const a = kept.forward(Int32Array.from(PROMPT), kept.newCache(16), { allLogits: true });
  const b = exact.forward(Int32Array.from(PROMPT), exact.newCache(16), { allLogits: true });
  assert.ok(maxAbsDiff(a, b) < 1e-4, `fp8 views vs dequantized: ${maxAbsDiff(a, b)}`);
});
