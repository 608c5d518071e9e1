/**
 * Server-sent events on a hijacked Fastify reply: `data: <json>\n\n` events, `: keep-alive`
 * comments while the request waits in the queue, and writes that stop quietly once the client
 * is gone. NDJSON (Ollama) uses the same writer with another framing. Non-streaming replies that
 * wait in the queue use the same header commit (src/server/json-wait.ts).
 */
import type { FastifyReply } from 'fastify';

/**
 * Takes the reply over from Fastify with status 200 and `contentType`, unbuffered by proxies (the
 * body is written by hand afterwards; errors can then only go into the body). The headers go out
 * now, or with `flush` false together with the first write (one socket write fewer; for callers
 * that write at once anyway).
 */
export function commitHeaders(reply: FastifyReply, contentType: string, flush = true): void {
  reply.hijack();
  const raw = reply.raw;
  raw.statusCode = 200;
  raw.setHeader('content-type', contentType);
  raw.setHeader('cache-control', 'no-cache');
  raw.setHeader('x-accel-buffering', 'no');
  if (flush) raw.flushHeaders();
}

/**
 * At most one socket write per stream per window of this many milliseconds: an event that comes
 * while no window is open is written at once and opens one; events that come during a window are
 * held (as one string) and leave in one write when it closes, which opens the next window. A socket write costs tens
 * of µs of the server's main thread (and as much of the client's), more than a token's share of a
 * batched decode step; a reader's screen shows no more than one update per 60 Hz frame anyway.
 */
const COALESCE_MS = 16;
/** How long sendWithNext's event waits for company before it leaves alone. */
const WITH_NEXT_MS = 250;

export class EventStream {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The open coalescing window, and the text held in it (written in one go when it closes). */
  private window: NodeJS.Timeout | undefined;
  private held = '';
  /** holdUntilEnd: everything written from then on leaves with end(). */
  private holding = false;
  /** sendWithNext's deadline. */
  private withNext: NodeJS.Timeout | undefined;

  /**
   * With `flush` false the headers leave with the first event, for a route that writes one at once
   * (the role chunk when the generation starts, or a keep-alive comment when it waits in the queue).
   */
  constructor(private readonly reply: FastifyReply, private readonly framing: 'sse' | 'ndjson' = 'sse', flush = true) {
    commitHeaders(reply, framing === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson', flush);
    reply.raw.on('close', () => {
      this.closed = true;
      this.stopKeepAlive();
      clearTimeout(this.window);
      clearTimeout(this.withNext);
    });
  }

  get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  /** An event of `data` (SSE: named `event` when given, as the Responses API's events are). */
  send(data: unknown, event?: string): void {
    this.sendJson(JSON.stringify(data), event);
  }

  /** An event whose JSON text the caller built (see openai.ts's chunk templates). */
  sendJson(json: string, event?: string): void {
    if (this.isClosed) return;
    const text = this.frame(json, event);
    if (this.window || this.holding) {
      this.held += text;
      return;
    }
    this.writeHeldAnd(text);
    this.openWindow();
  }

  /**
   * An event that leaves with the next write instead of on its own: a stream's opening chunk
   * (the role) then reaches the client together with the first token, one socket write fewer,
   * and the first token does not wait for the window the opening chunk's own write would open.
   * If nothing else is written within `withinMs` (a long prompt still being read), it leaves
   * alone then, with the headers, so that clients see the stream start.
   */
  sendWithNext(data: unknown, event?: string, withinMs = WITH_NEXT_MS): void {
    if (this.isClosed) return;
    this.held += this.frame(JSON.stringify(data), event);
    clearTimeout(this.withNext);
    this.withNext = setTimeout(() => {
      if (!this.window && !this.holding && this.held !== '' && !this.isClosed) this.writeHeldAnd('');
    }, withinMs);
    this.withNext.unref();
  }

  private frame(json: string, event?: string): string {
    if (this.framing === 'ndjson') return `${json}\n`;
    return event === undefined ? `data: ${json}\n\n` : `event: ${event}\ndata: ${json}\n\n`;
  }

  /** Writes what is held (outside a window: an event sent with sendWithNext), then `text`. */
  private writeHeldAnd(text: string): void {
    const out = this.held + text;
    this.held = '';
    this.reply.raw.write(out);
  }

  private openWindow(): void {
    this.window = setTimeout(() => this.closeWindow(), COALESCE_MS);
    this.window.unref();
  }

  /** Sends what the window held, in one write; that write opens the next window. */
  private closeWindow(): void {
    this.window = undefined;
    if (this.held === '' || this.holding || this.isClosed) return;
    const text = this.held;
    this.held = '';
    this.reply.raw.write(text);
    this.openWindow();
  }

  /** SSE `data: [DONE]` and comments: after what is held, if anything is. */
  sendRaw(text: string): void {
    if (this.isClosed) return;
    if (this.holding || (this.window && this.held !== '')) this.held += text;
    else this.writeHeldAnd(text);
  }

  /** Comments every `ms` until stopKeepAlive (SSE only; NDJSON streams have no comments). */
  keepAlive(ms: number): void {
    if (this.framing !== 'sse' || this.timer) return;
    this.sendRaw(': keep-alive\n\n');
    this.timer = setInterval(() => this.sendRaw(': keep-alive\n\n'), ms);
    this.timer.unref();
  }

  stopKeepAlive(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Holds the following writes back until end(), which sends them in one go (the closing events
   * of a stream: one socket write instead of one per event).
   */
  holdUntilEnd(): void {
    this.holding = true;
  }

  end(): void {
    this.stopKeepAlive();
    clearTimeout(this.window);
    clearTimeout(this.withNext);
    this.window = undefined;
    const text = this.held;
    this.held = '';
    if (!this.isClosed) {
      if (text === '') this.reply.raw.end();
      else this.reply.raw.end(text);
    }
    this.closed = true;
  }
}

/**
 * JSON.stringify(build(text)) for any string `text`, from one JSON.stringify of a template: the
 * text's JSON spliced between the constant parts (a streamed chunk's id, model, ... are built once
 * per request instead of once per token).
 */
export function jsonTemplate(build: (text: string) => unknown): (text: string) => string {
  const mark = '\u0000frugal-text\u0000';
  const parts = JSON.stringify(build(mark)).split(JSON.stringify(mark));
  if (parts.length !== 2) return (text) => JSON.stringify(build(text));
  const [head, tail] = parts as [string, string];
  return (text) => head + JSON.stringify(text) + tail;
}
