/**
 * `frugal info [FILE]`: the compute backend, and for a model file (GGUF or HF checkpoint
 * directory) its architecture, parameter count, tensor types, context length, tokenizer and the
 * memory it needs, read from the metadata and tensor index alone (no weights are loaded).
 * Architecture-specific lines come from the architecture's `describe` (src/models/load.ts).
 * `--context N` sizes the KV cache (and the weights + cache total) for N tokens instead of the
 * model's context length; for MLA models it also shows what a plain cache (full keys and values
 * per head, as without the absorbed latent) would take at that length.
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { architecture, openModelSource, type ModelSource } from '../models/load.js';
import { describeBackend } from '../tensor/index.js';

export const summary = 'show the compute backend, or describe a model file';

const USAGE = 'usage: frugal info [FILE [--context N]]';

/** 1234567 -> "1.23M". */
export function humanCount(n: number): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [size, unit] of units) if (n >= size) return `${(n / size).toFixed(2)}${unit}`;
  return String(n);
}

/** Bytes in binary units: "1.50 GiB". */
export function humanBytes(n: number): string {
  const units: [number, string][] = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [size, unit] of units) if (n >= size) return `${(n / size).toFixed(2)} ${unit}`;
  return `${n} B`;
}

function tokenizerLine(source: ModelSource): string {
  const model = source.value('tokenizer.ggml.model');
  if (model === undefined) return 'tokenizer: none in the file';
  const tokens = source.value('tokenizer.ggml.tokens');
  const count = Array.isArray(tokens) ? tokens.length : 0;
  const pre = source.value('tokenizer.ggml.pre');
  const kind = model === 'gpt2' ? 'byte-level BPE' : String(model);
  return `tokenizer: ${kind} (${String(model)}${typeof pre === 'string' ? `, pre '${pre}'` : ''}), ${count} tokens`;
}

export interface DescribeOptions {
  /** Tokens to size the KV cache for (default: the model's context length). */
  context?: number;
}

/** The description lines of a model file or directory. */
export function describeModel(path: string, options: DescribeOptions = {}): string[] {
  const source = openModelSource(path);
  try {
    const name = source.string('general.architecture');
    const arch = architecture(name, path);
    const summary = arch.describe(source);
    const tensors = source.tensors();
    let parameters = 0;
    let weightBytes = 0;
    const types = new Map<string, number>();
    for (const t of tensors) {
      // rope_freqs holds llama3 frequency divisors, not parameters.
      if (t.name !== 'rope_freqs.weight') parameters += t.dims.reduce((a, b) => a * b, 1);
      weightBytes += t.byteLength;
      types.set(t.dtype, (types.get(t.dtype) ?? 0) + 1);
    }
    const contextLength = source.number(`${name}.context_length`) ?? 0;
    const context = options.context ?? contextLength;
    const past = context > contextLength ? ` (past the model's context length ${contextLength})` : '';
    const perToken = summary.cacheValuesPerToken * 4;
    const cacheBytes = perToken * context;
    const size = statSync(path).isDirectory() ? 'HF checkpoint directory' : `${source.format}, ${humanBytes(statSync(path).size)}`;
    const typeList = [...types].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n}`).join(', ');
    const lines = [
      `file: ${path} (${size})`,
      `architecture: ${name}`,
      `parameters: ${humanCount(parameters)} in the file (${parameters})`,
      `tensor types: ${typeList} (${tensors.length} tensors)`,
      `context length: ${contextLength}`,
      tokenizerLine(source),
      ...summary.lines,
      `memory: weights ${humanBytes(weightBytes)}; KV cache (f32) ${humanBytes(perToken)} per token, ${humanBytes(cacheBytes)} at ${context} tokens${past}`,
      `RAM at ${context} tokens: weights ${humanBytes(weightBytes)} + KV cache ${humanBytes(cacheBytes)} = ${humanBytes(weightBytes + cacheBytes)}`,
    ];
    const plain = summary.plainCacheValuesPerToken;
    if (plain !== undefined) {
      const plainBytes = plain * 4 * context;
      lines.push(
        `plain KV cache (full K/V per head, not absorbed; f32): ${humanBytes(plain * 4)} per token, ${humanBytes(plainBytes)} at ${context} tokens ` +
          `(${(plain / summary.cacheValuesPerToken).toFixed(1)}x the MLA cache; weights + plain cache ${humanBytes(weightBytes + plainBytes)})`,
      );
    }
    return lines;
  } finally {
    source.close();
  }
}

/** `--context` as a token count: a positive integer, or a usage error naming the flag. */
export function parseContext(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new Error(`--context must be a positive integer (tokens), got '${text}'`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  let file: string | undefined;
  let context: number | undefined;
  try {
    const { values, positionals } = parseArgs({ args, options: { context: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (positionals.length > 1) throw new Error(`one model file at most, got ${positionals.length}`);
    file = positionals[0];
    if (values.context !== undefined) {
      context = parseContext(values.context);
      if (file === undefined) throw new Error('--context needs a model FILE');
    }
  } catch (error) {
    console.error(`frugal info: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  console.log(`backend: ${describeBackend()}`);
  if (file !== undefined) for (const line of describeModel(file, context !== undefined ? { context } : {})) console.log(line);
  return 0;
}
