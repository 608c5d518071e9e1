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
 * fsync), so a crash at any moment leaves `latest` pointing at a complete checkpoint.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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

/** Saves a full checkpoint under outDir/checkpoints/step-N and then points `latest` at it. Returns its directory. */
export function saveCheckpoint(
  outDir: string, config: HfConfig, tensors: ReadonlyMap<string, NamedTensor>, optimizer: AdamWState,
  state: Omit<TrainerState, 'format' | 'optimizerSlots' | 'optimizerSteps'>, tokenizerPath?: string,
): string {
  const parent = join(outDir, 'checkpoints');
  mkdirSync(parent, { recursive: true });
  const name = stepDirName(state.step);
  const dir = join(parent, name);
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  if (created) fsyncDirectory(parent);
  writeModelDir(dir, config, tensors, tokenizerPath);
  const moments: SafetensorsTensorInput[] = [];
  for (const p of optimizer.params) {
    moments.push({ name: `exp_avg.${p.name}`, dtype: 'F32', shape: [p.size], data: f32Bytes(p.m) });
    moments.push({ name: `exp_avg_sq.${p.name}`, dtype: 'F32', shape: [p.size], data: f32Bytes(p.v) });
  }
  writeSafetensors(join(dir, 'optimizer.safetensors'), moments);
  const full: TrainerState = {
    format: TRAINER_STATE_FORMAT, ...state,
    optimizerSlots: optimizer.params.map((p) => ({ name: p.name, step: p.step })), optimizerSteps: optimizer.steps,
  };
  writeJsonAtomic(join(dir, 'trainer_state.json'), full);
  fsyncDirectory(dir);
  writeFileAtomic(join(outDir, 'latest'), (write) => write(Buffer.from(`checkpoints/${name}\n`, 'utf8')));
  return dir;
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

/** Loads the model files of a checkpoint (config + tensors). */
export function loadModelDir(dir: string): { config: HfConfig; tensors: Map<string, NamedTensor> } {
  return { config: readHfConfig(join(dir, 'config.json')), tensors: readF32Tensors(join(dir, 'model.safetensors')) };
}

/** Loads a full training checkpoint (model + optimizer + trainer state). */
export function loadCheckpoint(path: string): Checkpoint {
  const dir = resolveCheckpointDir(path);
  const { config, tensors } = loadModelDir(dir);
  const statePath = join(dir, 'trainer_state.json');
  if (!existsSync(statePath)) throw new Error(`checkpoint ${dir}: trainer_state.json is missing (a model-only directory cannot be resumed)`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (error) {
    throw new Error(`${statePath}: not valid JSON (${(error as Error).message})`);
  }
  if (state.format !== TRAINER_STATE_FORMAT) throw new Error(`${statePath}: format ${JSON.stringify(state.format)} is not ${TRAINER_STATE_FORMAT}`);
  for (const key of ['step', 'dataCursor', 'seed', 'optimizerSteps', 'tokens'] as const) {
    if (!Number.isSafeInteger(state[key])) throw new Error(`${statePath}: field '${key}' must be an integer, found ${JSON.stringify(state[key])}`);
  }
  const moments = readF32Tensors(join(dir, 'optimizer.safetensors'));
  const optimizer: AdamWState = {
    steps: state.optimizerSteps,
    params: state.optimizerSlots.map((slot) => {
      const m = moments.get(`exp_avg.${slot.name}`);
      const v = moments.get(`exp_avg_sq.${slot.name}`);
      if (!m || !v) throw new Error(`${dir}/optimizer.safetensors: moments of '${slot.name}' are missing`);
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
