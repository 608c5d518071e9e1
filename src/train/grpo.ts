/**
 * GRPO (spec §7): G sampled completions per prompt, rule rewards from the tasks' verifiers
 * (accuracy + format, §8.2), group-relative advantages, clipped per-token importance ratio against
 * the policy that sampled, and a k3 KL penalty to a frozen reference:
 *
 *   Â_i      = (r_i − mean(r)) / (std(r) + 1e-4)         (scaleRewards; Dr. GRPO: r_i − mean(r))
 *   ρ_{i,t}  = exp(logπ_θ − logπ_old)
 *   KL_{i,t} = π_ref/π_θ − log(π_ref/π_θ) − 1
 *   l_{i,t}  = −min(ρ Â, clip(ρ, 1−ε, 1+ε) Â) + β KL
 *   loss     = Σ_q Σ_i Σ_t w_{i,t} l_{i,t}, with the normalization chosen by lossType:
 *     'grpo'     w = 1 / (Q · G · |o_i|)          (per-sequence mean, then mean over the group: DSMath/R1)
 *     'dr_grpo'  w = 1 / (Q · G · L), L = max_tokens (Dr. GRPO: token sum over a constant)
 *     'token'    w = 1 / Σ_all |o_i|               (DAPO token-level mean)
 * std is the sample (n−1) standard deviation, as TRL computes it (the papers do not say; spec §7.1);
 * a group whose rewards are all equal has zero advantage.
 * μ policy updates per rollout batch; π_old is the policy before the first of them, so ρ = 1 on
 * the first update and the clip acts from the second on.
 * π is the distribution the rollouts were sampled from, softmax(logits / T) at the sampling
 * temperature T (as TRL computes it): ρ, the KL and the entropy are all taken at T.
 * Dynamic sampling (DAPO, `keepGroups`): a step may roll out more prompts than it trains on; only
 * groups whose rewards differ carry an advantage, so the update keeps the first `keepGroups` of
 * those and skips the rest (a step with none makes no update). The logged rates cover every rollout.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { join } from 'node:path';
import { BufferPool, withPool } from '../autograd/pool.js';
import { type Var, backward, noGrad, result } from '../autograd/var.js';
import { renderLineChart } from './chart.js';
import { checkResumable, loadCheckpoint, loadModelDir, saveCheckpoint, writeModelDir } from './checkpoint.js';
import { TrainModel } from './model.js';
import { AdamW, clipGradNorm, decayGroups, gradNorm } from './optimizer.js';
import {
  type Codec, type Completion, EnginePolicy, type Policy, completeAll, type SampleOptions, inferenceModel, meanEntropy, packSequences, packedLogProbs,
  snapshotTensors, streamRng,
} from './rollout.js';
import { RunLog, formatDuration } from './sft.js';

export type GrpoLossType = 'grpo' | 'dr_grpo' | 'token';
export const GRPO_LOSS_TYPES: readonly GrpoLossType[] = ['grpo', 'dr_grpo', 'token'];

/** Group-relative advantages of rewards laid out group after group (groups of `groupSize`). */
export function groupAdvantages(rewards: readonly number[], groupSize: number, scaleByStd: boolean, eps = 1e-4): number[] {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`groupAdvantages: group size ${groupSize} must be a positive integer`);
  if (rewards.length % groupSize !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards do not split into groups of ${groupSize}`);
  const out: number[] = [];
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const mean = group.reduce((a, b) => a + b, 0) / groupSize;
    const variance = groupSize > 1 ? group.reduce((a, r) => a + (r - mean) ** 2, 0) / (groupSize - 1) : 0;
    const std = Math.sqrt(variance);
    for (const r of group) {
      const centred = r - mean;
      out.push(centred === 0 ? 0 : scaleByStd ? centred / (std + eps) : centred);
    }
  }
  return out;
}

/**
 * Indices of the groups (of rewards laid out group after group) whose rewards are not all equal:
 * the first `keep` of them, in order. Equal rewards give zero advantage, hence no policy gradient.
 */
export function informativeGroups(rewards: readonly number[], groupSize: number, keep: number): number[] {
  if (rewards.length % groupSize !== 0) throw new Error(`informativeGroups: ${rewards.length} rewards do not split into groups of ${groupSize}`);
  const kept: number[] = [];
  for (let g = 0; g * groupSize < rewards.length && kept.length < keep; g++) {
    const group = rewards.slice(g * groupSize, (g + 1) * groupSize);
    if (group.some((r) => r !== group[0])) kept.push(g);
  }
  return kept;
}

/** Per-token weights w_{i,t} of one rollout batch (see the header), one per completion. */
export function tokenWeights(lengths: readonly number[], groupSize: number, lossType: GrpoLossType, maxTokens: number): number[] {
  const sequences = lengths.length;
  if (lossType === 'grpo') return lengths.map((n) => (n === 0 ? 0 : 1 / (sequences * n)));
  if (lossType === 'dr_grpo') {
    if (!(maxTokens > 0)) throw new Error(`tokenWeights: dr_grpo needs the constant L (max_tokens) > 0, got ${maxTokens}`);
    return lengths.map(() => 1 / (sequences * maxTokens));
  }
  const total = lengths.reduce((a, b) => a + b, 0);
  void groupSize;
  return lengths.map(() => (total === 0 ? 0 : 1 / total));
}

export interface GrpoTokenInputs {
  /** log π_old per row (the sampling policy; no gradient). */
  oldLogp: Float32Array;
  /** log π_ref per row (ignored when beta = 0). */
  refLogp: Float32Array;
  advantage: Float32Array;
  /** w per row; 0 for rows that are not completion tokens. */
  weight: Float32Array;
  epsilon: number;
  beta: number;
}

export interface GrpoTokenStats {
  /** Σ w·KL / Σ w over rows with weight (the mean KL the loss sees). */
  kl: number;
  /** Fraction of completion tokens whose surrogate took the clipped branch. */
  clipFraction: number;
  /** Mean ratio over completion tokens. */
  meanRatio: number;
  /** The denominators of kl and clipFraction (Σ w and the rows with weight), to merge the stats of several calls. */
  weightSum: number;
  tokens: number;
}

/** Value and derivative of one token's loss l = −min(ρA, clip(ρ)A) + β·KL w.r.t. logπ_θ. */
export function grpoTokenLoss(logp: number, oldLogp: number, refLogp: number, advantage: number, epsilon: number, beta: number): { loss: number; grad: number; kl: number; clipped: boolean; ratio: number } {
  const ratio = Math.exp(logp - oldLogp);
  const clippedRatio = Math.min(Math.max(ratio, 1 - epsilon), 1 + epsilon);
  const unclipped = ratio * advantage;
  const clippedTerm = clippedRatio * advantage;
  const clipped = clippedTerm < unclipped;
  const surrogate = clipped ? clippedTerm : unclipped;
  const dSurrogate = clipped ? 0 : ratio * advantage;
  let kl = 0;
  let dKl = 0;
  if (beta !== 0) {
    const q = Math.exp(refLogp - logp);
    kl = q - (refLogp - logp) - 1;
    dKl = 1 - q;
  }
  return { loss: -surrogate + beta * kl, grad: -dSurrogate + beta * dKl, kl, clipped, ratio };
}

/** The GRPO loss over rows of log π_θ (a Var [N]): Σ_r w_r l_r, with its gradient, and statistics. */
export function grpoLoss(logp: Var, x: GrpoTokenInputs): { loss: Var; stats: GrpoTokenStats } {
  const n = logp.size;
  for (const [name, a] of [['oldLogp', x.oldLogp], ['refLogp', x.refLogp], ['advantage', x.advantage], ['weight', x.weight]] as const) {
    if (a.length !== n) throw new Error(`grpoLoss: ${name} has ${a.length} values, logp has ${n}`);
  }
  if (!(x.epsilon > 0)) throw new Error(`grpoLoss: epsilon ${x.epsilon} must be > 0`);
  const grads = new Float64Array(n);
  let total = 0;
  let klSum = 0;
  let wSum = 0;
  let tokens = 0;
  let clipped = 0;
  let ratioSum = 0;
  for (let r = 0; r < n; r++) {
    const w = x.weight[r]!;
    if (w === 0) continue;
    const t = grpoTokenLoss(logp.value[r]!, x.oldLogp[r]!, x.refLogp[r]!, x.advantage[r]!, x.epsilon, x.beta);
    total += w * t.loss;
    grads[r] = w * t.grad;
    klSum += w * t.kl;
    wSum += w;
    tokens++;
    if (t.clipped) clipped++;
    ratioSum += t.ratio;
  }
  const loss = result(Float32Array.of(total), [], [logp], (out) => () => {
    const g = out.grad![0]!;
    const gx = logp.gradBuffer();
    for (let r = 0; r < n; r++) if (grads[r] !== 0) gx[r]! += g * grads[r]!;
  });
  return { loss, stats: { kl: wSum === 0 ? 0 : klSum / wSum, clipFraction: tokens === 0 ? 0 : clipped / tokens, meanRatio: tokens === 0 ? 1 : ratioSum / tokens, weightSum: wSum, tokens } };
}

// ---------------------------------------------------------------------------------------- rollouts

export interface RewardBreakdown {
  accuracy: number;
  format: number;
  score: number;
}

/** A prompt to roll out: its tokens and how to reward a completion text. */
export interface RolloutPrompt {
  tokens: number[];
  reward(completion: string): RewardBreakdown;
}

export interface Rollout {
  prompt: number[];
  completion: Completion;
  reward: RewardBreakdown;
}

/**
 * G completions per prompt, group after group, from a Policy with per-(step, sequence) seeded
 * streams; all P·G sampled together (`completeAll`: batched decoding on the inference engine).
 */
export function rollOut(policy: Policy, prompts: readonly RolloutPrompt[], groupSize: number, sample: SampleOptions, seed: number, step: number): Rollout[] {
  const owners = prompts.flatMap((p) => Array.from({ length: groupSize }, () => p));
  const rngs = owners.map((_, i) => streamRng(seed, step, i));
  const completions = completeAll(policy, owners.map((p) => p.tokens), sample, rngs);
  return owners.map((p, i) => ({ prompt: p.tokens, completion: completions[i]!, reward: p.reward(completions[i]!.text) }));
}

// ---------------------------------------------------------------------------------------- training

export interface GrpoOptions {
  steps: number;
  groupSize: number;
  lr: number;
  beta: number;
  epsilon: number;
  /** Policy updates per rollout batch (μ). */
  mu: number;
  /** Dynamic sampling: train on at most this many groups with differing rewards (undefined: every group). */
  keepGroups?: number;
  /** Padded tokens per micro-batch of the update (default UPDATE_MICRO_TOKENS; lengthBuckets). */
  microTokens?: number;
  lossType: GrpoLossType;
  scaleRewards: boolean;
  sample: SampleOptions;
  /** Reset the reference to the current policy every N steps (0: never; R1 used 400). */
  refResetEvery: number;
  weightDecay: number;
  clip: number;
  seed: number;
  outDir: string;
  checkpointEvery: number;
  logEvery: number;
  tokenizerPath?: string;
  resume?: boolean;
  stopAt?: number;
  print?: (line: string) => void;
}

export interface GrpoLogEntry {
  step: number;
  reward: number;
  accuracy: number;
  format: number;
  response_length: number;
  /** KL, entropy and clip fraction are over the rollouts the update used (0 when it used none). */
  kl: number;
  entropy: number;
  clip_fraction: number;
  loss: number;
  grad_norm: number;
  /** Groups the update used (all of them unless dynamic sampling dropped some). */
  groups_trained: number;
  seconds: number;
  rollout_seconds: number;
}

export interface GrpoResult {
  model: TrainModel;
  startStep: number;
  endStep: number;
  log: GrpoLogEntry[];
  lastCheckpoint: string | null;
}

/** The prompts of a step: `promptsFor(step)` must be a pure function of the step (resume). */
export type PromptSource = (step: number) => RolloutPrompt[];

function assertOptions(o: GrpoOptions): void {
  if (!GRPO_LOSS_TYPES.includes(o.lossType)) throw new Error(`grpo: loss type ${JSON.stringify(o.lossType)} is not one of ${GRPO_LOSS_TYPES.join(', ')}`);
  if (!(o.groupSize >= 2)) throw new Error(`grpo: group size ${o.groupSize} must be at least 2 (advantages are relative to the group)`);
  if (!(o.mu >= 1)) throw new Error(`grpo: mu ${o.mu} must be at least 1`);
  if (o.keepGroups !== undefined && !(Number.isInteger(o.keepGroups) && o.keepGroups >= 1)) throw new Error(`grpo: keepGroups ${o.keepGroups} must be a positive integer`);
  if (o.microTokens !== undefined && !(o.microTokens >= 1)) throw new Error(`grpo: microTokens ${o.microTokens} must be at least 1`);
}

/** One GRPO step on a model: rollouts, rewards, advantages, μ updates. Returns the log entry (without timing). */
export function grpoStep(
  model: TrainModel, reference: TrainModel | null, optimizer: AdamW, codec: Codec, prompts: readonly RolloutPrompt[], step: number, o: GrpoOptions,
  policy: Policy = new EnginePolicy(inferenceModel(model), codec), pool: BufferPool = new BufferPool(),
): Omit<GrpoLogEntry, 'seconds'> {
  const t0 = Date.now();
  const rollouts = rollOut(policy, prompts, o.groupSize, o.sample, o.seed, step);
  const rolloutSeconds = (Date.now() - t0) / 1000;
  const scores = rollouts.map((r) => r.reward.score);
  const groups = o.keepGroups === undefined ? prompts.map((_, g) => g) : informativeGroups(scores, o.groupSize, o.keepGroups);
  const trained = groups.flatMap((g) => rollouts.slice(g * o.groupSize, (g + 1) * o.groupSize));
  const update = trained.length > 0 ? grpoUpdate(model, reference, optimizer, trained, o, pool) : { loss: 0, kl: 0, entropy: 0, clipFraction: 0, norm: 0 };
  const n = rollouts.length;
  const mean = (f: (r: Rollout) => number) => rollouts.reduce((a, r) => a + f(r), 0) / n;
  return {
    step: step + 1, reward: mean((r) => r.reward.score), accuracy: mean((r) => r.reward.accuracy), format: mean((r) => r.reward.format),
    response_length: mean((r) => r.completion.tokens.length), kl: update.kl, entropy: update.entropy, clip_fraction: update.clipFraction, loss: update.loss,
    grad_norm: update.norm, groups_trained: groups.length, rollout_seconds: rolloutSeconds,
  };
}

/** Padded tokens (sequences × the longest) one micro-batch of the update may hold. */
export const UPDATE_MICRO_TOKENS = 8192;

/**
 * Sequence indices in micro-batches of similar length: sorted by length (stable), then cut so that
 * a micro-batch's count × its longest stays within `budget` (one sequence at least). Padding to the
 * longest of a micro-batch wastes far less than padding every rollout to the longest of the step.
 */
export function lengthBuckets(lengths: readonly number[], budget: number): number[][] {
  const order = lengths.map((_, i) => i).sort((x, y) => lengths[x]! - lengths[y]! || x - y);
  const buckets: number[][] = [];
  let current: number[] = [];
  for (const i of order) {
    // sorted ascending, so the newcomer is the longest
    if (current.length > 0 && (current.length + 1) * lengths[i]! > budget) {
      buckets.push(current);
      current = [];
    }
    current.push(i);
  }
  if (current.length > 0) buckets.push(current);
  return buckets;
}

interface MicroBatch {
  packed: ReturnType<typeof packSequences>;
  weight: Float32Array;
  advantage: Float32Array;
  oldLogp: Float32Array | null;
  refLogp: Float32Array | null;
}

/**
 * The μ policy updates on rollouts laid out group after group. The rollouts go through in
 * micro-batches of similar length (lengthBuckets) whose gradients add up to the whole loss's: the
 * loss is a weighted sum over tokens, so splitting it changes nothing but rounding. Activations
 * come from `pool` (the previous step's arrays, src/autograd/pool.ts). π_old is the policy before
 * the first update, so that update's own forward gives log π_old; a separate forward without
 * gradients is needed only for μ > 1.
 */
function grpoUpdate(model: TrainModel, reference: TrainModel | null, optimizer: AdamW, rollouts: readonly Rollout[], o: GrpoOptions, pool: BufferPool) {
  const advantages = groupAdvantages(rollouts.map((r) => r.reward.score), o.groupSize, o.scaleRewards);
  const weights = tokenWeights(rollouts.map((r) => r.completion.tokens.length), o.groupSize, o.lossType, o.sample.maxTokens);
  const lengths = rollouts.map((r) => r.prompt.length + r.completion.tokens.length);
  const batches: MicroBatch[] = lengthBuckets(lengths, o.microTokens ?? UPDATE_MICRO_TOKENS).map((indices) => {
    const packed = packSequences(indices.map((i) => ({ prompt: rollouts[i]!.prompt, completion: rollouts[i]!.completion.tokens })));
    const rows = packed.batch * packed.seq;
    const weight = new Float32Array(rows);
    const advantage = new Float32Array(rows);
    packed.rows.forEach((rs, k) => {
      const i = indices[k]!;
      for (const r of rs) {
        weight[r] = weights[i]!;
        advantage[r] = advantages[i]!;
      }
    });
    return { packed, weight, advantage, oldLogp: null, refLogp: null };
  });
  // the policy is the distribution the rollouts were sampled from: softmax(logits / T), as TRL computes it
  const temperature = o.sample.temperature > 0 ? o.sample.temperature : 1;
  let entropySum = 0;
  let entropyRows = 0;
  /** log π_old from a forward of the policy before any update (and the entropy there). */
  const keepOld = (b: MicroBatch, logp: Var, logits: Float32Array): void => {
    b.oldLogp = Float32Array.from(logp.value);
    const rows = b.packed.rows.flatMap((r) => [...r]);
    entropySum += meanEntropy(logits, model.config.vocab_size, rows, temperature) * rows.length;
    entropyRows += rows.length;
  };
  for (const b of batches) {
    withPool(pool, () => noGrad(() => {
      if (o.mu > 1) {
        const f = packedLogProbs(model, b.packed, temperature);
        keepOld(b, f.logp, f.logits);
      }
      if (reference && o.beta !== 0) b.refLogp = Float32Array.from(packedLogProbs(reference, b.packed, temperature).logp.value);
    }));
  }
  let loss = 0;
  let kl = 0;
  let clipFraction = 0;
  let norm = 0;
  for (let u = 0; u < o.mu; u++) {
    optimizer.zeroGrad();
    // the micro-batches' statistics merged with their denominators
    let klSum = 0;
    let weightSum = 0;
    let clipped = 0;
    let tokens = 0;
    for (const b of batches) {
      withPool(pool, () => {
        const f = packedLogProbs(model, b.packed, temperature);
        if (b.oldLogp === null) keepOld(b, f.logp, f.logits);
        const g = grpoLoss(f.logp, { oldLogp: b.oldLogp!, refLogp: b.refLogp ?? b.oldLogp!, advantage: b.advantage, weight: b.weight, epsilon: o.epsilon, beta: o.beta });
        backward(g.loss);
        if (u === 0) loss += g.loss.item();
        klSum += g.stats.kl * g.stats.weightSum;
        weightSum += g.stats.weightSum;
        clipped += g.stats.clipFraction * g.stats.tokens;
        tokens += g.stats.tokens;
      });
    }
    norm = o.clip > 0 ? clipGradNorm(optimizer.params, o.clip) : gradNorm(optimizer.params);
    if (Number.isFinite(norm)) optimizer.step(o.lr);
    if (u === 0) kl = weightSum === 0 ? 0 : klSum / weightSum;
    clipFraction += (tokens === 0 ? 0 : clipped / tokens) / o.mu;
  }
  return { loss, kl, entropy: entropyRows === 0 ? 0 : entropySum / entropyRows, clipFraction, norm };
}

/**
 * The GRPO loop with checkpoints (resumable bit for bit: the prompts and sampling streams are
 * functions of (seed, step), the reference is saved as a model directory when (re)set).
 * `makePolicy` builds the sampler from the current model (default: the inference engine).
 */
export function runGrpo(initial: TrainModel, codec: Codec, prompts: PromptSource, o: GrpoOptions, makePolicy?: (model: TrainModel) => Policy): GrpoResult {
  assertOptions(o);
  const print = o.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(o.outDir, { recursive: true });
  let model = initial;
  let startStep = 0;
  let referenceDir: string | null = null;
  const state = (o.resume ?? true) && existsSync(join(o.outDir, 'latest')) ? loadCheckpoint(o.outDir) : null;
  if (state) {
    checkResumable(state, initial.config, o.seed);
    model = TrainModel.fromTensors(state.config, state.tensors, state.dir);
    startStep = state.state.step;
    referenceDir = typeof state.state.extra['reference'] === 'string' ? (state.state.extra['reference'] as string) : null;
    print(`resuming from ${state.dir} (step ${startStep})`);
  }
  const optimizer = new AdamW(decayGroups(model.parameterList, o.weightDecay), { lr: o.lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: o.weightDecay });
  if (state) optimizer.importState(state.optimizer);
  let reference: TrainModel | null = null;
  const setReference = (step: number) => {
    if (o.beta === 0) return;
    const dir = join(o.outDir, 'reference', `step-${String(step).padStart(8, '0')}`);
    const tensors = snapshotTensors(model);
    writeModelDir(dir, model.config, tensors);
    reference = TrainModel.fromTensors(model.config, tensors, dir);
    referenceDir = dir;
  };
  if (o.beta !== 0) {
    if (referenceDir !== null) {
      const ref = loadModelDir(referenceDir);
      reference = TrainModel.fromTensors(ref.config, ref.tensors, referenceDir);
    } else {
      setReference(startStep);
    }
  }
  const log = new RunLog<GrpoLogEntry>(join(o.outDir, 'log.jsonl'), startStep, print);
  const end = Math.min(o.steps, o.stopAt ?? o.steps);
  const started = Date.now();
  let lastCheckpoint: string | null = null;
  /** The update's activations, reused from step to step. */
  const pool = new BufferPool();
  for (let step = startStep; step < end; step++) {
    if (o.refResetEvery > 0 && step > 0 && step % o.refResetEvery === 0) setReference(step);
    const policy = makePolicy ? makePolicy(model) : new EnginePolicy(inferenceModel(model), codec);
    const entry = { ...grpoStep(model, reference, optimizer, codec, prompts(step), step, o, policy, pool), seconds: (Date.now() - started) / 1000 };
    log.add(entry);
    if ((step + 1) % o.logEvery === 0 || step + 1 === end) {
      const eta = ((end - step - 1) * entry.seconds) / (step + 1 - startStep);
      print(`rl step ${step + 1}/${o.steps}  reward ${entry.reward.toFixed(3)}  acc ${entry.accuracy.toFixed(3)}  format ${entry.format.toFixed(3)}  len ${entry.response_length.toFixed(1)}  kl ${entry.kl.toExponential(2)}  ent ${entry.entropy.toFixed(3)}  clip ${entry.clip_fraction.toFixed(3)}${o.keepGroups !== undefined ? `  groups ${entry.groups_trained}/${o.keepGroups}` : ''}  eta ${formatDuration(eta)}`);
    }
    if ((o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery === 0) || step + 1 === end) {
      lastCheckpoint = saveCheckpoint(o.outDir, model.config, model.tensors(), optimizer.exportState(),
        { step: step + 1, dataCursor: step + 1, seed: o.seed, tokens: 0, extra: { stage: 'rl', reference: referenceDir } }, o.tokenizerPath);
    }
  }
  writeGrpoChart(join(o.outDir, 'reward.svg'), log.entries);
  return { model, startStep, endStep: end, log: log.entries, lastCheckpoint };
}

export function writeGrpoChart(path: string, entries: readonly GrpoLogEntry[]): void {
  const maxLen = Math.max(1, ...entries.map((e) => e.response_length));
  const svg = renderLineChart([
    { name: 'mean reward', color: '#1f77b4', points: entries.map((e) => [e.step, e.reward]) },
    { name: 'accuracy', color: '#2ca02c', points: entries.map((e) => [e.step, e.accuracy]) },
    { name: 'format rate', color: '#9467bd', dashed: true, points: entries.map((e) => [e.step, e.format]) },
    { name: `response length / ${maxLen.toFixed(0)}`, color: '#d62728', dashed: true, points: entries.map((e) => [e.step, e.response_length / maxLen]) },
  ], { title: 'GRPO', xLabel: 'step', yLabel: 'reward, rate, relative length' });
  writeFileAtomic(path, (write) => write(Buffer.from(svg, 'utf8')));
}
