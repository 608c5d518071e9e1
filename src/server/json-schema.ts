/**
 * Constrained decoding to a JSON schema (Ollama's `format: {schema}`, OpenAI's `response_format:
 * {"type": "json_schema"}`): on top of the syntax of JsonValidator, every prefix of the output
 * must stay one that can still become a document the schema accepts. After each piece of text the
 * output so far is parsed into a partial tree (values may be unfinished) and checked against the
 * schema: types (a half-written literal or number counts as its type), enum and const (as prefixes
 * of their JSON text), object keys (only the listed properties, unless additionalProperties
 * allows others; a half-written key must start one; no key twice), required keys (when the object
 * closes), array items, minItems / maxItems, maxLength, anyOf / oneOf (any branch). Not enforced:
 * pattern, format, numeric bounds and minLength (a prefix that breaks them could not always be
 * completed); $ref, allOf, not and conditionals are refused when the request comes in.
 */
import { ApiError } from './errors.js';
import { type JsonConstraint, JsonValidator } from './json-constraint.js';

export type JsonSchema = boolean | { readonly [key: string]: unknown };

type Node =
  /** more: the text ends after a comma, before the next key (object) or item (array) began */
  | { kind: 'object'; entries: { key: string; rawKey: string; keyDone: boolean; value: Node | undefined }[]; closed: boolean; more: boolean }
  | { kind: 'array'; items: Node[]; closed: boolean; more: boolean }
  /** raw: the JSON text as written, from the opening quote; pending: an escape is half written (one more character) */
  | { kind: 'string'; value: string; raw: string; closed: boolean; pending: boolean }
  | { kind: 'number' | 'literal'; text: string; closed: boolean };

const UNSUPPORTED = ['$ref', 'allOf', 'not', 'if', 'then', 'else', 'patternProperties', 'dependentSchemas', 'prefixItems', 'unevaluatedProperties'];
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

/** Checks a request's schema (422 naming the problem): an object schema at the top, supported keywords only. */
export function checkJsonSchema(schema: unknown, param: string): JsonSchema {
  const visit = (s: unknown, path: string): void => {
    if (typeof s === 'boolean') return;
    if (!s || typeof s !== 'object' || Array.isArray(s)) throw new ApiError(422, `${path} must be a JSON schema object`, param);
    const o = s as Record<string, unknown>;
    for (const key of UNSUPPORTED) if (key in o) throw new ApiError(422, `${path}: the schema keyword '${key}' is not supported`, param);
    const types = o.type === undefined ? [] : Array.isArray(o.type) ? o.type : [o.type];
    for (const t of types) if (typeof t !== 'string' || !TYPES.includes(t)) throw new ApiError(422, `${path}.type: '${String(t)}' is not a JSON schema type`, param);
    if (o.enum !== undefined && !Array.isArray(o.enum)) throw new ApiError(422, `${path}.enum must be an array`, param);
    if (o.required !== undefined && !(Array.isArray(o.required) && o.required.every((r) => typeof r === 'string'))) throw new ApiError(422, `${path}.required must be an array of names`, param);
    if (o.properties !== undefined) {
      if (!o.properties || typeof o.properties !== 'object') throw new ApiError(422, `${path}.properties must be an object`, param);
      for (const [name, sub] of Object.entries(o.properties)) visit(sub, `${path}.properties.${name}`);
    }
    if (o.additionalProperties !== undefined && typeof o.additionalProperties !== 'boolean') visit(o.additionalProperties, `${path}.additionalProperties`);
    if (o.items !== undefined) visit(o.items, `${path}.items`);
    for (const key of ['anyOf', 'oneOf'] as const) {
      if (o[key] === undefined) continue;
      if (!Array.isArray(o[key]) || (o[key] as unknown[]).length === 0) throw new ApiError(422, `${path}.${key} must be a non-empty array`, param);
      (o[key] as unknown[]).forEach((sub, i) => visit(sub, `${path}.${key}[${i}]`));
    }
  };
  visit(schema, param);
  const top = schema as Record<string, unknown>;
  if (typeof schema === 'boolean' || (top.type !== undefined && top.type !== 'object')) throw new ApiError(422, `${param}: the top level must be an object schema`, param);
  // the output is always an object (json-constraint.ts), so the top level is checked as one
  const problem = contradiction(schema as JsonSchema, param, true);
  if (problem !== undefined) throw new ApiError(422, `${problem}: no JSON value satisfies this part of the schema`, param);
  return schema as JsonSchema;
}

/** The schema's types, or undefined when it names none (any type). */
function typesOf(s: Record<string, unknown>): string[] | undefined {
  return s.type === undefined ? undefined : ((Array.isArray(s.type) ? s.type : [s.type]) as string[]);
}

function valueHasType(value: unknown, type: string): boolean {
  if (type === 'integer') return Number.isInteger(value);
  if (type === 'array') return Array.isArray(value);
  if (type === 'null') return value === null;
  if (type === 'object') return value !== null && typeof value === 'object' && !Array.isArray(value);
  return typeof value === type;
}

/**
 * A plain contradiction in a (checked) schema, described; else undefined. Decoding ran into a dead
 * end on one (a 500, or an error in the middle of a stream): viable() lets the output start a
 * listed property before its value shows that nothing fits, and an object cannot close without
 * its required keys. Found: a property (listed, or additionalProperties) whose schema accepts no
 * value, a required property that may not appear (not listed while additionalProperties is not
 * given, or false), an empty enum or type list, enum values none of the types allow, minItems
 * above maxItems, a negative maxLength, anyOf / oneOf without a possible branch. Only these: a
 * schema can still contradict itself through how its branches and types combine, which decoding
 * reports when it gets there (maskJsonLogits, a 422).
 */
function contradiction(schema: JsonSchema, path: string, isObject = false): string | undefined {
  if (schema === true) return undefined;
  if (schema === false) return `${path} is false`;
  const s = schema as Record<string, unknown>;
  const types = typesOf(s) ?? (isObject ? ['object'] : undefined);
  if (types?.length === 0) return `${path}.type is an empty list`;
  const only = (type: string): boolean => types !== undefined && types.every((t) => t === type);
  const allowed = s.const !== undefined ? [s.const] : (s.enum as unknown[] | undefined);
  if (allowed?.length === 0) return `${path}.enum is empty`;
  if (allowed && types && !allowed.some((v) => types.some((t) => valueHasType(v, t)))) return `${path}: no value of enum or const has the type ${types.join(' or ')}`;
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = s[key] as JsonSchema[] | undefined;
    const problems = branches?.map((b, i) => contradiction(b, `${path}.${key}[${i}]`, isObject));
    if (problems?.every((p) => p !== undefined)) return `${path}.${key}: no branch accepts a value (${problems[0]})`;
  }
  const inObject = objectContradiction(s, path, only('object'));
  if (inObject !== undefined) return inObject;
  if (only('array')) {
    const { minItems, maxItems } = s;
    if (typeof minItems === 'number' && typeof maxItems === 'number' && minItems > maxItems) return `${path}.minItems is above maxItems`;
    if (typeof minItems === 'number' && minItems > 0 && s.items !== undefined) return contradiction(s.items as JsonSchema, `${path}.items`);
  }
  if (only('string') && typeof s.maxLength === 'number' && s.maxLength < 0) return `${path}.maxLength is negative`;
  return undefined;
}

/**
 * The object part: every property schema (listed, or additionalProperties) must accept some value,
 * since the output may start any allowed key; and when the value must be an object, its required
 * keys must be allowed (as objectViable allows keys).
 */
function objectContradiction(s: Record<string, unknown>, path: string, mustBeObject: boolean): string | undefined {
  const properties = (s.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, sub] of Object.entries(properties)) {
    // a false property only forbids the key (objectViable never starts it)
    const problem = sub === false ? undefined : contradiction(sub, `${path}.properties.${name}`);
    if (problem !== undefined) return problem;
  }
  if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean') {
    const problem = contradiction(s.additionalProperties as JsonSchema, `${path}.additionalProperties`);
    if (problem !== undefined) return problem;
  }
  if (!mustBeObject) return undefined;
  const extra: JsonSchema = s.additionalProperties !== undefined ? (s.additionalProperties as JsonSchema) : Object.keys(properties).length === 0;
  for (const name of (s.required ?? []) as string[]) {
    const sub = Object.hasOwn(properties, name) ? properties[name]! : extra;
    if (sub === false) return `${path}.required names '${name}', which the object may not hold (not among the properties, or false, and additionalProperties does not allow it)`;
  }
  return undefined;
}

/** The output so far as a partial tree (the text is a valid JSON prefix: JsonValidator checked it). */
function parse(text: string): Node | undefined {
  let at = 0;
  const ws = (): void => {
    while (at < text.length && ' \n\r\t'.includes(text[at]!)) at++;
  };
  const string = (): { value: string; raw: string; closed: boolean; pending: boolean } => {
    const start = at;
    at++; // "
    let value = '';
    let pending = false;
    while (at < text.length) {
      const ch = text[at++]!;
      if (ch === '"') return { value, raw: text.slice(start, at), closed: true, pending };
      if (ch !== '\\') {
        value += ch;
        continue;
      }
      pending = true;
      if (at >= text.length) break;
      const esc = text[at++]!;
      if (esc === 'u') {
        if (at + 4 > text.length) break;
        value += String.fromCharCode(parseInt(text.slice(at, at + 4), 16));
        at += 4;
      } else {
        value += ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' } as Record<string, string>)[esc] ?? esc;
      }
      pending = false;
    }
    at = text.length;
    return { value, raw: text.slice(start), closed: false, pending };
  };
  /**
   * The members of a container after its opening bracket, up to `close`: readMember reads one and
   * says whether it was finished (else the text ends inside it). `more`: the text ends after a comma.
   */
  const members = (node: { closed: boolean; more: boolean }, close: string, readMember: () => boolean): void => {
    for (;;) {
      ws();
      if (at >= text.length) return;
      if (text[at] === close) {
        at++;
        node.closed = true;
        return;
      }
      if (text[at] === ',') {
        at++;
        ws();
        if (at >= text.length) {
          node.more = true;
          return;
        }
      }
      if (!readMember()) return;
    }
  };
  const value = (): Node | undefined => {
    ws();
    if (at >= text.length) return undefined;
    const ch = text[at]!;
    if (ch === '{') {
      at++;
      const node: Node = { kind: 'object', entries: [], closed: false, more: false };
      members(node, '}', () => {
        const key = string();
        const entry = { key: key.value, rawKey: key.raw, keyDone: key.closed, value: undefined as Node | undefined };
        node.entries.push(entry);
        if (!key.closed) return false;
        ws();
        if (at >= text.length) return false;
        at++; // :
        entry.value = value();
        return entry.value !== undefined && entry.value.closed;
      });
      return node;
    }
    if (ch === '[') {
      at++;
      const node: Node = { kind: 'array', items: [], closed: false, more: false };
      members(node, ']', () => {
        const item = value()!; // the text goes on after the whitespace members() skipped
        node.items.push(item);
        return item.closed;
      });
      return node;
    }
    if (ch === '"') return { kind: 'string', ...string() };
    const start = at;
    while (at < text.length && /[-+.\w]/.test(text[at]!)) at++;
    const word = text.slice(start, at);
    return { kind: /^[-\d]/.test(word) ? 'number' : 'literal', text: word, closed: at < text.length };
  };
  return value();
}

function schemaObject(schema: JsonSchema): Record<string, unknown> | undefined {
  return typeof schema === 'boolean' ? undefined : (schema as Record<string, unknown>);
}

/**
 * The JSON text of a node as far as it goes (for enum and const). Strings as written: an enum
 * value must be written as JSON.stringify writes it (a pending escape then matches no value
 * that could not follow, so the output never reaches a dead end).
 */
function textOf(node: Node): string | undefined {
  if (node.kind === 'string') return node.raw;
  if (node.kind === 'number' || node.kind === 'literal') return node.text;
  return undefined;
}

/** Can the partial `node` still become a value `schema` accepts? */
function viable(node: Node, schema: JsonSchema): boolean {
  if (schema === true) return true;
  if (schema === false) return false;
  const s = schemaObject(schema)!;
  const options = (s.anyOf ?? s.oneOf) as JsonSchema[] | undefined;
  if (options && !options.some((o) => viable(node, o))) return false;
  const allowed = s.const !== undefined ? [s.const] : (s.enum as unknown[] | undefined);
  if (allowed) {
    const text = textOf(node);
    if (text === undefined) {
      if (!allowed.some((v) => v !== null && typeof v === 'object')) return false;
    } else if (!allowed.some((v) => (node.closed ? JSON.stringify(v) === text : JSON.stringify(v).startsWith(text)))) {
      return false;
    }
  }
  const types = s.type === undefined ? undefined : ((Array.isArray(s.type) ? s.type : [s.type]) as string[]);
  if (types && !types.some((t) => typeMatches(node, t))) return false;
  if (node.kind === 'object') return objectViable(node, s);
  if (node.kind === 'array') {
    const items = (s.items ?? true) as JsonSchema;
    if (typeof s.maxItems === 'number' && node.items.length + (node.more ? 1 : 0) > s.maxItems) return false;
    if (node.closed && typeof s.minItems === 'number' && node.items.length < s.minItems) return false;
    return node.items.every((item) => viable(item, items));
  }
  if (node.kind === 'string' && typeof s.maxLength === 'number') return [...node.value].length + (node.pending ? 1 : 0) <= s.maxLength;
  return true;
}

function typeMatches(node: Node, type: string): boolean {
  switch (node.kind) {
    case 'object':
      return type === 'object';
    case 'array':
      return type === 'array';
    case 'string':
      return type === 'string';
    case 'number':
      return type === 'number' || (type === 'integer' && !/[.eE]/.test(node.text));
    case 'literal':
      if (type === 'boolean') return 'true'.startsWith(node.text) || 'false'.startsWith(node.text);
      return type === 'null' && 'null'.startsWith(node.text);
  }
}

function objectViable(node: Extract<Node, { kind: 'object' }>, s: Record<string, unknown>): boolean {
  const properties = (s.properties ?? {}) as Record<string, JsonSchema>;
  const names = Object.keys(properties);
  // only the listed properties, unless additionalProperties says otherwise (or nothing is listed)
  const extra: JsonSchema = s.additionalProperties !== undefined ? (s.additionalProperties as JsonSchema) : names.length === 0;
  const seen = new Set<string>();
  for (const entry of node.entries) {
    if (!entry.keyDone) {
      // compared as written (see textOf): a half-written escape in a key must lead to a listed name
      // a property whose schema is false may not appear: starting its key led to a dead end
      const open = names.filter((n) => !seen.has(n) && properties[n] !== false && JSON.stringify(n).startsWith(entry.rawKey));
      return open.length > 0 || extra !== false;
    }
    if (seen.has(entry.key)) return false;
    seen.add(entry.key);
    const sub = Object.hasOwn(properties, entry.key) ? properties[entry.key]! : extra;
    if (sub === false) return false;
    if (entry.value && !viable(entry.value, sub)) return false;
  }
  if (node.closed) return ((s.required ?? []) as string[]).every((r) => seen.has(r));
  // after a comma another key must be possible
  if (node.more) return names.some((n) => !seen.has(n)) || extra !== false;
  return true;
}

/** JsonValidator's syntax plus the schema (see the file comment). */
export class SchemaValidator implements JsonConstraint {
  private readonly syntax: JsonValidator;
  constructor(private readonly schema: JsonSchema, private text = '', syntax?: JsonValidator) {
    this.syntax = syntax ?? new JsonValidator();
  }

  get complete(): boolean {
    return this.syntax.complete;
  }

  push(piece: string): boolean {
    if (!this.syntax.push(piece)) return false;
    this.text += piece;
    return this.fits(this.text);
  }

  accepts(piece: string): boolean {
    return this.syntax.accepts(piece) && this.fits(this.text + piece);
  }

  private fits(text: string): boolean {
    const node = parse(text);
    return node === undefined || viable(node, this.schema);
  }
}
