/**
 * The forward and backward of one data-parallel shard (a contiguous range of a batch's rows), run
 * the same way by the calling thread (shard 0) and by the worker threads (src/train/parallel.ts).
 *
 * The losses are means over tokens, so a shard's backward is seeded with its share of the batch's
 * loss tokens: pre-training rows all carry as many tokens (main, MTP and the per-sequence balance
 * loss alike), so the share is rows / batch; SFT masks prompt and padding tokens, so the share is the
 * shard's unmasked targets / the batch's. The shards' gradients then sum to the whole batch's, up to
 * float rounding. With one shard of the whole batch (share 1) the arithmetic is exactly the
 * single-process step's.
 */
import { backward } from '../autograd/var.js';
import { type BufferPool, withPool } from '../autograd/pool.js';
import { crossEntropy } from '../autograd/loss.js';
import type { TrainModel } from './model.js';
import { type Fp8Stats, newFp8Stats } from './fp8-linear.js';

export interface PretrainShardTask {
  kind: 'pretrain';
  /** This shard's rows of each micro-batch: ids [rows, seqPlusOne]. */
  microBatches: Int32Array[];
  rows: number;
  seqPlusOne: number;
  /** rows / batch. */
  share: number;
  mtp: boolean;
  mtpLambda: number;
  balanceAlpha: number;
  fp8: boolean;
}

export interface SftShardTask {
  kind: 'sft';
  /** ids and targets [rows, seq] (targets IGNORE_INDEX where masked). */
  ids: Int32Array;
  targets: Int32Array;
  rows: number;
  seq: number;
  /** Unmasked targets of the shard / of the batch. */
  share: number;
}

export type ShardTask = PretrainShardTask | SftShardTask;

/** A shard's statistics, already weighted by its share (the step's value is the sum over shards). */
export interface ShardResult {
  loss: number;
  mtpLoss: number | null;
  mtpAccuracy: number | null;
  balanceLoss: number;
  /** Tokens routed to each expert by this shard, per MoE layer. */
  loads: Map<number, Int32Array>;
  /** What this shard's FP8 linears counted (pre-training with fp8 only). */
  fp8: Fp8Stats;
}

/**
 * Runs one shard on `model`, accumulating into its parameters' gradients. FP8 counts go into
 * `fp8Stats` when given (and are returned either way). The activations and intermediate gradients
 * come from `pool` (reused from the previous step; src/autograd/pool.ts).
 */
export function runShard(model: TrainModel, task: ShardTask, pool: BufferPool, fp8Stats?: Fp8Stats): ShardResult {
  return task.kind === 'pretrain' ? pretrainShard(model, task, pool, fp8Stats) : withPool(pool, () => sftShard(model, task));
}

function pretrainShard(model: TrainModel, task: PretrainShardTask, pool: BufferPool, fp8Stats?: Fp8Stats): ShardResult {
  const n = task.microBatches.length;
  const seed = new Float32Array([task.share / n]);
  const counted = newFp8Stats();
  let loss = 0;
  let mtpLoss: number | null = null;
  let mtpAccuracy: number | null = null;
  let balanceLoss = 0;
  const loads = new Map<number, Int32Array>();
  for (const ids of task.microBatches) {
    const r = withPool(pool, () => {
      const forward = model.forward(ids, task.rows, task.seqPlusOne, {
        mtp: task.mtp, mtpLambda: task.mtpLambda, balanceAlpha: task.balanceAlpha, fp8: task.fp8, fp8Stats: counted,
      });
      backward(forward.loss, seed);
      return forward;
    });
    loss += (task.share * r.mainLoss) / n;
    balanceLoss += (task.share * r.balanceLoss) / n;
    if (r.mtpLoss !== null) mtpLoss = (mtpLoss ?? 0) + (task.share * r.mtpLoss) / n;
    if (r.mtpAccuracy !== null) mtpAccuracy = (mtpAccuracy ?? 0) + (task.share * r.mtpAccuracy) / n;
    addLoads(loads, r.loads);
  }
  if (fp8Stats) addFp8Stats(fp8Stats, counted);
  return { loss, mtpLoss, mtpAccuracy, balanceLoss, loads, fp8: counted };
}

function sftShard(model: TrainModel, task: SftShardTask): ShardResult {
  const ce = crossEntropy(model.logits(task.ids, task.rows, task.seq), task.targets);
  backward(ce, new Float32Array([task.share]));
  return { loss: task.share * ce.item(), mtpLoss: null, mtpAccuracy: null, balanceLoss: 0, loads: new Map(), fp8: newFp8Stats() };
}

/** sum[layer] += add[layer], elementwise (layers missing from `sum` start at 0). */
export function addLoads(sum: Map<number, Int32Array>, add: ReadonlyMap<number, Int32Array>): void {
  for (const [layer, load] of add) {
    const total = sum.get(layer) ?? new Int32Array(load.length);
    for (let e = 0; e < load.length; e++) total[e]! += load[e]!;
    sum.set(layer, total);
  }
}

export function addFp8Stats(sum: Fp8Stats, add: Fp8Stats): void {
  sum.activationElements += add.activationElements;
  sum.activationScales += add.activationScales;
}
