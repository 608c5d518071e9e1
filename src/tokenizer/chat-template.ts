/**
 * Chat prompt rendering. The DeepSeek-R1 template (../shared/spec/formats-and-api.md §4.6, the
 * Feb-2025 revision shipped with R1 and the R1 distills) is implemented directly in TypeScript;
 * any other model's Jinja `chat_template` is rendered with @huggingface/jinja.
 */
import { Template } from '@huggingface/jinja';

export const R1_BOS = '<｜begin▁of▁sentence｜>';
export const R1_EOS = '<｜end▁of▁sentence｜>';

export interface ToolCall {
  id?: string;
  type: string;
  function: { name: string; arguments: string | Record<string, unknown> };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** null for an assistant turn that only calls tools. */
  content: string | null;
  /** Reasoning of an earlier assistant turn; the R1 template never puts it back into the prompt. */
  reasoning_content?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
}

export interface RenderChatOptions {
  /** Jinja source; default: the DeepSeek-R1 template (TypeScript implementation). */
  template?: string;
  /** End with the assistant prefix (R1: `<｜Assistant｜><think>\n`). */
  addGenerationPrompt: boolean;
  /** Default: `<｜begin▁of▁sentence｜>` for the R1 template, '' for a Jinja template. */
  bosToken?: string;
  eosToken?: string;
  tools?: unknown[];
  /** Extra variables for Jinja templates (e.g. `enable_thinking`). */
  variables?: Record<string, unknown>;
}

function argumentsText(args: string | Record<string, unknown>): string {
  return typeof args === 'string' ? args : JSON.stringify(args);
}

function toolCallText(call: ToolCall): string {
  return `${call.type}<｜tool▁sep｜>${call.function.name}\n\`\`\`json\n${argumentsText(call.function.arguments)}\n\`\`\`<｜tool▁call▁end｜>`;
}

/**
 * The R1 template, statement for statement: last system message first (after BOS); users as
 * `<｜User｜>`; assistant text with everything up to the last `</think>` dropped; tool-call turns
 * and tool outputs with the template's own quirks (the "first call" and "first output" flags are
 * never reset, a single call never gets its closing markers); generation prompt `<｜Assistant｜><think>\n`.
 */
export function renderR1Chat(messages: readonly ChatMessage[], options: Omit<RenderChatOptions, 'template'>): string {
  let systemPrompt = '';
  for (const message of messages) if (message.role === 'system') systemPrompt = message.content ?? '';
  let out = (options.bosToken ?? R1_BOS) + systemPrompt;
  let isFirstCall = false;
  let isTool = false;
  let isOutputFirst = true;
  for (const message of messages) {
    const content = message.content;
    switch (message.role) {
      case 'user':
        isTool = false;
        out += `<｜User｜>${content ?? ''}`;
        break;
      case 'assistant':
        if (content === null || content === undefined) {
          isTool = false;
          for (const call of message.tool_calls ?? []) {
            if (!isFirstCall) {
              out += `<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>${toolCallText(call)}`;
              isFirstCall = true;
            } else {
              out += `\n<｜tool▁call▁begin｜>${toolCallText(call)}<｜tool▁calls▁end｜><｜end▁of▁sentence｜>`;
            }
          }
        } else if (isTool) {
          out += `<｜tool▁outputs▁end｜>${content}<｜end▁of▁sentence｜>`;
          isTool = false;
        } else {
          const answer = content.includes('</think>') ? content.split('</think>').at(-1)! : content;
          out += `<｜Assistant｜>${answer}<｜end▁of▁sentence｜>`;
        }
        break;
      case 'tool':
        isTool = true;
        if (isOutputFirst) {
          out += `<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>${content ?? ''}<｜tool▁output▁end｜>`;
          isOutputFirst = false;
        } else {
          out += `\n<｜tool▁output▁begin｜>${content ?? ''}<｜tool▁output▁end｜>`;
        }
        break;
      case 'system':
        break;
      default:
        throw new Error(`renderChat: unknown message role ${JSON.stringify((message as { role: unknown }).role)}`);
    }
  }
  if (isTool) out += '<｜tool▁outputs▁end｜>';
  if (options.addGenerationPrompt && !isTool) out += '<｜Assistant｜><think>\n';
  return out;
}

const compiled = new Map<string, Template>();

/** Renders a conversation with the R1 template (default) or the given Jinja chat template. */
export function renderChat(messages: readonly ChatMessage[], options: RenderChatOptions): string {
  if (options.template === undefined) return renderR1Chat(messages, options);
  let template = compiled.get(options.template);
  if (!template) {
    try {
      template = new Template(options.template);
    } catch (error) {
      throw new Error(`chat template does not parse: ${(error as Error).message}`);
    }
    if (compiled.size > 16) compiled.clear();
    compiled.set(options.template, template);
  }
  try {
    return template.render({
      ...options.variables,
      messages: messages as unknown as Record<string, unknown>[],
      add_generation_prompt: options.addGenerationPrompt,
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
      ...(options.tools !== undefined ? { tools: options.tools } : {}),
    });
  } catch (error) {
    throw new Error(`chat template failed to render: ${(error as Error).message}`);
  }
}
