/** `frugal recipe [--out DIR] [--quick] [--config FILE]`: the whole R1 pipeline (src/train/recipe.ts). */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { prepareOutputDir } from './file-checks.js';

export const summary = 'the whole R1 recipe: corpus, tokenizer, pretrain, SFT, GRPO, R1-Zero, eval, GGUF export';

const USAGE = `usage: frugal recipe [--out DIR] [--quick] [--config FILE]
  --out DIR      output directory (default: runs/frugal-r1-tiny, runs/quick with --quick); stages already done are skipped
  --quick        a tiny version of every stage (seconds; for tests)
  --config FILE  JSON merged over the default (or quick) recipe, section by section (see recipe/*.json)`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' }, quick: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const { DEFAULT_RECIPE, QUICK_RECIPE, mergeRecipe, runRecipe, resultsMarkdown } = await import('../train/recipe.js');
  let config = values.quick ? QUICK_RECIPE : DEFAULT_RECIPE;
  if (values.config) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(values.config, 'utf8'));
    } catch (error) {
      throw new Error(`cannot read recipe config ${values.config}: ${(error as Error).message}`);
    }
    config = mergeRecipe(config, json, values.config);
  }
  const out = values.out ?? (values.quick ? 'runs/quick' : `runs/${config.name}`);
  prepareOutputDir(out, '--out');
  const started = Date.now();
  const result = await runRecipe(config, out);
  console.log(resultsMarkdown(result.results, config));
  console.log(`model: ${result.gguf}`);
  console.log(`wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
