/**
 * `frugal distill --config distill.json [--no-resume] [--stop-at STEP]`: rejection sampling from a
 * teacher (k samples per TRAIN problem, keep only verified, well-formed traces) written as chat
 * JSONL, then SFT of a student on them (src/train/distill.ts, src/train/sft.ts).
 *
 * distill.json (relative paths resolve against the config's directory):
 *   { "teacher": "runs/rl",                        model dir / run dir (its tokenizer is the student's)
 *     "tasks": ["arithmetic"], "difficulties": [1, 2], "problems": 500, "samples": 4,
 *     "temperature": 0.6, "top_p": 0.95, "max_tokens": 256, "keep_per_prompt": 1, "prompt_style": "r1-chat",
 *     "traces": "runs/distill/traces.jsonl",
 *     "student": { "config": "student-config.json", "seed": 1 }   or { "from": "runs/small-base" }
 *     "sft": { "steps": 300, "batch_size": 8, "lr": 1e-3, ... as sft.json },
 *     "out_dir": "runs/distill" }
 * The student must share the teacher's vocabulary (same tokenizer).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { dirname, join } from 'node:path';
import { readHfConfig } from '../formats/hf-config.js';
import { rejectionSample, writeChatJsonl } from '../train/distill.js';
import { TrainModel } from '../train/model.js';
import { EnginePolicy, inferenceModel } from '../train/rollout.js';
import { readChatJsonl, runSft, tokenizeExample } from '../train/sft.js';
import { checkOutputFile, prepareOutputDir } from './file-checks.js';
import { StageConfig, loadTrainModel, parseStageArgs, sftOptionsOf, stageTokenizer } from './sft.js';
import { problemPool } from './rl.js';

export const summary = 'rejection-sample verified traces from a teacher and SFT a student on them';

const USAGE = 'usage: frugal distill --config distill.json [--no-resume] [--stop-at STEP]';

const FIELDS = ['teacher', 'tokenizer', 'tasks', 'difficulties', 'problems', 'samples', 'temperature', 'top_p', 'max_tokens', 'keep_per_prompt', 'prompt_style', 'traces', 'student', 'sft', 'out_dir', 'seed'];

export async function run(args: string[]): Promise<number> {
  const flags = parseStageArgs('distill', USAGE, args);
  if (typeof flags === 'number') return flags;
  const c = StageConfig.read(flags.config);
  c.known(FIELDS);
  const teacher = loadTrainModel(c.path('teacher'));
  const { codec, path: tokenizerPath } = stageTokenizer(c, teacher.dir, teacher.model);
  const style = c.style('prompt_style', 'r1-chat');
  const seed = c.int('seed', 1, 0);
  const outDir = c.path('out_dir');
  const tracesPath = c.path('traces', join(outDir, 'traces.jsonl'));
  const student = c.object('student');
  student.known(['config', 'from', 'seed']);
  let model: TrainModel;
  if (student.has('from')) {
    model = loadTrainModel(student.path('from')).model;
  } else {
    model = TrainModel.init(readHfConfig(student.path('config')), student.int('seed', 1, 0));
  }
  if (model.config.vocab_size < teacher.model.config.vocab_size) student.fail('config', `the student's vocab_size ${model.config.vocab_size} is smaller than the teacher's ${teacher.model.config.vocab_size}`);
  const sft = c.object('sft');
  sft.known(['steps', 'batch_size', 'lr', 'min_lr', 'warmup', 'weight_decay', 'clip', 'max_len', 'seed', 'checkpoint_every', 'log_every']);
  const sftOptions = sftOptionsOf(sft, join(outDir, 'student'), tokenizerPath, flags.resume, flags.stopAt);
  prepareOutputDir(outDir, `${c.source}: field 'out_dir'`);
  prepareOutputDir(dirname(tracesPath), `${c.source}: field 'traces'`);
  checkOutputFile(tracesPath, `${c.source}: field 'traces'`);

  let examples;
  if (existsSync(tracesPath) && flags.resume) {
    console.error(`distill: reusing ${tracesPath}`);
    examples = readChatJsonl(tracesPath);
  } else {
    const problems = problemPool(c.strings('tasks', ['arithmetic']), c.difficulties('difficulties'), c.int('problems', 200), seed);
    const started = Date.now();
    const r = rejectionSample(new EnginePolicy(inferenceModel(teacher.model), codec), codec, problems, {
      style, samples: c.int('samples', 4), temperature: c.number('temperature', 0.6), topP: c.number('top_p', 0.95, 0, 1),
      maxTokens: c.int('max_tokens', 256), keepPerPrompt: c.int('keep_per_prompt', 1), seed,
    });
    console.error(`distill: ${r.sampled} samples in ${((Date.now() - started) / 1000).toFixed(1)} s; kept ${r.kept.length} (${r.promptsCovered}/${problems.length} prompts), rejected ${r.rejectedWrong} wrong, ${r.rejectedFormat} badly formatted`);
    if (r.kept.length === 0) throw new Error('distill: no verified traces to train on (the teacher solved nothing)');
    mkdirSync(dirname(tracesPath), { recursive: true });
    writeChatJsonl(tracesPath, r.kept);
    examples = r.kept;
  }
  const tokenized = examples.map((e, i) => tokenizeExample(e, style, codec, `${tracesPath}:${i + 1}`));
  const result = runSft(model, tokenized, sftOptions);
  mkdirSync(outDir, { recursive: true });
  // atomic like every other file the stages write: a kill mid-copy leaves no torn traces file
  const traces = readFileSync(tracesPath);
  writeFileAtomic(join(outDir, 'student', 'traces.jsonl'), (write) => write(traces));
  const last = result.log.at(-1);
  console.error(`done: student steps ${result.startStep}..${result.endStep}${last ? `, loss ${last.loss.toFixed(4)}` : ''}${result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ''}`);
  return 0;
}
