/**
 * Streaming split of generated text into `reasoning` and `content` at `<think>` / `</think>`
 * (DeepSeek-R1 format: `<think>\n...reasoning...\n</think>\n\nanswer`).
 *
 * - The R1 chat template pre-fills `<think>\n` in the prompt, so the model only emits `</think>`:
 *   start with `startInReasoning: true`.
 * - Otherwise a `<think>` is recognized only at the very start of the output (after optional
 *   whitespace); output that does not start with it is all content.
 * - Only one thought: after `</think>` everything is content, tags included.
 * - Tags may be split across pieces at any position: text that could begin a tag is held back.
 * - Whitespace: the reasoning is trimmed at both ends and the content's leading whitespace after
 *   `</think>` is dropped (as DeepSeek's API returns `reasoning_content` and `content`).
 */
export type Channel = 'reasoning' | 'content';

export interface ChannelText {
  channel: Channel;
  text: string;
}

export interface ReasoningParserOptions {
  /** The prompt already opened the thought (R1 template's `<think>\n`). Default false. */
  startInReasoning?: boolean;
  openTag?: string;
  closeTag?: string;
}

type Mode = 'start' | 'reasoning' | 'after-think' | 'content';

export class ReasoningParser {
  private mode: Mode;
  private readonly open: string;
  private readonly close: string;
  /** Unprocessed text (a possible partial tag, or leading whitespace at the start). */
  private buf = '';
  /** Trailing whitespace of the reasoning, held until more reasoning follows. */
  private heldSpace = '';
  private reasoningBegun = false;

  constructor(options: ReasoningParserOptions = {}) {
    this.open = options.openTag ?? '<think>';
    this.close = options.closeTag ?? '</think>';
    if (!this.open || !this.close) throw new Error('reasoning tags must be non-empty');
    this.mode = options.startInReasoning ? 'reasoning' : 'start';
  }

  /** True while the output is inside the thought (the reasoning budget applies). */
  get inReasoning(): boolean {
    return this.mode === 'reasoning';
  }

  /** True once the thought was closed (or the output turned out to have none). */
  get reasoningDone(): boolean {
    return this.mode === 'after-think' || this.mode === 'content';
  }

  /** Feeds a piece of generated text; returns the text it releases, in order. */
  push(piece: string): ChannelText[] {
    const out: ChannelText[] = [];
    this.buf += piece;
    for (;;) {
      if (this.mode === 'start') {
        const rest = this.buf.trimStart();
        if (rest.startsWith(this.open)) {
          this.mode = 'reasoning';
          this.buf = rest.slice(this.open.length);
          continue;
        }
        if (this.open.startsWith(rest)) return out; // still may become <think>
        this.mode = 'content';
        continue;
      }
      if (this.mode === 'reasoning') {
        const i = this.buf.indexOf(this.close);
        if (i >= 0) {
          this.emitReasoning(this.buf.slice(0, i), true, out);
          this.buf = this.buf.slice(i + this.close.length);
          this.mode = 'after-think';
          continue;
        }
        const hold = partialSuffix(this.buf, this.close);
        this.emitReasoning(this.buf.slice(0, this.buf.length - hold), false, out);
        this.buf = this.buf.slice(this.buf.length - hold);
        return out;
      }
      if (this.mode === 'after-think') {
        this.buf = this.buf.trimStart();
        if (this.buf === '') return out;
        this.mode = 'content';
        continue;
      }
      if (this.buf) out.push({ channel: 'content', text: this.buf });
      this.buf = '';
      return out;
    }
  }

  /** End of output: releases whatever was held back. */
  flush(): ChannelText[] {
    const out: ChannelText[] = [];
    if (this.mode === 'reasoning') {
      this.emitReasoning(this.buf, true, out);
    } else if (this.mode === 'start' || this.mode === 'content') {
      if (this.buf) out.push({ channel: 'content', text: this.buf });
      if (this.mode === 'start') this.mode = 'content';
    }
    this.buf = '';
    return out;
  }

  private emitReasoning(text: string, final: boolean, out: ChannelText[]): void {
    if (!this.reasoningBegun) {
      text = text.trimStart();
      if (text === '') return;
      this.reasoningBegun = true;
    }
    const all = this.heldSpace + text;
    const trimmed = all.trimEnd();
    this.heldSpace = final ? '' : all.slice(trimmed.length);
    if (trimmed) out.push({ channel: 'reasoning', text: trimmed });
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialSuffix(text: string, tag: string): number {
  for (let len = Math.min(tag.length - 1, text.length); len > 0; len--) {
    if (text.endsWith(tag.slice(0, len))) return len;
  }
  return 0;
}

/** True when a rendered prompt ends inside an opened thought (`<think>` plus optional whitespace). */
export function promptOpensThought(promptTail: string, openTag = '<think>', closeTag = '</think>'): boolean {
  const open = promptTail.lastIndexOf(openTag);
  if (open < 0) return false;
  const after = promptTail.slice(open + openTag.length);
  return !after.includes(closeTag) && after.trim() === '';
}
