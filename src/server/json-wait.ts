/**
 * Non-streaming JSON replies for requests that wait in the admission queue
 * (../shared/spec/formats-and-api.md §5.4): status 200 and `Content-Type: application/json` go out
 * at once, then a blank line every `keepAliveMs` until the generation starts, so that a proxy
 * with an idle timeout keeps the connection open; the JSON body follows once the answer is ready.
 * JSON parsers (and the OpenAI SDKs) skip the leading whitespace. A request that does not wait
 * gets an ordinary Fastify reply with its real status code.
 */
import type { FastifyReply } from 'fastify';
import type { ServerContext } from './context.js';
import { ApiError, errorBody, type ErrorBody } from './errors.js';
import { commitHeaders } from './sse.js';

export class WaitingJsonReply {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly reply: FastifyReply, keepAliveMs: number) {
    commitHeaders(reply, 'application/json');
    reply.raw.on('close', () => this.stopKeepAlive());
    this.write('\n');
    this.timer = setInterval(() => this.write('\n'), keepAliveMs);
    this.timer.unref();
  }

  get isClosed(): boolean {
    return this.reply.raw.destroyed || this.reply.raw.writableEnded;
  }

  /** The generation started: no more blank lines (the body follows when it is done). */
  stopKeepAlive(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Writes the body and ends the response (nothing when the client is gone). */
  end(body: unknown): void {
    this.stopKeepAlive();
    if (!this.isClosed) this.reply.raw.end(JSON.stringify(body));
  }

  /**
   * Ends with the error body `{"error": {...}}` under the status 200 already sent: once the
   * headers are out the status cannot change. DeepSeek's API behaves the same way for requests
   * that got blank lines while queued; clients read the error from the body.
   */
  fail(error: unknown): void {
    this.end(errorBodyOf(error));
  }

  private write(text: string): void {
    if (!this.isClosed) this.reply.raw.write(text);
  }
}

function errorBodyOf(error: unknown): ErrorBody {
  if (error instanceof ApiError) return error.body();
  return errorBody(500, `internal error: ${(error as Error).message ?? String(error)}`);
}

/** True when a new request would wait in the queue (every generation slot is taken). */
export function mustWait(ctx: ServerContext): boolean {
  return ctx.scheduler.activeCount >= ctx.scheduler.maxActive;
}

/**
 * Answers a non-streaming request with the JSON `produce` resolves to: an ordinary reply when the
 * request runs at once, or blank lines while it waits in the queue and then the body (or the
 * error body) under status 200. `produce` gets the handler to call when the generation starts.
 */
export async function sendJsonAnswer(ctx: ServerContext, reply: FastifyReply, produce: (onStart: () => void) => Promise<unknown>): Promise<FastifyReply> {
  if (!mustWait(ctx)) return reply.send(await produce(() => {}));
  const waiting = new WaitingJsonReply(reply, ctx.settings.keepAliveMs);
  try {
    waiting.end(await produce(() => waiting.stopKeepAlive()));
  } catch (error) {
    waiting.fail(error);
  }
  return reply;
}
