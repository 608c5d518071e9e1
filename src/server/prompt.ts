/**
 * Chat requests -> prompt text and the generation mode. The chat template renders the messages
 * (the R1 template pre-fills `<think>\n`, so a thinking answer starts inside the thought); a
 * non-thinking request closes the thought right away (`<think>\n\n</think>\n\n`, the R1 form of an
 * empty thought). Tools are described in the system prompt; prefix completion and forced tool
 * calls append the assistant text the model continues from.
 */
import { renderChat, type ChatMessage, type RenderChatOptions } from '../tokenizer/chat-template.js';
import type { GenerationTokenizer } from '../generate/events.js';
import type { ThinkingMode } from '../generate/sequence.js';
import { forcedCallPrefix, toolsPrompt, type ToolDefinition } from './tools.js';

export interface ChatPromptRequest {
  messages: ChatMessage[];
  thinking: boolean;
  tools?: ToolDefinition[];
  /** A tool the answer must call (tool_choice naming a function, or "required"). */
  forcedTool?: string;
  /** Last assistant message with `prefix: true`: the model continues it. */
  prefix?: { content: string; reasoning?: string };
  /** The model's own Jinja template; default the R1 template. */
  template?: string;
}

export interface PromptPlan {
  text: string;
  /** How the Sequence should find the thought. */
  thinking: ThinkingMode;
}

type TemplateTokenizer = GenerationTokenizer & {
  bosId?: number;
  tokenText?: (id: number) => string | undefined;
  addedToken?: (id: number) => unknown;
};

const THINK_OPEN = '<think>\n';
const EMPTY_THOUGHT_CLOSE = '\n</think>\n\n';

export function buildChatPrompt(tokenizer: GenerationTokenizer, request: ChatPromptRequest): PromptPlan {
  const t = tokenizer as TemplateTokenizer;
  const added = (id: number | undefined): string | undefined =>
    id !== undefined && t.tokenText && t.addedToken?.(id) !== undefined ? t.tokenText(id) : undefined;
  const messages = request.messages.map((m) => ({ ...m }));
  if (request.tools && request.tools.length > 0) {
    const section = toolsPrompt(request.tools);
    const system = messages.filter((m) => m.role === 'system').pop();
    if (system) system.content = `${system.content ?? ''}\n\n${section}`;
    else messages.unshift({ role: 'system', content: section });
  }
  const options: RenderChatOptions = { addGenerationPrompt: true, bosToken: added(t.bosId) ?? '' };
  const eos = added(t.eosId);
  if (eos !== undefined) options.eosToken = eos;
  if (request.template !== undefined) options.template = request.template;
  let text = renderChat(messages, options);
  const opensThought = text.endsWith(THINK_OPEN);
  const closeThought = (): void => {
    if (opensThought) text += EMPTY_THOUGHT_CLOSE;
  };

  if (request.forcedTool !== undefined) {
    closeThought();
    return { text: text + forcedCallPrefix(request.forcedTool), thinking: 'off' };
  }
  if (request.prefix) {
    const { content, reasoning } = request.prefix;
    if (request.thinking && reasoning !== undefined && content === '' && opensThought) {
      return { text: text + reasoning, thinking: 'prefilled' }; // continue the thought
    }
    if (opensThought) text += (reasoning ?? '') + EMPTY_THOUGHT_CLOSE;
    return { text: text + content, thinking: 'off' };
  }
  if (!request.thinking) {
    closeThought();
    return { text, thinking: 'off' };
  }
  return { text, thinking: 'auto' };
}

/** Prompt text -> token ids (special tokens parsed: the template writes them). */
export function encodePrompt(tokenizer: GenerationTokenizer, text: string): Int32Array {
  return Int32Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true }));
}
