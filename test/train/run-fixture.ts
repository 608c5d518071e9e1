// A tiny pre-training run on disk: corpus, tokenizer and run config in a temporary directory.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunConfig, parseRunConfig } from '../../src/train/run-config.js';
import { corpusText, tempDir, tinyV3Fields, writeTinyTokenizer } from './helpers.js';

export interface RunFixture {
  dir: string;
  json: Record<string, unknown>;
  run: RunConfig;
  configPath: string;
}

export function runFixture(overrides: Record<string, unknown> = {}, model: Record<string, unknown> = {}, dir = tempDir('run')): RunFixture {
  const text = corpusText(400, 3);
  writeFileSync(join(dir, 'corpus.txt'), text);
  writeTinyTokenizer(dir, text);
  const json: Record<string, unknown> = {
    model: tinyV3Fields(model),
    data: { train: 'corpus.txt', tokenizer: 'tokenizer.json', validation_fraction: 0.1 },
    optimizer: { lr: 0.01, weight_decay: 0.01, betas: [0.9, 0.95], clip: 1 },
    schedule: { type: 'cosine', warmup: 3, steps: 24 },
    batch_size: 4, grad_accum: 1, seq_len: 24,
    mtp: { enabled: true, lambda: 0.3 }, moe: { gamma: 0.001, alpha: 0.0001 },
    fp8: false, seed: 5, out_dir: 'out', eval_every: 8, checkpoint_every: 8, eval_batches: 2,
    ...overrides,
  };
  const configPath = join(dir, 'run.json');
  writeFileSync(configPath, JSON.stringify(json, null, 1));
  return { dir, json, run: parseRunConfig(json, configPath, dir), configPath };
}
