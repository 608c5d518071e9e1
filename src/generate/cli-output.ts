/**
 * Terminal rendering of a generation for `frugal run` / `frugal chat`: the thought dimmed (ANSI)
 * on a terminal, under a "Thinking:" header otherwise, collapsed to a one-line summary, or hidden.
 */
import type { DoneEvent, GenerationEvent } from './events.js';

export type ThinkingDisplay = 'show' | 'collapse' | 'hide';

const DIM = '\x1b[2m';
const RESET = '\x1b[0m';
const CLEAR_LINE = '\r\x1b[2K';

export interface TextSink {
  write(text: string): unknown;
}

export class AnswerPrinter {
  private phase: 'start' | 'reasoning' | 'content' = 'start';
  private reasoningTokens = 0;
  private reasoningStart = 0;
  private reasoningMs = 0;
  private wroteAny = false;
  private endsWithNewline = true;

  constructor(
    private readonly out: TextSink,
    private readonly display: ThinkingDisplay,
    private readonly color: boolean,
  ) {}

  onEvent(event: GenerationEvent): void {
    if (event.type === 'done') return;
    if (event.channel === 'reasoning') {
      if (event.type === 'token') this.reasoningTokens++;
      if (this.phase === 'start') this.beginReasoning();
      if (this.display === 'show' && event.text) this.write(event.text);
    } else if (event.text) {
      if (this.phase !== 'content') this.beginContent();
      this.write(event.text);
    }
  }

  /** Ends the output (closes the thought if it never ended) with a newline. */
  end(): void {
    if (this.phase === 'reasoning') this.endReasoning();
    if (this.wroteAny && !this.endsWithNewline) this.out.write('\n');
  }

  private write(text: string): void {
    this.out.write(this.color ? visibleControls(text) : text);
    this.wroteAny = true;
    this.endsWithNewline = text.endsWith('\n');
  }

  private beginReasoning(): void {
    this.phase = 'reasoning';
    this.reasoningStart = performance.now();
    if (this.display === 'show') {
      if (this.color) this.out.write(DIM);
      else this.write('Thinking:\n');
    } else if (this.display === 'collapse' && this.color) {
      this.out.write(`${DIM}thinking...${RESET}`);
    }
  }

  private endReasoning(): void {
    this.reasoningMs = performance.now() - this.reasoningStart;
    if (this.display === 'show') {
      if (this.color) this.out.write(RESET);
    } else if (this.display === 'collapse') {
      const summary = `thought for ${this.reasoningTokens} tokens (${(this.reasoningMs / 1000).toFixed(1)} s)`;
      if (this.color) this.out.write(`${CLEAR_LINE}${DIM}${summary}${RESET}`);
      else this.write(summary);
    }
  }

  private beginContent(): void {
    if (this.phase === 'reasoning') {
      this.endReasoning();
      if (this.display !== 'hide') this.write(this.display === 'show' && !this.color ? '\n\nAnswer:\n' : '\n\n');
    }
    this.phase = 'content';
  }
}

/**
 * Control characters other than tab and newline in caret notation (ESC -> ^[), so that model
 * output cannot move the cursor or send escape sequences to the terminal.
 */
export function visibleControls(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => (c === '\x7f' ? '^?' : `^${String.fromCharCode(c.charCodeAt(0) + 64)}`));
}

/** One line of counts and speed: prompt tokens, generated tokens, tokens/s. */
export function formatStats(done: DoneEvent): string {
  const u = done.usage;
  const t = done.timings;
  const cached = u.cachedTokens > 0 ? ` (${u.cachedTokens} cached)` : '';
  const reasoning = u.reasoningTokens > 0 ? ` (${u.reasoningTokens} reasoning)` : '';
  return (
    `prompt ${u.promptTokens} tokens${cached} in ${t.prefillMs.toFixed(0)} ms, ` +
    `generated ${u.completionTokens} tokens${reasoning} at ${t.tokensPerSecond.toFixed(1)} tokens/s [${done.finishReason}]`
  );
}
