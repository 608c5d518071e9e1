/**
 * tokenizer.json (+ tokenizer_config.json) -> TokenizerSpec. The normalizer, pre-tokenizer and
 * post-processor are read from the file's own config (not guessed from the model name); anything
 * outside byte-level BPE raises an Error naming the field.
 */
import type { AddedToken } from './added-tokens.js';
import { preTokenizerStepsFromJson } from './pre-tokenizer.js';
import type { Normalization, TokenizerSpec } from './tokenizer.js';

/** The parts of tokenizer_config.json that matter here. */
export interface TokenizerConfigJson {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: string | { name: string; template: string }[] | null;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const NORMALIZER_FORMS: Record<string, Normalization> = { NFC: 'NFC', NFD: 'NFD', NFKC: 'NFKC', NFKD: 'NFKD' };

function normalizerFromJson(config: unknown): Normalization {
  if (config === null || config === undefined) return 'none';
  if (!isObject(config)) throw new Error(`normalizer: expected an object or null`);
  if (config.type === 'Sequence') {
    const list = config.normalizers;
    if (!Array.isArray(list)) throw new Error('normalizer.normalizers: expected an array');
    const forms = list.map(normalizerFromJson).filter((f) => f !== 'none');
    if (forms.length > 1) throw new Error(`normalizer: a Sequence of several normalizers (${forms.join(', ')}) is not supported`);
    return forms[0] ?? 'none';
  }
  const form = NORMALIZER_FORMS[String(config.type)];
  if (!form) throw new Error(`normalizer type '${String(config.type)}' is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence)`);
  return form;
}

function parseMerges(merges: unknown): [string, string][] {
  if (!Array.isArray(merges)) throw new Error('model.merges: expected an array');
  const out: [string, string][] = new Array(merges.length);
  for (let index = 0; index < merges.length; index++) {
    const merge: unknown = merges[index];
    if (typeof merge === 'string') {
      const space = merge.indexOf(' ');
      if (space < 0 || merge.indexOf(' ', space + 1) >= 0) throw new Error(`model.merges[${index}]: ${JSON.stringify(merge)} is not two space-separated tokens`);
      out[index] = [merge.slice(0, space), merge.slice(space + 1)];
    } else if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string') {
      out[index] = [merge[0], merge[1]];
    } else {
      throw new Error(`model.merges[${index}]: expected "a b" or ["a", "b"], got ${JSON.stringify(merge)}`);
    }
  }
  return out;
}

function parseAddedTokens(list: unknown): AddedToken[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error('added_tokens: expected an array');
  return list.map((item, index) => {
    if (!isObject(item) || typeof item.content !== 'string' || !Number.isInteger(item.id)) {
      throw new Error(`added_tokens[${index}]: expected {id: integer, content: string}`);
    }
    for (const flag of ['lstrip', 'rstrip', 'single_word'] as const) {
      if (item[flag] === true) throw new Error(`added_tokens[${index}] ${JSON.stringify(item.content)}: ${flag}=true is not supported`);
    }
    return { id: item.id as number, content: item.content, special: item.special === true, normalized: item.normalized === true };
  });
}

/** BOS/EOS placed by a TemplateProcessing post-processor around the single sequence $A. */
function postProcessorSpecials(config: unknown): { bos?: string; eos?: string } {
  if (!isObject(config)) return {};
  if (config.type === 'Sequence' && Array.isArray(config.processors)) {
    return config.processors.reduce<{ bos?: string; eos?: string }>((acc, p) => ({ ...acc, ...postProcessorSpecials(p) }), {});
  }
  if (config.type !== 'TemplateProcessing' || !Array.isArray(config.single)) return {};
  const single = config.single as unknown[];
  const at = single.findIndex((item) => isObject(item) && isObject(item.Sequence));
  const specialName = (item: unknown): string | undefined => (isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string' ? item.SpecialToken.id : undefined);
  return { bos: at > 0 ? specialName(single[at - 1]) : undefined, eos: at >= 0 ? specialName(single[at + 1]) : undefined };
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return undefined;
}

function chatTemplateFrom(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => isObject(t) && t.name === 'default') ?? value[0];
    return isObject(named) && typeof named.template === 'string' ? named.template : undefined;
  }
  return undefined;
}

export function specFromTokenizerJson(json: unknown, config?: TokenizerConfigJson): TokenizerSpec {
  if (!isObject(json)) throw new Error('tokenizer.json: expected a JSON object');
  const model = json.model;
  if (!isObject(model)) throw new Error('tokenizer.json: missing "model"');
  if (model.type !== undefined && model.type !== 'BPE') throw new Error(`model.type '${String(model.type)}' is not supported (only BPE)`);
  for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
    if (typeof model[field] === 'string' && model[field] !== '') throw new Error(`model.${field} ${JSON.stringify(model[field])} is not supported`);
  }
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) throw new Error('model.dropout is not supported');
  if (!isObject(model.vocab)) throw new Error('model.vocab: expected an object of token -> id');
  const vocab = new Map<string, number>();
  const vocabObject = model.vocab;
  for (const token in vocabObject) {
    const id = vocabObject[token];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`model.vocab[${JSON.stringify(token)}]: invalid id ${JSON.stringify(id)}`);
    vocab.set(token, id);
  }
  const addedTokens = parseAddedTokens(json.added_tokens);
  const idOf = (content: string | undefined): number | undefined =>
    content === undefined ? undefined : (addedTokens.find((t) => t.content === content)?.id ?? vocab.get(content));
  const unkContent = typeof model.unk_token === 'string' ? model.unk_token : undefined;
  const fromPost = postProcessorSpecials(json.post_processor);
  const bosContent = config && 'bos_token' in config ? tokenContent(config.bos_token) : fromPost.bos;
  const eosContent = config && 'eos_token' in config ? tokenContent(config.eos_token) : fromPost.eos;
  const bosId = idOf(bosContent);
  const eosId = idOf(eosContent);
  if (bosContent !== undefined && bosId === undefined) throw new Error(`bos_token ${JSON.stringify(bosContent)} is not a token of this tokenizer`);
  if (eosContent !== undefined && eosId === undefined) throw new Error(`eos_token ${JSON.stringify(eosContent)} is not a token of this tokenizer`);
  return {
    vocab,
    merges: parseMerges(model.merges ?? []),
    addedTokens,
    normalizer: normalizerFromJson(json.normalizer),
    preTokenizer: preTokenizerStepsFromJson(json.pre_tokenizer),
    ignoreMerges: model.ignore_merges === true,
    unkId: idOf(unkContent),
    bosId,
    eosId,
    padId: idOf(tokenContent(config?.pad_token)),
    addBos: config?.add_bos_token ?? fromPost.bos !== undefined,
    addEos: config?.add_eos_token ?? fromPost.eos !== undefined,
    chatTemplate: chatTemplateFrom(config?.chat_template),
  };
}
