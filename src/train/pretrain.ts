/**
 * A pre-training run from a validated RunConfig: data (tokenized once, cached), model (fresh or
 * resumed from <out_dir>/latest), the step loop with gradient accumulation, periodic evaluation on
 * the held-out split, a progress line, a JSONL log (<out_dir>/log.jsonl), an SVG chart
 * (<out_dir>/loss.svg, rewritten at each eval) and atomic checkpoints. Training is deterministic:
 * a run stopped and resumed from a checkpoint continues bit for bit.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../autograd/var.js';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { Tokenizer } from '../tokenizer/index.js';
import { renderLineChart } from './chart.js';
import { checkResumable, loadCheckpoint, pruneCheckpoints, saveCheckpoint, stepDirName } from './checkpoint.js';
import { RunLog } from './sft.js';
import { PackedSequences, SequenceOrder, holdOut, loadTokens } from './data.js';
import { FP8_GROUP } from './fp8-linear.js';
import { TrainModel } from './model.js';
import type { RunConfig } from './run-config.js';
import { type StepRecord, Trainer, loadImbalance } from './trainer.js';

export interface PretrainOptions {
  /** Continue from <out_dir>/latest when it exists (default true). */
  resume?: boolean;
  /** Stop (after checkpointing) once this many steps are done, before schedule.steps (tests, time limits). */
  stopAtStep?: number;
  /** Progress output (default: stderr). */
  progress?: (line: string) => void;
  /** Called after each checkpoint is written (tests). */
  onCheckpoint?: (dir: string, step: number) => void;
  /** Data-parallel shards of each micro-batch (default defaultTrainWorkers(): FRUGAL_TRAIN_WORKERS, else 2 on 2+ CPUs; 1: single-process). */
  workers?: number;
}

export interface EvalRecord {
  step: number;
  valLoss: number;
  /** FP8 runs: validation loss with FP8 GEMMs, and its relative gap to the FP32 forward of the same weights. */
  valLossFp8?: number;
  fp8ForwardGap?: number;
  /** fp8_compare runs: validation loss of the FP32 reference trained on the same data and seed, and (FP8 − FP32) / FP32. */
  valLossFp32Reference?: number;
  fp8TrainingGap?: number;
}

export interface Fp8MemoryReport {
  /** Linear weights that go through FP8 GEMMs: bytes in BF16 vs FP8 + one f32 scale per 128x128 block. */
  weightBytesBf16: number;
  weightBytesFp8: number;
  /** Activations cached for the backward per optimizer step: BF16 vs FP8 + one f32 scale per 1x128 tile. */
  activationBytesBf16PerStep: number;
  activationBytesFp8PerStep: number;
}

export interface PretrainResult {
  model: TrainModel;
  steps: StepRecord[];
  evals: EvalRecord[];
  startStep: number;
  endStep: number;
  lastCheckpoint: string | null;
  tokensPerSecond: number;
  fp8Memory: Fp8MemoryReport | null;
  dataCached: boolean;
}

interface LogEntry {
  type: 'step' | 'eval' | 'fp8_memory' | 'start';
  step: number;
  [key: string]: unknown;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A one-line text histogram of expert loads, e.g. "▃▅█▁". */
export function loadHistogram(load: readonly number[]): string {
  const bars = '▁▂▃▄▅▆▇█';
  const max = Math.max(1, ...load);
  return load.map((c) => bars[Math.min(7, Math.floor((c / max) * 7.999))]).join('');
}

export function writeChart(path: string, log: readonly LogEntry[]): void {
  const steps = log.filter((e) => e.type === 'step');
  const evals = log.filter((e) => e.type === 'eval');
  const svg = renderLineChart([
    { name: 'train loss', color: '#1f77b4', points: steps.map((e) => [e.step, e['loss'] as number]) },
    { name: 'validation loss', color: '#d62728', points: evals.map((e) => [e.step, e['val_loss'] as number]) },
    { name: 'MTP loss', color: '#2ca02c', dashed: true, points: steps.filter((e) => typeof e['mtp_loss'] === 'number').map((e) => [e.step, e['mtp_loss'] as number]) },
  ], { title: 'training curves', xLabel: 'step', yLabel: 'loss (nats/token)' });
  writeFileAtomic(path, (write) => write(Buffer.from(svg, 'utf8')));
}

function documentSeparator(tokenizer: Tokenizer, run: RunConfig): number {
  if (tokenizer.eosId !== undefined) return tokenizer.eosId;
  const eos = run.model.eos_token_id;
  const id = Array.isArray(eos) ? eos[0] : eos;
  return typeof id === 'number' && id < run.model.vocab_size ? id : -1;
}

export function runPretraining(run: RunConfig, options: PretrainOptions = {}): PretrainResult {
  const trainers: Trainer[] = [];
  try {
    return pretrain(run, options, trainers);
  } finally {
    for (const t of trainers) void t.close();
  }
}

/** The run; every Trainer it makes goes into `trainers` (closed by the caller). */
function pretrain(run: RunConfig, options: PretrainOptions, trainers: Trainer[]): PretrainResult {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(run.outDir, { recursive: true });
  const tokenizer = Tokenizer.fromFile(run.data.tokenizer);
  if (tokenizer.vocabSize > run.model.vocab_size) {
    throw new Error(`model.vocab_size ${run.model.vocab_size} is smaller than the tokenizer's ${tokenizer.vocabSize} tokens (${run.data.tokenizer})`);
  }
  const separator = documentSeparator(tokenizer, run);
  const length = run.seqLen + 1;
  const trainTokens = loadTokens(run.data.train, tokenizer, run.data.tokenizer, separator, run.data.cacheDir);
  let train: PackedSequences;
  let validation: PackedSequences;
  if (run.data.validation) {
    train = new PackedSequences(trainTokens.tokens, length);
    validation = new PackedSequences(loadTokens(run.data.validation, tokenizer, run.data.tokenizer, separator, run.data.cacheDir).tokens, length);
  } else {
    ({ train, validation } = holdOut(trainTokens.tokens, length, run.data.validationFraction));
  }
  if (train.count < run.batchSize) throw new Error(`data.train: ${train.count} sequences of ${length} tokens, fewer than batch_size ${run.batchSize}`);
  if (validation.count < 1) throw new Error(`validation data holds no sequence of ${length} tokens`);

  const latest = join(run.outDir, 'latest');
  const resuming = (options.resume ?? true) && existsSync(latest);
  let model: TrainModel;
  let startStep = 0;
  let cursor = 0;
  let tokensSeen = 0;
  let trainer: Trainer;
  const trainerOptions = {
    lr: run.optimizer.lr, minLr: run.optimizer.minLr, weightDecay: run.optimizer.weightDecay, betas: run.optimizer.betas, eps: run.optimizer.eps,
    clip: run.optimizer.clip, schedule: run.schedule, mtp: run.mtp, moe: run.moe, fp8: run.fp8, workers: options.workers,
  };
  if (resuming) {
    const ckpt = loadCheckpoint(run.outDir);
    checkResumable(ckpt, run.model, run.seed);
    model = TrainModel.fromTensors(run.model, ckpt.tensors, ckpt.dir);
    trainer = new Trainer(model, trainerOptions);
    trainers.push(trainer);
    trainer.optimizer.importState(ckpt.optimizer);
    startStep = ckpt.state.step;
    cursor = ckpt.state.dataCursor;
    tokensSeen = ckpt.state.tokens;
    progress(`resuming from ${ckpt.dir} at step ${startStep}`);
  } else {
    model = TrainModel.init(run.model, run.seed);
    trainer = new Trainer(model, trainerOptions);
    trainers.push(trainer);
  }
  // fp8_compare: an FP32 twin trained on the same batches from the same seed (its own checkpoints).
  const referenceDir = join(run.outDir, 'fp32-reference');
  let reference: Trainer | null = null;
  if (run.fp8Compare) {
    const refOptions = { ...trainerOptions, fp8: false };
    if (resuming) {
      // by step, not `latest`: a crash between the two saves leaves the reference one checkpoint ahead
      const ref = loadCheckpoint(join(referenceDir, 'checkpoints', stepDirName(startStep)));
      if (ref.state.step !== startStep) throw new Error(`cannot resume: the FP32 reference ${ref.dir} is at step ${ref.state.step}, the run at ${startStep}`);
      reference = new Trainer(TrainModel.fromTensors(run.model, ref.tensors, ref.dir), refOptions);
      trainers.push(reference);
      reference.optimizer.importState(ref.optimizer);
    } else {
      reference = new Trainer(TrainModel.init(run.model, run.seed), refOptions);
      trainers.push(reference);
    }
  }
  const logPath = join(run.outDir, 'log.jsonl');
  const chartPath = join(run.outDir, 'loss.svg');
  // a resumed run keeps the entries up to its checkpoint; a fresh one starts an empty log
  const runLog = new RunLog<LogEntry>(logPath, resuming ? startStep : -1, progress);
  const log = runLog.entries;
  const append = (e: LogEntry) => runLog.add(e);
  if (!resuming) {
    append({ type: 'start', step: 0, parameters: model.parameterCount(), train_sequences: train.count, validation_sequences: validation.count, tokens_cached: trainTokens.cached, fp8: run.fp8 });
  }
  progress(`model ${run.model.architecture}: ${model.parameterCount()} parameters; data ${train.count} train / ${validation.count} validation sequences of ${run.seqLen}+1 tokens${trainTokens.cached ? ' (token cache hit)' : ''}${trainer.workers > 1 ? `; data-parallel over ${trainer.workers} threads` : ''}`);

  const order = new SequenceOrder(train.count, run.seed);
  const total = run.schedule.steps;
  const stopAt = Math.min(total, options.stopAtStep ?? total);
  const steps: StepRecord[] = [];
  const evals: EvalRecord[] = [];
  let lastCheckpoint: string | null = null;
  const started = performance.now();
  let trainedTokens = 0;

  const evaluate = (step: number): EvalRecord => {
    const batches = Math.max(1, Math.min(run.evalBatches, Math.ceil(validation.count / run.batchSize)));
    const lossOf = (fp8: boolean, m: TrainModel = model) => noGrad(() => {
      let sum = 0;
      let n = 0;
      for (let b = 0; b < batches; b++) {
        const size = Math.min(run.batchSize, validation.count - b * run.batchSize);
        if (size <= 0) break;
        const ids = new Int32Array(size * length);
        for (let i = 0; i < size; i++) ids.set(validation.sequence(b * run.batchSize + i), i * length);
        sum += m.forward(ids, size, length, { mtp: false, fp8 }).mainLoss * size;
        n += size;
      }
      return sum / n;
    });
    const record: EvalRecord = { step, valLoss: lossOf(false) };
    if (run.fp8) {
      record.valLossFp8 = lossOf(true);
      record.fp8ForwardGap = (record.valLossFp8 - record.valLoss) / record.valLoss;
    }
    if (reference) {
      record.valLossFp32Reference = lossOf(false, reference.model);
      record.fp8TrainingGap = (record.valLoss - record.valLossFp32Reference) / record.valLossFp32Reference;
    }
    return record;
  };

  const checkpoint = (step: number) => {
    if (reference) {
      saveCheckpoint(referenceDir, run.model, reference.model.tensors(), reference.optimizer.exportState(),
        { step, dataCursor: cursor, seed: run.seed, tokens: tokensSeen, extra: { fp32_reference_of: run.outDir } });
    }
    lastCheckpoint = saveCheckpoint(run.outDir, run.model, model.tensors(), trainer.optimizer.exportState(),
      { step, dataCursor: cursor, seed: run.seed, tokens: tokensSeen, extra: {} }, run.data.tokenizer);
    pruneCheckpoints(run.outDir, run.keepCheckpoints);
    // pruned only now: until the run's own checkpoint is saved, a resume needs the reference's previous one
    if (reference) pruneCheckpoints(referenceDir, run.keepCheckpoints);
    options.onCheckpoint?.(lastCheckpoint, step);
  };

  for (let step = startStep; step < stopAt; step++) {
    const micro: Int32Array[] = [];
    for (let a = 0; a < run.gradAccum; a++) {
      micro.push(order.batch(train, cursor, run.batchSize));
      cursor += run.batchSize;
    }
    const record = trainer.step(step, micro, run.batchSize, length);
    const refRecord = reference ? reference.step(step, micro, run.batchSize, length) : null;
    steps.push(record);
    tokensSeen += record.tokens;
    trainedTokens += record.tokens;
    const elapsed = (performance.now() - started) / 1000;
    const tps = trainedTokens / elapsed;
    const done = step + 1;
    const eta = ((elapsed / (done - startStep)) * (stopAt - done));
    append({
      type: 'step', step: done, loss: record.loss, mtp_loss: record.mtpLoss, mtp_accuracy: record.mtpAccuracy, balance_loss: record.balanceLoss,
      lr: record.lr, grad_norm: record.gradNorm, skipped: record.skipped, tokens: tokensSeen, tokens_per_second: tps, expert_load: record.loads,
      ...(refRecord ? { loss_fp32_reference: refRecord.loss, fp8_training_gap: (record.loss - refRecord.loss) / refRecord.loss } : {}),
    });
    progress(`step ${done}/${total} | loss ${record.loss.toFixed(4)}${record.mtpLoss !== null ? ` | mtp ${record.mtpLoss.toFixed(4)} (acc ${(record.mtpAccuracy! * 100).toFixed(1)}%)` : ''} | lr ${record.lr.toExponential(2)} | ${tps.toFixed(0)} tok/s | ETA ${formatDuration(eta)}${record.skipped ? ' | SKIPPED (non-finite gradient)' : ''}`);
    const isLast = done === stopAt;
    if ((run.evalEvery > 0 && done % run.evalEvery === 0) || isLast) {
      const ev = evaluate(done);
      evals.push(ev);
      append({
        type: 'eval', step: done, val_loss: ev.valLoss, val_loss_fp8: ev.valLossFp8, fp8_forward_gap: ev.fp8ForwardGap,
        val_loss_fp32_reference: ev.valLossFp32Reference, fp8_training_gap: ev.fp8TrainingGap,
      });
      const hist = Object.entries(record.loads).map(([layer, load]) => `L${layer} ${loadHistogram(load)} cv ${loadImbalance(load).toFixed(2)}`).join('  ');
      progress(`eval step ${done}: validation loss ${ev.valLoss.toFixed(4)}${ev.fp8ForwardGap !== undefined ? ` (FP8 forward ${ev.valLossFp8!.toFixed(4)}, gap ${(ev.fp8ForwardGap * 100).toFixed(3)}%)` : ''}${ev.fp8TrainingGap !== undefined ? ` | FP32 reference ${ev.valLossFp32Reference!.toFixed(4)}, FP8 training gap ${(ev.fp8TrainingGap * 100).toFixed(3)}%` : ''}${hist ? ` | expert load ${hist}` : ''}`);
      writeChart(chartPath, log);
    }
    if ((run.checkpointEvery > 0 && done % run.checkpointEvery === 0) || isLast) checkpoint(done);
  }

  let fp8Memory: Fp8MemoryReport | null = null;
  if (run.fp8 && steps.length > 0) {
    let weightElements = 0;
    let weightBlocks = 0;
    for (const [name, p] of model.params) {
      if (p.rank !== 2 || !/_proj(_with_mqa)?\.weight$/.test(name)) continue;
      weightElements += p.size;
      weightBlocks += Math.ceil(p.shape[0]! / FP8_GROUP) * Math.ceil(p.shape[1]! / FP8_GROUP);
    }
    const perStep = trainer.fp8Stats.activationElements / steps.length;
    const scalesPerStep = trainer.fp8Stats.activationScales / steps.length;
    fp8Memory = {
      weightBytesBf16: 2 * weightElements, weightBytesFp8: weightElements + 4 * weightBlocks,
      activationBytesBf16PerStep: 2 * perStep, activationBytesFp8PerStep: perStep + 4 * scalesPerStep,
    };
    append({ type: 'fp8_memory', step: stopAt, ...fp8Memory });
    progress(`FP8 storage: linear weights ${(fp8Memory.weightBytesBf16 / 1e6).toFixed(2)} MB BF16 -> ${(fp8Memory.weightBytesFp8 / 1e6).toFixed(2)} MB FP8; cached activations per step ${(fp8Memory.activationBytesBf16PerStep / 1e6).toFixed(2)} MB -> ${(fp8Memory.activationBytesFp8PerStep / 1e6).toFixed(2)} MB`);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    model, steps, evals, startStep, endStep: Math.max(startStep, stopAt), lastCheckpoint, tokensPerSecond: trainedTokens / seconds, fp8Memory, dataCached: trainTokens.cached,
  };
}
