/**
 * API errors in the OpenAI/DeepSeek body shape `{"error": {"message", "type", "param", "code"}}`,
 * with DeepSeek's status vocabulary (../shared/spec/formats-and-api.md §5.7):
 * 400 invalid format, 401 authentication, 402 balance, 403 permission, 404 not found,
 * 413 body too large, 422 invalid parameters, 429 rate limit, 500 server error, 503 overloaded/paused.
 */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const TYPES: Record<number, [type: string, code: string]> = {
  400: ['invalid_request_error', 'invalid_request'],
  401: ['authentication_error', 'invalid_api_key'],
  402: ['insufficient_balance', 'insufficient_balance'],
  403: ['permission_error', 'forbidden'],
  404: ['not_found_error', 'not_found'],
  405: ['invalid_request_error', 'method_not_allowed'],
  413: ['invalid_request_error', 'request_too_large'],
  415: ['invalid_request_error', 'unsupported_media_type'],
  422: ['invalid_request_error', 'invalid_parameter'],
  429: ['rate_limit_error', 'rate_limit_exceeded'],
  500: ['server_error', 'internal_error'],
  503: ['server_overloaded', 'service_unavailable'],
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds a client should wait before retrying (429/503): sent as Retry-After. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ErrorBody {
    return errorBody(this.status, this.message, this.param, this.code);
  }
}

export function errorBody(status: number, message: string, param: string | null = null, code: string | null = null): ErrorBody {
  const [type, defaultCode] = TYPES[status] ?? (status >= 500 ? TYPES[500]! : TYPES[400]!);
  return { error: { message, type, param, code: code ?? defaultCode } };
}

/**
 * The error body for a request path: Ollama's routes (/api/*) answer as Ollama does, with the
 * message as a string (`{"error": "..."}`; the ollama clients take `error` as the message and
 * printed "[object Object]" for the DeepSeek shape); every other route in DeepSeek's shape.
 */
export function errorBodyFor(path: string, body: ErrorBody): ErrorBody | { error: string } {
  return path.startsWith('/api/') ? { error: body.error.message } : body;
}

/** 400 for a malformed body, 422 for a well-formed one with a bad value (DeepSeek's split). */
export const badRequest = (message: string, param: string | null = null): ApiError => new ApiError(400, message, param);
export const invalidParam = (message: string, param: string | null = null): ApiError => new ApiError(422, message, param);

/**
 * The deepest nesting of arrays and objects a request body may have. JSON.parse reads any depth,
 * but the checks and the prompt building recurse (JSON.stringify of tool arguments and schemas,
 * the schema checks): a body nested some thousand levels overflowed the stack, a 500. Real
 * requests (tool schemas included) stay far below this.
 */
export const MAX_JSON_NESTING = 128;

/** 400 when `value` nests arrays and objects deeper than `limit` (walked without recursion). */
export function checkNesting(value: unknown, limit = MAX_JSON_NESTING): void {
  const stack: [node: unknown, depth: number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= limit) throw new ApiError(400, `the request body nests arrays and objects more than ${limit} levels deep`);
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
}
