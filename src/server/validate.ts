/**
 * Request body checks with errors naming the field: a wrong type is a malformed request (400),
 * a value out of range an invalid parameter (422), as DeepSeek splits them.
 */
import { ApiError } from './errors.js';

export type Body = Record<string, unknown>;

export function bodyObject(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'the request body must be a JSON object');
  return body as Body;
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

export function optString(b: Body, name: string): string | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, `${name} must be a string, got ${typeName(v)}`, name);
  return v;
}

export function optBool(b: Body, name: string): boolean | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `${name} must be a boolean, got ${typeName(v)}`, name);
  return v;
}

export interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
  /** min is exclusive */
  above?: boolean;
}

export function optNumber(b: Body, name: string, rule: NumberRule = {}): number | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ApiError(400, `${name} must be a number, got ${typeName(v)}`, name);
  if (rule.integer && !Number.isInteger(v)) throw new ApiError(422, `${name} must be an integer, got ${v}`, name);
  if (rule.min !== undefined && (rule.above ? v <= rule.min : v < rule.min)) {
    throw new ApiError(422, `${name} must be ${rule.above ? '>' : '>='} ${rule.min}, got ${v}`, name);
  }
  if (rule.max !== undefined && v > rule.max) throw new ApiError(422, `${name} must be <= ${rule.max}, got ${v}`, name);
  return v;
}

export function optObject(b: Body, name: string): Body | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `${name} must be an object, got ${typeName(v)}`, name);
  return v as Body;
}

/** `stop`: a string or up to 16 non-empty strings. */
export function optStops(b: Body, name = 'stop'): string[] | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) throw new ApiError(400, `${name} must be a string or an array of strings`, name);
  if (list.length > 16) throw new ApiError(422, `${name} may hold at most 16 strings, got ${list.length}`, name);
  if (list.some((s) => s === '')) throw new ApiError(422, `${name} strings must not be empty`, name);
  return list as string[];
}
