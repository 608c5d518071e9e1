/**
 * `frugal export --checkpoint DIR --to gguf --out FILE [--type f32|f16|q8_0]`: writes a training
 * checkpoint (or a run directory's latest), or a Hugging Face model directory (sharded, FP8 with
 * block scales included), as a GGUF file for llama.cpp and `frugal run`.
 */
import { parseArgs } from 'node:util';
import { type ExportType, exportCheckpoint } from '../train/export-gguf.js';
import { checkOutputFile } from './file-checks.js';

export const summary = 'export a training checkpoint or a Hugging Face model directory to GGUF (deepseek2 / llama / qwen2)';

const USAGE = 'usage: frugal export --checkpoint DIR --to gguf --out FILE [--type f32|f16|q8_0]';
const TYPES: readonly ExportType[] = ['f32', 'f16', 'q8_0'];

export async function run(args: string[]): Promise<number> {
  let checkpoint: string;
  let out: string;
  let type: ExportType;
  try {
    const { values } = parseArgs({
      args,
      options: { checkpoint: { type: 'string' }, to: { type: 'string', default: 'gguf' }, out: { type: 'string' }, type: { type: 'string', default: 'f32' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (!values.checkpoint) throw new Error('--checkpoint is required');
    if (!values.out) throw new Error('--out is required');
    if (values.to !== 'gguf') throw new Error(`--to: '${values.to}' is not supported (only gguf)`);
    if (!TYPES.includes(values.type as ExportType)) throw new Error(`--type: '${values.type}' is not one of ${TYPES.join(', ')}`);
    checkpoint = values.checkpoint;
    out = values.out;
    type = values.type as ExportType;
  } catch (error) {
    console.error(`frugal export: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkOutputFile(out, '--out');
  const result = exportCheckpoint(checkpoint, out, type);
  console.error(`wrote ${out}: ${result.architecture}, ${result.tensors} tensors, ${(result.fileSize / 1e6).toFixed(2)} MB (${type})`);
  return 0;
}
