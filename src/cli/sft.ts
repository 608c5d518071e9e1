/**
 * `frugal sft --config sft.json [--no-resume] [--stop-at STEP]`: supervised fine-tuning on chat
 * JSONL or the generated cold-start set (src/train/sft.ts).
 * `frugal sft --write-cold-start out.jsonl --tasks arithmetic,sort [--count N] [--seed S]`: writes
 * the cold-start set as chat JSONL.
 *
 * sft.json (relative paths resolve against the config's directory):
 *   { "from": "runs/base",                 model dir, or run dir with 'latest'
 *     "tokenizer": "tokenizer.json",         default: <from>/tokenizer.json
 *     "data": { "jsonl": ["chats.jsonl"] }   or { "cold_start": { "tasks": ["arithmetic"], "count": 2000, "difficulties": [1, 2] } }
 *     "prompt_style": "r1-chat", "steps": 300, "batch_size": 8, "lr": 1e-3, "min_lr": 1e-4, "warmup": 20,
 *     "weight_decay": 0, "clip": 1, "max_len": 512, "seed": 1, "out_dir": "runs/sft",
 *     "checkpoint_every": 100, "log_every": 10 }
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModelDir, resolveCheckpointDir } from '../train/checkpoint.js';
import { type PromptStyle, checkPromptStyle, coldStartExamples } from '../train/cold-start.js';
import { writeChatJsonl } from '../train/distill.js';
import { TrainModel } from '../train/model.js';
import { type Codec, tokenizerCodec } from '../train/rollout.js';
import { readChatJsonl, runSft, tokenizeExample } from '../train/sft.js';
import { type Difficulty } from '../train/tasks/types.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { checkOutputFile, inputFileProblem, prepareOutputDir } from './file-checks.js';
import { integerFlag } from './flag-values.js';

export const summary = 'supervised fine-tuning on chat JSONL or the cold-start set (R1 stage 1/3)';

const USAGE = 'usage: frugal sft --config sft.json [--no-resume] [--stop-at STEP]\n       frugal sft --write-cold-start out.jsonl --tasks arithmetic,sort [--count N] [--seed S]';

type Json = Record<string, unknown>;

/** Reads a stage config's fields; errors name the file and the field. */
export class StageConfig {
  readonly base: string;
  constructor(readonly source: string, readonly json: Json, readonly prefix = '', base?: string) {
    this.base = base ?? dirname(resolve(source));
  }

  static read(path: string): StageConfig {
    if (!existsSync(path)) throw new Error(`${path}: file not found`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path}: expected a JSON object`);
    return new StageConfig(path, json as Json);
  }

  fail(key: string, problem: string): never {
    throw new Error(`${this.source}: field '${this.prefix}${key}': ${problem}`);
  }

  known(keys: readonly string[]): void {
    for (const k of Object.keys(this.json)) if (!keys.includes(k)) this.fail(k, `unknown field (expected one of ${keys.join(', ')})`);
  }

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  number(key: string, fallback?: number, min = 0, max = Infinity): number {
    const v = this.json[key] ?? fallback;
    if (v === undefined) this.fail(key, 'required field is missing');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `expected a number, found ${JSON.stringify(v)}`);
    if (v < min || v > max) this.fail(key, `${v} is outside [${min}, ${max}]`);
    return v;
  }

  int(key: string, fallback?: number, min = 1): number {
    const v = this.number(key, fallback, min);
    if (!Number.isSafeInteger(v)) this.fail(key, `expected an integer, found ${v}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, found ${JSON.stringify(v)}`);
    return v;
  }

  string(key: string, fallback?: string): string {
    const v = this.json[key] ?? fallback;
    if (typeof v !== 'string' || v === '') this.fail(key, `expected a non-empty string, found ${JSON.stringify(v)}`);
    return v;
  }

  path(key: string, fallback?: string): string {
    const p = this.string(key, fallback);
    return isAbsolute(p) ? p : resolve(this.base, p);
  }

  strings(key: string, fallback?: string[]): string[] {
    const v = this.json[key] ?? fallback;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s === '')) this.fail(key, `expected a string or a list of strings, found ${JSON.stringify(v)}`);
    return list as string[];
  }

  difficulties(key: string): Difficulty[] {
    const v = this.json[key] ?? [1, 2, 3];
    const list = typeof v === 'number' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0 || list.some((d) => d !== 1 && d !== 2 && d !== 3)) this.fail(key, `expected 1, 2, 3 or a list of them, found ${JSON.stringify(v)}`);
    return list as Difficulty[];
  }

  style(key: string, fallback: PromptStyle): PromptStyle {
    const v = this.json[key] ?? fallback;
    try {
      return checkPromptStyle(v, 'x');
    } catch {
      this.fail(key, `expected one of r1-chat, r1-zero, plain, found ${JSON.stringify(v)}`);
    }
  }

  object(key: string, optional = false): StageConfig {
    const v = this.json[key];
    if ((v === undefined || v === null) && optional) return new StageConfig(this.source, {}, `${this.prefix}${key}.`, this.base);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, `expected an object, found ${JSON.stringify(v)}`);
    return new StageConfig(this.source, v as Json, `${this.prefix}${key}.`, this.base);
  }
}

/** A trainable model from a model directory or a run directory (its latest checkpoint). */
export interface StageArgs {
  config: string;
  resume: boolean;
  stopAt?: number;
}

/**
 * The flags every config-driven stage takes. On --help it prints the usage and returns 0; on bad
 * flags it prints the problem and the usage and returns 2 (the exit code either way).
 */
export function parseStageArgs(command: string, usage: string, args: string[]): StageArgs | number {
  try {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'no-resume': { type: 'boolean', default: false }, 'stop-at': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (!values['config']) throw new Error('--config is required');
    const stopAt = values['stop-at'];
    if (stopAt !== undefined && !/^\d+$/.test(stopAt)) throw new Error(`--stop-at: '${stopAt}' is not a step number`);
    return { config: values['config'], resume: !values['no-resume'], ...(stopAt !== undefined ? { stopAt: Number(stopAt) } : {}) };
  } catch (error) {
    console.error(`frugal ${command}: ${(error as Error).message}\n${usage}`);
    return 2;
  }
}

export function loadTrainModel(path: string): { model: TrainModel; dir: string } {
  const dir = resolveCheckpointDir(path);
  const { config, tensors } = loadModelDir(dir);
  return { model: TrainModel.fromTensors(config, tensors, dir), dir };
}

/** The tokenizer of a stage: an explicit path, else tokenizer.json next to the model. */
export function stageTokenizer(c: StageConfig, modelDir: string, model: TrainModel): { codec: Codec; path: string } {
  const path = c.has('tokenizer') ? c.path('tokenizer') : join(modelDir, 'tokenizer.json');
  if (!existsSync(path)) c.fail('tokenizer', `no tokenizer at ${path} (give 'tokenizer')`);
  const tokenizer = Tokenizer.fromFile(path);
  const eos = model.config.eos_token_id;
  const eosId = tokenizer.eosId ?? (Array.isArray(eos) ? eos[0] : eos ?? undefined);
  if (typeof eosId !== 'number') c.fail('tokenizer', `${path} names no EOS token and the model config has no eos_token_id`);
  if (tokenizer.vocabSize > model.config.vocab_size) c.fail('tokenizer', `${path} has ${tokenizer.vocabSize} tokens, the model only ${model.config.vocab_size}`);
  return { codec: tokenizerCodec(tokenizer, eosId), path };
}

export function sftOptionsOf(c: StageConfig, outDir: string, tokenizerPath: string, resume: boolean, stopAt: number | undefined) {
  const steps = c.int('steps');
  return {
    steps, batchSize: c.int('batch_size', 8), lr: c.number('lr', 1e-3), minLr: c.number('min_lr', 1e-4), warmup: c.int('warmup', Math.min(20, steps), 0),
    weightDecay: c.number('weight_decay', 0), clip: c.number('clip', 1), maxLen: c.int('max_len', 512), seed: c.int('seed', 1, 0),
    outDir, checkpointEvery: c.int('checkpoint_every', 100, 0), logEvery: c.int('log_every', 10), tokenizerPath, resume, ...(stopAt !== undefined ? { stopAt } : {}),
  };
}

/** `--write-cold-start FILE`: the generated cold-start set as chat JSONL. */
function writeColdStart(values: Record<string, string | boolean | undefined>): number {
  const path = String(values['write-cold-start']);
  const tasks = String(values['tasks'] ?? 'arithmetic,countdown,linear,sort').split(',');
  const count = integerFlag('count', values['count'] as string | undefined, 1000, 1);
  const seed = integerFlag('seed', values['seed'] as string | undefined, 1, 0);
  checkOutputFile(path, '--write-cold-start');
  const examples = coldStartExamples({ tasks, count, seed });
  writeChatJsonl(path, examples);
  console.error(`wrote ${examples.length} cold-start examples to ${path}`);
  return 0;
}

/** The JSONL files of `data.jsonl`, resolved against the config's directory; each must be a readable file. */
function jsonlPaths(c: StageConfig, data: StageConfig): string[] {
  return data.strings('jsonl').map((p) => {
    const path = isAbsolute(p) ? p : resolve(c.base, p);
    const problem = inputFileProblem(path);
    if (problem !== undefined) data.fail('jsonl', problem);
    return path;
  });
}

const SFT_FIELDS = ['from', 'tokenizer', 'data', 'prompt_style', 'steps', 'batch_size', 'lr', 'min_lr', 'warmup', 'weight_decay', 'clip', 'max_len', 'seed', 'out_dir', 'checkpoint_every', 'log_every'];

export async function run(args: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        config: { type: 'string' }, 'no-resume': { type: 'boolean', default: false }, 'stop-at': { type: 'string' },
        'write-cold-start': { type: 'string' }, tasks: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
    if (values['help']) {
      console.log(USAGE);
      return 0;
    }
    if (!values['config'] && !values['write-cold-start']) throw new Error('--config is required');
  } catch (error) {
    console.error(`frugal sft: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values['write-cold-start']) return writeColdStart(values);
  const stopAtText = values['stop-at'] as string | undefined;
  if (stopAtText !== undefined && !/^\d+$/.test(stopAtText)) {
    console.error(`frugal sft: --stop-at: '${stopAtText}' is not a step number`);
    return 2;
  }
  const c = StageConfig.read(String(values['config']));
  c.known(SFT_FIELDS);
  const { model, dir } = loadTrainModel(c.path('from'));
  const { codec, path: tokenizerPath } = stageTokenizer(c, dir, model);
  const style = c.style('prompt_style', 'r1-chat');
  const data = c.object('data');
  data.known(['jsonl', 'cold_start']);
  const outDir = c.path('out_dir');
  const options = sftOptionsOf(c, outDir, tokenizerPath, !values['no-resume'], stopAtText === undefined ? undefined : Number(stopAtText));
  let examples;
  if (data.has('jsonl')) {
    examples = jsonlPaths(c, data).flatMap((path) => readChatJsonl(path).map((e, i) => tokenizeExample(e, style, codec, `${path}:${i + 1}`)));
  } else {
    const cs = data.object('cold_start');
    cs.known(['tasks', 'count', 'difficulties', 'seed']);
    examples = coldStartExamples({ tasks: cs.strings('tasks'), count: cs.int('count', 1000), difficulties: cs.difficulties('difficulties'), seed: cs.int('seed', 1, 0) })
      .map((e, i) => tokenizeExample(e, style, codec, `cold start example ${i}`));
  }
  prepareOutputDir(outDir, `${c.source}: field 'out_dir'`);
  console.error(`sft: ${examples.length} examples, model ${dir} (${model.parameterCount()} parameters), style ${style}`);
  const result = runSft(model, examples, options);
  const last = result.log.at(-1);
  console.error(`done: steps ${result.startStep}..${result.endStep}${last ? `, loss ${last.loss.toFixed(4)}` : ''}, ${result.tokensPerSecond.toFixed(0)} tok/s${result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ''}`);
  return 0;
}
