/**
 * Constrained decoding for `response_format: {"type": "json_object"}`: an incremental JSON
 * validator (a pushdown state machine over characters) and a logits mask that bans every token
 * whose text would make the output an invalid JSON prefix. The output must be one JSON object;
 * once it is closed only the end-of-sequence tokens stay allowed. Whitespace outside strings is
 * limited to short runs (DeepSeek warns of "whitespace run-on" in JSON mode).
 */

import { selectTopInto } from '../generate/sampling.js';
import { ApiError } from './errors.js';

const enum Mode {
  Value, // expecting a value (top level: an object)
  AfterValue, // a value ended: ',' or the closing bracket (or, at top level, the end)
  KeyOrEnd, // after '{': '"' or '}'
  Key, // after ',' in an object: '"'
  Colon, // after a key: ':'
  ValueOrEnd, // after '[': a value or ']'
  String,
  StringEscape,
  StringHex,
  Literal,
  NumSign, // after '-'
  NumZero, // a leading 0
  NumInt,
  NumPoint,
  NumFrac,
  NumExp,
  NumExpSign,
  NumExpDigits,
}

const MAX_WHITESPACE_RUN = 2;

/** What the mask needs of a constraint: JsonValidator (any object), SchemaValidator (json-schema.ts). */
export interface JsonConstraint {
  /** True once the top-level object is closed. */
  readonly complete: boolean;
  /** Feeds text; false when it cannot continue a valid output (the state is then undefined). */
  push(text: string): boolean;
  /** Would `text` keep the output valid? (state unchanged) */
  accepts(text: string): boolean;
}

export class JsonValidator implements JsonConstraint {
  private stack = '';
  private mode: Mode = Mode.Value;
  private isKey = false;
  private hexLeft = 0;
  private literal = '';
  private wsRun = 0;
  private started = false;

  clone(): JsonValidator {
    const c = new JsonValidator();
    c.stack = this.stack;
    c.mode = this.mode;
    c.isKey = this.isKey;
    c.hexLeft = this.hexLeft;
    c.literal = this.literal;
    c.wsRun = this.wsRun;
    c.started = this.started;
    return c;
  }

  /** True once the top-level object is closed. */
  get complete(): boolean {
    return this.started && this.stack === '' && this.mode === Mode.AfterValue;
  }

  /** Feeds text; false (and the state is then undefined) when it cannot continue valid JSON. */
  push(text: string): boolean {
    for (const ch of text) if (!this.pushChar(ch)) return false;
    return true;
  }

  /** Would `text` keep the output a valid JSON prefix? (state unchanged) */
  accepts(text: string): boolean {
    return this.clone().push(text);
  }

  private pushChar(ch: string): boolean {
    switch (this.mode) {
      case Mode.String:
        if (ch === '"') return this.endValue(this.isKey);
        if (ch === '\\') this.mode = Mode.StringEscape;
        else if (ch < ' ') return false;
        return true;
      case Mode.StringEscape:
        if (ch === 'u') {
          this.mode = Mode.StringHex;
          this.hexLeft = 4;
          return true;
        }
        if (!'"\\/bfnrt'.includes(ch)) return false;
        this.mode = Mode.String;
        return true;
      case Mode.StringHex:
        if (!/[0-9a-fA-F]/.test(ch)) return false;
        if (--this.hexLeft === 0) this.mode = Mode.String;
        return true;
      case Mode.Literal:
        if (ch !== this.literal[0]) return false;
        this.literal = this.literal.slice(1);
        return this.literal === '' ? this.endValue(false) : true;
      case Mode.NumSign:
        if (ch === '0') this.mode = Mode.NumZero;
        else if (isDigit(ch)) this.mode = Mode.NumInt;
        else return false;
        return true;
      case Mode.NumZero:
      case Mode.NumInt:
        if (isDigit(ch) && this.mode === Mode.NumInt) return true;
        if (ch === '.') return this.set(Mode.NumPoint);
        if (ch === 'e' || ch === 'E') return this.set(Mode.NumExp);
        return this.endValue(false) && this.pushChar(ch);
      case Mode.NumPoint:
        return isDigit(ch) ? this.set(Mode.NumFrac) : false;
      case Mode.NumFrac:
        if (isDigit(ch)) return true;
        if (ch === 'e' || ch === 'E') return this.set(Mode.NumExp);
        return this.endValue(false) && this.pushChar(ch);
      case Mode.NumExp:
        if (ch === '+' || ch === '-') return this.set(Mode.NumExpSign);
        return isDigit(ch) ? this.set(Mode.NumExpDigits) : false;
      case Mode.NumExpSign:
        return isDigit(ch) ? this.set(Mode.NumExpDigits) : false;
      case Mode.NumExpDigits:
        if (isDigit(ch)) return true;
        return this.endValue(false) && this.pushChar(ch);
      default:
        break;
    }
    // structural modes: whitespace allowed in short runs
    if (ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r') {
      if (this.complete) return false;
      return ++this.wsRun <= MAX_WHITESPACE_RUN;
    }
    this.wsRun = 0;
    switch (this.mode) {
      case Mode.Value:
      case Mode.ValueOrEnd:
        if (this.mode === Mode.ValueOrEnd && ch === ']') return this.close('[');
        if (!this.started) {
          if (ch !== '{') return false;
          this.started = true;
        }
        return this.beginValue(ch);
      case Mode.KeyOrEnd:
        if (ch === '}') return this.close('{');
        if (ch !== '"') return false;
        this.isKey = true;
        return this.set(Mode.String);
      case Mode.Key:
        if (ch !== '"') return false;
        this.isKey = true;
        return this.set(Mode.String);
      case Mode.Colon:
        return ch === ':' ? this.set(Mode.Value) : false;
      case Mode.AfterValue: {
        const top = this.stack[this.stack.length - 1];
        if (top === undefined) return false;
        if (ch === ',') return this.set(top === '{' ? Mode.Key : Mode.Value);
        if (ch === '}' && top === '{') return this.close('{');
        if (ch === ']' && top === '[') return this.close('[');
        return false;
      }
      default:
        return false;
    }
  }

  private set(mode: Mode): boolean {
    this.mode = mode;
    return true;
  }

  private beginValue(ch: string): boolean {
    if (ch === '{') {
      this.stack += '{';
      return this.set(Mode.KeyOrEnd);
    }
    if (ch === '[') {
      this.stack += '[';
      return this.set(Mode.ValueOrEnd);
    }
    if (ch === '"') {
      this.isKey = false;
      return this.set(Mode.String);
    }
    if (ch === '-') return this.set(Mode.NumSign);
    if (ch === '0') return this.set(Mode.NumZero);
    if (isDigit(ch)) return this.set(Mode.NumInt);
    for (const word of ['true', 'false', 'null']) {
      if (ch === word[0]) {
        this.literal = word.slice(1);
        return this.set(Mode.Literal);
      }
    }
    return false;
  }

  private endValue(wasKey: boolean): boolean {
    this.isKey = false;
    return this.set(wasKey ? Mode.Colon : Mode.AfterValue);
  }

  private close(open: '{' | '['): boolean {
    if (this.stack[this.stack.length - 1] !== open) return false;
    this.stack = this.stack.slice(0, -1);
    return this.set(Mode.AfterValue);
  }
}

function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}

/** What the mask needs to know of the vocabulary. */
export interface MaskVocabulary {
  /** Text of each token id, or undefined for ids that may never appear in JSON (special, partial UTF-8). */
  texts: readonly (string | undefined)[];
  /** End-of-sequence ids (allowed only once the JSON is complete). */
  stopIds: ReadonlySet<number>;
}

/** Builds a MaskVocabulary from a tokenizer (texts of special tokens and broken UTF-8 excluded). */
export function maskVocabulary(
  tokenizer: { decode(ids: number[]): string; addedToken?(id: number): unknown; vocabSize?: number },
  size: number,
  stopIds: readonly number[],
): MaskVocabulary {
  const texts: (string | undefined)[] = new Array(size);
  const n = Math.min(size, tokenizer.vocabSize ?? size);
  for (let id = 0; id < n; id++) {
    if (tokenizer.addedToken?.(id) !== undefined) continue;
    const text = tokenizer.decode([id]);
    if (text === '' || text.includes('\uFFFD')) continue;
    texts[id] = text;
  }
  return { texts, stopIds: new Set(stopIds) };
}

/** Tokens looked at first, by partial selection; the whole vocabulary is sorted only when too few of them fit. */
const CANDIDATES = 1024;

/**
 * Sets to -Infinity the logit of every token that cannot continue the JSON in `state`. Tokens are
 * tested in order of decreasing logit (ties: lower id first) until `keep` acceptable ones are
 * found (the rest are banned too), which bounds the work per step on large vocabularies: the
 * best CANDIDATES come from a partial selection, so a 150K vocabulary is not sorted every step.
 * Returns the number of tokens left.
 */
export function maskJsonLogits(logits: Float32Array, state: JsonConstraint, vocab: MaskVocabulary, keep = 64): number {
  if (state.complete) {
    for (let id = 0; id < logits.length; id++) if (!vocab.stopIds.has(id)) logits[id] = -Infinity;
    return vocab.stopIds.size;
  }
  const chosen = new Uint8Array(logits.length);
  let kept = 0;
  const consider = (order: ArrayLike<number>, from: number): void => {
    for (let i = from; i < order.length && kept < keep; i++) {
      const id = order[i]!;
      const text = vocab.texts[id];
      if (text !== undefined && logits[id] !== -Infinity && state.accepts(text)) {
        chosen[id] = 1;
        kept++;
      }
    }
  };
  const first = Math.min(CANDIDATES, logits.length);
  const best = new Int32Array(first);
  selectTopInto(logits, first, best);
  consider(best, 0);
  if (kept < keep && first < logits.length) {
    const order = Array.from({ length: logits.length }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
    consider(order, first);
  }
  for (let id = 0; id < logits.length; id++) if (!chosen[id]) logits[id] = -Infinity;
  if (kept === 0) {
    // Plain JSON always goes on with single characters, so this is a schema that no document can
    // satisfy in a way the request check (checkJsonSchema) does not see: the request's fault, 422,
    // not a server error. Fail rather than sample garbage.
    throw new ApiError(422, 'JSON mode: no token of the vocabulary can continue the output; the JSON schema (response_format, format or a forced tool\'s parameters) accepts no document that starts this way');
  }
  return kept;
}
