/**
 * One chat message on screen. Assistant messages show the thinking in a <details> block (open
 * while it streams, collapsed once the answer starts, summary "Thought for 3.2 s") and the answer
 * as sanitized markdown; re-rendering is batched to one per animation frame while streaming.
 */
import { h, renderMarkdownTree } from './dom.js';
import { parseMarkdown } from './markdown.js';
import type { StoredMessage } from './api.js';
import type { ChatStreamEvent } from './sse.js';

export function userMessageView(content: string): HTMLElement {
  return h('div', { class: 'message user' }, h('div', { class: 'bubble' }, content));
}

/** Human label for a finish reason, or undefined for a normal stop. */
export function finishLabel(reason: string | null | undefined): string | undefined {
  switch (reason) {
    case null:
    case undefined:
    case 'stop':
      return undefined;
    case 'abort':
      return 'Stopped';
    case 'length':
      return 'Cut off at the token limit';
    default:
      return `Ended: ${reason}`;
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export class AssistantView {
  readonly root: HTMLElement;
  private readonly thinking: HTMLDetailsElement;
  private readonly summary: HTMLElement;
  private readonly reasoningText: HTMLElement;
  private readonly answer: HTMLElement;
  private readonly meta: HTMLElement;
  private reasoning = '';
  private content = '';
  private thinkingStarted = 0;
  private thinkingMs: number | undefined;
  private frame = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  finished = false;

  constructor(private readonly onChange: () => void = () => {}) {
    this.summary = h('summary', {}, 'Thinking…');
    this.reasoningText = h('div', { class: 'reasoning-text' });
    this.thinking = h('details', { class: 'thinking' }, this.summary, this.reasoningText);
    this.thinking.hidden = true;
    this.answer = h('div', { class: 'answer markdown' });
    this.meta = h('div', { class: 'meta' });
    this.meta.hidden = true;
    this.root = h('div', { class: 'message assistant' }, this.thinking, this.answer, this.meta);
  }

  /** A finished message loaded from the server. */
  static stored(message: StoredMessage): AssistantView {
    const view = new AssistantView();
    view.reasoning = message.reasoning_content ?? '';
    view.content = message.content;
    view.thinkingMs = message.reasoning_ms ?? undefined;
    view.finished = true;
    view.render();
    view.setMeta(finishLabel(message.finish_reason), message.finish_reason === 'abort' ? 'stopped' : undefined);
    return view;
  }

  /** Marks the message as waiting for the server's first event. */
  startStreaming(): void {
    this.root.classList.add('streaming');
    this.thinkingStarted = performance.now();
  }

  handle(event: ChatStreamEvent): void {
    switch (event.type) {
      case 'reasoning':
        if (this.reasoning === '') this.openThinking();
        this.reasoning += event.text;
        break;
      case 'content':
        if (this.content === '' && this.reasoning !== '' && this.thinkingMs === undefined) this.closeThinking(performance.now() - this.thinkingStarted);
        this.content += event.text;
        break;
      case 'done':
        this.finish(event.finish_reason, event.reasoning_ms ?? undefined);
        return;
      case 'error':
        this.fail(event.message);
        return;
      case 'start':
        return;
    }
    this.schedule();
  }

  /** Ends the stream with `reason` ("stop", "length", "abort", ...). */
  finish(reason: string, reasoningMs?: number): void {
    if (this.finished) return;
    this.finished = true;
    if (this.reasoning !== '') this.closeThinking(reasoningMs ?? this.thinkingMs ?? performance.now() - this.thinkingStarted);
    this.stopTimer();
    this.root.classList.remove('streaming');
    this.render();
    this.setMeta(finishLabel(reason), reason === 'abort' ? 'stopped' : undefined);
  }

  fail(message: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.reasoning !== '') this.closeThinking(this.thinkingMs ?? performance.now() - this.thinkingStarted);
    this.stopTimer();
    this.root.classList.remove('streaming');
    this.render();
    this.setMeta(`Error: ${message}`, 'error');
  }

  private openThinking(): void {
    this.thinking.hidden = false;
    this.thinking.open = true;
    this.timer = setInterval(() => this.updateSummary(), 100);
  }

  private closeThinking(ms: number): void {
    this.thinkingMs = ms;
    this.thinking.open = false;
    this.stopTimer();
    this.updateSummary();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private updateSummary(): void {
    if (this.thinkingMs !== undefined) this.summary.textContent = `Thought for ${formatSeconds(this.thinkingMs)}`;
    else if (this.finished) this.summary.textContent = 'Thoughts';
    else this.summary.textContent = `Thinking… ${formatSeconds(performance.now() - this.thinkingStarted)}`;
  }

  private setMeta(text: string | undefined, kind?: string): void {
    this.meta.hidden = text === undefined;
    this.meta.textContent = text ?? '';
    if (kind) this.root.classList.add(kind);
    this.onChange();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    this.thinking.hidden = this.reasoning === '';
    this.reasoningText.textContent = this.reasoning;
    if (this.reasoning !== '') this.updateSummary();
    renderMarkdownTree(this.answer, parseMarkdown(this.content));
    this.onChange();
  }
}
