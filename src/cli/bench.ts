/**
 * `frugal bench [--model FILE] [-p 512] [-n 128] [-r 3]`: a model's prompt processing and text
 * generation speed, as llama-bench reports them. pp N: one forward over N prompt tokens on an
 * empty cache; tg N: N single-token forwards, one after another. Each test runs `r` times after a
 * warm-up; tokens/s is shown as mean ± standard deviation. Token ids are fixed pseudo-random ones
 * (the speed does not depend on them). `--json` prints the rows as JSON instead of a table.
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import { describeBackend } from '../tensor/index.js';
import { DEFAULT_MODEL } from './chat.js';
import { wholeNumber } from './flag-values.js';

export const summary = 'prompt processing and generation speed of a model (like llama-bench)';

const USAGE = 'usage: frugal bench [--model FILE] [-p N] [-n N] [-r N] [--json]   (defaults: the shipped model, -p 512 -n 128 -r 3)';

export interface BenchRow {
  test: string;
  tokens: number;
  /** Tokens per second of each repetition. */
  rates: number[];
  mean: number;
  sd: number;
}

function ids(count: number, vocab: number, seed: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => (i * 7919 + seed * 104729 + 11) % vocab);
}

function summarize(test: string, tokens: number, rates: number[]): BenchRow {
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const sd = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / Math.max(1, rates.length - 1));
  return { test, tokens, rates, mean, sd };
}

/** Times pp `prompt` and tg `generate` on `model` (`repeats` runs each after one warm-up run). */
export function benchModel(model: CausalLM, prompt: number, generate: number, repeats: number): BenchRow[] {
  const vocab = model.info.vocabSize;
  const need = Math.max(prompt, generate + 1);
  if (need > model.info.contextLength) throw new Error(`${need} tokens do not fit the model's context of ${model.info.contextLength}`);
  const rows: BenchRow[] = [];
  if (prompt > 0) {
    const run = (r: number): number => {
      const cache = model.newCache(prompt);
      const started = performance.now();
      model.forward(ids(prompt, vocab, r), cache);
      return prompt / ((performance.now() - started) / 1000);
    };
    run(0);
    rows.push(summarize(`pp${prompt}`, prompt, Array.from({ length: repeats }, (_, r) => run(r + 1))));
  }
  if (generate > 0) {
    const run = (r: number): number => {
      const cache = model.newCache(generate + 1);
      const tokens = ids(generate, vocab, r);
      model.forward(tokens.subarray(0, 1), cache); // the first token stands for the prompt
      const started = performance.now();
      for (let i = 1; i < generate; i++) model.forward(tokens.subarray(i, i + 1), cache);
      return (generate - 1) / ((performance.now() - started) / 1000);
    };
    run(0);
    rows.push(summarize(`tg${generate}`, generate, Array.from({ length: repeats }, (_, r) => run(r + 1))));
  }
  return rows;
}

function count(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = wholeNumber(value);
  if (!(n >= min)) throw new Error(`${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' }, p: { type: 'string', short: 'p' }, n: { type: 'string', short: 'n' }, r: { type: 'string', short: 'r' },
      json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const prompt = count(values.p, '-p', 512, 0);
  const generate = count(values.n, '-n', 128, 0);
  const repeats = count(values.r, '-r', 3, 1);
  if (generate === 1) throw new Error('-n must be 0 or at least 2 (the first token stands for the prompt)');
  const path = values.model ?? DEFAULT_MODEL;
  const { model } = loadModel(path, { tokenizer: false });
  const rows = benchModel(model, prompt, generate, repeats);
  if (values.json) {
    console.log(JSON.stringify({ model: path, backend: describeBackend(), parameters: model.info.parameterCount, rows }));
    return 0;
  }
  console.log(`model: ${path} (${model.info.architecture}, ${(model.info.parameterCount / 1e6).toFixed(2)}M parameters); backend: ${describeBackend()}`);
  console.log('| test | tokens/s |');
  console.log('|---|---|');
  for (const row of rows) console.log(`| ${row.test} | ${row.mean.toFixed(2)} ± ${row.sd.toFixed(2)} |`);
  return 0;
}
