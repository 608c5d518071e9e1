/**
 * `frugal train --config run.json [--no-resume] [--stop-at STEP]`: pre-trains a model from a run
 * config (src/train/run-config.ts). Progress on stderr; log.jsonl, loss.svg and checkpoints under
 * the run's out_dir; continues from <out_dir>/latest unless --no-resume.
 */
import { parseArgs } from 'node:util';
import { readRunConfig } from '../train/run-config.js';
import { runPretraining } from '../train/pretrain.js';
import { prepareOutputDir } from './file-checks.js';

export const summary = 'pre-train a model from a run config (checkpoints, resume, charts)';

const USAGE = 'usage: frugal train --config run.json [--no-resume] [--stop-at STEP]';

export async function run(args: string[]): Promise<number> {
  let configPath: string;
  let resume: boolean;
  let stopAt: number | undefined;
  try {
    const { values } = parseArgs({
      args,
      options: { config: { type: 'string' }, 'no-resume': { type: 'boolean', default: false }, 'stop-at': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (!values.config) throw new Error('--config is required');
    configPath = values.config;
    resume = !values['no-resume'];
    if (values['stop-at'] !== undefined) {
      if (!/^\d+$/.test(values['stop-at'])) throw new Error(`--stop-at: '${values['stop-at']}' is not a step number`);
      stopAt = Number(values['stop-at']);
    }
  } catch (error) {
    console.error(`frugal train: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const config = readRunConfig(configPath);
  prepareOutputDir(config.outDir, `${configPath}: field 'out_dir'`);
  prepareOutputDir(config.data.cacheDir, `${configPath}: field 'data.cache_dir'`);
  const result = runPretraining(config, { resume, stopAtStep: stopAt });
  const last = result.evals[result.evals.length - 1];
  console.error(`done: steps ${result.startStep}..${result.endStep}, ${result.tokensPerSecond.toFixed(0)} tokens/s${last ? `, validation loss ${last.valLoss.toFixed(4)}` : ''}${result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ''}`);
  return 0;
}
