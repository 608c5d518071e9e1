/**
 * Chat messages -> prompt token ids for the CLI. Uses the tokenizer's own renderChat (src/tokenizer,
 * which runs the model's Jinja template) when it has one; otherwise the DeepSeek-R1 template's
 * rules for system/user/assistant turns (spec formats-and-api.md §4.6), written out here.
 */
import type { ChatMessage } from './engine.js';
import type { GenerationTokenizer } from './events.js';

export interface RenderOptions {
  template?: string;
  addGenerationPrompt: boolean;
  bosToken?: string;
  eosToken?: string;
}

type MaybeChatTokenizer = GenerationTokenizer & {
  renderChat?: (messages: readonly ChatMessage[], options: RenderOptions) => string;
  bosId?: number;
  tokenText?: (id: number) => string | undefined;
  addedToken?: (id: number) => unknown;
};

const EOS_TEXT = '<｜end▁of▁sentence｜>';

/**
 * The R1 template (Feb 2025 revision) for plain turns: BOS, the last system message verbatim,
 * `<｜User｜>` + user text, `<｜Assistant｜>` + answer (text after the last `</think>`) + `<｜end▁of▁sentence｜>`,
 * and `<｜Assistant｜><think>\n` as the generation prompt.
 */
export function renderR1(messages: readonly ChatMessage[], options: RenderOptions): string {
  let system = '';
  for (const m of messages) if (m.role === 'system') system = String(m.content ?? '');
  let out = (options.bosToken ?? '') + system;
  for (const [i, m] of messages.entries()) {
    const content = String(m.content ?? '');
    if (m.role === 'system') continue;
    if (m.role === 'user') out += `<｜User｜>${content}`;
    else if (m.role === 'assistant') out += `<｜Assistant｜>${content.split('</think>').at(-1)}${EOS_TEXT}`;
    else throw new Error(`message ${i}: role '${m.role}' is not supported by the built-in R1 template`);
  }
  if (options.addGenerationPrompt) out += '<｜Assistant｜><think>\n';
  return out;
}

/** Renders `messages` with a generation prompt and encodes them (special tokens parsed, no extra BOS). */
export function chatPromptTokens(tokenizer: GenerationTokenizer, messages: readonly ChatMessage[], template?: string): number[] {
  const t = tokenizer as MaybeChatTokenizer;
  const options: RenderOptions = { addGenerationPrompt: true };
  if (template !== undefined) options.template = template;
  // Only added tokens have a text that encodes back to the same id (a byte-level vocabulary entry does not).
  const addedText = (id: number | undefined): string | undefined =>
    id !== undefined && t.tokenText && t.addedToken?.(id) !== undefined ? t.tokenText(id) : undefined;
  const bos = addedText(t.bosId);
  const eos = addedText(t.eosId);
  if (bos !== undefined) options.bosToken = bos;
  if (eos !== undefined) options.eosToken = eos;
  const text = typeof t.renderChat === 'function' ? t.renderChat(messages, options) : renderR1(messages, options);
  return Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true }));
}
