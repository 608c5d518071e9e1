/**
 * Pre-tokenization (HF `tokenizers` semantics, ../shared/spec/formats-and-api.md §4.3): a sequence
 * of `Split(regex, Isolated)` steps, each cutting every piece produced so far into matches and the
 * gaps between them, then `ByteLevel` (optionally prefixing a space to each piece and splitting with
 * the GPT-2 regex). The byte-level character mapping itself is done by the BPE model.
 */
import { compileOnigurumaPattern } from './onig-regex.js';

/** Oniguruma sources of the pre-tokenizer regexes of the supported families (exact, from §4.3). */
export const KNOWN_PATTERNS = {
  'deepseek-v3': [
    String.raw`\p{N}{1,3}`,
    '[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+',
    String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_${'`'}{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
  ],
  qwen2: [String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`],
  'llama-bpe': [String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`],
} as const satisfies Record<string, readonly string[]>;

/** The regex HF's ByteLevel pre-tokenizer applies when `use_regex` is true (GPT-2's). */
export const GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

export type PreTokenizerStep = { readonly kind: 'split'; readonly pattern: string } | { readonly kind: 'prefixSpace' };

/** llama.cpp `tokenizer.ggml.pre` names -> (patterns, ignore_merges), per llama-vocab.cpp. */
const GGUF_PRE_NAMES: Record<string, { patterns: readonly string[]; ignoreMerges: boolean; normalizer: 'none' | 'NFC' }> = {
  'deepseek-v3': { patterns: KNOWN_PATTERNS['deepseek-v3'], ignoreMerges: false, normalizer: 'none' },
  qwen2: { patterns: KNOWN_PATTERNS.qwen2, ignoreMerges: false, normalizer: 'NFC' },
  'deepseek-r1-qwen': { patterns: KNOWN_PATTERNS.qwen2, ignoreMerges: false, normalizer: 'NFC' },
  'llama-bpe': { patterns: KNOWN_PATTERNS['llama-bpe'], ignoreMerges: true, normalizer: 'none' },
  llama3: { patterns: KNOWN_PATTERNS['llama-bpe'], ignoreMerges: true, normalizer: 'none' },
  'llama-v3': { patterns: KNOWN_PATTERNS['llama-bpe'], ignoreMerges: true, normalizer: 'none' },
  'gpt-2': { patterns: [GPT2_PATTERN], ignoreMerges: false, normalizer: 'none' },
  default: { patterns: [GPT2_PATTERN], ignoreMerges: false, normalizer: 'none' },
};

export function ggufPreTokenizer(pre: string): { steps: PreTokenizerStep[]; ignoreMerges: boolean; normalizer: 'none' | 'NFC' } {
  const known = GGUF_PRE_NAMES[pre];
  if (!known) {
    throw new Error(`unsupported tokenizer.ggml.pre '${pre}' (supported: ${Object.keys(GGUF_PRE_NAMES).join(', ')})`);
  }
  return { steps: known.patterns.map((pattern) => ({ kind: 'split', pattern })), ignoreMerges: known.ignoreMerges, normalizer: known.normalizer };
}

/** Spelling-insensitive comparison key (tokenizer.json files write CR/LF in classes either raw or escaped). */
function patternKey(pattern: string): string {
  return pattern.replaceAll('\r', '\\r').replaceAll('\n', '\\n');
}

/** The llama.cpp pre-tokenizer name whose regexes equal these steps, if any. */
export function ggufPreNameOf(steps: readonly PreTokenizerStep[]): string | undefined {
  if (steps.some((s) => s.kind !== 'split')) return undefined;
  const key = steps.map((s) => (s.kind === 'split' ? patternKey(s.pattern) : '')).join('\u0000');
  for (const [name, patterns] of Object.entries(KNOWN_PATTERNS)) {
    if (patterns.map(patternKey).join('\u0000') === key) return name;
  }
  if (key === patternKey(GPT2_PATTERN)) return 'gpt-2';
  return undefined;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function escapeLiteral(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/**
 * Reads a tokenizer.json `pre_tokenizer` into steps. Only byte-level BPE layouts are accepted:
 * Split(Isolated, not inverted) steps followed by a final ByteLevel.
 */
export function preTokenizerStepsFromJson(config: unknown, where = 'pre_tokenizer'): PreTokenizerStep[] {
  if (!isObject(config)) throw new Error(`${where}: expected an object, got ${JSON.stringify(config)}`);
  const list = config.type === 'Sequence' ? config.pretokenizers : [config];
  if (!Array.isArray(list)) throw new Error(`${where}.pretokenizers: expected an array`);
  const steps: PreTokenizerStep[] = [];
  let sawByteLevel = false;
  list.forEach((item, index) => {
    const at = config.type === 'Sequence' ? `${where}.pretokenizers[${index}]` : where;
    if (!isObject(item)) throw new Error(`${at}: expected an object`);
    if (sawByteLevel) throw new Error(`${at}: a ${String(item.type)} step after ByteLevel is not supported`);
    if (item.type === 'Split') {
      if (item.behavior !== 'Isolated') throw new Error(`${at}: Split behavior '${String(item.behavior)}' is not supported (only Isolated)`);
      if (item.invert === true) throw new Error(`${at}: inverted Split is not supported`);
      const pattern = item.pattern;
      if (isObject(pattern) && typeof pattern.Regex === 'string') {
        compileOnigurumaPattern(pattern.Regex); // fail at load time, with the pattern in the message
        steps.push({ kind: 'split', pattern: pattern.Regex });
      } else if (isObject(pattern) && typeof pattern.String === 'string') {
        steps.push({ kind: 'split', pattern: escapeLiteral(pattern.String) });
      } else {
        throw new Error(`${at}.pattern: expected {Regex: string} or {String: string}`);
      }
    } else if (item.type === 'ByteLevel') {
      sawByteLevel = true;
      if (item.add_prefix_space === true) steps.push({ kind: 'prefixSpace' });
      if (item.use_regex !== false) steps.push({ kind: 'split', pattern: GPT2_PATTERN });
    } else {
      throw new Error(`${at}: pre-tokenizer type '${String(item.type)}' is not supported (byte-level BPE needs Split/ByteLevel)`);
    }
  });
  if (!sawByteLevel) throw new Error(`${where}: no ByteLevel step; only byte-level BPE tokenizers are supported`);
  return steps;
}

/** Runs the steps over one section of normalized text, appending the pieces to `out`. */
export class PreTokenizer {
  readonly steps: readonly PreTokenizerStep[];
  private readonly compiled: ({ regex: RegExp } | null)[];

  constructor(steps: readonly PreTokenizerStep[]) {
    this.steps = steps;
    this.compiled = steps.map((step) => (step.kind === 'split' ? { regex: compileOnigurumaPattern(step.pattern) } : null));
  }

  split(text: string, out: string[]): void {
    if (text.length > 0) this.run(0, text, out);
  }

  private run(level: number, piece: string, out: string[]): void {
    if (level === this.compiled.length) {
      out.push(piece);
      return;
    }
    const step = this.compiled[level];
    if (step === null) {
      this.run(level + 1, piece.startsWith(' ') ? piece : ` ${piece}`, out);
      return;
    }
    const regex = step!.regex;
    regex.lastIndex = 0;
    let previous = 0;
    for (;;) {
      const match = regex.exec(piece);
      if (match === null) break;
      const start = match.index;
      const text = match[0];
      if (text.length === 0) {
        // Empty matches split nothing; step over one code point.
        const code = piece.charCodeAt(regex.lastIndex);
        regex.lastIndex += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
        if (regex.lastIndex > piece.length) break;
        continue;
      }
      if (start > previous) this.run(level + 1, piece.slice(previous, start), out);
      this.run(level + 1, text, out);
      previous = start + text.length;
    }
    if (previous < piece.length) this.run(level + 1, previous === 0 ? piece : piece.slice(previous), out);
  }
}
