/**
 * `frugal logits --model FILE --tokens 1,2,3 [--all]`: prints {"logits": [[...]]} on stdout, the
 * next-token logits after the last token (one inner array) or after every token (--all), in
 * token order. Each value is the float32 logit written exactly (JSON of its double value).
 * This output is a contract used by external checks: keep it exact.
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../models/load.js';

export const summary = 'print next-token logits for token ids as JSON';

const USAGE = 'usage: frugal logits --model FILE --tokens ID[,ID...] [--all]';

/** Parses "1,2,3" into token ids, rejecting anything that is not a non-negative integer. */
export function parseTokenList(text: string): Int32Array {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new UsageError(`--tokens: expected comma-separated token ids, got '${text}'`);
  return Int32Array.from(parts, (p) => {
    if (!/^\d+$/.test(p) || Number(p) > 0x7fffffff) throw new UsageError(`--tokens: '${p}' is not a token id`);
    return Number(p);
  });
}

class UsageError extends Error {}

/** The JSON text for rows of `vocab` logits; non-finite values (which JSON cannot hold) are an error. */
export function logitsJson(logits: Float32Array, vocab: number): string {
  const bad = logits.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`the model produced a non-finite logit (${logits[bad]}) at position ${Math.floor(bad / vocab)}, token ${bad % vocab}`);
  const rows: string[] = [];
  for (let r = 0; r * vocab < logits.length; r++) {
    rows.push(`[${Array.from(logits.subarray(r * vocab, (r + 1) * vocab), (v) => JSON.stringify(v)).join(',')}]`);
  }
  return `{"logits":[${rows.join(',')}]}`;
}

export async function run(args: string[]): Promise<number> {
  let model: string | undefined;
  let tokens: Int32Array;
  let all: boolean;
  try {
    const { values } = parseArgs({
      args,
      options: { model: { type: 'string' }, tokens: { type: 'string' }, all: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    model = values.model;
    if (!model) throw new UsageError('--model is required');
    if (values.tokens === undefined) throw new UsageError('--tokens is required');
    tokens = parseTokenList(values.tokens);
    all = values.all ?? false;
  } catch (error) {
    console.error(`frugal logits: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const loaded = loadModel(model, { tokenizer: false });
  const lm = loaded.model;
  if (tokens.length > lm.info.contextLength) throw new Error(`--tokens: ${tokens.length} tokens do not fit the model's context length of ${lm.info.contextLength}`);
  const logits = lm.forward(tokens, lm.newCache(Math.min(lm.info.contextLength, tokens.length)), { allLogits: all });
  const text = `${logitsJson(logits, lm.info.vocabSize)}\n`;
  await new Promise<void>((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
  return 0;
}
