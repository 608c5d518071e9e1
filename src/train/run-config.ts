/**
 * The `frugal train --config run.json` file, validated with errors that name the file and field:
 *
 * { "model": { HF config.json fields; architectures defaults to ["DeepseekV3ForCausalLM"] },
 *   "data": { "train": path | [paths], "validation"?: path | [paths], "tokenizer": tokenizer.json,
 *             "validation_fraction"?: 0.05, "cache_dir"?: "<out_dir>/cache" },
 *   "optimizer": { "lr", "weight_decay", "betas": [b1, b2], "clip", "eps"?: 1e-8, "min_lr"?: lr/10 },
 *   "schedule": { "type": "cosine" | "wsd", "warmup", "steps", "decay_steps"? (wsd; default steps/5) },
 *   "batch_size", "grad_accum", "seq_len", "mtp": { "enabled", "lambda" }, "moe": { "gamma", "alpha" },
 *   "fp8": bool, "fp8_compare"?: false, "seed", "out_dir", "eval_every", "checkpoint_every", "keep_checkpoints"?: 0 (all), "eval_batches"?: 4 }
 *
 * Relative paths are resolved against the config file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { type HfConfig, parseHfConfig } from '../formats/hf-config.js';

export interface RunConfig {
  model: HfConfig;
  data: { train: string[]; validation: string[] | null; tokenizer: string; validationFraction: number; cacheDir: string };
  optimizer: { lr: number; minLr: number; weightDecay: number; betas: [number, number]; eps: number; clip: number };
  schedule: { type: 'cosine' | 'wsd'; warmup: number; steps: number; decaySteps: number };
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  mtp: { enabled: boolean; lambda: number };
  moe: { gamma: number; alpha: number };
  fp8: boolean;
  /** With fp8: also train an FP32 twin on the same data and seed and report the loss gap. */
  fp8Compare: boolean;
  seed: number;
  outDir: string;
  evalEvery: number;
  checkpointEvery: number;
  /** Keep only the newest N checkpoints (0: keep all). */
  keepCheckpoints: number;
  evalBatches: number;
}

export class RunConfigError extends Error {
  constructor(readonly source: string, readonly field: string, problem: string) {
    super(`${source}: field '${field}': ${problem}`);
    this.name = 'RunConfigError';
  }
}

type Json = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

class Reader {
  constructor(readonly source: string, readonly json: Json, readonly prefix: string, readonly known: readonly string[]) {
    for (const key of Object.keys(json)) {
      if (!known.includes(key)) this.fail(key, `unknown field (expected one of ${known.join(', ')})`);
    }
  }

  fail(key: string, problem: string): never {
    throw new RunConfigError(this.source, this.prefix + key, problem);
  }

  private get(key: string, fallback: unknown): unknown {
    const v = this.json[key];
    if (v === undefined) {
      if (fallback === undefined) this.fail(key, 'required field is missing');
      return fallback;
    }
    return v;
  }

  number(key: string, fallback?: number, check: 'positive' | 'nonnegative' | 'any' = 'nonnegative', max = Infinity): number {
    const v = this.get(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `expected a number, found ${describe(v)}`);
    if (check === 'positive' && !(v > 0)) this.fail(key, `${v} must be positive`);
    if (check === 'nonnegative' && !(v >= 0)) this.fail(key, `${v} must be >= 0`);
    if (v > max) this.fail(key, `${v} must be <= ${max}`);
    return v;
  }

  int(key: string, fallback?: number, min = 1): number {
    const v = this.get(key, fallback);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, `expected an integer, found ${describe(v)}`);
    if (v < min) this.fail(key, `${v} is below the minimum ${min}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.get(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, found ${describe(v)}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.get(key, fallback);
    if (typeof v !== 'string' || v.length === 0) this.fail(key, `expected a non-empty string, found ${describe(v)}`);
    return v;
  }

  paths(key: string, base: string, optional = false): string[] | null {
    const v = this.json[key];
    if (v === undefined || v === null) {
      if (optional) return null;
      this.fail(key, 'required field is missing');
    }
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || list.some((p) => typeof p !== 'string' || p.length === 0)) this.fail(key, `expected a path or a list of paths, found ${describe(v)}`);
    return (list as string[]).map((p) => (isAbsolute(p) ? p : resolve(base, p)));
  }

  object(key: string, known: readonly string[], optional = false): Reader {
    const v = this.json[key];
    if ((v === undefined || v === null) && optional) return new Reader(this.source, {}, `${this.prefix}${key}.`, known);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, `expected an object, found ${describe(v)}`);
    return new Reader(this.source, v as Json, `${this.prefix}${key}.`, known);
  }
}

const TOP = ['model', 'data', 'optimizer', 'schedule', 'batch_size', 'grad_accum', 'seq_len', 'mtp', 'moe', 'fp8', 'fp8_compare', 'seed', 'out_dir', 'eval_every', 'checkpoint_every', 'keep_checkpoints', 'eval_batches'];

/** Validates a parsed run config; `base` resolves relative paths. */
export function parseRunConfig(json: unknown, source = 'run.json', base = process.cwd()): RunConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RunConfigError(source, '(top level)', 'expected a JSON object');
  const r = new Reader(source, json as Json, '', TOP);
  const modelJson = (json as Json)['model'];
  if (typeof modelJson !== 'object' || modelJson === null || Array.isArray(modelJson)) r.fail('model', `expected an object of HF config.json fields, found ${describe(modelJson)}`);
  const m = modelJson as Json;
  const withArch = m['architectures'] === undefined && m['model_type'] === undefined ? { ...m, architectures: ['DeepseekV3ForCausalLM'] } : m;
  let model: HfConfig;
  try {
    model = parseHfConfig(withArch, `${source}: model`);
  } catch (error) {
    throw new RunConfigError(source, 'model', (error as Error).message);
  }
  if (model.architecture === 'DeepseekV2ForCausalLM') r.fail('model.architectures', 'DeepseekV2ForCausalLM is inference-only here; train DeepseekV3ForCausalLM, LlamaForCausalLM or Qwen2ForCausalLM');
  const outDir = resolve(base, r.string('out_dir'));
  const d = r.object('data', ['train', 'validation', 'tokenizer', 'validation_fraction', 'cache_dir']);
  const data = {
    train: d.paths('train', base)!,
    validation: d.paths('validation', base, true),
    tokenizer: d.paths('tokenizer', base)![0]!,
    validationFraction: d.number('validation_fraction', 0.05, 'positive', 0.5),
    cacheDir: resolve(base, d.json['cache_dir'] === undefined ? join(outDir, 'cache') : d.string('cache_dir')),
  };
  const o = r.object('optimizer', ['lr', 'weight_decay', 'betas', 'clip', 'eps', 'min_lr']);
  const lr = o.number('lr', undefined, 'positive');
  const betas = o.json['betas'] ?? [0.9, 0.95];
  if (!Array.isArray(betas) || betas.length !== 2 || betas.some((b) => typeof b !== 'number' || !(b >= 0 && b < 1))) o.fail('betas', `expected two numbers in [0, 1), found ${describe(betas)}`);
  const optimizer = {
    lr, minLr: o.number('min_lr', lr / 10), weightDecay: o.number('weight_decay', 0.1), betas: [(betas as number[])[0]!, (betas as number[])[1]!] as [number, number],
    eps: o.number('eps', 1e-8, 'positive'), clip: o.number('clip', 1),
  };
  if (optimizer.minLr > lr) o.fail('min_lr', `${optimizer.minLr} exceeds lr ${lr}`);
  const s = r.object('schedule', ['type', 'warmup', 'steps', 'decay_steps']);
  const type = s.string('type', 'cosine');
  if (type !== 'cosine' && type !== 'wsd') s.fail('type', `'${type}' is not one of 'cosine', 'wsd'`);
  const steps = s.int('steps');
  const warmup = s.int('warmup', 0, 0);
  if (warmup > steps) s.fail('warmup', `${warmup} exceeds schedule.steps ${steps}`);
  const decaySteps = type === 'wsd' ? s.int('decay_steps', Math.floor(steps / 5), 0) : 0;
  if (warmup + decaySteps > steps) s.fail('decay_steps', `warmup ${warmup} + decay_steps ${decaySteps} exceed steps ${steps}`);
  const mtpR = r.object('mtp', ['enabled', 'lambda'], true);
  const nextn = model.architecture === 'DeepseekV3ForCausalLM' ? model.num_nextn_predict_layers : 0;
  const mtp = { enabled: mtpR.bool('enabled', nextn > 0), lambda: mtpR.number('lambda', 0.3) };
  if (mtp.enabled && nextn < 1) mtpR.fail('enabled', 'MTP needs a DeepseekV3ForCausalLM model with num_nextn_predict_layers >= 1');
  const moeR = r.object('moe', ['gamma', 'alpha'], true);
  const moe = { gamma: moeR.number('gamma', 0.001), alpha: moeR.number('alpha', 0.0001) };
  const fp8 = r.bool('fp8', false);
  const fp8Compare = r.bool('fp8_compare', false);
  if (fp8Compare && !fp8) r.fail('fp8_compare', 'needs "fp8": true (it compares an FP8 run with its FP32 twin)');
  const seqLen = r.int('seq_len', undefined, 2);
  if (seqLen > model.max_position_embeddings) r.fail('seq_len', `${seqLen} exceeds model.max_position_embeddings ${model.max_position_embeddings}`);
  return {
    model, data, optimizer, schedule: { type: type as 'cosine' | 'wsd', warmup, steps, decaySteps }, batchSize: r.int('batch_size'), gradAccum: r.int('grad_accum', 1),
    seqLen, mtp, moe, fp8, fp8Compare, seed: r.int('seed', 0, 0), outDir,
    evalEvery: r.int('eval_every', 0, 0), checkpointEvery: r.int('checkpoint_every', 0, 0), keepCheckpoints: r.int('keep_checkpoints', 0, 0), evalBatches: r.int('eval_batches', 4),
  };
}

export function readRunConfig(path: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read run config ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RunConfigError(path, '(file)', `not valid JSON (${(error as Error).message})`);
  }
  return parseRunConfig(json, path, dirname(resolve(path)));
}
