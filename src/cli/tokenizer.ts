/**
 * `frugal tokenizer train --input FILE... --vocab-size N --out tokenizer.json`: trains a byte-level
 * BPE tokenizer (src/tokenizer/train-bpe.ts) on text / JSONL files and writes tokenizer.json plus
 * tokenizer_config.json beside it, loadable by Tokenizer.fromFile and by Hugging Face tokenizers.
 * The DeepSeek-R1 special tokens are included unless --no-r1-specials. Progress goes to stderr.
 */
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { R1_SPECIAL_TOKENS, TRAIN_PRE_TOKENIZERS, trainBpe, writeTrainedTokenizer, type SpecialTokenSpec, type TrainPreTokenizer, type TrainProgress } from '../tokenizer/train-bpe.js';
import { checkInputFiles, filesTexts } from '../tokenizer/train-input.js';
import { prepareOutputDir } from './file-checks.js';
import { wholeNumber } from './flag-values.js';

export const summary = 'train a byte-level BPE tokenizer (frugal tokenizer train --help)';

const USAGE = `usage: frugal tokenizer train --input FILE... --vocab-size N --out PATH [options]
  --input FILE...        training text: plain text files, or .jsonl (one {"text": ...} or JSON string per line)
  --vocab-size N         total vocabulary size, special tokens included (at least 256 + specials)
  --out PATH             tokenizer.json to write (or a directory to write tokenizer.json into);
                         tokenizer_config.json is written beside it
  --special TOKEN        an extra special token (repeatable)
  --no-r1-specials       leave out the DeepSeek-R1 special tokens (BOS/EOS, <｜User｜>, <think>, tool markers, ...)
  --pre-tokenizer NAME   ${TRAIN_PRE_TOKENIZERS.join(' | ')} (default deepseek-v3)
  --min-frequency N      never merge pairs seen fewer than N times (default 2)
  --quiet                no progress on stderr`;

interface TrainArgs {
  inputs: string[];
  vocabSize: number;
  out: string;
  specials: SpecialTokenSpec[];
  preTokenizer: TrainPreTokenizer;
  minFrequency: number;
  quiet: boolean;
}

function positiveInteger(name: string, text: string | undefined): number {
  if (text === undefined) throw new Error(`${name} is required`);
  const n = wholeNumber(text);
  if (!(n >= 1)) throw new Error(`${name}: '${text}' is not a positive integer`);
  return n;
}

function parseTrainArgs(args: string[]): TrainArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    options: {
      input: { type: 'string', multiple: true },
      'vocab-size': { type: 'string' },
      out: { type: 'string' },
      special: { type: 'string', multiple: true },
      'no-r1-specials': { type: 'boolean', default: false },
      'pre-tokenizer': { type: 'string', default: 'deepseek-v3' },
      'min-frequency': { type: 'string', default: '2' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) return 'help';
  // `--input a.txt b.txt`: files after the first one arrive as positionals.
  const inputs = [...(values.input ?? []), ...positionals];
  if (inputs.length === 0) throw new Error('--input FILE is required');
  if (values.out === undefined) throw new Error('--out PATH is required');
  const preTokenizer = values['pre-tokenizer'] as TrainPreTokenizer;
  if (!TRAIN_PRE_TOKENIZERS.includes(preTokenizer)) throw new Error(`--pre-tokenizer: '${preTokenizer}' is not one of ${TRAIN_PRE_TOKENIZERS.join(', ')}`);
  const extra = values.special ?? [];
  const base: SpecialTokenSpec[] = values['no-r1-specials'] ? [] : [...R1_SPECIAL_TOKENS];
  const known = new Set(base.map((s) => (typeof s === 'string' ? s : s.content)));
  const specials = [...base, ...extra.filter((s) => !known.has(s))];
  return {
    inputs,
    vocabSize: positiveInteger('--vocab-size', values['vocab-size']),
    out: values.out,
    specials,
    preTokenizer,
    minFrequency: positiveInteger('--min-frequency', values['min-frequency']),
    quiet: values.quiet,
  };
}

function outputPath(out: string): string {
  let isDirectory = out.endsWith('/');
  try {
    isDirectory ||= statSync(out).isDirectory();
  } catch {
    // does not exist yet: a file path
  }
  return isDirectory ? join(out, 'tokenizer.json') : out;
}

function seconds(s: number): string {
  return s < 90 ? `${s.toFixed(0)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

async function train(args: TrainArgs): Promise<number> {
  if (args.vocabSize < 256 + args.specials.length) {
    throw new Error(`--vocab-size ${args.vocabSize} is too small: it must hold the 256 byte tokens and ${args.specials.length} special tokens (at least ${256 + args.specials.length})`);
  }
  const sizes = checkInputFiles(args.inputs);
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  if (totalBytes === 0) throw new Error(`--input: nothing to train on (${args.inputs.join(', ')}: 0 bytes)`);
  const tokenizerPath = outputPath(args.out);
  prepareOutputDir(dirname(tokenizerPath), '--out');
  const started = Date.now();
  let bytesRead = 0;
  let mergeStarted = 0;
  let lastLine = 0;
  const log = (line: string): void => {
    if (!args.quiet) process.stderr.write(`${line}\n`);
  };
  const onProgress = (p: TrainProgress): void => {
    const now = Date.now();
    if (p.phase === 'count') {
      if (now - lastLine < 1000) return;
      lastLine = now;
      const elapsed = (now - started) / 1000;
      const rate = bytesRead / 1e6 / Math.max(elapsed, 1e-3);
      const eta = rate > 0 ? (totalBytes - bytesRead) / 1e6 / rate : 0;
      log(`reading: ${(bytesRead / 1e6).toFixed(1)}/${(totalBytes / 1e6).toFixed(1)} MB, ${p.words} unique pieces, ${rate.toFixed(2)} MB/s, ETA ${seconds(eta)}`);
    } else if (p.phase === 'merge') {
      if (mergeStarted === 0) mergeStarted = now;
      if (now - lastLine < 1000 && p.vocabSize < p.targetVocabSize) return;
      lastLine = now;
      const elapsed = Math.max((now - mergeStarted) / 1000, 1e-3);
      const done = p.vocabSize - 256;
      const rate = p.merges / elapsed;
      const eta = done > 0 ? ((p.targetVocabSize - p.vocabSize) * elapsed) / done : 0;
      log(`merging: vocab ${p.vocabSize}/${p.targetVocabSize}, ${p.merges} merges, ${rate.toFixed(0)} merges/s, ETA ${seconds(eta)}`);
    }
  };
  const json = await trainBpe(
    filesTexts(args.inputs, (n) => {
      bytesRead += n;
    }),
    { vocabSize: args.vocabSize, specialTokens: args.specials, preTokenizer: args.preTokenizer, minFrequency: args.minFrequency, onProgress },
  );
  const vocabSize = Object.keys(json.model.vocab).length + json.added_tokens.length;
  writeTrainedTokenizer(tokenizerPath, json);
  const elapsed = (Date.now() - started) / 1000;
  if (vocabSize < args.vocabSize) {
    process.stderr.write(`warning: the training text ran out of pairs seen at least ${args.minFrequency} times: vocabulary ${vocabSize} < requested ${args.vocabSize}\n`);
  }
  log(
    `wrote ${tokenizerPath} (+ tokenizer_config.json): vocabulary ${vocabSize} = 256 bytes + ${vocabSize - 256 - json.added_tokens.length} learned + ${json.added_tokens.length} special, ` +
      `${json.model.merges.length} merges, ${(totalBytes / 1e6).toFixed(2)} MB in ${elapsed.toFixed(1)}s`,
  );
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    if (sub === undefined) {
      console.error(USAGE);
      return 2;
    }
    console.log(USAGE);
    return 0;
  }
  if (sub !== 'train') {
    console.error(`frugal tokenizer: unknown subcommand '${sub}' (available: train)\n${USAGE}`);
    return 2;
  }
  let parsed: TrainArgs | 'help';
  try {
    parsed = parseTrainArgs(rest);
  } catch (error) {
    console.error(`frugal tokenizer train: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    console.log(USAGE);
    return 0;
  }
  return train(parsed);
}
