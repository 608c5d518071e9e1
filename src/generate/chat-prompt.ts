/**
 * Chat messages -> prompt token ids. Rendering is src/tokenizer's renderChat (the R1 template in
 * TypeScript by default, or the model's own Jinja template); a tokenizer object that carries its
 * own renderChat method (test fakes) is used as it is.
 */
import { renderChat, type ChatMessage, type RenderChatOptions } from '../tokenizer/chat-template.js';
import type { GenerationTokenizer } from './events.js';

export type { ChatMessage } from '../tokenizer/chat-template.js';

type RenderingTokenizer = GenerationTokenizer & {
  renderChat?: (messages: readonly ChatMessage[], options: RenderChatOptions) => string;
  bosId?: number;
  tokenText?: (id: number) => string | undefined;
  addedToken?: (id: number) => unknown;
};

export interface ChatPromptOptions {
  /** Jinja chat template (e.g. the GGUF's `tokenizer.chat_template`); default: the R1 template. */
  template?: string;
  /** End with the assistant prefix (R1: `<｜Assistant｜><think>\n`). Default true. */
  addGenerationPrompt?: boolean;
}

/**
 * Renders `messages` and encodes them (special tokens parsed, no extra BOS: the template writes
 * it). The BOS/EOS texts given to the template are the tokenizer's, when they are added tokens
 * (a plain byte-level vocabulary entry would not encode back to the same id).
 */
export function chatPromptTokens(tokenizer: GenerationTokenizer, messages: readonly ChatMessage[], options: ChatPromptOptions = {}): number[] {
  const t = tokenizer as RenderingTokenizer;
  const addedText = (id: number | undefined): string | undefined =>
    id !== undefined && t.tokenText && t.addedToken?.(id) !== undefined ? t.tokenText(id) : undefined;
  const render: RenderChatOptions = {
    addGenerationPrompt: options.addGenerationPrompt ?? true,
    bosToken: addedText(t.bosId) ?? '',
  };
  const eos = addedText(t.eosId);
  if (eos !== undefined) render.eosToken = eos;
  if (options.template !== undefined) render.template = options.template;
  const text = typeof t.renderChat === 'function' ? t.renderChat(messages, render) : renderChat(messages, render);
  return Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true }));
}
