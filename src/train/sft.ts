/**
 * Supervised fine-tuning on chat examples (spec §8.4 stage 1 cold start, stage 3 and §8.5
 * distillation): each example is a prompt and an assistant response; the loss is the mean
 * next-token cross-entropy over the ASSISTANT tokens only (prompt and padding are masked with
 * IGNORE_INDEX), the response ending in EOS. The MTP module is not trained here (SFT uses the
 * main head only).
 *
 * Order: a seeded permutation per epoch; the data position is `step · batch_size`, so the batches
 * are a pure function of (seed, step) and a resumed run continues bit for bit.
 * Files under out_dir: checkpoints/ + latest (src/train/checkpoint.ts), log.jsonl, loss.svg.
 * A batch's rows are split over data-parallel threads (src/train/parallel.ts; SftOptions.workers),
 * each shard's backward seeded with its share of the batch's assistant tokens.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { join } from 'node:path';
import { backward } from '../autograd/var.js';
import { IGNORE_INDEX, crossEntropy } from '../autograd/loss.js';
import { Random } from '../autograd/random.js';
import { renderR1Chat } from '../tokenizer/chat-template.js';
import { R1_CHAT_INSTRUCTION } from './tasks/prompt.js';
import { renderLineChart } from './chart.js';
import { type Checkpoint, checkResumable, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type ChatExample, type PromptStyle, completionForStyle, promptText } from './cold-start.js';
import { TrainModel } from './model.js';
import { AdamW, clipGradNorm, decayGroups, gradNorm } from './optimizer.js';
import { DataParallel, checkedWorkers, defaultTrainWorkers, rowRanges } from './parallel.js';
import type { SftShardTask } from './parallel-shard.js';
import type { Codec } from './rollout.js';
import { warmupCosine } from './schedule.js';

export interface TokenizedExample {
  prompt: number[];
  /** Assistant tokens, ending in EOS. */
  completion: number[];
}

/** The prompt and completion tokens of a chat example (the last message must be the assistant's). */
export function tokenizeExample(example: ChatExample, style: PromptStyle, codec: Codec, where = 'example'): TokenizedExample {
  const messages = example.messages;
  if (!Array.isArray(messages) || messages.length < 2) throw new Error(`${where}: 'messages' needs at least a user and an assistant message`);
  const last = messages[messages.length - 1]!;
  if (last.role !== 'assistant') throw new Error(`${where}: the last message has role '${last.role}', expected 'assistant'`);
  const content = last.content ?? '';
  const full = last.reasoning_content !== undefined ? `<think>\n${last.reasoning_content}\n</think>\n\n${content}` : content;
  if (full.trim() === '') throw new Error(`${where}: the assistant message is empty`);
  let prompt: string;
  const history = messages.slice(0, -1);
  if (style === 'r1-chat') {
    prompt = renderR1Chat(history, { addGenerationPrompt: true });
  } else {
    const user = [...history].reverse().find((m) => m.role === 'user');
    if (!user || !user.content) throw new Error(`${where}: no user message`);
    prompt = promptText(questionOf(user.content), style);
  }
  return { prompt: codec.encode(prompt), completion: [...codec.encode(completionForStyle(full, style)), codec.eosId] };
}

/**
 * The question of a user message: without the R1 chat instruction that r1ChatMessages appends
 * (the 'plain' and 'r1-zero' prompts are built from the bare question, as at RL and eval time).
 */
export function questionOf(userContent: string): string {
  const suffix = `\n${R1_CHAT_INSTRUCTION}`;
  return userContent.endsWith(suffix) ? userContent.slice(0, -suffix.length) : userContent;
}

/** Reads chat JSONL: one {"messages": [...]} object per line; errors name the file and line. */
export function readChatJsonl(path: string): ChatExample[] {
  if (!existsSync(path)) throw new Error(`${path}: file not found`);
  const out: ChatExample[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    const messages = (value as { messages?: unknown }).messages;
    if (!Array.isArray(messages)) throw new Error(`${path}:${i + 1}: expected an object with a 'messages' array`);
    for (const [j, m] of messages.entries()) {
      const role = (m as { role?: unknown }).role;
      if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') throw new Error(`${path}:${i + 1}: messages[${j}].role ${JSON.stringify(role)} is not system, user, assistant or tool`);
      if (typeof (m as { content?: unknown }).content !== 'string') throw new Error(`${path}:${i + 1}: messages[${j}].content must be a string`);
    }
    out.push(value as ChatExample);
  });
  if (out.length === 0) throw new Error(`${path}: no examples`);
  return out;
}

/** A masked batch: ids [B, T], targets [B·T] with IGNORE_INDEX outside assistant tokens. */
export function sftBatch(examples: readonly TokenizedExample[], maxLen: number): { ids: Int32Array; targets: Int32Array; batch: number; seq: number; tokens: number } {
  const clipped = examples.map((e) => [...e.prompt, ...e.completion].slice(0, maxLen + 1));
  const seq = Math.max(1, ...clipped.map((a) => a.length - 1));
  const batch = examples.length;
  const ids = new Int32Array(batch * seq);
  const targets = new Int32Array(batch * seq).fill(IGNORE_INDEX);
  let tokens = 0;
  clipped.forEach((all, b) => {
    const promptLen = examples[b]!.prompt.length;
    for (let t = 0; t < all.length - 1; t++) {
      ids[b * seq + t] = all[t]!;
      if (t + 1 >= promptLen) {
        targets[b * seq + t] = all[t + 1]!;
        tokens++;
      }
    }
  });
  return { ids, targets, batch, seq, tokens };
}

/** Indices of the batch at `step`: a seeded permutation per epoch. */
export function batchIndices(count: number, batchSize: number, step: number, seed: number): number[] {
  const out: number[] = [];
  let cached = -1;
  let perm: number[] = [];
  for (let k = 0; k < batchSize; k++) {
    const cursor = step * batchSize + k;
    const epoch = Math.floor(cursor / count);
    if (epoch !== cached) {
      perm = permutation(count, new Random((seed * 7907 + epoch * 31) >>> 0));
      cached = epoch;
    }
    out.push(perm[cursor % count]!);
  }
  return out;
}

function permutation(n: number, rng: Random): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

// ---------------------------------------------------------------------------------------- run files

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * log.jsonl of a run: entries up to the resumed step are kept, later ones (from a crashed run)
 * dropped; the file is rewritten atomically. A line that is not JSON (torn by a crash) is skipped,
 * with a warning naming the file and line.
 */
export class RunLog<E extends { step: number }> {
  readonly entries: E[] = [];
  constructor(readonly path: string, upTo: number, warn: (line: string) => void = () => {}) {
    if (existsSync(path)) {
      readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
        if (line.trim() === '') return;
        try {
          const e = JSON.parse(line) as E;
          if (typeof e.step === 'number' && e.step <= upTo) this.entries.push(e);
        } catch {
          warn(`${path}:${i + 1}: not a JSON line (torn by a crash?); skipped`);
        }
      });
    }
    const text = this.entries.map((e) => `${JSON.stringify(e)}\n`).join('');
    writeFileAtomic(path, (write) => write(Buffer.from(text, 'utf8')));
  }

  add(entry: E): void {
    this.entries.push(entry);
    appendFileSync(this.path, `${JSON.stringify(entry)}\n`);
  }
}

// ---------------------------------------------------------------------------------------- training

export interface SftOptions {
  lr: number;
  minLr: number;
  warmup: number;
  steps: number;
  batchSize: number;
  weightDecay: number;
  clip: number;
  maxLen: number;
  seed: number;
  outDir: string;
  checkpointEvery: number;
  logEvery: number;
  /** Copied into each checkpoint, so that it loads as a model directory. */
  tokenizerPath?: string;
  resume?: boolean;
  /** Stop after this step (tests of resume); default steps. */
  stopAt?: number;
  /** Progress lines (default: stderr). */
  print?: (line: string) => void;
  /** Data-parallel shards of each batch (default defaultTrainWorkers(): FRUGAL_TRAIN_WORKERS, else 2 on 2+ CPUs; 1: single-process). */
  workers?: number;
}

export interface SftLogEntry {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  seconds: number;
}

export interface SftResult {
  model: TrainModel;
  startStep: number;
  endStep: number;
  log: SftLogEntry[];
  lastCheckpoint: string | null;
  tokensPerSecond: number;
}

export function sftLearningRate(step: number, o: Pick<SftOptions, 'lr' | 'minLr' | 'warmup' | 'steps'>): number {
  return warmupCosine(step, { maxLr: o.lr, minLr: o.minLr, warmupSteps: o.warmup, totalSteps: o.steps });
}

/** Mean masked cross-entropy of a batch (no update): for evaluation and tests. */
export function sftLoss(model: TrainModel, examples: readonly TokenizedExample[], maxLen: number): number {
  const b = sftBatch(examples, maxLen);
  return crossEntropy(model.logits(b.ids, b.batch, b.seq), b.targets).item();
}

/**
 * Fine-tunes `initial` on the examples. With resume (default) and a checkpoint in outDir, the model
 * and optimizer come from it and `initial` is ignored.
 */
export function runSft(initial: TrainModel, examples: readonly TokenizedExample[], o: SftOptions): SftResult {
  if (examples.length === 0) throw new Error('sft: no examples');
  const print = o.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(o.outDir, { recursive: true });
  let model = initial;
  let startStep = 0;
  let state: Checkpoint | null = null;
  if ((o.resume ?? true) && existsSync(join(o.outDir, 'latest'))) {
    state = loadCheckpoint(o.outDir);
    checkResumable(state, initial.config, o.seed);
    model = TrainModel.fromTensors(state.config, state.tensors, state.dir);
    startStep = state.state.step;
    print(`resuming from ${state.dir} (step ${startStep})`);
  }
  const optimizer = new AdamW(decayGroups(model.parameterList, o.weightDecay), { lr: o.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay });
  if (state) optimizer.importState(state.optimizer);
  const log = new RunLog<SftLogEntry>(join(o.outDir, 'log.jsonl'), startStep, print);
  const end = Math.min(o.steps, o.stopAt ?? o.steps);
  const started = Date.now();
  let tokensTotal = 0;
  let lastCheckpoint: string | null = null;
  const save = (step: number) => {
    lastCheckpoint = saveCheckpoint(o.outDir, model.config, model.tensors(), optimizer.exportState(),
      { step, dataCursor: step * o.batchSize, seed: o.seed, tokens: (state?.state.tokens ?? 0) + tokensTotal, extra: { stage: 'sft' } }, o.tokenizerPath);
  };
  const shards = o.workers === undefined ? defaultTrainWorkers() : checkedWorkers(o.workers, 'SftOptions.workers');
  const parallel = shards > 1 ? new DataParallel(model, shards) : null;
  try {
    for (let step = startStep; step < end; step++) {
      const batch = sftBatch(batchIndices(examples.length, o.batchSize, step, o.seed).map((i) => examples[i]!), o.maxLen);
      optimizer.zeroGrad();
      const loss = sftBackward(model, batch, parallel);
      const norm = o.clip > 0 ? clipGradNorm(optimizer.params, o.clip) : gradNorm(optimizer.params);
      const lr = sftLearningRate(step, o);
      if (Number.isFinite(norm)) optimizer.step(lr);
      tokensTotal += batch.tokens;
      const seconds = (Date.now() - started) / 1000;
      const entry: SftLogEntry = { step: step + 1, loss, lr, grad_norm: norm, tokens: batch.tokens, seconds };
      log.add(entry);
      if ((step + 1) % o.logEvery === 0 || step + 1 === end) {
        const rate = tokensTotal / Math.max(seconds, 1e-9);
        const eta = ((end - step - 1) * seconds) / (step + 1 - startStep);
        print(`sft step ${step + 1}/${o.steps}  loss ${entry.loss.toFixed(4)}  lr ${lr.toExponential(2)}  ${rate.toFixed(0)} tok/s  eta ${formatDuration(eta)}`);
      }
      if ((o.checkpointEvery > 0 && (step + 1) % o.checkpointEvery === 0) || step + 1 === end) save(step + 1);
    }
  } finally {
    void parallel?.close();
  }
  writeSftChart(join(o.outDir, 'loss.svg'), log.entries);
  const seconds = (Date.now() - started) / 1000;
  return { model, startStep, endStep: end, log: log.entries, lastCheckpoint, tokensPerSecond: tokensTotal / Math.max(seconds, 1e-9) };
}

/**
 * Forward and backward of a batch (gradients into the model's parameters); returns the mean loss
 * over its target tokens. With `parallel`, the rows are split over its shards, each seeded with its
 * share of the target tokens.
 */
function sftBackward(model: TrainModel, batch: ReturnType<typeof sftBatch>, parallel: DataParallel | null): number {
  const ranges = parallel ? rowRanges(batch.batch, parallel.shards) : [];
  if (!parallel || ranges.length < 2 || batch.tokens === 0) {
    const loss = crossEntropy(model.logits(batch.ids, batch.batch, batch.seq), batch.targets);
    backward(loss);
    return loss.item();
  }
  const tasks = ranges.map(([from, to]): SftShardTask => {
    const targets = batch.targets.slice(from * batch.seq, to * batch.seq);
    let valid = 0;
    for (const t of targets) if (t !== IGNORE_INDEX) valid++;
    return { kind: 'sft', ids: batch.ids.slice(from * batch.seq, to * batch.seq), targets, rows: to - from, seq: batch.seq, share: valid / batch.tokens };
  });
  return parallel.run(tasks).reduce((sum, r) => sum + r.loss, 0);
}

export function writeSftChart(path: string, entries: readonly SftLogEntry[]): void {
  const svg = renderLineChart([{ name: 'SFT loss (assistant tokens)', color: '#1f77b4', points: entries.map((e) => [e.step, e.loss]) }],
    { title: 'supervised fine-tuning', xLabel: 'step', yLabel: 'loss (nats/token)' });
  writeFileAtomic(path, (write) => write(Buffer.from(svg, 'utf8')));
}
