/**
 * `frugal import --gguf FILE --out DIR`: a deepseek2, qwen2 or llama GGUF file (the shipped model, or any file
 * `frugal export` wrote) back into a model directory that `frugal sft` / `rl` / `distill` take as
 * `from`, so that training can go on from it (src/train/import-gguf.ts).
 */
import { parseArgs } from 'node:util';
import { writeImportedModel } from '../train/import-gguf.js';
import { checkInputFile, prepareOutputDir } from './file-checks.js';

export const summary = 'turn a deepseek2 / qwen2 / llama GGUF file back into a training model directory (config.json, model.safetensors, tokenizer.json)';

const USAGE = 'usage: frugal import --gguf FILE --out DIR';

export async function run(args: string[]): Promise<number> {
  let gguf: string;
  let out: string;
  try {
    const { values } = parseArgs({ args, options: { gguf: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (!values.gguf) throw new Error('--gguf is required');
    if (!values.out) throw new Error('--out is required');
    gguf = values.gguf;
    out = values.out;
  } catch (error) {
    console.error(`frugal import: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  checkInputFile(gguf, '--gguf');
  prepareOutputDir(out, '--out');
  const imported = writeImportedModel(gguf, out);
  let values = 0;
  for (const t of imported.tensors.values()) values += t.values.length;
  console.error(`wrote ${out}: ${imported.config.architecture}, ${imported.tensors.size} tensors, ${(values / 1e6).toFixed(2)}M values, tokenizer of ${imported.tokenizer.vocabSize} tokens`);
  return 0;
}
