/**
 * Trainable models built from autograd ops, one definition per architecture shared with inference:
 * the config is the HF config.json type of src/formats/hf-config.ts and the parameters carry the
 * HF tensor names, so a checkpoint written from `tensors()` loads unchanged in the inference engine
 * (src/models/deepseek-v3-hf.ts for DeepseekV3ForCausalLM, src/models/load.ts for Llama/Qwen2).
 *
 * DeepSeek-V3 (model-and-training.md §1-5): MLA (optional q-LoRA, decoupled interleaved RoPE, YaRN
 * inverse frequencies and softmax scale computed by the inference code's own helpers),
 * first_k_dense_replace dense SwiGLU layers then DeepSeekMoE (shared experts, sigmoid or softmax
 * scores, e_score_correction_bias used for selection only, group-limited top-k), and MTP depth 1:
 *   h'_i = eh_proj([enorm(Emb(t_{i+1})); hnorm(norm(h_i))]) → one MoE block → shared_head.norm → lm_head
 * predicting t_{i+2}, where norm(h_i) is the main model's final-normalized state (as the inference
 * engine, llama.cpp and vLLM feed it).
 *
 * Initialisation (seeded): every matrix ~ N(0, initializer_range) (config field; V3 uses 0.006,
 * HF's default is 0.02), norms 1, biases and routing biases 0.
 */
import { type Var, parameter } from '../autograd/var.js';
import { add, div } from '../autograd/arith.js';
import { scale, sigmoid, swiglu } from '../autograd/unary.js';
import { sumAxis } from '../autograd/reduce.js';
import { concat, expand, narrow, reshape, split } from '../autograd/shape.js';
import { linear } from '../autograd/linear.js';
import { embedding } from '../autograd/embedding.js';
import { rmsNorm } from '../autograd/rmsnorm.js';
import { softmax } from '../autograd/softmax.js';
import { crossEntropy } from '../autograd/loss.js';
import { rope, ropeInvFreq } from '../autograd/rope.js';
import { attention } from '../autograd/attention.js';
import {
  combineExperts, expertLoad, gatherColumns, gatherRows, routePlan, selectExperts, sequenceBalanceLoss, updateRoutingBias,
} from '../autograd/moe.js';
import { Random } from '../autograd/random.js';
import { type DeepseekConfig, type HfConfig, type LlamaConfig, type Qwen2Config, hfConfigToObject } from '../formats/hf-config.js';
import { deepseekConfigFromHf } from '../models/deepseek-v3-hf.js';
import { mlaConfigOf } from '../models/deepseek-v3.js';
import { type Fp8Stats, fp8Linear } from './fp8-linear.js';

export type TrainConfig = HfConfig;

export interface ForwardOptions {
  /** Weight λ of the MTP loss (0 or mtp off: the MTP module is not run). */
  mtpLambda?: number;
  /** Run the MTP module (default: when the config has num_nextn_predict_layers ≥ 1). */
  mtp?: boolean;
  /** α of the sequence-wise balance loss (0: not added). */
  balanceAlpha?: number;
  /** FP8 (E4M3) GEMM inputs in the attention/FFN/expert linears. */
  fp8?: boolean;
  fp8Stats?: Fp8Stats;
}

export interface ForwardResult {
  /** main + λ·MTP + balance: the loss to backpropagate. */
  loss: Var;
  mainLoss: number;
  mtpLoss: number | null;
  mtpAccuracy: number | null;
  balanceLoss: number;
  /** Tokens routed to each expert, per MoE layer (HF layer index → counts). */
  loads: Map<number, Int32Array>;
}

export interface NamedTensor {
  shape: number[];
  values: Float32Array;
}

interface Ctx {
  fp8: boolean;
  stats: Fp8Stats | undefined;
  batch: number;
  seq: number;
  pos: Int32Array;
}

function positions(batch: number, seq: number): Int32Array {
  const p = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) p[b * seq + t] = t;
  return p;
}

/** A causal LM whose parameters are named by their HF tensor names. */
export class TrainModel {
  /** Trainable parameters by HF name (registration order is stable and defines the optimizer order). */
  readonly params = new Map<string, Var>();
  /** e_score_correction_bias of each MoE layer by HF name (selection only, no gradient). */
  readonly routingBiases = new Map<string, Float32Array>();
  private readonly invFreq: Float32Array;
  private readonly ropeFactor: number;
  private readonly softmaxScale: number;
  readonly isDeepseek: boolean;

  private constructor(readonly config: TrainConfig, init: (name: string, shape: number[], kind: 'matrix' | 'norm' | 'bias') => Float32Array) {
    this.isDeepseek = config.architecture === 'DeepseekV3ForCausalLM' || config.architecture === 'DeepseekV2ForCausalLM';
    if (this.isDeepseek) {
      const ds = mlaConfigOf(deepseekConfigFromHf(hfConfigToObject(config)));
      this.invFreq = ds.invFreq;
      this.ropeFactor = ds.ropeAttentionFactor;
      this.softmaxScale = ds.softmaxScale;
      this.buildDeepseek(config as DeepseekConfig, init);
    } else {
      const c = config as LlamaConfig | Qwen2Config;
      const scaling = c.rope_scaling;
      if (scaling !== null && scaling.type !== 'linear') throw new Error(`TrainModel: rope_scaling '${scaling.type}' is not supported for ${c.architecture} training (linear or null)`);
      // linear scaling reads position p as p / factor: the same as every frequency divided by factor
      const factor = scaling?.factor ?? 1;
      this.invFreq = ropeInvFreq(c.head_dim, c.rope_theta).map((f) => f / factor);
      this.ropeFactor = 1;
      this.softmaxScale = 1 / Math.sqrt(c.head_dim);
      this.buildDense(c, init);
    }
  }

  /** Fresh parameters: N(0, initializer_range) matrices, unit norms, zero biases, seeded. */
  static init(config: TrainConfig, seed: number): TrainModel {
    const rng = new Random(seed);
    const std = config.initializer_range;
    return new TrainModel(config, (_name, shape, kind) => {
      const n = shape.reduce((a, b) => a * b, 1);
      if (kind === 'matrix') return rng.normalArray(n, std);
      return new Float32Array(n).fill(kind === 'norm' ? 1 : 0);
    });
  }

  /** Parameters from named tensors (a checkpoint); every tensor must be present with its shape. */
  static fromTensors(config: TrainConfig, tensors: ReadonlyMap<string, NamedTensor>, where = 'checkpoint'): TrainModel {
    return new TrainModel(config, (name, shape) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`${where}: tensor '${name}' is missing`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${where}: tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      }
      return Float32Array.from(t.values);
    });
  }

  /** All tensors to save, under HF names (parameters, then routing biases). */
  tensors(): Map<string, NamedTensor> {
    const out = new Map<string, NamedTensor>();
    for (const [name, v] of this.params) out.set(name, { shape: [...v.shape], values: v.value });
    for (const [name, b] of this.routingBiases) out.set(name, { shape: [b.length], values: b });
    return out;
  }

  get parameterList(): Var[] {
    return [...this.params.values()];
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  // ------------------------------------------------------------------------------------ building

  private reg(name: string, shape: number[], kind: 'matrix' | 'norm' | 'bias', init: (name: string, shape: number[], kind: 'matrix' | 'norm' | 'bias') => Float32Array): Var {
    const v = parameter(init(name, shape, kind), shape, name);
    this.params.set(name, v);
    return v;
  }

  private buildDeepseek(c: DeepseekConfig, init: (name: string, shape: number[], kind: 'matrix' | 'norm' | 'bias') => Float32Array): void {
    const d = c.hidden_size;
    const m = (name: string, rows: number, cols: number) => this.reg(name, [rows, cols], 'matrix', init);
    const n = (name: string, size: number) => this.reg(name, [size], 'norm', init);
    m('model.embed_tokens.weight', c.vocab_size, d);
    const layers = c.num_hidden_layers + Math.min(c.num_nextn_predict_layers, 1);
    const H = c.num_attention_heads;
    const qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
    const ffn = (p: string, width: number) => {
      m(`${p}gate_proj.weight`, width, d);
      m(`${p}up_proj.weight`, width, d);
      m(`${p}down_proj.weight`, d, width);
    };
    for (let i = 0; i < layers; i++) {
      const p = `model.layers.${i}.`;
      const a = `${p}self_attn.`;
      if (i === c.num_hidden_layers) {
        n(`${p}enorm.weight`, d);
        n(`${p}hnorm.weight`, d);
        m(`${p}eh_proj.weight`, d, 2 * d);
      }
      n(`${p}input_layernorm.weight`, d);
      if (c.q_lora_rank !== null) {
        m(`${a}q_a_proj.weight`, c.q_lora_rank, d);
        n(`${a}q_a_layernorm.weight`, c.q_lora_rank);
        m(`${a}q_b_proj.weight`, H * qk, c.q_lora_rank);
      } else {
        m(`${a}q_proj.weight`, H * qk, d);
      }
      m(`${a}kv_a_proj_with_mqa.weight`, c.kv_lora_rank + c.qk_rope_head_dim, d);
      n(`${a}kv_a_layernorm.weight`, c.kv_lora_rank);
      m(`${a}kv_b_proj.weight`, H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
      m(`${a}o_proj.weight`, d, H * c.v_head_dim);
      n(`${p}post_attention_layernorm.weight`, d);
      if (i < c.first_k_dense_replace) {
        ffn(`${p}mlp.`, c.intermediate_size);
      } else {
        m(`${p}mlp.gate.weight`, c.n_routed_experts, d);
        if (c.scoring_func === 'sigmoid') {
          const name = `${p}mlp.gate.e_score_correction_bias`;
          this.routingBiases.set(name, Float32Array.from(init(name, [c.n_routed_experts], 'bias')));
        }
        for (let e = 0; e < c.n_routed_experts; e++) ffn(`${p}mlp.experts.${e}.`, c.moe_intermediate_size);
        if (c.n_shared_experts > 0) ffn(`${p}mlp.shared_experts.`, c.moe_intermediate_size * c.n_shared_experts);
      }
      if (i === c.num_hidden_layers) n(`${p}shared_head.norm.weight`, d);
    }
    n('model.norm.weight', d);
    if (!c.tie_word_embeddings) m('lm_head.weight', c.vocab_size, d);
  }

  private buildDense(c: LlamaConfig | Qwen2Config, init: (name: string, shape: number[], kind: 'matrix' | 'norm' | 'bias') => Float32Array): void {
    const d = c.hidden_size;
    const m = (name: string, rows: number, cols: number) => this.reg(name, [rows, cols], 'matrix', init);
    const n = (name: string, size: number) => this.reg(name, [size], 'norm', init);
    const qkvBias = c.architecture === 'Qwen2ForCausalLM' || (c as LlamaConfig).attention_bias;
    if (c.architecture === 'LlamaForCausalLM' && (c.attention_bias || c.mlp_bias)) {
      if (c.mlp_bias) throw new Error('TrainModel: mlp_bias is not supported');
    }
    m('model.embed_tokens.weight', c.vocab_size, d);
    const kvDim = c.num_key_value_heads * c.head_dim;
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const p = `model.layers.${i}.`;
      n(`${p}input_layernorm.weight`, d);
      m(`${p}self_attn.q_proj.weight`, c.num_attention_heads * c.head_dim, d);
      m(`${p}self_attn.k_proj.weight`, kvDim, d);
      m(`${p}self_attn.v_proj.weight`, kvDim, d);
      if (qkvBias) {
        this.reg(`${p}self_attn.q_proj.bias`, [c.num_attention_heads * c.head_dim], 'bias', init);
        this.reg(`${p}self_attn.k_proj.bias`, [kvDim], 'bias', init);
        this.reg(`${p}self_attn.v_proj.bias`, [kvDim], 'bias', init);
      }
      m(`${p}self_attn.o_proj.weight`, d, c.num_attention_heads * c.head_dim);
      n(`${p}post_attention_layernorm.weight`, d);
      m(`${p}mlp.gate_proj.weight`, c.intermediate_size, d);
      m(`${p}mlp.up_proj.weight`, c.intermediate_size, d);
      m(`${p}mlp.down_proj.weight`, d, c.intermediate_size);
    }
    n('model.norm.weight', d);
    if (!c.tie_word_embeddings) m('lm_head.weight', c.vocab_size, d);
  }

  // ------------------------------------------------------------------------------------ forward

  private p(name: string): Var {
    const v = this.params.get(name);
    if (!v) throw new Error(`TrainModel: no parameter '${name}'`);
    return v;
  }

  private has(name: string): boolean {
    return this.params.has(name);
  }

  /** A GEMM layer: FP8 when enabled (embedding, head, router and norms never go through here). */
  private lin(x: Var, name: string, ctx: Ctx): Var {
    const w = this.p(name);
    return ctx.fp8 ? fp8Linear(x, w, ctx.stats) : linear(x, w);
  }

  private head(h: Var): Var {
    return linear(h, this.p(this.has('lm_head.weight') ? 'lm_head.weight' : 'model.embed_tokens.weight'));
  }

  private ffn(x: Var, prefix: string, ctx: Ctx): Var {
    return this.lin(swiglu(this.lin(x, `${prefix}gate_proj.weight`, ctx), this.lin(x, `${prefix}up_proj.weight`, ctx)), `${prefix}down_proj.weight`, ctx);
  }

  private mla(x: Var, p: string, ctx: Ctx): Var {
    const c = this.config as DeepseekConfig;
    const { batch, seq } = ctx;
    const H = c.num_attention_heads;
    const nope = c.qk_nope_head_dim;
    const rp = c.qk_rope_head_dim;
    const eps = c.rms_norm_eps;
    const qFlat = c.q_lora_rank !== null
      ? this.lin(rmsNorm(this.lin(x, `${p}q_a_proj.weight`, ctx), this.p(`${p}q_a_layernorm.weight`), eps), `${p}q_b_proj.weight`, ctx)
      : this.lin(x, `${p}q_proj.weight`, ctx);
    const q = reshape(qFlat, [batch, seq, H, nope + rp]);
    const [qNope, qPeRaw] = split(q, [nope, rp], 3) as [Var, Var];
    const [cKvRaw, kPeFlat] = split(this.lin(x, `${p}kv_a_proj_with_mqa.weight`, ctx), [c.kv_lora_rank, rp], 2) as [Var, Var];
    const cKv = rmsNorm(cKvRaw, this.p(`${p}kv_a_layernorm.weight`), eps);
    const qPe = rope(qPeRaw, ctx.pos, this.invFreq, 'interleaved', this.ropeFactor);
    const kPe = rope(reshape(kPeFlat, [batch, seq, 1, rp]), ctx.pos, this.invFreq, 'interleaved', this.ropeFactor);
    const kv = reshape(this.lin(cKv, `${p}kv_b_proj.weight`, ctx), [batch, seq, H, nope + c.v_head_dim]);
    const [kNope, v] = split(kv, [nope, c.v_head_dim], 3) as [Var, Var];
    const k = concat([kNope, expand(kPe, 2, H)], 3);
    const o = attention(concat([qNope, qPe], 3), k, v, { scale: this.softmaxScale });
    return this.lin(reshape(o, [batch, seq, H * c.v_head_dim]), `${p}o_proj.weight`, ctx);
  }

  private moe(x: Var, p: string, ctx: Ctx, alpha: number): { y: Var; balance: Var | null; load: Int32Array } {
    const c = this.config as DeepseekConfig;
    const tokens = ctx.batch * ctx.seq;
    const d = c.hidden_size;
    const E = c.n_routed_experts;
    const flat = reshape(x, [tokens, d]);
    // Gating stays in f32 (not FP8), as in V3.
    const logits = linear(flat, this.p(`${p}mlp.gate.weight`));
    const scores = c.scoring_func === 'sigmoid' ? sigmoid(logits) : softmax(logits);
    const grouped = c.topk_method !== 'greedy' && c.n_group > 1;
    const selection = selectExperts(scores.value, tokens, E, c.num_experts_per_tok, {
      bias: this.routingBiases.get(`${p}mlp.gate.e_score_correction_bias`) ?? null,
      groups: grouped ? c.n_group : 1, topkGroups: grouped ? c.topk_group : 1,
      groupScore: c.topk_method === 'group_limited_greedy' ? 'max' : 'top2sum',
    });
    let weights = gatherColumns(scores, selection);
    if (c.norm_topk_prob) weights = div(weights, sumAxis(weights, 1, true));
    weights = scale(weights, c.routed_scaling_factor);
    const plan = routePlan(selection, E);
    const outputs = plan.map((route, e) => (route.tokens.length === 0 ? null : this.ffn(gatherRows(flat, route.tokens), `${p}mlp.experts.${e}.`, ctx)));
    let y = combineExperts(tokens, d, outputs, plan, weights);
    if (c.n_shared_experts > 0) y = add(y, this.ffn(flat, `${p}mlp.shared_experts.`, ctx));
    const balance = alpha > 0 ? sequenceBalanceLoss(reshape(scores, [ctx.batch, ctx.seq, E]), selection, alpha) : null;
    return { y: reshape(y, [ctx.batch, ctx.seq, d]), balance, load: expertLoad(selection, E) };
  }

  private deepseekBlock(h: Var, i: number, ctx: Ctx, alpha: number, out: { balances: Var[]; loads: Map<number, Int32Array> }): Var {
    const c = this.config as DeepseekConfig;
    const p = `model.layers.${i}.`;
    const a = add(h, this.mla(rmsNorm(h, this.p(`${p}input_layernorm.weight`), c.rms_norm_eps), `${p}self_attn.`, ctx));
    const x = rmsNorm(a, this.p(`${p}post_attention_layernorm.weight`), c.rms_norm_eps);
    if (i < c.first_k_dense_replace) return add(a, this.ffn(x, `${p}mlp.`, ctx));
    const m = this.moe(x, p, ctx, alpha);
    if (m.balance) out.balances.push(m.balance);
    out.loads.set(i, m.load);
    return add(a, m.y);
  }

  private denseBlock(h: Var, i: number, ctx: Ctx): Var {
    const c = this.config as LlamaConfig | Qwen2Config;
    const p = `model.layers.${i}.self_attn.`;
    const { batch, seq } = ctx;
    const x = rmsNorm(h, this.p(`model.layers.${i}.input_layernorm.weight`), c.rms_norm_eps);
    const proj = (name: string) => {
      const y = this.lin(x, `${p}${name}.weight`, ctx);
      return this.has(`${p}${name}.bias`) ? add(y, this.p(`${p}${name}.bias`)) : y;
    };
    const q = rope(reshape(proj('q_proj'), [batch, seq, c.num_attention_heads, c.head_dim]), ctx.pos, this.invFreq, 'neox');
    const k = rope(reshape(proj('k_proj'), [batch, seq, c.num_key_value_heads, c.head_dim]), ctx.pos, this.invFreq, 'neox');
    const v = reshape(proj('v_proj'), [batch, seq, c.num_key_value_heads, c.head_dim]);
    const o = reshape(attention(q, k, v, { scale: this.softmaxScale }), [batch, seq, c.num_attention_heads * c.head_dim]);
    const a = add(h, this.lin(o, `${p}o_proj.weight`, ctx));
    return add(a, this.ffn(rmsNorm(a, this.p(`model.layers.${i}.post_attention_layernorm.weight`), c.rms_norm_eps), `model.layers.${i}.mlp.`, ctx));
  }

  private checkIds(ids: Int32Array, n: number): void {
    if (ids.length !== n) throw new Error(`TrainModel: ${ids.length} token ids, expected ${n}`);
    const vocab = this.config.vocab_size;
    for (const t of ids) if (!(t >= 0 && t < vocab)) throw new Error(`TrainModel: token id ${t} outside the vocabulary of ${vocab}`);
  }

  /** Final-normalized hidden states [B, T, d] of the main model, plus MoE side outputs. */
  private trunk(ids: Int32Array, ctx: Ctx, alpha: number, out: { balances: Var[]; loads: Map<number, Int32Array> }): Var {
    const c = this.config;
    let h = embedding(this.p('model.embed_tokens.weight'), ids, [ctx.batch, ctx.seq]);
    for (let i = 0; i < c.num_hidden_layers; i++) h = this.isDeepseek ? this.deepseekBlock(h, i, ctx, alpha, out) : this.denseBlock(h, i, ctx);
    return rmsNorm(h, this.p('model.norm.weight'), c.rms_norm_eps);
  }

  /** Main-model logits [B, T, vocab] for ids [B, T]. */
  logits(ids: Int32Array, batch: number, seq: number, options: { fp8?: boolean } = {}): Var {
    this.checkIds(ids, batch * seq);
    const ctx: Ctx = { fp8: options.fp8 ?? false, stats: undefined, batch, seq, pos: positions(batch, seq) };
    return this.head(this.trunk(ids, ctx, 0, { balances: [], loads: new Map() }));
  }

  /** MTP logits [B, T-1, vocab]: position i predicts token i+2 of ids [B, T]. */
  mtpLogits(ids: Int32Array, batch: number, seq: number): Var {
    this.checkIds(ids, batch * seq);
    const ctx: Ctx = { fp8: false, stats: undefined, batch, seq, pos: positions(batch, seq) };
    const side = { balances: [] as Var[], loads: new Map<number, Int32Array>() };
    return this.mtpHead(this.trunk(ids, ctx, 0, side), ids, ctx, 0, side);
  }

  get hasMtp(): boolean {
    return this.isDeepseek && this.has(`model.layers.${this.config.num_hidden_layers}.eh_proj.weight`);
  }

  private mtpHead(hNorm: Var, ids: Int32Array, ctx: Ctx, alpha: number, side: { balances: Var[]; loads: Map<number, Int32Array> }): Var {
    const c = this.config as DeepseekConfig;
    const { batch, seq } = ctx;
    const i = c.num_hidden_layers;
    const p = `model.layers.${i}.`;
    const short = seq - 1;
    const nextIds = new Int32Array(batch * short);
    for (let b = 0; b < batch; b++) for (let t = 0; t < short; t++) nextIds[b * short + t] = ids[b * seq + t + 1]!;
    const e = rmsNorm(embedding(this.p('model.embed_tokens.weight'), nextIds, [batch, short]), this.p(`${p}enorm.weight`), c.rms_norm_eps);
    const hPrev = rmsNorm(narrow(hNorm, 1, 0, short), this.p(`${p}hnorm.weight`), c.rms_norm_eps);
    const mctx: Ctx = { ...ctx, seq: short, pos: positions(batch, short) };
    const x = this.lin(concat([e, hPrev], 2), `${p}eh_proj.weight`, mctx);
    const h = this.deepseekBlock(x, i, mctx, alpha, side);
    return this.head(rmsNorm(h, this.p(`${p}shared_head.norm.weight`), c.rms_norm_eps));
  }

  /**
   * Training forward on packed sequences ids [B, T+1]: inputs are the first T tokens, targets the
   * next ones; the MTP module (when on) predicts two ahead on the first T-1 positions.
   */
  forward(ids: Int32Array, batch: number, seqPlusOne: number, options: ForwardOptions = {}): ForwardResult {
    const seq = seqPlusOne - 1;
    if (seq < 2) throw new Error(`TrainModel.forward: sequences of ${seqPlusOne} tokens are too short (need at least 3)`);
    this.checkIds(ids, batch * seqPlusOne);
    const inputs = new Int32Array(batch * seq);
    const targets = new Int32Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      inputs.set(ids.subarray(b * seqPlusOne, b * seqPlusOne + seq), b * seq);
      targets.set(ids.subarray(b * seqPlusOne + 1, (b + 1) * seqPlusOne), b * seq);
    }
    const alpha = this.isDeepseek ? options.balanceAlpha ?? 0 : 0;
    const ctx: Ctx = { fp8: options.fp8 ?? false, stats: options.fp8Stats, batch, seq, pos: positions(batch, seq) };
    const side = { balances: [] as Var[], loads: new Map<number, Int32Array>() };
    const hNorm = this.trunk(inputs, ctx, alpha, side);
    const main = crossEntropy(this.head(hNorm), targets);
    let loss = main;
    let mtpLoss: number | null = null;
    let mtpAccuracy: number | null = null;
    const lambda = options.mtpLambda ?? 0;
    if ((options.mtp ?? this.hasMtp) && this.hasMtp) {
      const logits = this.mtpHead(hNorm, inputs, ctx, alpha, side);
      const short = seq - 1;
      const mtpTargets = new Int32Array(batch * short);
      for (let b = 0; b < batch; b++) mtpTargets.set(ids.subarray(b * seqPlusOne + 2, (b + 1) * seqPlusOne), b * short);
      const ce = crossEntropy(logits, mtpTargets);
      mtpLoss = ce.item();
      mtpAccuracy = argmaxAccuracy(logits.value, mtpTargets, this.config.vocab_size);
      if (lambda > 0) loss = add(loss, scale(ce, lambda));
    }
    let balanceLoss = 0;
    for (const b of side.balances) {
      balanceLoss += b.item();
      loss = add(loss, b);
    }
    return { loss, mainLoss: main.item(), mtpLoss, mtpAccuracy, balanceLoss, loads: side.loads };
  }

  /** Aux-loss-free balancing after an optimizer step: bias_e += γ · sign(mean load − load_e). */
  updateRoutingBiases(loads: ReadonlyMap<number, Int32Array>, gamma: number): void {
    if (gamma === 0) return;
    for (const [layer, load] of loads) {
      const bias = this.routingBiases.get(`model.layers.${layer}.mlp.gate.e_score_correction_bias`);
      if (bias) updateRoutingBias(bias, load, gamma);
    }
  }
}

/** Fraction of rows whose argmax equals the target. */
export function argmaxAccuracy(logits: Float32Array, targets: Int32Array, vocab: number): number {
  let hits = 0;
  for (let r = 0; r < targets.length; r++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const x = logits[r * vocab + v]!;
      if (x > bestValue) {
        bestValue = x;
        best = v;
      }
    }
    if (best === targets[r]) hits++;
  }
  return targets.length === 0 ? 0 : hits / targets.length;
}
