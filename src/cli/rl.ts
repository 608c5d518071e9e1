/**
 * `frugal rl --config rl.json [--no-resume] [--stop-at STEP]`: GRPO on the verifiable tasks
 * (src/train/grpo.ts). `from` is the SFT model (R1) or the pre-trained base with
 * "prompt_style": "r1-zero" (the R1-Zero ablation).
 *
 * rl.json (relative paths resolve against the config's directory; defaults shown):
 *   { "from": "runs/sft", "tokenizer": "<from>/tokenizer.json",
 *     "tasks": ["arithmetic"], "difficulties": [1], "prompt_style": "r1-chat", "pool": 4096,
 *     "steps": 200, "prompts_per_step": 4, "group_size": 8, "max_tokens": 128, "temperature": 1, "top_p": 1,
 *     "lr": 1e-5, "beta": 0.001, "epsilon": 0.2, "mu": 1, "loss_type": "grpo", "scale_rewards": true,
 *     "ref_reset_every": 0, "reward_weights": { "accuracy": 1, "format": 1 },
 *     "weight_decay": 0, "clip": 1, "seed": 1, "out_dir": "runs/rl", "checkpoint_every": 20, "log_every": 1 }
 * loss_type "dr_grpo" implies scale_rewards false unless given (Dr. GRPO).
 * "oversample": K > 1 turns on dynamic sampling (DAPO): each step rolls out prompts_per_step × K
 * prompts and trains on at most prompts_per_step of the groups whose rewards differ.
 */
import { prefilledThink, promptText, stopTextOf } from '../train/cold-start.js';
import { GRPO_LOSS_TYPES, type GrpoLossType, type RolloutPrompt, runGrpo } from '../train/grpo.js';
import { scoreCompletion } from '../train/tasks/reward.js';
import { getTask } from '../train/tasks/registry.js';
import type { Problem } from '../train/tasks/types.js';
import { prepareOutputDir } from './file-checks.js';
import { StageConfig, loadTrainModel, parseStageArgs, stageTokenizer } from './sft.js';

export const summary = 'GRPO reinforcement learning on verifiable tasks (R1 stage 2 / R1-Zero)';

const USAGE = 'usage: frugal rl --config rl.json [--no-resume] [--stop-at STEP]';

const FIELDS = ['from', 'tokenizer', 'tasks', 'difficulties', 'prompt_style', 'pool', 'steps', 'prompts_per_step', 'oversample', 'group_size', 'max_tokens', 'temperature', 'top_p',
  'lr', 'beta', 'epsilon', 'mu', 'loss_type', 'scale_rewards', 'ref_reset_every', 'reward_weights', 'weight_decay', 'clip', 'seed', 'out_dir', 'checkpoint_every', 'log_every'];

/** A deterministic pool of TRAIN problems mixed over tasks × difficulties. */
export function problemPool(tasks: readonly string[], difficulties: readonly (1 | 2 | 3)[], size: number, seed: number): Problem[] {
  const cells = tasks.flatMap((t) => difficulties.map((d) => ({ task: getTask(t), d })));
  const per = Math.ceil(size / cells.length);
  const lists = cells.map(({ task, d }, i) => task.generate(per, { seed: seed * 977 + i, difficulty: d, split: 'train' }) as Problem[]);
  const out: Problem[] = [];
  for (let j = 0; j < per; j++) for (const list of lists) if (list[j]) out.push(list[j]!);
  return out.slice(0, size);
}

export async function run(args: string[]): Promise<number> {
  const flags = parseStageArgs('rl', USAGE, args);
  if (typeof flags === 'number') return flags;
  const c = StageConfig.read(flags.config);
  c.known(FIELDS);
  const { model, dir } = loadTrainModel(c.path('from'));
  const { codec, path: tokenizerPath } = stageTokenizer(c, dir, model);
  const style = c.style('prompt_style', 'r1-chat');
  const lossType = c.string('loss_type', 'grpo') as GrpoLossType;
  if (!GRPO_LOSS_TYPES.includes(lossType)) c.fail('loss_type', `expected one of ${GRPO_LOSS_TYPES.join(', ')}, found ${JSON.stringify(lossType)}`);
  const weightsCfg = c.object('reward_weights', true);
  weightsCfg.known(['accuracy', 'format']);
  const weights = { accuracy: weightsCfg.number('accuracy', 1, -1e9), format: weightsCfg.number('format', 1, -1e9) };
  const steps = c.int('steps');
  const perStep = c.int('prompts_per_step', 4);
  const oversample = c.int('oversample', 1, 1);
  const rolledOut = perStep * oversample;
  const pool = problemPool(c.strings('tasks', ['arithmetic']), c.difficulties('difficulties'), c.int('pool', Math.min(4096, steps * rolledOut)), c.int('seed', 1, 0));
  const prefilled = prefilledThink(style);
  const encoded = new Map<number, number[]>();
  const prompts = (step: number): RolloutPrompt[] => Array.from({ length: rolledOut }, (_, i) => {
    const index = (step * rolledOut + i) % pool.length;
    const problem = pool[index]!;
    if (!encoded.has(index)) encoded.set(index, codec.encode(promptText(problem.prompt, style)));
    return {
      tokens: encoded.get(index)!,
      reward(text: string) {
        const s = scoreCompletion(problem, text, { prefilledThink: prefilled, weights });
        return { accuracy: s.accuracy, format: s.format, score: s.score };
      },
    };
  });
  const stopText = stopTextOf(style);
  const temperature = c.number('temperature', 1);
  const topP = c.number('top_p', 1, 0, 1);
  const maxTokens = c.int('max_tokens', 128);
  const options = {
    steps, groupSize: c.int('group_size', 8, 2), lr: c.number('lr', 1e-5), beta: c.number('beta', 0.001), epsilon: c.number('epsilon', 0.2),
    mu: c.int('mu', 1), lossType, ...(oversample > 1 ? { keepGroups: perStep } : {}), scaleRewards: c.bool('scale_rewards', lossType !== 'dr_grpo'),
    sample: { temperature, topP, maxTokens, ...(stopText ? { stopText } : {}) },
    refResetEvery: c.int('ref_reset_every', 0, 0), weightDecay: c.number('weight_decay', 0), clip: c.number('clip', 1), seed: c.int('seed', 1, 0),
    outDir: c.path('out_dir'), checkpointEvery: c.int('checkpoint_every', 20, 0), logEvery: c.int('log_every', 1), tokenizerPath,
    resume: flags.resume, ...(flags.stopAt !== undefined ? { stopAt: flags.stopAt } : {}),
  };
  prepareOutputDir(options.outDir, `${c.source}: field 'out_dir'`);
  console.error(`rl: ${pool.length} train problems, model ${dir} (${model.parameterCount()} parameters), style ${style}, loss ${lossType}`);
  const result = runGrpo(model, codec, prompts, options);
  const last = result.log.at(-1);
  console.error(`done: steps ${result.startStep}..${result.endStep}${last ? `, reward ${last.reward.toFixed(3)}, accuracy ${last.accuracy.toFixed(3)}` : ''}${result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ''}`);
  return 0;
}
