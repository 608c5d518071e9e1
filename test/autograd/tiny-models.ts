// Tiny transformers built only from autograd ops, for whole-model gradient checks and
// optimizer tests: a Llama-style model (GQA attention, RoPE, SwiGLU) and a DeepSeek-V3-style
// model (MLA attention, sigmoid-routed MoE with a shared expert, one MTP module).
import { type Var, parameter } from '../../src/autograd/var.js';
import { add, div } from '../../src/autograd/arith.js';
import { scale, sigmoid, swiglu } from '../../src/autograd/unary.js';
import { sumAxis } from '../../src/autograd/reduce.js';
import { concat, expand, narrow, reshape, split } from '../../src/autograd/shape.js';
import { linear } from '../../src/autograd/linear.js';
import { embedding } from '../../src/autograd/embedding.js';
import { rmsNorm } from '../../src/autograd/rmsnorm.js';
import { crossEntropy, IGNORE_INDEX } from '../../src/autograd/loss.js';
import { rope, ropeInvFreq } from '../../src/autograd/rope.js';
import { attention } from '../../src/autograd/attention.js';
import { combineExperts, gatherColumns, gatherRows, routePlan, selectExperts, sequenceBalanceLoss, type ExpertSelection } from '../../src/autograd/moe.js';
import { Random } from '../../src/autograd/random.js';

const EPS = 1e-6;

function makeParam(rng: Random, shape: number[], name: string, std: number): Var {
  return parameter(rng.normalArray(shape.reduce((a, b) => a * b, 1), std), shape, name);
}

function ones(shape: number[], name: string): Var {
  return parameter(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape, name);
}

/** Positions 0..T-1 for each of B sequences (one per token). */
export function positions(batch: number, seq: number): Int32Array {
  const p = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) for (let t = 0; t < seq; t++) p[b * seq + t] = t;
  return p;
}

/** Next-token targets for ids [B, T]: ids shifted left, the last position ignored. */
export function nextTokenTargets(ids: Int32Array, batch: number, seq: number, shift = 1): Int32Array {
  const targets = new Int32Array(batch * seq).fill(IGNORE_INDEX);
  for (let b = 0; b < batch; b++) for (let t = 0; t + shift < seq; t++) targets[b * seq + t] = ids[b * seq + t + shift]!;
  return targets;
}

interface Ffn {
  gate: Var;
  up: Var;
  down: Var;
}

function ffn(x: Var, f: Ffn): Var {
  return linear(swiglu(linear(x, f.gate), linear(x, f.up)), f.down);
}

function makeFfn(rng: Random, dim: number, hidden: number, name: string, std: number): Ffn {
  return {
    gate: makeParam(rng, [hidden, dim], `${name}.gate`, std),
    up: makeParam(rng, [hidden, dim], `${name}.up`, std),
    down: makeParam(rng, [dim, hidden], `${name}.down`, std),
  };
}

// ---------------------------------------------------------------- Llama-style

export interface LlamaConfig {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  ropeBase: number;
}

export class TinyLlama {
  readonly params: Var[] = [];
  private readonly embed: Var;
  private readonly layers: { attnNorm: Var; wq: Var; wk: Var; wv: Var; wo: Var; ffnNorm: Var; mlp: Ffn }[] = [];
  private readonly finalNorm: Var;
  private readonly head: Var;
  private readonly invFreq: Float32Array;

  constructor(readonly config: LlamaConfig, seed: number) {
    const rng = new Random(seed);
    const c = config;
    const std = 0.3;
    const add = <T extends Var>(v: T): T => {
      this.params.push(v);
      return v;
    };
    this.embed = add(makeParam(rng, [c.vocab, c.dim], 'embed', 1));
    for (let l = 0; l < c.layers; l++) {
      const mlp = makeFfn(rng, c.dim, c.hidden, `l${l}.mlp`, std);
      const layer = {
        attnNorm: add(ones([c.dim], `l${l}.attn_norm`)),
        wq: add(makeParam(rng, [c.heads * c.headDim, c.dim], `l${l}.wq`, std)),
        wk: add(makeParam(rng, [c.kvHeads * c.headDim, c.dim], `l${l}.wk`, std)),
        wv: add(makeParam(rng, [c.kvHeads * c.headDim, c.dim], `l${l}.wv`, std)),
        wo: add(makeParam(rng, [c.dim, c.heads * c.headDim], `l${l}.wo`, std)),
        ffnNorm: add(ones([c.dim], `l${l}.ffn_norm`)),
        mlp: { gate: add(mlp.gate), up: add(mlp.up), down: add(mlp.down) },
      };
      this.layers.push(layer);
    }
    this.finalNorm = add(ones([c.dim], 'norm'));
    this.head = add(makeParam(rng, [c.vocab, c.dim], 'head', std));
    this.invFreq = ropeInvFreq(c.headDim, c.ropeBase);
  }

  /** Logits [B, T, vocab] for ids [B, T]. */
  logits(ids: Int32Array, batch: number, seq: number): Var {
    const c = this.config;
    const pos = positions(batch, seq);
    let h = embedding(this.embed, ids, [batch, seq]);
    for (const l of this.layers) {
      const x = rmsNorm(h, l.attnNorm, EPS);
      const q = rope(reshape(linear(x, l.wq), [batch, seq, c.heads, c.headDim]), pos, this.invFreq, 'neox');
      const k = rope(reshape(linear(x, l.wk), [batch, seq, c.kvHeads, c.headDim]), pos, this.invFreq, 'neox');
      const v = reshape(linear(x, l.wv), [batch, seq, c.kvHeads, c.headDim]);
      const o = reshape(attention(q, k, v), [batch, seq, c.heads * c.headDim]);
      h = add(h, linear(o, l.wo));
      h = add(h, ffn(rmsNorm(h, l.ffnNorm, EPS), l.mlp));
    }
    return linear(rmsNorm(h, this.finalNorm, EPS), this.head);
  }

  loss(ids: Int32Array, batch: number, seq: number): Var {
    return crossEntropy(this.logits(ids, batch, seq), nextTokenTargets(ids, batch, seq));
  }
}

// ---------------------------------------------------------------- DeepSeek-V3-style

export interface DeepSeekConfig {
  vocab: number;
  dim: number;
  heads: number;
  qLoraRank: number;
  kvLoraRank: number;
  nopeDim: number;
  ropeDim: number;
  vDim: number;
  experts: number;
  expertHidden: number;
  topK: number;
  groups: number;
  topkGroups: number;
  routedScale: number;
  balanceAlpha: number;
  mtpWeight: number;
}

interface Mla {
  qA: Var; qNorm: Var; qB: Var; kvA: Var; kvNorm: Var; kvB: Var; o: Var;
}

interface Block {
  attnNorm: Var;
  mla: Mla;
  ffnNorm: Var;
  router: Var;
  /** Selection-only routing bias (no gradient), updated by the aux-loss-free rule. */
  routerBias: Float32Array;
  experts: Ffn[];
  shared: Ffn;
}

export interface DeepSeekOutput {
  loss: Var;
  mainLoss: Var;
  mtpLoss: Var;
  selections: ExpertSelection[];
}

/**
 * One MLA + MoE block as the main model, and one MTP module (enorm, hnorm, eh_proj, its own
 * MLA + MoE block, its own final norm; embedding and head shared), trained with
 * main loss + λ · MTP loss + the sequence-wise balance loss of each MoE.
 */
export class TinyDeepSeek {
  readonly params: Var[] = [];
  readonly blocks: Block[] = [];
  private readonly embed: Var;
  private readonly norm: Var;
  private readonly head: Var;
  private readonly mtp: { enorm: Var; hnorm: Var; ehProj: Var; norm: Var };
  private readonly invFreq: Float32Array;

  constructor(readonly config: DeepSeekConfig, seed: number) {
    const rng = new Random(seed);
    const c = config;
    const std = 0.3;
    const reg = (v: Var): Var => {
      this.params.push(v);
      return v;
    };
    const p = (shape: number[], name: string, s = std): Var => reg(makeParam(rng, shape, name, s));
    const block = (name: string): Block => ({
      attnNorm: reg(ones([c.dim], `${name}.attn_norm`)),
      mla: {
        qA: p([c.qLoraRank, c.dim], `${name}.q_a`),
        qNorm: reg(ones([c.qLoraRank], `${name}.q_norm`)),
        qB: p([c.heads * (c.nopeDim + c.ropeDim), c.qLoraRank], `${name}.q_b`),
        kvA: p([c.kvLoraRank + c.ropeDim, c.dim], `${name}.kv_a`),
        kvNorm: reg(ones([c.kvLoraRank], `${name}.kv_norm`)),
        kvB: p([c.heads * (c.nopeDim + c.vDim), c.kvLoraRank], `${name}.kv_b`),
        o: p([c.dim, c.heads * c.vDim], `${name}.o`),
      },
      ffnNorm: reg(ones([c.dim], `${name}.ffn_norm`)),
      router: p([c.experts, c.dim], `${name}.router`),
      routerBias: new Float32Array(c.experts),
      experts: Array.from({ length: c.experts }, (_, e) => {
        const f = makeFfn(rng, c.dim, c.expertHidden, `${name}.expert${e}`, std);
        reg(f.gate);
        reg(f.up);
        reg(f.down);
        return f;
      }),
      shared: (() => {
        const f = makeFfn(rng, c.dim, c.expertHidden, `${name}.shared`, std);
        reg(f.gate);
        reg(f.up);
        reg(f.down);
        return f;
      })(),
    });
    this.embed = p([c.vocab, c.dim], 'embed', 1);
    this.blocks.push(block('l0'));
    this.norm = reg(ones([c.dim], 'norm'));
    this.head = p([c.vocab, c.dim], 'head');
    this.mtp = {
      enorm: reg(ones([c.dim], 'mtp.enorm')),
      hnorm: reg(ones([c.dim], 'mtp.hnorm')),
      ehProj: p([c.dim, 2 * c.dim], 'mtp.eh_proj'),
      norm: reg(ones([c.dim], 'mtp.norm')),
    };
    this.blocks.push(block('mtp.block'));
    this.invFreq = ropeInvFreq(c.ropeDim, 10000);
  }

  private mla(x: Var, m: Mla, batch: number, seq: number): Var {
    const c = this.config;
    const pos = positions(batch, seq);
    const qk = c.nopeDim + c.ropeDim;
    const q = reshape(linear(rmsNorm(linear(x, m.qA), m.qNorm, EPS), m.qB), [batch, seq, c.heads, qk]);
    const [qNope, qPeRaw] = split(q, [c.nopeDim, c.ropeDim], 3) as [Var, Var];
    const [cKvRaw, kPeFlat] = split(linear(x, m.kvA), [c.kvLoraRank, c.ropeDim], 2) as [Var, Var];
    const cKv = rmsNorm(cKvRaw, m.kvNorm, EPS);
    const qPe = rope(qPeRaw, pos, this.invFreq, 'interleaved');
    const kPe = rope(reshape(kPeFlat, [batch, seq, 1, c.ropeDim]), pos, this.invFreq, 'interleaved');
    const kv = reshape(linear(cKv, m.kvB), [batch, seq, c.heads, c.nopeDim + c.vDim]);
    const [kNope, v] = split(kv, [c.nopeDim, c.vDim], 3) as [Var, Var];
    const k = concat([kNope, expand(kPe, 2, c.heads)], 3);
    const qFull = concat([qNope, qPe], 3);
    const o = attention(qFull, k, v, { scale: 1 / Math.sqrt(qk) });
    return linear(reshape(o, [batch, seq, c.heads * c.vDim]), m.o);
  }

  private moe(x: Var, b: Block, batch: number, seq: number): { y: Var; balance: Var; selection: ExpertSelection } {
    const c = this.config;
    const tokens = batch * seq;
    const flat = reshape(x, [tokens, c.dim]);
    const scores = sigmoid(linear(flat, b.router));
    const selection = selectExperts(scores.value, tokens, c.experts, c.topK, { bias: b.routerBias, groups: c.groups, topkGroups: c.topkGroups });
    const picked = gatherColumns(scores, selection);
    const weights = scale(div(picked, sumAxis(picked, 1, true)), c.routedScale);
    const plan = routePlan(selection, c.experts);
    const outputs = plan.map((route, e) => (route.tokens.length === 0 ? null : ffn(gatherRows(flat, route.tokens), b.experts[e]!)));
    const routed = combineExperts(tokens, c.dim, outputs, plan, weights);
    const y = reshape(add(routed, ffn(flat, b.shared)), [batch, seq, c.dim]);
    const balance = sequenceBalanceLoss(reshape(scores, [batch, seq, c.experts]), selection, c.balanceAlpha);
    return { y, balance, selection };
  }

  private block(h: Var, b: Block, batch: number, seq: number): { h: Var; balance: Var; selection: ExpertSelection } {
    const a = add(h, this.mla(rmsNorm(h, b.attnNorm, EPS), b.mla, batch, seq));
    const m = this.moe(rmsNorm(a, b.ffnNorm, EPS), b, batch, seq);
    return { h: add(a, m.y), balance: m.balance, selection: m.selection };
  }

  forward(ids: Int32Array, batch: number, seq: number): DeepSeekOutput {
    const c = this.config;
    const main = this.block(embedding(this.embed, ids, [batch, seq]), this.blocks[0]!, batch, seq);
    const mainLoss = crossEntropy(linear(rmsNorm(main.h, this.norm, EPS), this.head), nextTokenTargets(ids, batch, seq));
    // MTP (depth 1): position i combines h_i with the embedding of token i+1 and predicts token i+2.
    const short = seq - 1;
    const nextIds = new Int32Array(batch * short);
    for (let b = 0; b < batch; b++) for (let t = 0; t < short; t++) nextIds[b * short + t] = ids[b * seq + t + 1]!;
    const e = rmsNorm(embedding(this.embed, nextIds, [batch, short]), this.mtp.enorm, EPS);
    const hPrev = rmsNorm(narrow(main.h, 1, 0, short), this.mtp.hnorm, EPS);
    const mtpIn = linear(concat([e, hPrev], 2), this.mtp.ehProj);
    const mtp = this.block(mtpIn, this.blocks[1]!, batch, short);
    const mtpTargets = new Int32Array(batch * short).fill(IGNORE_INDEX);
    for (let b = 0; b < batch; b++) for (let t = 0; t + 2 < seq; t++) mtpTargets[b * short + t] = ids[b * seq + t + 2]!;
    const mtpLoss = crossEntropy(linear(rmsNorm(mtp.h, this.mtp.norm, EPS), this.head), mtpTargets);
    const loss = add(add(mainLoss, scale(mtpLoss, c.mtpWeight)), add(main.balance, mtp.balance));
    return { loss, mainLoss, mtpLoss, selections: [main.selection, mtp.selection] };
  }
}
