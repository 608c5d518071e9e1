/**
 * The whole R1 recipe for a small model as one command (`frugal recipe`), driven by one config
 * object (nanochat style). Stages, each writing a directory under the output directory and
 * skipped when its `done.json` exists (a stage stopped half-way resumes from its own checkpoints):
 *
 *   corpus     task problems (TRAIN split) with worked solutions in R1 chat format and as plain
 *              text, and copy drills among them → corpus.jsonl; a byte-level BPE tokenizer with
 *              the R1 specials trained on it
 *   pretrain   DeepSeek-V3 architecture (MLA, MoE + shared expert, MTP) on the corpus (runPretraining)
 *   sft        cold-start SFT on worked solutions, R1 chat format (runSft)
 *   rl         GRPO on the verifiable tasks from the SFT model (runGrpo)
 *   rs         R1's rejection sampling + SFT, on the GRPO model itself: it samples TRAIN problems
 *              (more tries at harder levels), keeps its verified traces and is fine-tuned on them
 *   rs-2 ...   with rs.rounds > 1: the same again on new problems, from the round before's model
 *   zero       the R1-Zero ablation: GRPO straight from the pretrained base, r1-zero prompts
 *   student-base  a smaller dense (Qwen2-layout) model pretrained on the same corpus
 *   distill    rejection sampling from the final teacher (verified traces only), SFT of the student on them
 *   eval       each stage's model on the TEST split, per task and difficulty → results.md/json
 *   export     the final model as GGUF, tokenizer and chat template embedded
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { hfConfigToObject, parseHfConfig } from '../formats/hf-config.js';
import { Tokenizer } from '../tokenizer/index.js';
import { R1_SPECIAL_TOKENS, type TrainPreTokenizer, trainBpe, writeTrainedTokenizer } from '../tokenizer/train-bpe.js';
import { loadCheckpoint, writeJsonAtomic } from './checkpoint.js';
import { copyDrills } from './copy-drills.js';
import { type ChatExample, type PromptStyle, coldStartExamples, prefilledThink, promptText } from './cold-start.js';
import { type EvalReport, evaluate } from './eval.js';
import { rejectionSample, writeChatJsonl } from './distill.js';
import { exportGguf } from './export-gguf.js';
import { type RolloutPrompt, runGrpo } from './grpo.js';
import { TrainModel } from './model.js';
import { runPretraining } from './pretrain.js';
import { parseRunConfig } from './run-config.js';
import { type Codec, EnginePolicy, type Policy, inferenceModel, snapshotTensors, tokenizerCodec } from './rollout.js';
import { type SftOptions, questionOf, readChatJsonl, runSft, tokenizeExample } from './sft.js';
import { getTask } from './tasks/registry.js';
import { rephraseShare } from './tasks/phrasing.js';
import { scoreCompletion } from './tasks/reward.js';
import { TaskRng } from './tasks/rng.js';
import type { Difficulty, Problem } from './tasks/types.js';

/**
 * A Jinja chat template rendering what renderR1Chat renders for system, user and assistant turns
 * (no tools): BOS, the last system prompt, `<｜User｜>…`, `<｜Assistant｜>{answer after </think>}<EOS>`,
 * and the generation prompt `<｜Assistant｜><think>\n`. Embedded in the GGUF for other runtimes.
 */
export const R1_JINJA_TEMPLATE = [
  "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}{% endif %}{% endfor %}",
  "{% for m in messages %}{% if m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}",
  "{% elif m['role'] == 'assistant' %}{% set c = m['content'] %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}",
  "{{ '<｜Assistant｜>' + c + eos_token }}{% endif %}{% endfor %}",
  "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\n' }}{% endif %}",
].join('');

export interface RecipeConfig {
  name: string;
  seed: number;
  tasks: string[];
  difficulties: Difficulty[];
  /** `copyDrills`: copy drills (copy-drills.ts) spread through the problems, so that the model learns to copy early. */
  corpus: { problemsPerCell: number; copyDrills: number; vocabSize: number; preTokenizer: TrainPreTokenizer };
  model: Record<string, unknown>;
  pretrain: { steps: number; batchSize: number; seqLen: number; lr: number; warmup: number; mtpLambda: number };
  /** `rephrased`: the share of examples whose question is worded another way (tasks/phrasing.ts). */
  sft: { steps: number; batchSize: number; lr: number; examples: number; maxLen: number; rephrased: number };
  /**
   * `oversample` K > 1: dynamic sampling, K × promptsPerStep prompts rolled out, promptsPerStep informative groups trained on.
   * `rephrased`: the share of the chat model's prompts worded another way (the R1-Zero ablation keeps the generators' wording).
   * `temperature`: what the rollouts sample at; the loss's policy is softmax(logits / temperature), the distribution sampled.
   */
  rl: { enabled: boolean; steps: number; promptsPerStep: number; oversample: number; groupSize: number; lr: number; maxTokens: number; beta: number; rephrased: number; temperature: number };
  /**
   * R1's third stage (rejection sampling + SFT) on the GRPO model: `problemsPerCell` TRAIN problems
   * per task and level, each sampled `samples × level` times at T = 0.6 (harder levels verify less
   * often), at most 2 verified traces kept per problem, then `steps` of SFT on them at `lr`.
   * `rounds` R: the stage again R - 1 times (stages rs-2, rs-3, ...), each round on new problems,
   * sampled from and fine-tuning the model of the round before (expert iteration). The last
   * trained round's model is the final one (the teacher of distill, the one exported).
   * `replay` k: each round's SFT also sees k fresh cold-start examples per verified trace (as the
   * sft stage makes them), so that the cells the model rarely solves keep their worked solutions
   * in the mix; 0 trains on the traces alone.
   */
  rs: { enabled: boolean; rounds: number; problemsPerCell: number; samples: number; steps: number; lr: number; replay: number };
  zero: { enabled: boolean; steps: number };
  /**
   * R1-Distill at our scale: a smaller dense student (Qwen2 layout, `model` overrides
   * studentModelFields) pretrained briefly on the same corpus, then fine-tuned on the verified
   * traces rejection-sampled from the final teacher (sft+grpo).
   */
  distill: { enabled: boolean; model: Record<string, unknown>; pretrainSteps: number; problems: number; samples: number; sftSteps: number; lr: number };
  eval: { problemsPerCell: number; samples: number; maxTokens: number };
  export: { type: 'f32' | 'f16' | 'q8_0' };
}

/** The distilled student: a dense Qwen2-style model, smaller than the teacher. `overrides` win. */
export function studentModelFields(vocabSize: number, overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: vocabSize,
    hidden_size: 96, intermediate_size: 256, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 512, rope_theta: 10000, rms_norm_eps: 1e-6, initializer_range: 0.02, tie_word_embeddings: false,
    bos_token_id: 0, eos_token_id: 1,
    ...overrides,
  };
}

/** The model of every recipe: DeepSeek-V3 shape, small. `model` overrides these fields. */
export function recipeModelFields(vocabSize: number, overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', vocab_size: vocabSize,
    hidden_size: 128, intermediate_size: 384, moe_intermediate_size: 96, num_hidden_layers: 4, first_k_dense_replace: 1,
    num_attention_heads: 4, num_key_value_heads: 4, q_lora_rank: 64, kv_lora_rank: 32, qk_nope_head_dim: 32, qk_rope_head_dim: 16, v_head_dim: 32,
    n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 1, topk_group: 1, topk_method: 'noaux_tc', scoring_func: 'sigmoid',
    norm_topk_prob: true, routed_scaling_factor: 1.0, num_nextn_predict_layers: 1, max_position_embeddings: 512, rope_theta: 10000, rms_norm_eps: 1e-6,
    rope_scaling: null, initializer_range: 0.02, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 1,
    ...overrides,
  };
}

export const QUICK_RECIPE: RecipeConfig = {
  name: 'frugal-r1-quick', seed: 1, tasks: ['arithmetic'], difficulties: [1],
  corpus: { problemsPerCell: 60, copyDrills: 40, vocabSize: 320, preTokenizer: 'qwen2' },
  model: { hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2,
    q_lora_rank: 24, kv_lora_rank: 16, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16, n_routed_experts: 4, max_position_embeddings: 512 },
  pretrain: { steps: 6, batchSize: 4, seqLen: 64, lr: 0.01, warmup: 2, mtpLambda: 0.3 },
  sft: { steps: 4, batchSize: 4, lr: 0.005, examples: 16, maxLen: 320, rephrased: 0.5 },
  rl: { enabled: true, steps: 2, promptsPerStep: 2, oversample: 2, groupSize: 2, lr: 1e-4, maxTokens: 12, beta: 0, rephrased: 0.5, temperature: 1 },
  rs: { enabled: true, rounds: 2, problemsPerCell: 3, samples: 2, steps: 2, lr: 1e-3, replay: 0 },
  zero: { enabled: false, steps: 1 },
  distill: { enabled: true, model: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }, pretrainSteps: 2, problems: 2, samples: 1, sftSteps: 2, lr: 0.005 },
  eval: { problemsPerCell: 2, samples: 0, maxTokens: 12 },
  export: { type: 'f32' },
};

/**
 * The full recipe, the one that made the shipped model (recipe/frugal-r1-tiny.json says the same;
 * a test holds them equal): the four task families at levels 1 and 2 with 40,000 copy drills among
 * them, ~15M pretraining tokens (about 23 minutes at ~10.5k tokens/s on 2 idle cores), 400 SFT
 * steps and 150 GRPO steps from SFT with half the questions worded another way
 * (tasks/phrasing.ts), rejection sampling + SFT on the GRPO model's own verified traces (250 train
 * problems per cell), 40 GRPO steps from the base (R1-Zero), a distilled dense student, eval on
 * 30 test problems per cell. Level 3 is left out: too long for this model's training budget.
 */
export const DEFAULT_RECIPE: RecipeConfig = {
  name: 'frugal-r1-tiny', seed: 1, tasks: ['arithmetic', 'linear', 'sort', 'countdown'], difficulties: [1, 2],
  corpus: { problemsPerCell: 3500, copyDrills: 40000, vocabSize: 1024, preTokenizer: 'qwen2' },
  model: { hidden_size: 128, num_hidden_layers: 4, first_k_dense_replace: 1, n_routed_experts: 8, num_experts_per_tok: 2, n_shared_experts: 1, num_nextn_predict_layers: 1 },
  pretrain: { steps: 3600, batchSize: 8, seqLen: 512, lr: 3e-3, warmup: 100, mtpLambda: 0.3 },
  sft: { steps: 400, batchSize: 16, lr: 1e-3, examples: 8000, maxLen: 512, rephrased: 0.5 },
  rl: { enabled: true, steps: 150, promptsPerStep: 8, oversample: 1, groupSize: 8, lr: 1e-4, maxTokens: 320, beta: 0.04, rephrased: 0.5, temperature: 1 },
  rs: { enabled: true, rounds: 3, problemsPerCell: 250, samples: 4, steps: 300, lr: 3e-4, replay: 0 },
  zero: { enabled: true, steps: 40 },
  distill: { enabled: true, model: {}, pretrainSteps: 2400, problems: 400, samples: 4, sftSteps: 600, lr: 1e-3 },
  eval: { problemsPerCell: 30, samples: 2, maxTokens: 384 },
  export: { type: 'f32' },
};

/** The recipe's counts, each an integer at least this. */
const COUNT_FIELDS: Record<string, number> = {
  'corpus.problemsPerCell': 1, 'corpus.copyDrills': 0, 'corpus.vocabSize': 1,
  'pretrain.steps': 0, 'pretrain.batchSize': 1, 'pretrain.seqLen': 2, 'pretrain.warmup': 0,
  'sft.steps': 0, 'sft.batchSize': 1, 'sft.examples': 1, 'sft.maxLen': 2,
  'rl.steps': 0, 'rl.promptsPerStep': 1, 'rl.oversample': 1, 'rl.groupSize': 2, 'rl.maxTokens': 1,
  'rs.rounds': 1, 'rs.problemsPerCell': 1, 'rs.samples': 1, 'rs.steps': 0, 'rs.replay': 0,
  'zero.steps': 0,
  'distill.pretrainSteps': 0, 'distill.problems': 1, 'distill.samples': 1, 'distill.sftSteps': 0,
  'eval.problemsPerCell': 1, 'eval.samples': 0, 'eval.maxTokens': 1,
};

/** A config JSON file merged over a base recipe (section by section). */
export function mergeRecipe(base: RecipeConfig, json: unknown, source: string): RecipeConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: expected a JSON object`);
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (!(key in base)) throw new Error(`${source}: unknown field '${key}' (expected one of ${Object.keys(base).join(', ')})`);
    const old = (base as unknown as Record<string, unknown>)[key];
    if (typeof old === 'object' && old !== null && !Array.isArray(old)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${source}: field '${key}' must be an object`);
      for (const [sub, given] of Object.entries(value)) {
        if (key === 'model') continue;
        if (!(sub in old)) throw new Error(`${source}: unknown field '${key}.${sub}'`);
        const expected = typeof (old as Record<string, unknown>)[sub];
        if (typeof given !== expected || (expected === 'number' && !Number.isFinite(given))) {
          throw new Error(`${source}: field '${key}.${sub}' must be a ${expected === 'number' ? 'finite number' : expected}, found ${JSON.stringify(given)}`);
        }
      }
      out[key] = { ...old, ...(value as object) };
    } else {
      out[key] = value;
    }
  }
  const merged = out as unknown as RecipeConfig;
  const valueOf = (field: string): number => {
    const [section, name] = field.split('.') as [string, string];
    return (merged as unknown as Record<string, Record<string, number>>)[section]![name]!;
  };
  for (const [field, least] of Object.entries(COUNT_FIELDS)) {
    const value = valueOf(field);
    if (!Number.isInteger(value) || value < least) throw new Error(`${source}: field '${field}' must be an integer >= ${least}, found ${value}`);
  }
  for (const field of ['pretrain.lr', 'sft.lr', 'rl.lr', 'rs.lr', 'distill.lr', 'rl.temperature', 'pretrain.mtpLambda', 'rl.beta']) {
    const value = valueOf(field);
    const positive = field.endsWith('.lr') || field === 'rl.temperature';
    if (positive ? !(value > 0) : !(value >= 0)) throw new Error(`${source}: field '${field}' must be ${positive ? '> 0' : '>= 0'}, found ${value}`);
  }
  for (const key of ['sft', 'rl'] as const) {
    const share = merged[key].rephrased;
    if (share < 0 || share > 1) throw new Error(`${source}: field '${key}.rephrased' must be a share between 0 and 1, found ${share}`);
  }
  return merged;
}

export interface StageResult {
  stage: string;
  skipped: boolean;
  seconds: number;
}

export interface RecipeResult {
  outDir: string;
  stages: StageResult[];
  gguf: string;
  results: EvalRow[];
}

export interface EvalRow {
  model: string;
  task: string;
  difficulty: number;
  problems: number;
  greedy: number | null;
  pass1: number | null;
  format: number;
  meanLength: number;
}

function problemsOf(task: string, difficulty: Difficulty, count: number, seed: number, split: 'train' | 'test'): Problem[] {
  return getTask(task).generate(count, { seed, difficulty, split }) as Problem[];
}

/** The same example with the user message as people type it: the bare question (no format instruction). */
function bareExample(example: ChatExample): ChatExample {
  const [user, assistant] = example.messages;
  return { ...example, messages: [{ role: 'user', content: questionOf(user!.content ?? '') }, assistant!] };
}

/** One cell of the rs stage: a task and level's problems, sampled `samples` times each. */
export interface RsCell {
  label: string;
  problems: readonly Problem[];
  samples: number;
  seed: number;
}

/**
 * R1's rejection sampling + SFT on a model's own traces (the recipe's rs stage): every cell's
 * problems sampled by `policy` at T = 0.6 and top-p 0.95, at most 2 distinct verified traces kept
 * per problem (written to dir/traces.jsonl), then SFT of the model `start()` loads on them (no SFT,
 * and no checkpoint, when none verified). `name`: the stage's name in the progress lines.
 * `replay(traces)`: examples that join the `traces` verified traces in the SFT (called only when some verified).
 */
export function rejectionSamplingSft(
  policy: Policy, codec: Codec, start: () => TrainModel, cells: readonly RsCell[],
  o: { name: string; maxTokens: number; dir: string; sft: SftOptions; print: (line: string) => void; replay?: (traces: number) => ChatExample[] },
): { traces: number; replayed: number; cells: Record<string, string>; steps: number; final_loss: number | null } {
  const kept: ChatExample[] = [];
  const counts: Record<string, string> = {};
  for (const cell of cells) {
    const started = Date.now();
    const sampled = rejectionSample(policy, codec, cell.problems, { style: 'r1-chat', samples: cell.samples, temperature: 0.6, topP: 0.95, maxTokens: o.maxTokens, keepPerPrompt: 2, seed: cell.seed });
    counts[cell.label] = `${sampled.kept.length} traces, ${sampled.promptsCovered}/${cell.problems.length} problems`;
    o.print(`[recipe] ${o.name}: ${cell.label}: ${sampled.sampled} samples in ${((Date.now() - started) / 1000).toFixed(1)} s, kept ${sampled.kept.length} verified traces (${sampled.promptsCovered}/${cell.problems.length} problems)`);
    kept.push(...sampled.kept);
  }
  writeChatJsonl(join(o.dir, 'traces.jsonl'), kept);
  if (kept.length === 0) return { traces: 0, replayed: 0, cells: counts, steps: 0, final_loss: null };
  const replayed = o.replay?.(kept.length) ?? [];
  if (replayed.length > 0) o.print(`[recipe] ${o.name}: ${kept.length} traces and ${replayed.length} replayed cold-start examples`);
  const examples = [...kept, ...replayed].map((e, i) => tokenizeExample(e, 'r1-chat', codec, `${o.name} example ${i}`));
  const result = runSft(start(), examples, o.sft);
  return { traces: kept.length, replayed: replayed.length, cells: counts, steps: result.endStep, final_loss: result.log.at(-1)?.loss ?? null };
}

export async function runRecipe(config: RecipeConfig, outDir: string, print: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<RecipeResult> {
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'recipe.json'), `${JSON.stringify(config, null, 1)}\n`);
  const stages: StageResult[] = [];
  const stage = async (name: string, body: (dir: string) => Promise<Record<string, unknown>> | Record<string, unknown>): Promise<void> => {
    const dir = join(out, name);
    const done = join(dir, 'done.json');
    if (existsSync(done)) {
      print(`[recipe] ${name}: done already (${done}), skipped`);
      stages.push({ stage: name, skipped: true, seconds: 0 });
      return;
    }
    mkdirSync(dir, { recursive: true });
    print(`[recipe] ${name}: start`);
    const t0 = Date.now();
    const info = await body(dir);
    const seconds = (Date.now() - t0) / 1000;
    writeJsonAtomic(done, { seconds, ...info }); // atomic: a torn done.json would skip the stage with its record lost
    print(`[recipe] ${name}: done in ${seconds.toFixed(1)} s`);
    stages.push({ stage: name, skipped: false, seconds });
  };
  const tokenizerPath = join(out, 'corpus', 'tokenizer.json');
  const seed = config.seed;

  // (a) corpus + tokenizer
  await stage('corpus', async (dir) => {
    const lines: string[] = [];
    const texts: string[] = [];
    config.tasks.forEach((task, t) => config.difficulties.forEach((difficulty) => {
      for (const problem of problemsOf(task, difficulty, config.corpus.problemsPerCell, seed * 7919 + t * 31 + difficulty, 'train')) {
        const response = getTask(task).solution(problem).completion;
        // Alternate the R1 chat format (with and without the format instruction) and plain text.
        const k = texts.length % 3;
        const text = k === 0 ? `${promptText(problem.prompt, 'r1-chat')}${response.slice('<think>\n'.length)}<｜end▁of▁sentence｜>`
          : k === 1 ? `<｜begin▁of▁sentence｜><｜User｜>${problem.prompt}<｜Assistant｜>${response}<｜end▁of▁sentence｜>`
            : `${problem.prompt}\n${response}`;
        texts.push(text);
      }
    }));
    // the drills spread evenly among the problems
    const drills = copyDrills(config.corpus.copyDrills, seed);
    const problems = texts.splice(0);
    for (let i = 0, d = 0; i < problems.length || d < drills.length; i++) {
      while (d < drills.length && d * problems.length <= i * drills.length) texts.push(drills[d++]!);
      if (i < problems.length) texts.push(problems[i]!);
    }
    for (const text of texts) lines.push(JSON.stringify({ text }));
    writeFileSync(join(dir, 'corpus.jsonl'), `${lines.join('\n')}\n`);
    const json = await trainBpe(texts, { vocabSize: config.corpus.vocabSize, specialTokens: R1_SPECIAL_TOKENS, preTokenizer: config.corpus.preTokenizer });
    writeTrainedTokenizer(tokenizerPath, json);
    const configPath = join(dir, 'tokenizer_config.json');
    const tc = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(configPath, `${JSON.stringify({ ...tc, chat_template: R1_JINJA_TEMPLATE }, null, 1)}\n`);
    return { documents: texts.length, copyDrills: drills.length, characters: texts.reduce((a, s) => a + s.length, 0), vocab: Tokenizer.fromFile(tokenizerPath).vocabSize };
  });
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const codec = tokenizerCodec(tokenizer);
  // The configs carry the tokenizer's real BOS/EOS ids: stages that read a checkpoint directory
  // (its tokenizer.json has no tokenizer_config.json beside it) fall back to the config's eos_token_id.
  const specialIds = { bos_token_id: tokenizer.bosId ?? 0, eos_token_id: codec.eosId };
  const modelFields = recipeModelFields(config.corpus.vocabSize, { ...specialIds, ...config.model });

  // (b) pretraining (also the distilled student's base, with its own model and step count)
  const pretrainStage = (dir: string, model: Record<string, unknown>, steps: number, mtp: boolean): Record<string, unknown> => {
    const p = config.pretrain;
    const json = {
      model,
      data: { train: join(out, 'corpus', 'corpus.jsonl'), tokenizer: tokenizerPath, validation_fraction: 0.02 },
      optimizer: { lr: p.lr, weight_decay: 0.05, betas: [0.9, 0.95], clip: 1, min_lr: p.lr / 10 },
      schedule: { type: 'wsd', warmup: Math.min(p.warmup, Math.max(1, Math.floor(steps / 10))), steps },
      batch_size: p.batchSize, grad_accum: 1, seq_len: p.seqLen,
      mtp: { enabled: mtp, lambda: p.mtpLambda }, moe: { gamma: 0.001, alpha: 0.0001 },
      fp8: false, seed, out_dir: dir, eval_every: Math.max(1, Math.floor(steps / 10)), checkpoint_every: Math.max(1, Math.floor(steps / 10)),
      keep_checkpoints: 2, eval_batches: 4,
    };
    writeFileSync(join(dir, 'run.json'), `${JSON.stringify(json, null, 1)}\n`);
    const r = runPretraining(parseRunConfig(json, join(dir, 'run.json'), dir), { progress: print });
    const last = r.evals[r.evals.length - 1];
    return { steps: r.endStep, val_loss: last?.valLoss ?? null, tokens_per_second: r.tokensPerSecond, parameters: r.model.parameterCount() };
  };
  const pretrainDir = join(out, 'pretrain');
  await stage('pretrain', (dir) => pretrainStage(dir, modelFields, config.pretrain.steps, true));
  const loadStage = (dir: string): TrainModel => {
    const c = loadCheckpoint(dir);
    return TrainModel.fromTensors(c.config, c.tensors, c.dir);
  };

  // (c) cold-start SFT
  const sftDir = join(out, 'sft');
  const sftOptions = (dir: string, steps: number, batchSize: number, lr: number, maxLen: number) => ({
    lr, minLr: lr / 10, warmup: Math.max(1, Math.floor(steps / 20)), steps, batchSize, weightDecay: 0, clip: 1,
    maxLen, seed, outDir: dir, checkpointEvery: Math.max(1, Math.floor(steps / 5)), logEvery: Math.max(1, Math.floor(steps / 20)),
    tokenizerPath, print,
  });
  /** `count` cold-start examples, half with the format instruction and half bare (seeds from `seedBase`). */
  const coldStartMix = (count: number, seedBase: number): ChatExample[] => {
    const half = Math.ceil(count / 2);
    const withInstruction = coldStartExamples({ tasks: config.tasks, difficulties: config.difficulties, count: half, seed: seedBase, rephrased: config.sft.rephrased });
    const bare = coldStartExamples({ tasks: config.tasks, difficulties: config.difficulties, count: Math.max(1, count - half), seed: seedBase + 1, rephrased: config.sft.rephrased }).map(bareExample);
    return [...withInstruction, ...bare];
  };
  await stage('sft', (dir) => {
    const s = config.sft;
    const all = coldStartMix(s.examples, seed + 11).map((e, i) => tokenizeExample(e, 'r1-chat', codec, `sft example ${i}`));
    // Examples longer than maxLen would be cut (no EOS learned): drop them, unless too few remain.
    const fitting = all.filter((e) => e.prompt.length + e.completion.length <= s.maxLen);
    const examples = fitting.length >= s.batchSize ? fitting : all;
    if (examples === all && fitting.length < all.length) print(`[recipe] sft: only ${fitting.length} of ${all.length} examples fit in ${s.maxLen} tokens; training on all, cut at ${s.maxLen}`);
    const r = runSft(loadStage(pretrainDir), examples, sftOptions(dir, s.steps, s.batchSize, s.lr, s.maxLen));
    return { steps: r.endStep, examples: examples.length, final_loss: r.log[r.log.length - 1]?.loss ?? null, tokens_per_second: r.tokensPerSecond };
  });

  // (d) GRPO from SFT, (e) R1-Zero from the base
  const grpo = (dir: string, from: string, style: PromptStyle, steps: number) => {
    const r = config.rl;
    const prompts = (step: number): RolloutPrompt[] => {
      const list: RolloutPrompt[] = [];
      const rolledOut = r.promptsPerStep * r.oversample;
      for (let i = 0; i < rolledOut; i++) {
        const task = config.tasks[(step * rolledOut + i) % config.tasks.length]!;
        const difficulty = config.difficulties[(step + i) % config.difficulties.length]!;
        const drawn = problemsOf(task, difficulty, 1, seed * 1_000_003 + step * 997 + i, 'train')[0]!;
        const wording = new TaskRng(seed * 1_000_003 + step * 997 + i, 'rl/rephrase');
        const problem = style === 'r1-chat' ? rephraseShare(drawn, wording, r.rephrased) : drawn;
        list.push({
          tokens: codec.encode(promptText(problem.prompt, style)),
          reward: (completion) => scoreCompletion(problem, completion, { prefilledThink: prefilledThink(style) }),
        });
      }
      return list;
    };
    const result = runGrpo(loadStage(from), codec, prompts, {
      steps, groupSize: r.groupSize, lr: r.lr, beta: r.beta, epsilon: 0.2, mu: 1, lossType: 'dr_grpo', scaleRewards: false,
      ...(r.oversample > 1 ? { keepGroups: r.promptsPerStep } : {}),
      sample: { temperature: r.temperature, topP: 1, maxTokens: r.maxTokens, ...(style === 'r1-zero' ? { stopText: '</answer>' } : {}) },
      refResetEvery: 0, weightDecay: 0, clip: 1, seed, outDir: dir, checkpointEvery: Math.max(1, Math.floor(steps / 5)), logEvery: 1, tokenizerPath, print,
    });
    const tail = result.log.slice(-Math.max(1, Math.floor(result.log.length / 5)));
    const mean = (f: (e: (typeof tail)[number]) => number) => tail.reduce((a, e) => a + f(e), 0) / tail.length;
    return { steps: result.endStep, final_reward: mean((e) => e.reward), final_accuracy: mean((e) => e.accuracy), final_length: mean((e) => e.response_length) };
  };
  const rlDir = join(out, 'rl');
  if (config.rl.enabled) await stage('rl', (dir) => grpo(dir, sftDir, 'r1-chat', config.rl.steps));
  const zeroDir = join(out, 'zero');
  if (config.zero.enabled) await stage('zero', (dir) => grpo(dir, pretrainDir, 'r1-zero', config.zero.steps));

  // (e') R1's rejection sampling + SFT, on the GRPO model's own verified traces; round r > 1
  // (stage rs-r) samples new problems from the model of round r - 1 and fine-tunes that model.
  const rsFrom = config.rl.enabled ? rlDir : sftDir;
  /** The trained rounds' models, in order (a round that verified nothing trains none). */
  const rsModels: string[] = [];
  if (config.rs.enabled) {
    const r = config.rs;
    for (let round = 1; round <= r.rounds; round++) {
      const name = round === 1 ? 'rs' : `rs-${round}`;
      const from = rsModels.at(-1) ?? rsFrom;
      await stage(name, (dir) => {
        const cells = config.tasks.flatMap((task, t) => config.difficulties.map((difficulty) => {
          const cellSeed = seed * 7_919 + t * 131 + difficulty + (round - 1) * 100_003;
          const problems = problemsOf(task, difficulty, r.problemsPerCell, cellSeed, 'train')
            .map((problem, i) => rephraseShare(problem, new TaskRng(cellSeed * 1_009 + i, 'rs/rephrase'), config.sft.rephrased));
          return { label: `${task} level ${difficulty}`, problems, samples: r.samples * difficulty, seed: cellSeed };
        }));
        const model = loadStage(from);
        const policy = new EnginePolicy(inferenceModel(model), codec);
        const result = rejectionSamplingSft(policy, codec, () => model, cells, {
          name, maxTokens: config.rl.maxTokens, dir, sft: sftOptions(join(dir, 'sft'), r.steps, config.sft.batchSize, r.lr, config.sft.maxLen), print,
          // fresh examples each round (not the sft stage's own: seeds from 1000 on)
          ...(r.replay > 0 ? { replay: (traces: number) => coldStartMix(traces * r.replay, seed + 1_000 + 2 * round) } : {}),
        });
        if (result.traces === 0) print(`[recipe] ${name}: WARNING: the model solved none of the sampled problems; no fine-tuning, ${from} stays the final model`);
        return { from, round, ...result };
      });
      if (existsSync(join(out, name, 'sft', 'latest'))) rsModels.push(join(out, name, 'sft'));
    }
  }

  // (f) R1-Distill: a dense student pretrained on the corpus, then SFT on the teacher's verified traces
  const teacherDir = rsModels.at(-1) ?? rsFrom;
  const studentBaseDir = join(out, 'student-base');
  const distillDir = join(out, 'distill');
  if (config.distill.enabled) {
    const d = config.distill;
    await stage('student-base', (dir) => pretrainStage(dir, studentModelFields(config.corpus.vocabSize, { ...specialIds, ...d.model }), d.pretrainSteps, false));
    await stage('distill', (dir) => {
      const problems = config.tasks.flatMap((task, t) => config.difficulties.flatMap((difficulty) =>
        problemsOf(task, difficulty, Math.ceil(d.problems / (config.tasks.length * config.difficulties.length)), seed * 104729 + t * 131 + difficulty, 'train')));
      const teacher = new EnginePolicy(inferenceModel(loadStage(teacherDir)), codec);
      const started = Date.now();
      const sampled = rejectionSample(teacher, codec, problems, { style: 'r1-chat', samples: d.samples, temperature: 0.6, topP: 0.95, maxTokens: config.rl.maxTokens, keepPerPrompt: 1, seed });
      print(`[recipe] distill: ${sampled.sampled} teacher samples in ${((Date.now() - started) / 1000).toFixed(1)} s; kept ${sampled.kept.length} verified traces (${sampled.promptsCovered}/${problems.length} problems), rejected ${sampled.rejectedWrong} wrong and ${sampled.rejectedFormat} badly formatted`);
      // As R1 distilled on its rejection-sampling data: the rs rounds' verified traces join the teacher's own.
      const rsTraces = rsModels.flatMap((model) => readChatJsonl(join(dirname(model), 'traces.jsonl')));
      if (sampled.kept.length + rsTraces.length === 0) {
        print('[recipe] distill: WARNING: the teacher solved none of the sampled problems; no student is trained and the eval has no student row');
        return { teacher: teacherDir, sampled: sampled.sampled, kept: 0, rs_traces: 0, problems: problems.length, steps: 0, final_loss: null };
      }
      writeChatJsonl(join(dir, 'traces.jsonl'), sampled.kept);
      const examples = [...sampled.kept, ...rsTraces].map((e, i) => tokenizeExample(e, 'r1-chat', codec, `distill trace ${i}`));
      const r = runSft(loadStage(studentBaseDir), examples, sftOptions(join(dir, 'student'), d.sftSteps, config.sft.batchSize, d.lr, config.sft.maxLen));
      return { teacher: teacherDir, sampled: sampled.sampled, kept: sampled.kept.length, rs_traces: rsTraces.length, problems: problems.length, steps: r.endStep, final_loss: r.log.at(-1)?.loss ?? null };
    });
  }

  // (g) eval on the test split
  const models: [string, string, PromptStyle][] = [
    ['base (r1-zero prompt)', pretrainDir, 'r1-zero'], ['sft', sftDir, 'r1-chat'],
    ...(config.rl.enabled ? [['sft+grpo', rlDir, 'r1-chat'] as [string, string, PromptStyle]] : []),
    ...rsModels.map((dir, i) => [`${config.rl.enabled ? 'sft+grpo+rs' : 'sft+rs'}${i > 0 ? ` x${i + 1}` : ''}`, dir, 'r1-chat'] as [string, string, PromptStyle]),
    ...(config.zero.enabled ? [['r1-zero (grpo from base)', zeroDir, 'r1-zero'] as [string, string, PromptStyle]] : []),
    ...(config.distill.enabled && existsSync(join(distillDir, 'student', 'latest')) ? [['distilled student', join(distillDir, 'student'), 'r1-chat'] as [string, string, PromptStyle]] : []),
  ];
  const evalDir = join(out, 'eval');
  await stage('eval', (dir) => {
    const rows: EvalRow[] = [];
    for (const [label, from, style] of models) {
      const policy = new EnginePolicy(inferenceModel(loadStage(from)), codec);
      for (const task of config.tasks) {
        for (const difficulty of config.difficulties) {
          const problems = problemsOf(task, difficulty, config.eval.problemsPerCell, seed + 424242 + difficulty, 'test');
          const report: EvalReport = evaluate(policy, codec, problems, {
            style, samples: config.eval.samples, temperature: 0.6, topP: 0.95, maxTokens: config.eval.maxTokens, greedy: true, seed,
          });
          const row: EvalRow = { model: label, task, difficulty, problems: report.problems, greedy: report.greedyAccuracy, pass1: report.pass1, format: report.formatRate, meanLength: report.meanResponseLength };
          rows.push(row);
          print(`[eval] ${label} ${task} d${difficulty}: greedy ${pct(row.greedy)} pass@1 ${pct(row.pass1)} format ${pct(row.format)} len ${row.meanLength.toFixed(1)}`);
        }
      }
    }
    writeJsonAtomic(join(dir, 'results.json'), rows);
    writeFileSync(join(dir, 'results.md'), resultsMarkdown(rows, config));
    return { rows: rows.length };
  });
  const results = JSON.parse(readFileSync(join(evalDir, 'results.json'), 'utf8')) as EvalRow[];

  // (h) export the final model
  const finalDir = teacherDir;
  const gguf = join(out, `${config.name}.gguf`);
  await stage('export', () => {
    const model = loadStage(finalDir);
    const r = exportGguf(parseHfConfig(hfConfigToObject(model.config)), snapshotTensors(model), tokenizer, gguf, config.export.type, config.name);
    return { from: finalDir, file: gguf, bytes: r.fileSize, architecture: r.architecture, tensors: r.tensors };
  });
  return { outDir: out, stages, gguf, results };
}

function pct(v: number | null): string {
  return v === null || Number.isNaN(v) ? '-' : `${(100 * v).toFixed(1)}%`;
}

/** The results table (markdown): one row per model, task and difficulty. */
export function resultsMarkdown(rows: readonly EvalRow[], config: RecipeConfig): string {
  const head = `| model | task | level | problems | greedy acc | pass@1 (k=${config.eval.samples}, T=0.6) | format | mean len (tokens) |\n|---|---|---|---|---|---|---|---|\n`;
  return head + rows.map((r) => `| ${r.model} | ${r.task} | ${r.difficulty} | ${r.problems} | ${pct(r.greedy)} | ${pct(r.pass1)} | ${pct(r.format)} | ${r.meanLength.toFixed(1)} |`).join('\n') + '\n';
}
