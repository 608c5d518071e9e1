/**
 * Byte-level BPE tokenizer with HF `tokenizers` semantics (../shared/spec/formats-and-api.md §4.1):
 * added tokens first (leftmost-longest), normalizer, pre-tokenizer Splits, byte-level BPE; decoding
 * maps ids back to bytes and decodes UTF-8 once, so characters split across tokens come out whole.
 * Loadable from tokenizer.json (+ tokenizer_config.json) or from GGUF `tokenizer.ggml.*` metadata.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { openGguf } from '../formats/gguf.js';
import { type AddedToken, AddedTokenMatcher, isControlToken, type Section } from './added-tokens.js';
import { BpeModel } from './bpe.js';
import { normalizeLikeHf } from './normalize.js';
import { fromByteLevel } from './byte-level.js';
import { type PreTokenizerStep, PreTokenizer } from './pre-tokenizer.js';
import { specFromGgufMetadata } from './gguf-metadata.js';
import { specFromTokenizerJson, type TokenizerConfigJson } from './load-json.js';

export type Normalization = 'none' | 'NFC' | 'NFD' | 'NFKC' | 'NFKD';

/** Everything that defines a tokenizer, independent of the file it came from. */
export interface TokenizerSpec {
  /** Model vocabulary: byte-level token string -> id. */
  readonly vocab: ReadonlyMap<string, number>;
  /** Merge pairs, rank = index. */
  readonly merges: readonly (readonly [string, string])[];
  readonly addedTokens: readonly AddedToken[];
  readonly normalizer: Normalization;
  readonly preTokenizer: readonly PreTokenizerStep[];
  readonly ignoreMerges: boolean;
  readonly unkId?: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly padId?: number;
  /** Prepend BOS / append EOS when encode() is asked for special tokens. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly chatTemplate?: string;
  /** llama.cpp `tokenizer.ggml.pre` name this came from (GGUF), kept for writing it back. */
  readonly ggufPre?: string;
  /** Ids that neither the vocabulary nor the added tokens cover (GGUF UNUSED padding), with their text. */
  readonly unusedTokens?: ReadonlyMap<number, string>;
}

export interface EncodeOptions {
  /** Prepend BOS / append EOS as the tokenizer is configured to (default false). */
  addSpecialTokens?: boolean;
  /**
   * Recognize control-token text such as `<｜User｜>` or `<｜end▁of▁sentence｜>` in the input (default
   * true). With false (llama.cpp `parse_special = false`; use it for untrusted user input), control
   * tokens -- added tokens marked special or spelled `<|...|>` / `<｜...｜>` -- are tokenized as plain
   * text; user-defined added tokens (e.g. `<think>`, `<tool_call>` in the R1-Distill-Qwen vocabulary)
   * are still matched, as llama.cpp does.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out added tokens marked special (BOS, EOS, ...). */
  skipSpecialTokens?: boolean;
}

export interface StreamDecoder {
  /** Text completed by this token; bytes of an unfinished UTF-8 character wait for the next push. */
  push(id: number): string;
  /** The rest, with U+FFFD for bytes that never formed a valid character. */
  flush(): string;
}

/** Lone surrogates become U+FFFD (what their UTF-8 encoding would be), as in HF's Rust strings. */
function wellFormed(text: string): string {
  const t = text as unknown as { isWellFormed(): boolean; toWellFormed(): string };
  return t.isWellFormed() ? text : t.toWellFormed();
}

const textEncoder = new TextEncoder();

export class Tokenizer {
  readonly spec: TokenizerSpec;
  readonly vocabSize: number;
  readonly bosId?: number;
  readonly eosId?: number;
  readonly padId?: number;
  readonly chatTemplate?: string;
  private readonly bpe: BpeModel;
  private readonly preTokenizer: PreTokenizer;
  private readonly idToVocabToken: (string | undefined)[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  /** Added-token matchers: all tokens, and only user-defined ones (for parseSpecial: false). */
  private readonly matchers: Record<'all' | 'userDefined', { raw: AddedTokenMatcher; normalized: AddedTokenMatcher }>;
  private readonly tokenBytes: (Uint8Array | undefined)[];

  constructor(spec: TokenizerSpec) {
    this.spec = spec;
    this.bpe = new BpeModel({ vocab: spec.vocab, merges: spec.merges, ignoreMerges: spec.ignoreMerges, unkId: spec.unkId });
    this.preTokenizer = new PreTokenizer(spec.preTokenizer);
    let maxId = -1;
    for (const id of spec.vocab.values()) if (id > maxId) maxId = id;
    for (const token of spec.addedTokens) {
      if (!Number.isInteger(token.id) || token.id < 0) throw new Error(`added token ${JSON.stringify(token.content)}: invalid id ${token.id}`);
      if (token.id > maxId) maxId = token.id;
      this.addedById.set(token.id, token);
      if (!this.addedByContent.has(token.content)) this.addedByContent.set(token.content, token);
    }
    for (const id of spec.unusedTokens?.keys() ?? []) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.idToVocabToken = new Array(this.vocabSize);
    for (const [token, id] of spec.vocab) this.idToVocabToken[id] ??= token;
    this.tokenBytes = new Array(this.vocabSize);
    const matchersFor = (tokens: readonly AddedToken[]) => ({
      raw: new AddedTokenMatcher(tokens.filter((t) => !t.normalized || spec.normalizer === 'none')),
      normalized: new AddedTokenMatcher(
        spec.normalizer === 'none' ? [] : tokens.filter((t) => t.normalized).map((t) => ({ id: t.id, content: normalizeLikeHf(t.content, spec.normalizer) })),
      ),
    });
    this.matchers = {
      all: matchersFor(spec.addedTokens),
      userDefined: matchersFor(spec.addedTokens.filter((t) => !isControlToken(t))),
    };
    for (const [name, id] of [['bos', spec.bosId], ['eos', spec.eosId], ['pad', spec.padId], ['unk', spec.unkId]] as const) {
      if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)) throw new Error(`${name} token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    }
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.padId = spec.padId;
    this.chatTemplate = spec.chatTemplate;
  }

  /** From a parsed tokenizer.json and, optionally, the parsed tokenizer_config.json beside it. */
  static fromJson(json: unknown, config?: TokenizerConfigJson): Tokenizer {
    return new Tokenizer(specFromTokenizerJson(json, config));
  }

  /** From GGUF metadata, given as a getter of plain values (strings, numbers, bigints, booleans, arrays). */
  static fromGgufMetadata(get: (key: string) => unknown): Tokenizer {
    return new Tokenizer(specFromGgufMetadata(get));
  }

  /**
   * From a tokenizer.json (reading a sibling tokenizer_config.json when present), a directory
   * holding one (a Hugging Face model folder), or a .gguf file.
   */
  static fromFile(file: string): Tokenizer {
    if (!existsSync(file)) throw new Error(`tokenizer file not found: ${file}`);
    const path = statSync(file).isDirectory() ? join(file, 'tokenizer.json') : file;
    if (!existsSync(path)) throw new Error(`no tokenizer.json in directory ${file}`);
    if (path.endsWith('.gguf')) {
      const file = openGguf(path);
      try {
        return Tokenizer.fromGgufMetadata((key) => file.value(key));
      } catch (error) {
        throw new Error(`${path}: ${(error as Error).message}`);
      } finally {
        file.close();
      }
    }
    const json = readJson(path);
    const configPath = join(dirname(path), 'tokenizer_config.json');
    const config = basename(path) !== 'tokenizer_config.json' && existsSync(configPath) ? readJson(configPath) : undefined;
    try {
      return Tokenizer.fromJson(json, config as TokenizerConfigJson | undefined);
    } catch (error) {
      throw new Error(`${path}: ${(error as Error).message}`);
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    const ids: number[] = [];
    if (options.addSpecialTokens && this.spec.addBos && this.bosId !== undefined) ids.push(this.bosId);
    const input = wellFormed(text);
    const matchers = (options.parseSpecial ?? true) ? this.matchers.all : this.matchers.userDefined;
    const sections: Section[] = [];
    matchers.raw.split(input, sections);
    const pieces: string[] = [];
    for (const section of sections) {
      if (typeof section === 'number') {
        ids.push(section);
        continue;
      }
      const normalized = normalizeLikeHf(section, this.spec.normalizer);
      if (!matchers.normalized.empty) {
        const inner: Section[] = [];
        matchers.normalized.split(normalized, inner);
        for (const part of inner) {
          if (typeof part === 'number') ids.push(part);
          else this.encodePlain(part, pieces, ids);
        }
      } else {
        this.encodePlain(normalized, pieces, ids);
      }
    }
    if (options.addSpecialTokens && this.spec.addEos && this.eosId !== undefined) ids.push(this.eosId);
    return ids;
  }

  private encodePlain(text: string, pieces: string[], ids: number[]): void {
    pieces.length = 0;
    this.preTokenizer.split(text, pieces);
    for (const piece of pieces) this.bpe.encodePiece(piece, ids);
  }

  /** The bytes token `id` stands for (added tokens: their UTF-8 content). */
  tokenBytesOf(id: number): Uint8Array {
    let bytes = this.tokenBytes[id];
    if (bytes !== undefined) return bytes;
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    const added = this.addedById.get(id);
    if (added) bytes = textEncoder.encode(added.content);
    else {
      const token = this.idToVocabToken[id];
      bytes = token === undefined ? new Uint8Array(0) : (fromByteLevel(token) ?? textEncoder.encode(token));
    }
    this.tokenBytes[id] = bytes;
    return bytes;
  }

  private skipped(id: number, options: DecodeOptions | undefined): boolean {
    return options?.skipSpecialTokens === true && this.addedById.get(id)?.special === true;
  }

  decode(ids: readonly number[], options?: DecodeOptions): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      if (this.skipped(id, options)) continue;
      const bytes = this.tokenBytesOf(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all);
  }

  /** Incremental decoding for streaming: never emits half a UTF-8 character. */
  streamDecoder(options?: DecodeOptions): StreamDecoder {
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number): string => (this.skipped(id, options) ? '' : decoder.decode(this.tokenBytesOf(id), { stream: true })),
      flush: (): string => decoder.decode(),
    };
  }

  /** Id of an added token's content or of a vocabulary entry (byte-level spelling, e.g. `Ġthe`). */
  tokenId(text: string): number | undefined {
    return this.addedByContent.get(text)?.id ?? this.spec.vocab.get(text);
  }

  /** An added token's content, or a vocabulary entry in its byte-level spelling. */
  tokenText(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.idToVocabToken[id] ?? this.spec.unusedTokens?.get(id);
  }

  /** The added token with this id, if it is one. */
  addedToken(id: number): AddedToken | undefined {
    return this.addedById.get(id);
  }

  /** Is `id` a special token (an added token marked special: BOS, EOS, control markers)? */
  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: invalid JSON (${(error as Error).message})`);
  }
}
