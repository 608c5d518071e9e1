/**
 * GGUF `tokenizer.ggml.*` metadata <-> TokenizerSpec (../shared/spec/formats-and-api.md §2.1).
 * Tokens are indexed by id; NORMAL tokens are in byte-level spelling, CONTROL / USER_DEFINED ones
 * raw. The pre-tokenizer comes from `tokenizer.ggml.pre` (llama.cpp names).
 */
import { gguf, type GgufValue } from '../formats/gguf-value.js';
import { type AddedToken, isControlToken } from './added-tokens.js';
import { ggufPreNameOf, ggufPreTokenizer } from './pre-tokenizer.js';
import type { Tokenizer, TokenizerSpec } from './tokenizer.js';

/** llama.cpp token types. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Getter = (key: string) => unknown;

function optionalId(get: Getter, key: string): number | undefined {
  const value = get(key);
  if (value === undefined || value === null) return undefined;
  const id = typeof value === 'bigint' ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`${key}: expected a token id, got ${String(value)}`);
  return id;
}

function optionalBool(get: Getter, key: string): boolean | undefined {
  const value = get(key);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new Error(`${key}: expected a bool, got ${String(value)}`);
  return value;
}

function stringArray(get: Getter, key: string, required: boolean): readonly string[] | undefined {
  const value = get(key);
  if (value === undefined || value === null) {
    if (required) throw new Error(`missing GGUF metadata key ${key}`);
    return undefined;
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error(`${key}: expected an array of strings`);
  return value as string[];
}

export function specFromGgufMetadata(get: Getter): TokenizerSpec {
  const model = get('tokenizer.ggml.model');
  if (model !== 'gpt2') throw new Error(`tokenizer.ggml.model ${JSON.stringify(model)} is not supported (only "gpt2", byte-level BPE)`);
  const tokens = stringArray(get, 'tokenizer.ggml.tokens', true)!;
  const typesValue = get('tokenizer.ggml.token_type');
  const isList = Array.isArray(typesValue) || ArrayBuffer.isView(typesValue);
  if (typesValue !== undefined && (!isList || (typesValue as ArrayLike<unknown>).length !== tokens.length)) {
    throw new Error(`tokenizer.ggml.token_type: expected an array of ${tokens.length} integers`);
  }
  const types = typesValue === undefined ? undefined : Array.from(typesValue as ArrayLike<number | bigint>, Number);
  const mergeLines = stringArray(get, 'tokenizer.ggml.merges', true)!;
  const merges = mergeLines.map((line, index): [string, string] => {
    const parts = line.split(' ');
    if (parts.length !== 2) throw new Error(`tokenizer.ggml.merges[${index}]: ${JSON.stringify(line)} is not two space-separated tokens`);
    return [parts[0]!, parts[1]!];
  });
  const preValue = get('tokenizer.ggml.pre');
  if (preValue !== undefined && typeof preValue !== 'string') throw new Error('tokenizer.ggml.pre: expected a string');
  const pre = (preValue as string | undefined) ?? 'default';
  const { steps, ignoreMerges, normalizer } = ggufPreTokenizer(pre);

  const vocab = new Map<string, number>();
  const addedTokens: AddedToken[] = [];
  const unusedTokens = new Map<number, string>();
  tokens.forEach((token, id) => {
    const type = types?.[id] ?? TokenType.NORMAL;
    switch (type) {
      case TokenType.NORMAL:
      case TokenType.BYTE:
        if (!vocab.has(token)) vocab.set(token, id);
        break;
      case TokenType.CONTROL:
      case TokenType.UNKNOWN:
        addedTokens.push({ id, content: token, special: true, normalized: false });
        break;
      case TokenType.USER_DEFINED:
        addedTokens.push({ id, content: token, special: false, normalized: false });
        break;
      case TokenType.UNUSED:
        unusedTokens.set(id, token);
        break;
      default:
        throw new Error(`tokenizer.ggml.token_type[${id}]: unknown token type ${type}`);
    }
  });
  const template = get('tokenizer.chat_template');
  return {
    vocab,
    merges,
    addedTokens,
    normalizer,
    preTokenizer: steps,
    ignoreMerges,
    unkId: optionalId(get, 'tokenizer.ggml.unknown_token_id'),
    bosId: optionalId(get, 'tokenizer.ggml.bos_token_id'),
    eosId: optionalId(get, 'tokenizer.ggml.eos_token_id'),
    padId: optionalId(get, 'tokenizer.ggml.padding_token_id'),
    addBos: optionalBool(get, 'tokenizer.ggml.add_bos_token') ?? false,
    addEos: optionalBool(get, 'tokenizer.ggml.add_eos_token') ?? false,
    chatTemplate: typeof template === 'string' ? template : undefined,
    ggufPre: pre,
    unusedTokens,
  };
}

export interface GgufTokenizerOptions {
  /** `tokenizer.ggml.pre` to write; default: the one the tokenizer was loaded with, else derived from its regexes. */
  pre?: string;
  /** Pad the token list to this many entries with `[PAD<id>]` UNUSED tokens (model vocab_size). */
  vocabSize?: number;
}

/**
 * The `tokenizer.*` metadata entries llama.cpp expects, in writing order, for embedding this
 * tokenizer into a GGUF file.
 */
export function tokenizerGgufMetadata(tokenizer: Tokenizer, options: GgufTokenizerOptions = {}): [string, GgufValue][] {
  const spec = tokenizer.spec;
  const pre = options.pre ?? spec.ggufPre ?? ggufPreNameOf(spec.preTokenizer);
  if (pre === undefined) throw new Error('tokenizerGgufMetadata: the pre-tokenizer regexes match no llama.cpp pre-tokenizer name; pass options.pre');
  const preSteps = ggufPreTokenizer(pre);
  if (preSteps.ignoreMerges !== spec.ignoreMerges) {
    throw new Error(`tokenizerGgufMetadata: pre '${pre}' implies ignore_merges=${preSteps.ignoreMerges} but the tokenizer has ${spec.ignoreMerges}`);
  }
  if (preSteps.normalizer !== spec.normalizer) {
    throw new Error(`tokenizerGgufMetadata: pre '${pre}' implies normalizer ${preSteps.normalizer} but the tokenizer has ${spec.normalizer}`);
  }
  const size = Math.max(options.vocabSize ?? 0, tokenizer.vocabSize);
  const tokens: string[] = new Array(size);
  const types: number[] = new Array(size).fill(TokenType.UNUSED);
  for (const [token, id] of spec.vocab) {
    if (tokens[id] !== undefined) continue;
    tokens[id] = token;
    types[id] = TokenType.NORMAL;
  }
  for (const added of spec.addedTokens) {
    tokens[added.id] = added.content;
    types[added.id] = isControlToken(added) ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  for (let id = 0; id < size; id++) {
    if (tokens[id] === undefined) tokens[id] = spec.unusedTokens?.get(id) ?? `[PAD${id}]`;
  }
  const entries: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string(pre)],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(spec.merges.map(([a, b]) => `${a} ${b}`))],
  ];
  if (spec.bosId !== undefined) entries.push(['tokenizer.ggml.bos_token_id', gguf.u32(spec.bosId)]);
  if (spec.eosId !== undefined) entries.push(['tokenizer.ggml.eos_token_id', gguf.u32(spec.eosId)]);
  if (spec.unkId !== undefined) entries.push(['tokenizer.ggml.unknown_token_id', gguf.u32(spec.unkId)]);
  if (spec.padId !== undefined) entries.push(['tokenizer.ggml.padding_token_id', gguf.u32(spec.padId)]);
  entries.push(['tokenizer.ggml.add_bos_token', gguf.bool(spec.addBos)]);
  entries.push(['tokenizer.ggml.add_eos_token', gguf.bool(spec.addEos)]);
  if (spec.chatTemplate !== undefined) entries.push(['tokenizer.chat_template', gguf.string(spec.chatTemplate)]);
  return entries;
}
