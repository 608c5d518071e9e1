/**
 * llama.cpp server's token routes, for clients that count or inspect tokens:
 *   POST /tokenize   {"content", "add_special"?, "parse_special"?, "with_pieces"?, "model"?} -> {"tokens": [ids]}
 *                    (with_pieces: [{"id", "piece"}])
 *   POST /detokenize {"tokens": [ids], "model"?} -> {"content"}
 * `model` picks a configured model or alias (default: the first one). Defaults as llama.cpp's:
 * no BOS/EOS added, control-token text parsed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { ApiError } from '../errors.js';
import { bodyObject, optBool, type Body } from '../validate.js';

function servedOf(ctx: ServerContext, b: Body) {
  const resolved = ctx.registry.resolve(b.model ?? ctx.registry.defaultId);
  return ctx.registry.get(resolved.id);
}

export function registerTokenizeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/tokenize', (req: FastifyRequest) => {
    ctx.principal(req);
    const b = bodyObject(req.body);
    if (typeof b.content !== 'string') throw new ApiError(400, 'content must be a string', 'content');
    const tokenizer = servedOf(ctx, b).tokenizer;
    const ids = Array.from(tokenizer.encode(b.content, { addSpecialTokens: optBool(b, 'add_special') ?? false, parseSpecial: optBool(b, 'parse_special') ?? true }));
    return { tokens: optBool(b, 'with_pieces') ? ids.map((id) => ({ id, piece: tokenizer.decode([id]) })) : ids };
  });
  app.post('/detokenize', (req: FastifyRequest) => {
    ctx.principal(req);
    const b = bodyObject(req.body);
    const served = servedOf(ctx, b);
    const tokens = b.tokens;
    const vocab = served.model.info.vocabSize;
    if (!Array.isArray(tokens) || !tokens.every((t) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < vocab)) {
      throw new ApiError(400, `tokens must be an array of token ids (integers 0..${vocab - 1})`, 'tokens');
    }
    return { content: served.tokenizer.decode(tokens as number[]) };
  });
}
