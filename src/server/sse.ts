/**
 * Server-sent events on a hijacked Fastify reply: `data: <json>\n\n` events, `: keep-alive`
 * comments while the request waits in the queue, and writes that stop quietly once the client
 * is gone. NDJSON (Ollama) uses the same writer with another framing.
 */
import type { FastifyReply } from 'fastify';

export class EventStream {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly reply: FastifyReply, private readonly framing: 'sse' | 'ndjson' = 'sse') {
    reply.hijack();
    const raw = reply.raw;
    raw.statusCode = 200;
    raw.setHeader('content-type', framing === 'sse' ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson');
    raw.setHeader('cache-control', 'no-cache');
    raw.setHeader('x-accel-buffering', 'no');
    raw.flushHeaders();
    raw.on('close', () => {
      this.closed = true;
      this.stopKeepAlive();
    });
  }

  get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  send(data: unknown): void {
    if (this.isClosed) return;
    const json = JSON.stringify(data);
    this.reply.raw.write(this.framing === 'sse' ? `data: ${json}\n\n` : `${json}\n`);
  }

  /** SSE `data: [DONE]`. */
  sendRaw(text: string): void {
    if (!this.isClosed) this.reply.raw.write(text);
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

  end(): void {
    this.stopKeepAlive();
    if (!this.isClosed) this.reply.raw.end();
    this.closed = true;
  }
}
