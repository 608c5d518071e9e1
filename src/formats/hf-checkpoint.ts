import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { canDequantize, dequantize, dequantizeFp8BlockScaled } from '../tensor/quant/index.js';
import { type WeightMatrix, weightMatrix } from '../tensor/tensor.js';
import { writeFileAtomic } from './atomic-write.js';
import { FormatError } from './format-error.js';
import { type SafetensorsFile, type SafetensorsOpenOptions, type SafetensorsTensorInfo, openSafetensors } from './safetensors.js';

/**
 * A Hugging Face checkpoint: one `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (../shared/spec/formats-and-api.md §3.2). Shards are opened on
 * first use; tensor bytes are read on demand.
 */
export interface Checkpoint {
  /** The directory holding the files. */
  readonly dir: string;
  /** The index file, or undefined for a single-file checkpoint. */
  readonly indexPath: string | undefined;
  /** The index's `metadata` object (e.g. total_size), or {}. */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  /** Absolute paths of the safetensors files, in first-mention order. */
  readonly files: readonly string[];
  tensorNames(): readonly string[];
  has(name: string): boolean;
  /** The tensor's info (opening its shard), or undefined when the checkpoint has no such tensor. */
  tensor(name: string): SafetensorsTensorInfo | undefined;
  readTensorBytes(name: string): Uint8Array;
  close(): void;
}

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/**
 * Opens a checkpoint from a directory (index or model.safetensors inside), an index .json file,
 * or a single .safetensors file.
 */
export function openCheckpoint(path: string, options: SafetensorsOpenOptions = {}): Checkpoint {
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, INDEX_FILE))) return openSharded(join(path, INDEX_FILE), options);
    if (existsSync(join(path, SINGLE_FILE))) return openSingle(join(path, SINGLE_FILE), options);
    throw new Error(`${path}: no ${INDEX_FILE} or ${SINGLE_FILE} in this directory`);
  }
  return path.endsWith('.json') ? openSharded(path, options) : openSingle(path, options);
}

function openSingle(path: string, options: SafetensorsOpenOptions): Checkpoint {
  const file = openSafetensors(path, options);
  const names = file.tensors.map((t) => t.name);
  return {
    dir: dirname(path),
    indexPath: undefined,
    indexMetadata: {},
    files: [path],
    tensorNames: () => names,
    has: (name) => file.tensor(name) !== undefined,
    tensor: (name) => file.tensor(name),
    readTensorBytes: (name) => file.readTensorBytes(requireInfo(path, file.tensor(name), name)),
    close: () => file.close(),
  };
}

function requireInfo(where: string, info: SafetensorsTensorInfo | undefined, name: string): SafetensorsTensorInfo {
  if (!info) throw new FormatError(where, `tensor '${name}'`, undefined, 'no such tensor in the checkpoint');
  return info;
}

function openSharded(indexPath: string, options: SafetensorsOpenOptions): Checkpoint {
  const dir = dirname(indexPath);
  const fail = (field: string, problem: string): never => {
    throw new FormatError(indexPath, field, undefined, problem);
  };
  const size = statSync(indexPath).size;
  if (size > MAX_INDEX_BYTES) fail('index', `${size} bytes exceeds the ${MAX_INDEX_BYTES}-byte limit`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (error) {
    return fail('index', `not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) return fail('index', 'not a JSON object');
  const metadata = json.metadata ?? {};
  if (!isObject(metadata)) fail('metadata', 'not an object');
  const map = json.weight_map;
  if (!isObject(map)) return fail('weight_map', 'missing or not an object');
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard.length === 0) fail(`weight_map '${name}'`, 'shard file name is not a non-empty string');
    const rel = normalize(shard as string);
    if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`) || rel.includes('\0')) {
      fail(`weight_map '${name}'`, `shard '${shard as string}' is outside the checkpoint directory`);
    }
    const file = join(dir, rel);
    if (!files.includes(file)) {
      if (!existsSync(file)) fail(`weight_map '${name}'`, `shard '${shard as string}' does not exist in ${dir}`);
      files.push(file);
    }
    weightMap.set(name, file);
  }
  const shards = new Map<string, SafetensorsFile>();
  const shardOf = (file: string): SafetensorsFile => {
    let open = shards.get(file);
    if (!open) {
      open = openSafetensors(file, options);
      shards.set(file, open);
    }
    return open;
  };
  const tensor = (name: string): SafetensorsTensorInfo | undefined => {
    const file = weightMap.get(name);
    if (file === undefined) return undefined;
    const info = shardOf(file).tensor(name);
    if (!info) fail(`weight_map '${name}'`, `shard '${file}' has no tensor of that name`);
    return info;
  };
  const names = [...weightMap.keys()];
  return {
    dir,
    indexPath,
    indexMetadata: metadata as Record<string, unknown>,
    files,
    tensorNames: () => names,
    has: (name) => weightMap.has(name),
    tensor,
    readTensorBytes: (name) => {
      const info = requireInfo(indexPath, tensor(name), name);
      return shardOf(weightMap.get(name)!).readTensorBytes(info);
    },
    close: () => {
      for (const f of shards.values()) f.close();
      shards.clear();
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Writes `model.safetensors.index.json` (atomically) for shards written with writeSafetensors. */
export function writeSafetensorsIndex(
  dir: string, weightMap: ReadonlyMap<string, string> | Readonly<Record<string, string>>, totalSize: number, fileName = INDEX_FILE,
): string {
  const entries = weightMap instanceof Map ? [...weightMap.entries()] : Object.entries(weightMap);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const body = { metadata: { total_size: totalSize }, weight_map: Object.fromEntries(entries) };
  const path = join(dir, fileName);
  writeFileAtomic(path, (write) => write(Buffer.from(`${JSON.stringify(body, null, 2)}\n`, 'utf8')));
  return path;
}

// ---------------------------------------------------------------------------------------------
// Weights

export const FP8_SCALE_SUFFIX = '_scale_inv';

function matrixShape(where: string, info: SafetensorsTensorInfo): [number, number] {
  const s = info.shape;
  if (s.length === 1) return [1, s[0]!];
  if (s.length === 2) return [s[0]!, s[1]!];
  throw new FormatError(where, `tensor '${info.name}'`, info.offset, `has shape [${s.join(', ')}]: not a matrix`);
}

/**
 * A 2-D weight (a 1-D one as [1, n]) in its storage dtype: HF [out, in] = rows x cols. FP8 E4M3
 * weights come with their `<name>_scale_inv` f32 tensor [ceil(rows/128), ceil(cols/128)] as
 * blockScales; F32/F16/BF16 weights come back as they are.
 */
export function readWeight(checkpoint: Checkpoint, name: string): WeightMatrix {
  const where = checkpoint.indexPath ?? checkpoint.files[0]!;
  const info = requireInfo(where, checkpoint.tensor(name), name);
  const [rows, cols] = matrixShape(where, info);
  const dtype = info.computeDtype;
  if (dtype === 'f32' || dtype === 'f16' || dtype === 'bf16') return weightMatrix(dtype, rows, cols, checkpoint.readTensorBytes(name));
  if (dtype === 'fp8_e4m3') {
    return weightMatrix(dtype, rows, cols, checkpoint.readTensorBytes(name), readBlockScales(checkpoint, where, name, rows, cols));
  }
  throw new FormatError(where, `tensor '${name}'`, info.offset, `dtype ${info.dtype} is not a weight dtype (F32, F16, BF16 or F8_E4M3)`);
}

function readBlockScales(checkpoint: Checkpoint, where: string, name: string, rows: number, cols: number): Float32Array {
  const scaleName = name + FP8_SCALE_SUFFIX;
  const scale = checkpoint.tensor(scaleName);
  if (!scale) throw new FormatError(where, `tensor '${name}'`, undefined, `F8_E4M3 weight has no '${scaleName}' tensor`);
  const expected = [Math.ceil(rows / 128), Math.ceil(cols / 128)];
  if (scale.shape.length !== 2 || scale.shape[0] !== expected[0] || scale.shape[1] !== expected[1]) {
    throw new FormatError(where, `tensor '${scaleName}'`, scale.offset, `shape [${scale.shape.join(', ')}] should be [${expected.join(', ')}] for a [${rows}, ${cols}] weight with 128x128 blocks`);
  }
  return readTensorF32(checkpoint, scaleName);
}

/**
 * Any floating-point tensor as f32 (norm weights, biases, scales). An F8_E4M3 tensor that has a
 * `_scale_inv` companion is dequantized with its block scales.
 */
export function readTensorF32(checkpoint: Checkpoint, name: string): Float32Array {
  const where = checkpoint.indexPath ?? checkpoint.files[0]!;
  const info = requireInfo(where, checkpoint.tensor(name), name);
  const dtype = info.computeDtype;
  if (dtype === undefined || !canDequantize(dtype)) {
    throw new FormatError(where, `tensor '${name}'`, info.offset, `dtype ${info.dtype} cannot be read as f32`);
  }
  if (dtype === 'fp8_e4m3' && checkpoint.has(name + FP8_SCALE_SUFFIX)) {
    const [rows, cols] = matrixShape(where, info);
    return dequantizeFp8BlockScaled(checkpoint.readTensorBytes(name), readBlockScales(checkpoint, where, name, rows, cols), rows, cols);
  }
  return dequantize(dtype, checkpoint.readTensorBytes(name), info.elements);
}

/**
 * Every tensor of a checkpoint as f32 with its shape (FP8 weights dequantized with their block
 * scales, whose `_scale_inv` tensors are not listed themselves): a whole model in memory, for
 * conversions.
 */
export function readAllTensorsF32(checkpoint: Checkpoint): Map<string, { shape: number[]; values: Float32Array }> {
  const out = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const name of checkpoint.tensorNames()) {
    if (name.endsWith(FP8_SCALE_SUFFIX) && checkpoint.tensor(name.slice(0, -FP8_SCALE_SUFFIX.length))?.computeDtype === 'fp8_e4m3') continue;
    out.set(name, { shape: [...checkpoint.tensor(name)!.shape], values: readTensorF32(checkpoint, name) });
  }
  return out;
}

/**
 * The checkpoint directory a path names: a directory with model.safetensors (or a sharded
 * model's model.safetensors.index.json), or a training run directory whose `latest` file points
 * at one (src/train/checkpoint.ts writes both).
 */
export function resolveCheckpointDir(path: string): string {
  if (!existsSync(path)) throw new Error(`checkpoint not found: ${path}`);
  if (!statSync(path).isDirectory()) throw new Error(`checkpoint ${path}: not a directory`);
  if (existsSync(join(path, 'model.safetensors')) || existsSync(join(path, INDEX_FILE))) return path;
  const latest = join(path, 'latest');
  if (!existsSync(latest)) throw new Error(`checkpoint ${path}: no model.safetensors, no ${INDEX_FILE} and no 'latest' pointer`);
  const target = readFileSync(latest, 'utf8').trim();
  if (target.length === 0 || target.includes('..')) throw new Error(`checkpoint ${latest}: bad pointer ${JSON.stringify(target)}`);
  const dir = resolve(path, target);
  if (!existsSync(join(dir, 'model.safetensors'))) throw new Error(`checkpoint ${latest}: points at ${dir}, which has no model.safetensors`);
  return dir;
}

/** A model directory as given, or, for a training run directory (no config.json, a `latest` pointer), its newest checkpoint. */
export function modelDirectory(path: string): string {
  return !existsSync(join(path, 'config.json')) && existsSync(join(path, 'latest')) ? resolveCheckpointDir(path) : path;
}
