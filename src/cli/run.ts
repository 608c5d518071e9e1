/**
 * `frugal run --model FILE --prompt TEXT`: one generation, streamed to stdout (the thought dimmed
 * on a terminal), then a line of counts and speed on stderr.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL } from './chat.js';
import type { CausalLM } from '../models/model.js';
import { chatPromptTokens } from '../generate/chat-prompt.js';
import { generationFlags, generationFlagsHelp, parseGenerationFlags, parseSpeculativeFlags, samplingWith, speculativeFlags, speculativeFlagsHelp } from '../generate/cli-options.js';
import { AnswerPrinter, formatStats, type ThinkingDisplay } from '../generate/cli-output.js';
import { generate } from '../generate/engine.js';
import type { DoneEvent, GenerationTokenizer } from '../generate/events.js';
import { formatSpeculativeStats, generateSpeculative } from '../generate/speculative.js';

export const summary = 'generate a completion for one prompt (streams the thinking, then the answer)';

const usage = `usage: frugal run [--model FILE] --prompt TEXT [options]

  --model FILE            GGUF model file (with its tokenizer; default: models/frugal-r1-tiny.gguf)
  --prompt TEXT           the user message (or the whole prompt with --raw)
  --raw                   no chat template: the prompt text goes to the model as it is
  --hide-thinking         print only the answer
${generationFlagsHelp}
${speculativeFlagsHelp}`;

export interface LoadedForGeneration {
  model: CausalLM;
  tokenizer: GenerationTokenizer;
  chatTemplate?: string;
  loadMs: number;
}

/** Loads a model file for generation; clear errors for a missing file or a missing tokenizer. */
export async function loadForGeneration(path: string): Promise<LoadedForGeneration> {
  const { loadModel } = await import('../models/load.js');
  const start = performance.now();
  const loaded = loadModel(path);
  if (!loaded.tokenizer) throw new Error(`${path}: the model file has no tokenizer (tokenizer.ggml.* metadata), so it cannot generate text`);
  const result: LoadedForGeneration = { model: loaded.model, tokenizer: loaded.tokenizer, loadMs: performance.now() - start };
  if (loaded.chatTemplate !== undefined) result.chatTemplate = loaded.chatTemplate;
  return result;
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      prompt: { type: 'string', short: 'p' },
      raw: { type: 'boolean' },
      'hide-thinking': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...generationFlags,
      ...speculativeFlags,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (values.prompt === undefined) throw new Error('--prompt TEXT is required');
  const flags = parseGenerationFlags(values);
  const speculative = parseSpeculativeFlags(values);
  const modelPath = values.model ?? DEFAULT_MODEL;
  const { model, tokenizer, chatTemplate, loadMs } = await loadForGeneration(modelPath);
  process.stderr.write(`loaded ${modelPath} (${model.info.architecture}, ${(model.info.parameterCount / 1e6).toFixed(1)}M parameters) in ${loadMs.toFixed(0)} ms\n`);

  const prompt = values.raw
    ? Array.from(tokenizer.encode(values.prompt, { addSpecialTokens: true, parseSpecial: true }))
    : chatPromptTokens(tokenizer, [{ role: 'user', content: values.prompt }], chatTemplate !== undefined ? { template: chatTemplate } : {});

  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  const display: ThinkingDisplay = values['hide-thinking'] ? 'hide' : 'show';
  const printer = new AnswerPrinter(process.stdout, display, process.stdout.isTTY === true);
  let done: DoneEvent | undefined;
  try {
    const request = {
      prompt,
      sampling: samplingWith(flags, tokenizer),
      maxTokens: flags.maxTokens,
      stop: flags.stop,
      ...(flags.reasoningBudget !== undefined ? { reasoningBudget: flags.reasoningBudget } : {}),
      signal: controller.signal,
    };
    const events = speculative.method === 'off'
      ? generate(model, tokenizer, request)
      : generateSpeculative(model, tokenizer, { ...request, speculative: { method: speculative.method, ...(speculative.draftTokens !== undefined ? { draftTokens: speculative.draftTokens } : {}) } });
    for await (const event of events) {
      if (event.type === 'done') done = event;
      else printer.onEvent(event);
    }
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    printer.end();
  }
  if (done) process.stderr.write(`${formatStats(done)}\n`);
  const stats = done ? formatSpeculativeStats(done) : undefined;
  if (stats) process.stderr.write(`${stats}\n`);
  return done?.finishReason === 'abort' ? 130 : 0;
}
