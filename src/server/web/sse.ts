/**
 * Incremental decoder for a text/event-stream body (the SSE wire format): feed it decoded text in
 * arbitrary chunks, get back complete events. Comment lines (": keep-alive") are dropped; "data:"
 * lines of one event are joined with "\n"; an event is dispatched at a blank line. Lines may end
 * in \n, \r\n or \r, also when a \r\n pair is split across chunks. Pure, no DOM.
 */

export interface SseEvent {
  /** The "event:" field, "message" when absent. */
  event: string;
  data: string;
}

export class SseDecoder {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private sawCarriageReturn = false;

  /** Decodes a chunk; returns the events it completes. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.sawCarriageReturn && text.startsWith('\n')) text = text.slice(1);
    this.sawCarriageReturn = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.buffer.slice(0, end);
      let skip = 1;
      if (this.buffer[end] === '\r') {
        if (end + 1 === this.buffer.length) this.sawCarriageReturn = true;
        else if (this.buffer[end + 1] === '\n') skip = 2;
      }
      this.buffer = this.buffer.slice(end + skip);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** Text left over without a terminating blank line (a truncated stream) — for error messages. */
  get pending(): string {
    return this.buffer;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const event = { event: this.event || 'message', data: this.data.join('\n') };
      this.data = [];
      this.event = '';
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    return undefined;
  }
}

/** The chat stream's events (see the server contract). */
export type ChatStreamEvent =
  | { type: 'start'; user_message_id: string | number; assistant_message_id: string | number }
  | { type: 'reasoning'; text: string }
  | { type: 'content'; text: string }
  | { type: 'done'; finish_reason: string; usage?: { prompt_tokens: number; completion_tokens: number; reasoning_tokens?: number }; reasoning_ms?: number | null }
  | { type: 'error'; message: string };

/**
 * Parses one event's data as a chat stream event; undefined for an event type this client does not
 * know (ignored, for forward compatibility); throws an Error naming the problem for malformed data.
 */
export function parseChatEvent(data: string): ChatStreamEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new Error(`stream event is not JSON: ${data.slice(0, 80)}`);
  }
  if (typeof value !== 'object' || value === null || typeof (value as { type?: unknown }).type !== 'string') {
    throw new Error(`stream event has no "type": ${data.slice(0, 80)}`);
  }
  const event = value as { type: string; text?: unknown; message?: unknown };
  switch (event.type) {
    case 'reasoning':
    case 'content':
      if (typeof event.text !== 'string') throw new Error(`"${event.type}" event without a text string`);
      break;
    case 'error':
      if (typeof event.message !== 'string') throw new Error('"error" event without a message string');
      break;
    case 'start':
    case 'done':
      break;
    default:
      return undefined;
  }
  return value as ChatStreamEvent;
}
