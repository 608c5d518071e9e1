/**
 * `frugal chat [--model FILE]`: an interactive conversation. The history is rendered with the R1
 * chat template each turn (earlier answers' reasoning is dropped by the template) and the KV cache
 * is reused for the part of the prompt that did not change. Ctrl-C stops the answer being
 * generated; Ctrl-C at an empty prompt, Ctrl-D or /exit quits; /reset clears the conversation.
 */
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chatPromptTokens } from '../generate/chat-prompt.js';
import { generationFlags, generationFlagsHelp, parseGenerationFlags, samplingWith } from '../generate/cli-options.js';
import { AnswerPrinter, formatStats, type ThinkingDisplay } from '../generate/cli-output.js';
import { generate, type CacheSlot, type ChatMessage } from '../generate/engine.js';
import type { DoneEvent } from '../generate/events.js';
import { loadForGeneration } from './run.js';

export const summary = 'talk with a reasoning model in the terminal (keeps the conversation)';

/** A question of each task family that the shipped model answers right (greedy; test/train/recipe.test.ts checks them). */
export const SHIPPED_MODEL_EXAMPLES = {
  arithmetic: 'What is 47 + 36?',
  linear: 'Solve 2x + 7 = 15',
  countdown: 'Make 30 from 6, 21, 3 using + - * /.',
  sort: 'Sort these words alphabetically and list them separated by commas: river, cloud, stone',
} as const;

/** What the shipped model can do (printed when chat opens it by default): it knows its four task families and nothing else. */
export const SHIPPED_MODEL_HINT =
  `This tiny model only knows four kinds of question: arithmetic ("${SHIPPED_MODEL_EXAMPLES.arithmetic}"), linear equations ` +
  `("${SHIPPED_MODEL_EXAMPLES.linear}"), Countdown ("${SHIPPED_MODEL_EXAMPLES.countdown}") and word sorting ("${SHIPPED_MODEL_EXAMPLES.sort}"). ` +
  'It thinks first, and it is often wrong.';

/** The model `frugal chat` uses without --model: models/frugal-r1-tiny.gguf in the package. */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../../models/frugal-r1-tiny.gguf', import.meta.url));

const usage = `usage: frugal chat [--model FILE] [options]

  --model FILE            GGUF model file (default: models/frugal-r1-tiny.gguf)
  --system TEXT           system prompt (R1 works best without one)
  --show-thinking         print the thought (default; dimmed on a terminal)
  --collapse-thinking     print only "thought for N tokens (X s)" instead of the thought
  --hide-thinking         print nothing of the thought
  --ctx-size N            context to keep for the conversation (default: the model's, at most 8192)
${generationFlagsHelp}

in the chat: /reset clears the conversation, /exit (or Ctrl-D) quits, Ctrl-C stops an answer`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string', short: 'm' },
      system: { type: 'string' },
      'show-thinking': { type: 'boolean' },
      'collapse-thinking': { type: 'boolean' },
      'hide-thinking': { type: 'boolean' },
      'ctx-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...generationFlags,
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const flags = parseGenerationFlags(values);
  const modes = [values['show-thinking'], values['collapse-thinking'], values['hide-thinking']].filter(Boolean).length;
  if (modes > 1) throw new Error('choose one of --show-thinking, --collapse-thinking and --hide-thinking');
  const display: ThinkingDisplay = values['collapse-thinking'] ? 'collapse' : values['hide-thinking'] ? 'hide' : 'show';
  const path = values.model ?? DEFAULT_MODEL;
  if (values.model === undefined && !existsSync(path)) {
    throw new Error(`no --model given and the default model ${path} does not exist yet; pass --model FILE (a GGUF file)`);
  }
  const { model, tokenizer, chatTemplate, loadMs } = await loadForGeneration(path);
  let ctxSize = Math.min(model.info.contextLength, 8192);
  if (values['ctx-size'] !== undefined) {
    ctxSize = Number(values['ctx-size']);
    if (!Number.isInteger(ctxSize) || ctxSize < 2 || ctxSize > model.info.contextLength) {
      throw new Error(`--ctx-size must be an integer in [2, ${model.info.contextLength}], got '${values['ctx-size']}'`);
    }
  }

  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const color = process.stdout.isTTY === true;
  process.stderr.write(
    `frugal chat: ${path} (${model.info.architecture}, ${(model.info.parameterCount / 1e6).toFixed(1)}M parameters, ` +
      `loaded in ${loadMs.toFixed(0)} ms). /reset clears the conversation, /exit or Ctrl-D quits, Ctrl-C stops an answer.\n`,
  );
  if (values.model === undefined) process.stderr.write(`${SHIPPED_MODEL_HINT}\n`);

  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive, historySize: 200 });
  const lines = rl[Symbol.asyncIterator]();
  const slot: CacheSlot = { cache: model.newCache(ctxSize), tokens: [] };
  const history: ChatMessage[] = [];
  const reset = (): void => {
    history.length = 0;
    if (values.system !== undefined) history.push({ role: 'system', content: values.system });
  };
  reset();

  let generating: AbortController | null = null;
  const interrupt = (): void => {
    if (generating) generating.abort();
    else if (rl.line) {
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
    } else rl.close();
  };
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);

  try {
    for (;;) {
      if (interactive) {
        rl.setPrompt('>>> ');
        rl.prompt();
      }
      const next = await lines.next();
      if (next.done) break;
      const line = String(next.value).trim();
      if (line === '') continue;
      if (line === '/exit' || line === '/quit' || line === '/bye') break;
      if (line === '/reset') {
        reset();
        process.stdout.write('(conversation cleared)\n');
        continue;
      }
      if (line.startsWith('/') && !line.includes(' ')) {
        process.stdout.write(`unknown command ${line} (commands: /reset, /exit)\n`);
        continue;
      }
      history.push({ role: 'user', content: line });
      const prompt = chatPromptTokens(tokenizer, history, chatTemplate !== undefined ? { template: chatTemplate } : {});
      if (prompt.length >= ctxSize) {
        history.pop();
        process.stdout.write(`(the conversation is ${prompt.length} tokens, more than the ${ctxSize}-token context: /reset to start over)\n`);
        continue;
      }
      const controller = new AbortController();
      generating = controller;
      const printer = new AnswerPrinter(process.stdout, display, color);
      let content = '';
      let done: DoneEvent | undefined;
      try {
        for await (const event of generate(model, tokenizer, {
          prompt,
          cacheSlot: slot,
          sampling: samplingWith(flags, tokenizer),
          maxTokens: flags.maxTokens,
          stop: flags.stop,
          ...(flags.reasoningBudget !== undefined ? { reasoningBudget: flags.reasoningBudget } : {}),
          signal: controller.signal,
        })) {
          if (event.type === 'done') done = event;
          else {
            printer.onEvent(event);
            if (event.channel === 'content') content += event.text;
          }
        }
      } finally {
        generating = null;
        printer.end();
      }
      history.push({ role: 'assistant', content });
      if (done) {
        if (done.finishReason === 'abort') process.stdout.write('(stopped)\n');
        process.stderr.write(`${formatStats(done)}\n`);
      }
    }
  } finally {
    process.removeListener('SIGINT', interrupt);
    rl.close();
  }
  return 0;
}
