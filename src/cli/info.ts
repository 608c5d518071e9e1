/**
 * `frugal info [FILE]`: the compute backend, and for a model file (GGUF or HF checkpoint
 * directory) its architecture, parameter count, tensor types, context length, tokenizer and the
 * memory it needs, read from the metadata and tensor index alone (no weights are loaded).
 * Architecture-specific lines come from the architecture's `describe` (src/models/load.ts).
 */
import { statSync } from 'node:fs';
import { architecture, openModelSource, type ModelSource } from '../models/load.js';
import { describeBackend } from '../tensor/index.js';

export const summary = 'show the compute backend, or describe a model file';

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

/** The description lines of a model file or directory. */
export function describeModel(path: string): string[] {
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
    const context = source.number(`${name}.context_length`) ?? 0;
    const perToken = summary.cacheValuesPerToken * 4;
    const size = statSync(path).isDirectory() ? 'HF checkpoint directory' : `${source.format}, ${humanBytes(statSync(path).size)}`;
    const typeList = [...types].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n}`).join(', ');
    return [
      `file: ${path} (${size})`,
      `architecture: ${name}`,
      `parameters: ${humanCount(parameters)} (${parameters})`,
      `tensor types: ${typeList} (${tensors.length} tensors)`,
      `context length: ${context}`,
      tokenizerLine(source),
      ...summary.lines,
      `memory: weights ${humanBytes(weightBytes)}; KV cache (f32) ${humanBytes(perToken)} per token, ${humanBytes(perToken * context)} at ${context} tokens`,
    ];
  } finally {
    source.close();
  }
}

export async function run(args: string[]): Promise<number> {
  console.log(`backend: ${describeBackend()}`);
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
    console.error('usage: frugal info [FILE]');
    return 2;
  }
  if (args.length === 1) for (const line of describeModel(args[0]!)) console.log(line);
  return 0;
}
