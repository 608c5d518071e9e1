/**
 * Rollout benchmark (`node dist/bench/rollout.js [--model FILE --prompts P --group G --max-tokens N --temperature T]`):
 * P prompts x G samples (a GRPO step's rollouts), sampled one completion after another
 * (`EnginePolicy.complete`) and then all together (`completeMany`, batched decoding with one
 * prefill per distinct prompt), same rng streams; prints tokens/s of both and checks that the
 * completions are the same. `--stop TEXT` adds a stop text (checked on the decoded completion every
 * token, as GRPO's r1-zero style does with '</answer>'). Default model: models/frugal-r1-tiny.gguf.
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../src/models/load.js';
import { promptText } from '../src/train/cold-start.js';
import { type Completion, EnginePolicy, streamRng, tokenizerCodec } from '../src/train/rollout.js';
import { getTask } from '../src/train/tasks/registry.js';
import { describeBackend } from '../src/tensor/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, prompts: { type: 'string' }, group: { type: 'string' }, 'max-tokens': { type: 'string' },
    temperature: { type: 'string' }, 'max-batch': { type: 'string' }, stop: { type: 'string' },
  },
  strict: true,
});
const path = values.model ?? 'models/frugal-r1-tiny.gguf';
const promptCount = Number(values.prompts ?? 8);
const group = Number(values.group ?? 8);
const maxTokens = Number(values['max-tokens'] ?? 150);
const temperature = Number(values.temperature ?? 1);
const maxBatch = Number(values['max-batch'] ?? 64);

const loaded = loadModel(path);
if (!loaded.tokenizer) throw new Error(`${path} has no tokenizer`);
const codec = tokenizerCodec(loaded.tokenizer);
const policy = new EnginePolicy(loaded.model, codec, maxBatch);
const problems = getTask('arithmetic').generate(promptCount, { seed: 1, difficulty: 2, split: 'train' });
const distinct = problems.map((p) => codec.encode(promptText(p.prompt, 'r1-chat')));
const prompts = distinct.flatMap((p) => Array.from({ length: group }, () => p));
const rngs = (): ReturnType<typeof streamRng>[] => prompts.map((_, i) => streamRng(7, 0, i));
const options = { temperature, topP: 1, maxTokens, ...(values.stop !== undefined ? { stopText: values.stop } : {}) };

console.log(`model ${path} (${loaded.model.info.architecture}), backend ${describeBackend()}`);
console.log(`${promptCount} prompts x ${group} samples = ${prompts.length} completions, prompt ${distinct[0]!.length} tokens, max ${maxTokens} tokens, T ${temperature}${values.stop !== undefined ? `, stop ${JSON.stringify(values.stop)}` : ''}, batch <= ${maxBatch}`);

function timed(label: string, run: () => Completion[]): Completion[] {
  const t0 = performance.now();
  const out = run();
  const seconds = (performance.now() - t0) / 1000;
  const tokens = out.reduce((sum, c) => sum + c.tokens.length, 0);
  console.log(`${label.padEnd(10)} ${tokens} tokens in ${seconds.toFixed(2)} s = ${(tokens / seconds).toFixed(0)} tokens/s`);
  return out;
}

const sequentialRngs = rngs();
const sequential = timed('sequential', () => prompts.map((p, i) => policy.complete(p, options, sequentialRngs[i]!)));
const batched = timed('batched', () => policy.completeMany(prompts, options, rngs()));
const different = batched.filter((c, i) => c.tokens.join(',') !== sequential[i]!.tokens.join(',')).length;
let worst = 0;
batched.forEach((c, i) => c.logprobs.forEach((lp, t) => { if (c.tokens[t] === sequential[i]!.tokens[t]) worst = Math.max(worst, Math.abs(lp - sequential[i]!.logprobs[t]!)); }));
console.log(`completions that differ: ${different} of ${prompts.length}; max |Δ log p| on shared tokens ${worst.toExponential(2)}`);
