/**
 * Embeddings of texts: the mean over a text's tokens (BOS included, as the tokenizer adds it) of
 * the model's final-normalized hidden states, scaled to unit length.
 *   POST /v1/embeddings (also /embeddings): OpenAI's shape; `input` a string, strings, token ids
 *     or lists of ids; `encoding_format` float or base64 (little-endian f32); `dimensions` refused.
 *   POST /api/embed: Ollama's shape (`embeddings`); `truncate` (default true) cuts a text to the
 *     context, false refuses it.
 *   POST /api/embeddings: Ollama's older route (`prompt` -> `embedding`).
 * The forwards run on the server's thread between scheduler rounds; the rate limits count the
 * tokens. A text longer than the context is refused (400) unless Ollama's truncate cuts it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { ApiError } from '../errors.js';
import type { ServedModel } from '../models.js';
import { bodyObject, optBool, optString, type Body } from '../validate.js';

/** The unit-length mean of the rows of states [tokens, hidden]. */
function meanPooled(states: Float32Array, tokens: number, hidden: number): number[] {
  const sum = new Float64Array(hidden);
  for (let t = 0; t < tokens; t++) for (let i = 0; i < hidden; i++) sum[i]! += states[t * hidden + i]!;
  let norm = 0;
  for (let i = 0; i < hidden; i++) norm += sum[i]! * sum[i]!;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  return Array.from(sum, (v) => v * scale);
}

/** Token ids of each input (strings tokenized with the model's special tokens added, as llama.cpp does). */
function inputIds(served: ServedModel, input: unknown, param: string): Int32Array[] {
  const fromText = (text: string, i: number): Int32Array => {
    if (text === '') throw new ApiError(400, `${param}[${i}] is empty`, param);
    return Int32Array.from(served.tokenizer.encode(text, { addSpecialTokens: true, parseSpecial: false }));
  };
  const vocab = served.model.info.vocabSize;
  const ids = (list: unknown[], where: string): Int32Array => {
    if (!list.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < vocab)) throw new ApiError(400, `${where} must hold token ids (integers 0..${vocab - 1})`, param);
    return Int32Array.from(list as number[]);
  };
  let inputs: Int32Array[];
  if (typeof input === 'string') inputs = [fromText(input, 0)];
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string')) inputs = (input as string[]).map((text, i) => fromText(text, i));
  else if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'number')) inputs = [ids(input, param)];
  else if (Array.isArray(input) && input.length > 0 && input.every(Array.isArray)) inputs = (input as unknown[][]).map((x, i) => ids(x, `${param}[${i}]`));
  else throw new ApiError(400, `${param} must be a non-empty string, array of strings, array of token ids or array of such arrays`, param);
  if (inputs.length > 2048) throw new ApiError(400, `${param} holds ${inputs.length} inputs; at most 2048`, param);
  inputs.forEach((x, i) => {
    if (x.length === 0) throw new ApiError(400, `${param}[${i}] is empty`, param);
  });
  return inputs;
}

/** The embeddings of `inputs` (each cut to the context when `truncate`, else refused past it); usage in tokens. */
function embedAll(ctx: ServerContext, client: string, served: ServedModel, inputs: Int32Array[], truncate: boolean, param: string): { vectors: number[][]; tokens: number } {
  const model = served.model;
  if (!model.hiddenStates) throw new ApiError(400, `the model '${served.id}' gives no hidden states, so it serves no embeddings`, 'model');
  const context = served.contextLength;
  const cut = inputs.map((x, i) => {
    if (x.length <= context) return x;
    if (truncate) return x.subarray(0, context);
    throw new ApiError(400, `${param}[${i}] has ${x.length} tokens; this model's context holds ${context}`, param, 'context_length_exceeded');
  });
  const tokens = cut.reduce((sum, x) => sum + x.length, 0);
  const release = ctx.limiter.admit(client, tokens);
  try {
    const vectors = cut.map((x) => {
      const states = model.hiddenStates!(x, model.newCache(x.length));
      return meanPooled(states, x.length, states.length / x.length);
    });
    return { vectors, tokens };
  } finally {
    release(tokens);
  }
}

function base64Floats(vector: number[]): string {
  return Buffer.from(Float32Array.from(vector).buffer).toString('base64');
}

export function registerEmbeddingRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const openai = (req: FastifyRequest): Body => {
    ctx.checkPaused();
    const principal = ctx.principal(req);
    const b = bodyObject(req.body);
    if (b.model === undefined) throw new ApiError(400, 'model is required', 'model');
    const served = ctx.registry.get(ctx.registry.resolve(b.model).id);
    if (b.dimensions !== undefined && b.dimensions !== null) throw new ApiError(400, 'dimensions is not supported: the embeddings have the model\'s hidden size', 'dimensions');
    const format = optString(b, 'encoding_format') ?? 'float';
    if (format !== 'float' && format !== 'base64') throw new ApiError(400, 'encoding_format must be "float" or "base64"', 'encoding_format');
    const { vectors, tokens } = embedAll(ctx, principal.client, served, inputIds(served, b.input, 'input'), false, 'input');
    return {
      object: 'list', model: b.model,
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: format === 'base64' ? base64Floats(v) : v })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  };
  app.post('/v1/embeddings', (req) => openai(req));
  app.post('/embeddings', (req) => openai(req));

  const ollama = (req: FastifyRequest, legacy: boolean): Body => {
    const started = performance.now();
    ctx.checkPaused();
    const principal = ctx.principal(req);
    const b = bodyObject(req.body);
    const served = ctx.registry.get(ctx.registry.resolve(b.model).id);
    const param = legacy ? 'prompt' : 'input';
    // as Ollama: no input (absent, null, "" or []) only loads the model, answered with no vectors
    const input: unknown = b[param];
    if (input === undefined || input === null || input === '' || (Array.isArray(input) && input.length === 0)) {
      return legacy ? { embedding: [] } : { model: b.model, embeddings: [] };
    }
    const { vectors, tokens } = embedAll(ctx, principal.client, served, inputIds(served, b[param], param), optBool(b, 'truncate') ?? true, param);
    if (legacy) return { embedding: vectors[0] };
    return { model: b.model, embeddings: vectors, total_duration: Math.round((performance.now() - started) * 1e6), load_duration: 0, prompt_eval_count: tokens };
  };
  app.post('/api/embed', (req) => ollama(req, false));
  app.post('/api/embeddings', (req) => ollama(req, true));
}
