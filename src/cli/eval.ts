/**
 * `frugal eval --model M --task T [--difficulty D] [--samples k] [--limit n] [--style S]
 *   [--max-tokens N] [--temperature 0.6] [--top-p 0.95] [--no-greedy] [--seed S] [--rephrase] [--json out.json]`:
 * pass@1 over k samples (R1's T = 0.6, top-p 0.95), greedy accuracy, format rate and mean
 * response length on the TEST split of a task (src/train/eval.ts). M: a .gguf file or an HF
 * model directory (what the training stages write). Several tasks/levels: comma lists. With
 * --rephrase each test question is worded another way (src/train/tasks/phrasing.ts), as people
 * type it, instead of the generator's wording.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelDirectory } from '../formats/hf-checkpoint.js';
import { readHfConfig } from '../formats/hf-config.js';
import { parseArgs } from 'node:util';
import { loadModel } from '../models/load.js';
import { checkPromptStyle } from '../train/cold-start.js';
import { type EvalReport, R1_EVAL_DEFAULTS, evaluate, formatEvalTable } from '../train/eval.js';
import { EnginePolicy, tokenizerCodec } from '../train/rollout.js';
import { rephrase } from '../train/tasks/phrasing.js';
import { getTask } from '../train/tasks/registry.js';
import { TaskRng } from '../train/tasks/rng.js';
import type { Difficulty } from '../train/tasks/types.js';
import { checkOutputFile } from './file-checks.js';
import { integerFlag } from './flag-values.js';

export const summary = 'pass@1 / greedy accuracy / format rate on a task\'s test split';

const USAGE = 'usage: frugal eval --model M --task T[,T2] [--difficulty 1[,2,3]] [--samples k] [--limit n] [--style r1-chat|r1-zero|plain] [--max-tokens N] [--rephrase] [--json out.json]';

function unitNumber(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0 || v > max) throw new Error(`--${name}: '${text}' is not a number in [0, ${max}]`);
  return v;
}

/** eos_token_id of an HF model directory's config.json (training checkpoints name EOS there). */
function configEos(model: string): number | undefined {
  if (!statSync(model).isDirectory()) return undefined;
  const path = join(modelDirectory(model), 'config.json');
  if (!existsSync(path)) return undefined;
  const eos = readHfConfig(path).eos_token_id;
  const id = Array.isArray(eos) ? eos[0] : eos;
  return typeof id === 'number' ? id : undefined;
}

export async function run(args: string[]): Promise<number> {
  let o;
  try {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string' }, task: { type: 'string' }, difficulty: { type: 'string' }, samples: { type: 'string' }, limit: { type: 'string' },
        style: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-p': { type: 'string' },
        'no-greedy': { type: 'boolean', default: false }, seed: { type: 'string' }, json: { type: 'string' },
        rephrase: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (!values.model) throw new Error('--model is required');
    if (!values.task) throw new Error('--task is required');
    const tasks = values.task.split(',');
    for (const t of tasks) getTask(t);
    const difficulties = (values.difficulty ?? '1').split(',').map((d) => {
      if (d !== '1' && d !== '2' && d !== '3') throw new Error(`--difficulty: '${d}' is not 1, 2 or 3`);
      return Number(d) as Difficulty;
    });
    o = {
      model: values.model, tasks, difficulties, samples: integerFlag('samples', values.samples, R1_EVAL_DEFAULTS.samples, 0),
      limit: integerFlag('limit', values.limit, 50, 1), style: checkPromptStyle(values.style ?? 'r1-chat', '--style'),
      maxTokens: integerFlag('max-tokens', values['max-tokens'], 256, 1), temperature: unitNumber('temperature', values.temperature, R1_EVAL_DEFAULTS.temperature, 2),
      topP: unitNumber('top-p', values['top-p'], R1_EVAL_DEFAULTS.topP, 1), greedy: !values['no-greedy'],
      seed: integerFlag('seed', values.seed, 0, 0), json: values.json, rephrase: values.rephrase,
    };
    if (o.json !== undefined) checkOutputFile(o.json, '--json');
  } catch (error) {
    console.error(`frugal eval: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const loaded = loadModel(o.model);
  if (!loaded.tokenizer) throw new Error(`${o.model}: no tokenizer in the model`);
  const eos = loaded.tokenizer.eosId ?? configEos(o.model);
  if (eos === undefined) throw new Error(`${o.model}: neither the tokenizer nor config.json names an EOS token`);
  const codec = tokenizerCodec(loaded.tokenizer, eos);
  const policy = new EnginePolicy(loaded.model, codec);
  const reports: (EvalReport & { difficulty: number })[] = [];
  for (const task of o.tasks) {
    for (const difficulty of o.difficulties) {
      const generated = getTask(task).generate(o.limit, { seed: 1234 + o.seed, difficulty, split: 'test' });
      const wording = new TaskRng(o.seed, `eval/rephrase/${task}/${difficulty}`);
      const problems = o.rephrase ? generated.map((problem) => rephrase(problem, wording)) : generated;
      const started = Date.now();
      const report = evaluate(policy, codec, problems, { style: o.style, samples: o.samples, temperature: o.temperature, topP: o.topP, maxTokens: o.maxTokens, greedy: o.greedy, seed: o.seed });
      console.error(`${task} level ${difficulty}: ${problems.length} problems in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      reports.push({ ...report, difficulty });
    }
  }
  console.log(formatEvalTable(reports));
  if (o.json) {
    writeFileSync(o.json, `${JSON.stringify({ model: o.model, style: o.style, maxTokens: o.maxTokens, rephrased: o.rephrase, reports }, null, 1)}\n`);
    console.error(`wrote ${o.json}`);
  }
  return 0;
}
