/**
 * Model loading: a `.gguf` file or an HF checkpoint directory (config.json + safetensors) becomes
 * a CausalLM (plus its tokenizer and chat template when the files carry them).
 *
 * Every architecture reads its weights through a ModelSource, which speaks GGUF names and keys:
 * an HF checkpoint is presented under the names llama.cpp's converter would give it
 * (./load-hf.ts), so one loader per architecture serves both formats. Architectures register in
 * `architectures` below by their GGUF `general.architecture` name.
 */
import { existsSync, statSync } from 'node:fs';
import type { GgufPlainValue } from '../formats/gguf-value.js';
import { type GgufFile, type GgufTensorInfo, openGguf, readExpertMatrix, readF32, readWeightMatrix } from '../formats/gguf.js';
import type { Backend } from '../tensor/backend.js';
import type { DType } from '../tensor/dtype.js';
import type { WeightMatrix } from '../tensor/tensor.js';
import type { CausalLM } from './model.js';
import { describeDense, loadLlama } from './llama.js';
import { loadQwen2 } from './qwen2.js';
import { Tokenizer } from '../tokenizer/index.js';

/** One stored tensor: name, dtype, shape in ggml order (dims[0] = contiguous), bytes. */
export interface TensorSummary {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly byteLength: number;
}

/** Weights and GGUF-style metadata of one model, whatever the file format. */
export interface ModelSource {
  /** The file or directory, for error messages. */
  readonly path: string;
  readonly format: 'gguf' | 'hf';
  /** The open GGUF file (format 'gguf' only), for loaders that need more than this interface. */
  readonly gguf?: GgufFile;
  value(key: string): GgufPlainValue | undefined;
  /** A numeric key (any integer or float type), or undefined; throws when the key holds something else. */
  number(key: string): number | undefined;
  string(key: string): string | undefined;
  bool(key: string): boolean | undefined;
  keys(): string[];
  hasTensor(name: string): boolean;
  /** ggml-order dims of a tensor, or undefined when it is absent. */
  tensorShape(name: string): readonly number[] | undefined;
  /** A [rows, cols] weight in its storage dtype; throws naming the tensor and file when missing or misshapen. */
  matrix(name: string, rows: number, cols: number): WeightMatrix;
  /** Expert `expert` ([rows, cols]) of a 3-D stack ne = [cols, rows, experts]. */
  expertMatrix(name: string, expert: number, rows: number, cols: number): WeightMatrix;
  /** A tensor of exactly `length` values (any shape), dequantized to f32. */
  vector(name: string, length: number): Float32Array;
  tensors(): TensorSummary[];
  /** Releases the open files (tensors already read stay valid). */
  close(): void;
}

export class ModelFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ModelFileError';
  }
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** The ModelSource of an open GGUF file. */
export function ggufSource(file: GgufFile): ModelSource {
  const need = (name: string): GgufTensorInfo => {
    const info = file.tensor(name);
    if (!info) throw new ModelFileError(file.path, `tensor '${name}' is missing`);
    return info;
  };
  const number = (key: string): number | undefined => {
    const v = file.value(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw new ModelFileError(file.path, `metadata '${key}' should be a number, found ${typeof v === 'object' ? 'an array' : typeof v}`);
  };
  return {
    path: file.path,
    format: 'gguf',
    gguf: file,
    value: (key) => file.value(key),
    number,
    string: (key) => {
      const v = file.value(key);
      if (v === undefined || typeof v === 'string') return v;
      throw new ModelFileError(file.path, `metadata '${key}' should be a string, found ${typeof v}`);
    },
    bool: (key) => {
      const v = file.value(key);
      if (v === undefined || typeof v === 'boolean') return v;
      throw new ModelFileError(file.path, `metadata '${key}' should be a bool, found ${typeof v}`);
    },
    keys: () => [...file.metadata.keys()],
    hasTensor: (name) => file.tensor(name) !== undefined,
    tensorShape: (name) => file.tensor(name)?.dims,
    matrix(name, rows, cols) {
      const info = need(name);
      const [ne0, ne1 = 1, ...rest] = info.dims;
      if (ne0 !== cols || ne1 !== rows || rest.some((d) => d !== 1)) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)} (ggml order), expected ${shapeText([cols, rows])}`);
      }
      return readWeightMatrix(file, name);
    },
    expertMatrix(name, expert, rows, cols) {
      const info = need(name);
      if (info.dims.length !== 3 || info.dims[0] !== cols || info.dims[1] !== rows) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)} (ggml order), expected [${cols}, ${rows}, experts]`);
      }
      return readExpertMatrix(file, name, expert);
    },
    vector(name, length) {
      const info = need(name);
      if (info.elements !== length) {
        throw new ModelFileError(file.path, `tensor '${name}' has shape ${shapeText(info.dims)}, expected ${length} values`);
      }
      return readF32(file, name);
    },
    tensors: () => file.tensors.map((t) => ({ name: t.name, dtype: t.dtype, dims: t.dims, byteLength: t.byteLength })),
    close: () => file.close(),
  };
}

export interface LoadOptions {
  backend?: Backend;
  /** Most tokens per batched forward pass (longer prompts run in chunks). */
  maxBatch?: number;
}

/** What `frugal info` shows about an architecture, computed from metadata alone (no weights read). */
export interface ArchitectureSummary {
  /** Values the KV cache holds per token, all layers together (f32 each). */
  readonly cacheValuesPerToken: number;
  /** Extra lines, e.g. the layer layout or the MLA cache shape. */
  readonly lines: string[];
}

/** How one architecture is built from a source, and what it adds to `frugal info`. */
export interface Architecture {
  load(source: ModelSource, options: LoadOptions & { ropeStyle?: 'interleaved' | 'neox' }): CausalLM;
  describe(source: ModelSource): ArchitectureSummary;
}

export const architectures: Record<string, Architecture> = {
  llama: { load: loadLlama, describe: (source) => describeDense(source, 'llama') },
  qwen2: { load: loadQwen2, describe: (source) => describeDense(source, 'qwen2') },
};

/** The architecture registered under `name`, or an error listing those that are. */
export function architecture(name: string | undefined, origin: string): Architecture {
  if (name === undefined) throw new ModelFileError(origin, `no architecture given (general.architecture is missing)`);
  const arch = Object.hasOwn(architectures, name) ? architectures[name] : undefined;
  if (!arch) throw new ModelFileError(origin, `unsupported architecture '${name}' (supported: ${Object.keys(architectures).join(', ')})`);
  return arch;
}

export interface LoadedModel {
  readonly model: CausalLM;
  readonly tokenizer?: Tokenizer;
  readonly chatTemplate?: string;
  /** The weights and metadata the model was built from (GGUF keys and names, also for HF checkpoints). */
  readonly source: ModelSource;
  /** GGUF-style metadata (`general.architecture`, `{arch}.*`, `tokenizer.*`), plain values. */
  readonly metadata: ReadonlyMap<string, GgufPlainValue>;
  readonly architecture: Architecture;
}

export interface LoadModelOptions extends LoadOptions {
  /** Load the tokenizer too (default true); a file without one loads with tokenizer undefined. */
  tokenizer?: boolean;
}

/** Opens a model's metadata and tensor index without reading weights (close it when done). */
export function openModelSource(path: string): ModelSource {
  if (!existsSync(path)) throw new Error(`model not found: ${path}`);
  if (statSync(path).isDirectory()) return openHfSource(path);
  return ggufSource(openGguf(path));
}

/**
 * Loads a `.gguf` file, or an HF checkpoint directory (config.json + model.safetensors or a
 * sharded model.safetensors.index.json, tokenizer.json).
 */
export function loadModel(path: string, options: LoadModelOptions = {}): LoadedModel {
  if (!existsSync(path)) throw new Error(`model not found: ${path}`);
  if (statSync(path).isDirectory()) return loadHfModel(path, options);
  return loadGgufModel(path, options);
}

function loadGgufModel(path: string, options: LoadModelOptions): LoadedModel {
  const file = openGguf(path);
  try {
    const source = ggufSource(file);
    const name = source.string('general.architecture');
    const arch = architecture(name, path);
    const model = arch.load(source, options);
    let tokenizer: Tokenizer | undefined;
    if (options.tokenizer !== false && file.value('tokenizer.ggml.model') !== undefined) {
      try {
        tokenizer = Tokenizer.fromGgufMetadata((key) => file.value(key));
      } catch (error) {
        throw new ModelFileError(path, `tokenizer: ${(error as Error).message}`);
      }
      if (tokenizer.vocabSize > model.info.vocabSize) {
        throw new ModelFileError(path, `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${model.info.vocabSize} logits`);
      }
    }
    const metadata = new Map<string, GgufPlainValue>();
    for (const key of file.metadata.keys()) metadata.set(key, file.value(key)!);
    const chatTemplate = tokenizer?.chatTemplate ?? source.string('tokenizer.chat_template');
    return { model, tokenizer, chatTemplate, source, metadata, architecture: arch };
  } finally {
    file.close();
  }
}

function openHfSource(path: string): ModelSource {
  throw new Error(`${path}: HF checkpoint directories are not supported yet`);
}

function loadHfModel(path: string, _options: LoadModelOptions): LoadedModel {
  return { ...openHfSource(path) } as never;
}
