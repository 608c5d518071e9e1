/**
 * A tokenizer as Hugging Face files: tokenizer.json and tokenizer_config.json that load back
 * (Tokenizer.fromFile) into the same vocabulary, merges, pre-tokenizer, added tokens, BOS/EOS and
 * chat template. This is how a tokenizer that came from a GGUF file goes into a training checkpoint.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../formats/atomic-write.js';
import type { TokenizerConfigJson } from './load-json.js';
import { GPT2_PATTERN, type PreTokenizerStep } from './pre-tokenizer.js';
import type { Tokenizer, TokenizerSpec } from './tokenizer.js';

/** The pre_tokenizer object whose steps (pre-tokenizer.ts preTokenizerStepsFromJson) are `steps`. */
function preTokenizerJson(steps: readonly PreTokenizerStep[]): unknown {
  const prefix = steps.findIndex((s) => s.kind === 'prefixSpace');
  const splits = prefix === -1 ? steps : steps.slice(0, prefix);
  const after = prefix === -1 ? [] : steps.slice(prefix + 1);
  // ByteLevel ends the list: a prefix space, then optionally its own GPT-2 split, can only come last
  const gpt2After = after.length === 1 && after[0]!.kind === 'split' && after[0]!.pattern === GPT2_PATTERN;
  if (after.length > 1 || (after.length === 1 && !gpt2After)) throw new Error('tokenizer.json: a prefix space must be the last pre-tokenizer step but for the GPT-2 split');
  return {
    type: 'Sequence',
    pretokenizers: [
      ...splits.map((step) => {
        if (step.kind !== 'split') throw new Error('tokenizer.json: unexpected pre-tokenizer step');
        return { type: 'Split', pattern: { Regex: step.pattern }, behavior: 'Isolated', invert: false };
      }),
      { type: 'ByteLevel', add_prefix_space: prefix !== -1, trim_offsets: false, use_regex: gpt2After },
    ],
  };
}

/** tokenizer.json of a byte-level BPE tokenizer. */
export function tokenizerJsonOf(spec: TokenizerSpec): Record<string, unknown> {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [token, id] of spec.vocab) vocab[token] = id;
  const unk = spec.unkId === undefined ? null : contentOf(spec, spec.unkId) ?? null;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: spec.addedTokens.map((t) => ({ id: t.id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: t.normalized, special: t.special })),
    normalizer: spec.normalizer === 'none' ? null : { type: spec.normalizer },
    pre_tokenizer: preTokenizerJson(spec.preTokenizer),
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: unk, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false,
      ...(spec.ignoreMerges ? { ignore_merges: true } : {}),
      vocab,
      merges: spec.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

function contentOf(spec: TokenizerSpec, id: number): string | undefined {
  const added = spec.addedTokens.find((t) => t.id === id);
  if (added) return added.content;
  for (const [token, tokenId] of spec.vocab) if (tokenId === id) return token;
  return undefined;
}

/** tokenizer_config.json: BOS/EOS/PAD by content, whether encode adds BOS/EOS, the chat template. */
export function tokenizerConfigOf(spec: TokenizerSpec): TokenizerConfigJson {
  const named = (id: number | undefined): string | null => (id === undefined ? null : contentOf(spec, id) ?? null);
  return {
    add_bos_token: spec.addBos,
    add_eos_token: spec.addEos,
    bos_token: named(spec.bosId),
    eos_token: named(spec.eosId),
    pad_token: named(spec.padId),
    clean_up_tokenization_spaces: false,
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...(spec.chatTemplate !== undefined ? { chat_template: spec.chatTemplate } : {}),
  };
}

/** Writes tokenizer.json at `path` and tokenizer_config.json beside it (atomically). */
export function writeTokenizerFiles(tokenizer: Tokenizer, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const files: [string, unknown][] = [[path, tokenizerJsonOf(tokenizer.spec)], [join(dirname(path), 'tokenizer_config.json'), tokenizerConfigOf(tokenizer.spec)]];
  for (const [file, value] of files) {
    const bytes = Buffer.from(`${JSON.stringify(value, null, 1)}\n`, 'utf8');
    writeFileAtomic(file, (write) => write(bytes));
  }
}
