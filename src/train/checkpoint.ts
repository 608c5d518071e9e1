/**
 * Training checkpoints: an HF-compatible model directory plus the trainer's state.
 *
 *   <out_dir>/checkpoints/step-00000042/
 *     model.safetensors      HF tensor names, F32 (routing biases as mlp.gate.e_score_correction_bias)
 *     config.json            the HF config (architectures, real field names)
 *     tokenizer.json         copy of the run's tokenizer
 *     optimizer.safetensors  AdamW moments: exp_avg.<param>, exp_avg_sq.<param>
 *     trainer_state.json     step, per-parameter Adam step counts, data position, seed, history
 *   <out_dir>/latest          "checkpoints/step-00000042" — rewritten only after the whole
 *                             checkpoint is on disk
 *
 * Every file is written atomically (temporary file in the same directory, fsync, rename, directory
 * fsync), so a crash at any moment leaves `latest` pointing at a complete checkpoint. A checkpoint
 * is first written whole into step-N.partial/, then renamed to step-N/: a step directory is never
 * half-written, even when one of the same step is overwritten (a --no-resume run in an old out_dir).
 * trainer_state.json records a SHA-256 of every tensor of both safetensors files; loading checks
 * them, so flipped bytes are an error naming the file, tensor and byte range, never silent garbage.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { resolveCheckpointDir } from '../formats/hf-checkpoint.js';
import { type HfConfig, hfConfigToJson, readHfConfig } from '../formats/hf-config.js';
import { openSafetensors } from '../formats/safetensors.js';
import { type SafetensorsTensorInput, writeSafetensors } from '../formats/safetensors-write.js';
import { dequantize } from '../tensor/quant/index.js';
import type { AdamWState } from './optimizer.js';
import type { NamedTensor } from './model.js';

export { resolveCheckpointDir };

export const TRAINER_STATE_FORMAT = 'frugal-trainer-state/1';

export interface TrainerState {
  format: typeof TRAINER_STATE_FORMAT;
  /** Optimizer steps completed. */
  step: number;
  /** Sequences consumed from the training stream (the data position; the order is a pure function of seed and epoch). */
  dataCursor: number;
  seed: number;
  /** Per optimizer slot: parameter name and its Adam step count. */
  optimizerSlots: { name: string; step: number }[];
  optimizerSteps: number;
  /** Tokens trained on so far. */
  tokens: number;
  /** Anything else the trainer wants back on resume (history for the chart, fp8 statistics). */
  extra: Record<string, unknown>;
  /** SHA-256 (hex) of each tensor's bytes, per file (absent in checkpoints written before checksums). */
  checksums?: { model: Record<string, string>; optimizer: Record<string, string> };
}

export interface Checkpoint {
  dir: string;
  config: HfConfig;
  tensors: Map<string, NamedTensor>;
  state: TrainerState;
  optimizer: AdamWState;
}

function f32Bytes(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, (write) => write(Buffer.from(`${JSON.stringify(value, null, 1)}\n`, 'utf8')));
}

export function fsyncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not every platform can fsync a directory
  }
}

export function stepDirName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** The hex SHA-256 of a tensor's f32 bytes. */
export function tensorChecksum(values: Float32Array): string {
  return createHash('sha256').update(f32Bytes(values)).digest('hex');
}

function checksumsOf(tensors: Iterable<[string, Float32Array]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, values] of tensors) out[name] = tensorChecksum(values);
  return out;
}

function optimizerTensors(optimizer: AdamWState): [string, Float32Array][] {
  return optimizer.params.flatMap((p): [string, Float32Array][] => [[`exp_avg.${p.name}`, p.m], [`exp_avg_sq.${p.name}`, p.v]]);
}

/** Writes the model files (model.safetensors, config.json, tokenizer.json) into dir. */
export function writeModelDir(dir: string, config: HfConfig, tensors: ReadonlyMap<string, NamedTensor>, tokenizerPath?: string): void {
  mkdirSync(dir, { recursive: true });
  const inputs: SafetensorsTensorInput[] = [...tensors].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: f32Bytes(t.values) }));
  writeSafetensors(join(dir, 'model.safetensors'), inputs, { format: 'pt' });
  writeFileAtomic(join(dir, 'config.json'), (write) => write(Buffer.from(hfConfigToJson(config), 'utf8')));
  if (tokenizerPath !== undefined) {
    const bytes = readFileSync(tokenizerPath);
    writeFileAtomic(join(dir, 'tokenizer.json'), (write) => write(bytes));
  }
}

/** The directory `latest` names (resolved), or null when there is no readable pointer. */
function latestTarget(outDir: string): string | null {
  try {
    const target = readFileSync(join(outDir, 'latest'), 'utf8').trim();
    return target.length === 0 ? null : resolve(outDir, target);
  } catch {
    return null;
  }
}

/** Points `latest` at checkpoints/<name> (atomically). */
function writeLatest(outDir: string, name: string): void {
  writeFileAtomic(join(outDir, 'latest'), (write) => write(Buffer.from(`checkpoints/${name}\n`, 'utf8')));
}

/** Removes what killed writers left behind: step-N.partial directories and temporary files of the `latest` pointer. */
function removeStaleWrites(outDir: string, parent: string): void {
  for (const name of readdirSync(parent)) {
    if (/^step-\d{8}\.partial$/.test(name)) rmSync(join(parent, name), { recursive: true, force: true });
  }
  for (const name of readdirSync(outDir)) {
    if (/^\.latest\..*\.tmp$/.test(name)) rmSync(join(outDir, name), { force: true });
  }
}

/** Writes every file of a checkpoint into `dir` (a fresh staging directory). */
function writeCheckpointFiles(
  dir: string, config: HfConfig, tensors: ReadonlyMap<string, NamedTensor>, optimizer: AdamWState,
  state: Omit<TrainerState, 'format' | 'optimizerSlots' | 'optimizerSteps' | 'checksums'>, tokenizerPath?: string,
): void {
  writeModelDir(dir, config, tensors, tokenizerPath);
  const moments: SafetensorsTensorInput[] = optimizerTensors(optimizer).map(([name, values]) => ({ name, dtype: 'F32', shape: [values.length], data: f32Bytes(values) }));
  writeSafetensors(join(dir, 'optimizer.safetensors'), moments);
  const full: TrainerState = {
    format: TRAINER_STATE_FORMAT, ...state,
    optimizerSlots: optimizer.params.map((p) => ({ name: p.name, step: p.step })), optimizerSteps: optimizer.steps,
    checksums: { model: checksumsOf([...tensors].map(([name, t]) => [name, t.values])), optimizer: checksumsOf(optimizerTensors(optimizer)) },
  };
  writeJsonAtomic(join(dir, 'trainer_state.json'), full);
  fsyncDirectory(dir);
}

/**
 * Moves the complete staging directory to its step-N name. A step-N directory already there (a
 * --no-resume run over an old out_dir) is replaced; when `latest` names it, `latest` is removed
 * first, so that it never names a directory being replaced (a crash in between starts afresh).
 */
function publishCheckpoint(outDir: string, parent: string, staging: string, name: string): void {
  const dir = join(parent, name);
  if (existsSync(dir)) {
    if (latestTarget(outDir) === resolve(dir)) {
      rmSync(join(outDir, 'latest'), { force: true });
      fsyncDirectory(outDir);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  renameSync(staging, dir);
  fsyncDirectory(parent);
}

/** Saves a full checkpoint under outDir/checkpoints/step-N and then points `latest` at it. Returns its directory. */
export function saveCheckpoint(
  outDir: string, config: HfConfig, tensors: ReadonlyMap<string, NamedTensor>, optimizer: AdamWState,
  state: Omit<TrainerState, 'format' | 'optimizerSlots' | 'optimizerSteps' | 'checksums'>, tokenizerPath?: string,
): string {
  const parent = join(outDir, 'checkpoints');
  mkdirSync(parent, { recursive: true });
  removeStaleWrites(outDir, parent);
  const name = stepDirName(state.step);
  const staging = join(parent, `${name}.partial`);
  try {
    mkdirSync(staging);
    fsyncDirectory(parent);
    writeCheckpointFiles(staging, config, tensors, optimizer, state, tokenizerPath);
    publishCheckpoint(outDir, parent, staging, name);
    writeLatest(outDir, name);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true }); // a full disk gets its space back
    const previous = latestTarget(outDir);
    throw new Error(`cannot write checkpoint ${join(parent, name)} (${(error as Error).message}); ${previous ? `${join(outDir, 'latest')} still names ${previous}` : 'no earlier checkpoint'}`);
  }
  return join(parent, name);
}

/**
 * The checks of a resume: the checkpoint holds the model being trained (the same config) and was
 * made with the same seed (batch order and sampling streams are functions of it).
 */
export function checkResumable(checkpoint: Checkpoint, config: HfConfig, seed: number): void {
  if (hfConfigToJson(checkpoint.config) !== hfConfigToJson(config)) {
    throw new Error(`cannot resume from ${checkpoint.dir}: its config.json differs from the model being trained (${config.architecture}); use another out_dir or --no-resume`);
  }
  if (checkpoint.state.seed !== seed) throw new Error(`cannot resume from ${checkpoint.dir}: it was trained with seed ${checkpoint.state.seed}, the run says ${seed}`);
}

/** Reads every tensor of a safetensors file as f32 (BF16/F16 widened; our own checkpoints are F32). */
export function readF32Tensors(path: string): Map<string, NamedTensor> {
  const file = openSafetensors(path, { mmap: false }); // training writes every value: a mapping would save nothing
  try {
    const out = new Map<string, NamedTensor>();
    for (const t of file.tensors) {
      const bytes = file.readTensorBytes(t);
      let values: Float32Array;
      if (t.dtype === 'F32') values = new Float32Array(bytes.buffer, bytes.byteOffset, t.elements);
      else if ((t.dtype === 'BF16' || t.dtype === 'F16') && t.computeDtype) values = dequantize(t.computeDtype, bytes, t.elements);
      else throw new Error(`${path}: tensor '${t.name}' is ${t.dtype}; training reads F32, BF16 or F16 tensors`);
      out.set(t.name, { shape: [...t.shape], values });
    }
    return out;
  } finally {
    file.close();
  }
}

/** What is wrong with a trainer_state.json value (a field and its problem), or null. */
function trainerStateProblem(value: unknown): [string, string] | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['(top level)', 'must be a JSON object'];
  const state = value as Record<string, unknown>;
  if (state['format'] !== TRAINER_STATE_FORMAT) return ['format', `is ${JSON.stringify(state['format'])}, expected ${TRAINER_STATE_FORMAT}`];
  for (const key of ['step', 'dataCursor', 'seed', 'optimizerSteps', 'tokens']) {
    const v = state[key];
    if (!Number.isSafeInteger(v) || (v as number) < 0) return [key, `must be an integer >= 0, found ${JSON.stringify(v)}`];
  }
  const slots = state['optimizerSlots'];
  if (!Array.isArray(slots)) return ['optimizerSlots', `must be a list, found ${JSON.stringify(slots)}`];
  const bad = slots.findIndex((slot: { name?: unknown; step?: unknown } | null) => typeof slot?.name !== 'string' || !Number.isSafeInteger(slot.step) || (slot.step as number) < 0);
  if (bad >= 0) return [`optimizerSlots[${bad}]`, `must be {"name": string, "step": integer >= 0}, found ${JSON.stringify(slots[bad])}`];
  if (!isStringRecord(state['extra'], false)) return ['extra', 'must be an object'];
  const sums = state['checksums'] as Record<string, unknown> | undefined;
  if (sums !== undefined && !(isStringRecord(sums, false) && isStringRecord(sums['model'], true) && isStringRecord(sums['optimizer'], true))) {
    return ['checksums', 'must be {"model": {tensor: sha256}, "optimizer": {tensor: sha256}}'];
  }
  return null;
}

/** A plain object; with `stringValues`, every value a string. */
function isStringRecord(value: unknown, stringValues: boolean): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return !stringValues || Object.values(value).every((v) => typeof v === 'string');
}

/** Reads and validates a trainer_state.json; errors name the file and the field. */
export function readTrainerState(statePath: string): TrainerState {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (error) {
    throw new Error(`${statePath}: not valid JSON (${(error as Error).message})`);
  }
  const problem = trainerStateProblem(value);
  if (problem) throw new Error(`${statePath}: field '${problem[0]}' ${problem[1]}`);
  return value as TrainerState;
}

/** The byte range of a tensor in a safetensors file, for error messages. */
function byteRange(path: string, name: string): string {
  const file = openSafetensors(path, { mmap: false });
  try {
    const info = file.tensor(name);
    return info ? `bytes ${info.offset}..${info.offset + info.byteLength}` : 'not in the file';
  } finally {
    file.close();
  }
}

/** Checks tensors read from `path` against the SHA-256 sums trainer_state.json recorded for them. */
function verifyChecksums(path: string, tensors: ReadonlyMap<string, NamedTensor>, expected: Record<string, string>, statePath: string): void {
  for (const [name, sum] of Object.entries(expected)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${path}: tensor '${name}' is missing (${statePath} lists it)`);
    if (tensorChecksum(t.values) !== sum) {
      throw new Error(`${path}: tensor '${name}' (${byteRange(path, name)}) does not match its SHA-256 in ${statePath}: the checkpoint is corrupt`);
    }
  }
  for (const name of tensors.keys()) {
    if (!(name in expected)) throw new Error(`${path}: tensor '${name}' is not listed in ${statePath}: the files are from different checkpoints`);
  }
}

/** Loads the model files of a checkpoint (config + tensors), checked against trainer_state.json's sums when it has them. */
export function loadModelDir(dir: string): { config: HfConfig; tensors: Map<string, NamedTensor> } {
  const config = readHfConfig(join(dir, 'config.json'));
  const modelPath = join(dir, 'model.safetensors');
  const tensors = readF32Tensors(modelPath);
  const statePath = join(dir, 'trainer_state.json');
  const sums = existsSync(statePath) ? readTrainerState(statePath).checksums : undefined;
  if (sums) verifyChecksums(modelPath, tensors, sums.model, statePath);
  return { config, tensors };
}

/** Loads a full training checkpoint (model + optimizer + trainer state). */
export function loadCheckpoint(path: string): Checkpoint {
  const dir = resolveCheckpointDir(path);
  const statePath = join(dir, 'trainer_state.json');
  if (!existsSync(statePath)) throw new Error(`checkpoint ${dir}: trainer_state.json is missing (a model-only directory cannot be resumed)`);
  const state = readTrainerState(statePath);
  const { config, tensors } = loadModelDir(dir);
  const momentsPath = join(dir, 'optimizer.safetensors');
  const moments = readF32Tensors(momentsPath);
  if (state.checksums) verifyChecksums(momentsPath, moments, state.checksums.optimizer, statePath);
  const optimizer: AdamWState = {
    steps: state.optimizerSteps,
    params: state.optimizerSlots.map((slot) => {
      const m = moments.get(`exp_avg.${slot.name}`);
      const v = moments.get(`exp_avg_sq.${slot.name}`);
      if (!m || !v) throw new Error(`${momentsPath}: moments of '${slot.name}' are missing`);
      return { name: slot.name, size: m.values.length, step: slot.step, m: m.values, v: v.values };
    }),
  };
  return { dir, config, tensors, state, optimizer };
}


/** Deletes all but the newest `keep` step directories of a run (never the one `latest` names). */
export function pruneCheckpoints(outDir: string, keep: number): string[] {
  if (keep <= 0) return [];
  const parent = join(outDir, 'checkpoints');
  if (!existsSync(parent)) return [];
  const current = resolveCheckpointDir(outDir);
  const steps = readdirSync(parent).filter((n) => /^step-\d{8}$/.test(n)).sort();
  const removed: string[] = [];
  for (const name of steps.slice(0, Math.max(0, steps.length - keep))) {
    const dir = join(parent, name);
    if (resolve(dir) === resolve(current)) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  if (removed.length > 0) fsyncDirectory(parent);
  return removed;
}
