/**
 * One optimizer step of pre-training, independent of files: gradient accumulation over
 * micro-batches (each backward seeded with 1/grad_accum), global-norm clipping, AdamW with the
 * scheduled learning rate, then DeepSeek-V3's aux-loss-free bias update from the step's expert
 * loads (summed over the micro-batches; no gradient).
 */
import { backward } from '../autograd/var.js';
import { AdamW, clipGradNorm, decayGroups, gradNorm } from './optimizer.js';
import { warmupCosine, warmupStableDecay } from './schedule.js';
import type { TrainModel } from './model.js';
import { type Fp8Stats, newFp8Stats } from './fp8-linear.js';

export interface TrainerOptions {
  lr: number;
  minLr: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** Global gradient-norm clip (0: none). */
  clip: number;
  schedule: { type: 'cosine' | 'wsd'; warmup: number; steps: number; decaySteps: number };
  mtp: { enabled: boolean; lambda: number };
  moe: { gamma: number; alpha: number };
  fp8: boolean;
}

export interface StepRecord {
  step: number;
  loss: number;
  mtpLoss: number | null;
  mtpAccuracy: number | null;
  balanceLoss: number;
  lr: number;
  gradNorm: number;
  /** The update was skipped because the gradient norm was not finite. */
  skipped: boolean;
  tokens: number;
  /** Expert loads of the step per MoE layer (HF layer index → tokens per expert). */
  loads: Record<string, number[]>;
}

export function learningRate(step: number, o: Pick<TrainerOptions, 'lr' | 'minLr' | 'schedule'>): number {
  const common = { maxLr: o.lr, minLr: o.minLr, warmupSteps: o.schedule.warmup, totalSteps: o.schedule.steps };
  return o.schedule.type === 'cosine' ? warmupCosine(step, common) : warmupStableDecay(step, { ...common, decaySteps: o.schedule.decaySteps });
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly fp8Stats: Fp8Stats = newFp8Stats();

  constructor(readonly model: TrainModel, readonly options: TrainerOptions) {
    this.optimizer = new AdamW(decayGroups(model.parameterList, options.weightDecay), {
      lr: options.lr, beta1: options.betas[0], beta2: options.betas[1], eps: options.eps, weightDecay: options.weightDecay,
    });
  }

  /** One optimizer step over micro-batches of ids [batch, seqPlusOne]; `step` is 0-based. */
  step(step: number, microBatches: readonly Int32Array[], batch: number, seqPlusOne: number): StepRecord {
    const o = this.options;
    const lr = learningRate(step, o);
    this.optimizer.zeroGrad();
    const seed = new Float32Array([1 / microBatches.length]);
    let loss = 0;
    let mtpLoss: number | null = null;
    let mtpAccuracy: number | null = null;
    let balanceLoss = 0;
    const loads = new Map<number, Int32Array>();
    for (const ids of microBatches) {
      const r = this.model.forward(ids, batch, seqPlusOne, {
        mtp: o.mtp.enabled, mtpLambda: o.mtp.lambda, balanceAlpha: o.moe.alpha, fp8: o.fp8, fp8Stats: this.fp8Stats,
      });
      backward(r.loss, seed);
      loss += r.mainLoss / microBatches.length;
      balanceLoss += r.balanceLoss / microBatches.length;
      if (r.mtpLoss !== null) mtpLoss = (mtpLoss ?? 0) + r.mtpLoss / microBatches.length;
      if (r.mtpAccuracy !== null) mtpAccuracy = (mtpAccuracy ?? 0) + r.mtpAccuracy / microBatches.length;
      for (const [layer, load] of r.loads) {
        const sum = loads.get(layer) ?? new Int32Array(load.length);
        for (let e = 0; e < load.length; e++) sum[e]! += load[e]!;
        loads.set(layer, sum);
      }
    }
    const params = this.optimizer.params;
    const norm = o.clip > 0 ? clipGradNorm(params, o.clip) : gradNorm(params);
    // A non-finite gradient (overflow, a bad batch) skips the update instead of poisoning the weights.
    const skipped = !Number.isFinite(norm);
    if (!skipped) {
      this.optimizer.step(lr);
      this.model.updateRoutingBiases(loads, o.moe.gamma);
    }
    const loadRecord: Record<string, number[]> = {};
    for (const [layer, load] of loads) loadRecord[String(layer)] = [...load];
    return { step, loss, mtpLoss, mtpAccuracy, balanceLoss, lr, gradNorm: norm, skipped, tokens: microBatches.length * batch * (seqPlusOne - 1), loads: loadRecord };
  }
}

/** Coefficient of variation (std / mean) of expert loads: 0 = perfectly balanced. */
export function loadImbalance(load: readonly number[]): number {
  const mean = load.reduce((a, b) => a + b, 0) / load.length;
  if (mean === 0) return 0;
  const variance = load.reduce((a, b) => a + (b - mean) ** 2, 0) / load.length;
  return Math.sqrt(variance) / mean;
}
