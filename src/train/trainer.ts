/**
 * One optimizer step of pre-training, independent of files: gradient accumulation over
 * micro-batches (each backward seeded with 1/grad_accum), global-norm clipping, AdamW with the
 * scheduled learning rate, then DeepSeek-V3's aux-loss-free bias update from the step's expert
 * loads (summed over the micro-batches; no gradient).
 *
 * With more than one shard (options.workers, default defaultTrainWorkers()), each micro-batch's rows
 * are split over the calling thread and worker threads (src/train/parallel.ts); the gradients,
 * losses, expert loads and FP8 counts of the shards are summed (FP8 counts merged from every shard),
 * so the step equals the single-process one up to float rounding and is deterministic for a given
 * shard count. One shard runs the single-process arithmetic exactly.
 */
import { BufferPool } from '../autograd/pool.js';
import { AdamW, clipGradNorm, decayGroups, gradNorm } from './optimizer.js';
import { warmupCosine, warmupStableDecay } from './schedule.js';
import type { TrainModel } from './model.js';
import { type Fp8Stats, newFp8Stats } from './fp8-linear.js';
import { DataParallel, checkedWorkers, defaultTrainWorkers, rowRanges } from './parallel.js';
import { type PretrainShardTask, type ShardResult, addLoads, runShard } from './parallel-shard.js';

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
  /** Data-parallel shards: the calling thread plus workers − 1 worker threads (default defaultTrainWorkers(); 1: none). */
  workers?: number;
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
  /** Data-parallel shards per micro-batch (1: single-process). */
  readonly workers: number;
  private parallel: DataParallel | null = null;
  /** Activation and gradient buffers reused from step to step (single-process steps). */
  private readonly pool = new BufferPool();

  constructor(readonly model: TrainModel, readonly options: TrainerOptions) {
    this.optimizer = new AdamW(decayGroups(model.parameterList, options.weightDecay), {
      lr: options.lr, beta1: options.betas[0], beta2: options.betas[1], eps: options.eps, weightDecay: options.weightDecay,
    });
    this.workers = options.workers === undefined ? defaultTrainWorkers() : checkedWorkers(options.workers, 'TrainerOptions.workers');
  }

  /** One optimizer step over micro-batches of ids [batch, seqPlusOne]; `step` is 0-based. */
  step(step: number, microBatches: readonly Int32Array[], batch: number, seqPlusOne: number): StepRecord {
    const o = this.options;
    const lr = learningRate(step, o);
    this.optimizer.zeroGrad();
    const shards = this.shardResults(microBatches, batch, seqPlusOne);
    const first = shards[0]!;
    let { loss, mtpLoss, mtpAccuracy, balanceLoss } = first;
    const loads = first.loads;
    for (const r of shards.slice(1)) {
      loss += r.loss;
      balanceLoss += r.balanceLoss;
      if (r.mtpLoss !== null) mtpLoss = (mtpLoss ?? 0) + r.mtpLoss;
      if (r.mtpAccuracy !== null) mtpAccuracy = (mtpAccuracy ?? 0) + r.mtpAccuracy;
      addLoads(loads, r.loads);
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

  /** Ends the data-parallel worker threads, if any were started (a later step starts new ones). */
  close(): Promise<void> {
    const ending = this.parallel?.close() ?? Promise.resolve();
    this.parallel = null;
    return ending;
  }

  /** Forward + backward of every shard (gradients summed into the model's), with their statistics. */
  private shardResults(microBatches: readonly Int32Array[], batch: number, seqPlusOne: number): ShardResult[] {
    const o = this.options;
    const ranges = rowRanges(batch, this.workers);
    const task = (from: number, to: number, rows: readonly Int32Array[]): PretrainShardTask => ({
      kind: 'pretrain', microBatches: [...rows], rows: to - from, seqPlusOne, share: (to - from) / batch,
      mtp: o.mtp.enabled, mtpLambda: o.mtp.lambda, balanceAlpha: o.moe.alpha, fp8: o.fp8,
    });
    if (ranges.length === 1) return [runShard(this.model, task(0, batch, microBatches), this.pool, this.fp8Stats)];
    this.parallel ??= new DataParallel(this.model, this.workers);
    const tasks = ranges.map(([from, to]) => task(from, to, microBatches.map((ids) => ids.slice(from * seqPlusOne, to * seqPlusOne))));
    return this.parallel.run(tasks, this.fp8Stats);
  }
}

/** Coefficient of variation (std / mean) of expert loads: 0 = perfectly balanced. */
export function loadImbalance(load: readonly number[]): number {
  const mean = load.reduce((a, b) => a + b, 0) / load.length;
  if (mean === 0) return 0;
  const variance = load.reduce((a, b) => a + (b - mean) ** 2, 0) / load.length;
  return Math.sqrt(variance) / mean;
}
