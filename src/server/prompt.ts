/**
 * Chat requests -> prompt text and the generation mode. The chat template renders the messages
 * (the R1 template pre-fills `<think>\n`, so a thinking answer starts inside the thought); a
 * non-thinking request closes the thought right away (`<think>\n\n</think>\n\n`, the R1 form of an
 * empty thought). Tools are described in the system prompt; prefix completion and forced tool
 * calls append the assistant text the model continues from.
 *
 * Special-token safety (../shared/spec/formats-and-api.md §4.1): the prompt is kept as pieces,
 * the template's own text (trusted) and the request's contents (untrusted: message text, reasoning,
 * tool calls and definitions, prefixes). To find them, the template is rendered a second time with
 * every content replaced by a unique sentinel. encodePrompt matches added tokens (control markers
 * such as `<｜User｜>`, `<｜Assistant｜>`, `<｜end▁of▁sentence｜>`) only inside trusted pieces, so
 * a user who writes `<｜Assistant｜>` gets that text, never the marker. Note that the tokenizer's
 * `parseSpecial: false` alone is not enough: it still matches added tokens not flagged special,
 * and DeepSeek-V3 flags `<｜User｜>`, `<｜Assistant｜>` and the tool markers as not special.
 */
import { randomBytes } from 'node:crypto';
import { renderChat, type ChatMessage, type RenderChatOptions } from '../tokenizer/chat-template.js';
import { ApiError } from './errors.js';
import type { GenerationTokenizer } from '../generate/events.js';
import type { ThinkingMode } from '../generate/sequence.js';
import { forcedCallPrefix, toolsPrompt, type ToolDefinition } from './tools.js';

/**
 * The template option for a model's chat prompts: its own Jinja template, unless that is the R1
 * template (rendered by the built-in TypeScript version) or it has none (R1 by default).
 */
export function templateOption(chatTemplate: string | undefined): { template?: string } {
  const r1 = chatTemplate !== undefined && chatTemplate.includes('<｜Assistant｜>') && chatTemplate.includes('<｜User｜>');
  return chatTemplate !== undefined && !r1 ? { template: chatTemplate } : {};
}

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

/** A run of prompt text: the template's own (added tokens parsed) or request content (never parsed as added tokens). */
export interface PromptPiece {
  text: string;
  trusted: boolean;
}

export interface PromptPlan {
  /** The whole prompt text (the pieces joined). */
  text: string;
  pieces: PromptPiece[];
  /** How the Sequence should find the thought. */
  thinking: ThinkingMode;
}

type TemplateTokenizer = GenerationTokenizer & {
  bosId?: number;
  tokenText?: (id: number) => string | undefined;
  addedToken?: (id: number) => unknown;
  spec?: { addedTokens?: readonly { content: string; special: boolean; id: number }[] };
};

const THINK_OPEN = '<think>\n';
const EMPTY_THOUGHT_CLOSE = '\n</think>\n\n';

export function buildChatPrompt(tokenizer: GenerationTokenizer, request: ChatPromptRequest): PromptPlan {
  const t = tokenizer as TemplateTokenizer;
  const added = (id: number | undefined): string | undefined =>
    id !== undefined && t.tokenText && t.addedToken?.(id) !== undefined ? t.tokenText(id) : undefined;
  const messages: TrustedMessage[] = request.messages.map((m) => ({ ...m }));
  if (request.tools && request.tools.length > 0) {
    // The tools section ends with the call format, written with the real markers (trusted); the
    // tool definitions before it are request content.
    const section = toolsPrompt(request.tools);
    const tail = commonSuffix(section, toolsPrompt([]));
    const definitions = section.slice(0, section.length - tail.length);
    const system = messages.filter((m) => m.role === 'system').pop();
    if (system) {
      const own = system.content ?? '';
      system.content = `${own}\n\n${section}`;
      system.markContent = (mark) => `${mark(own)}\n\n${mark(definitions)}${tail}`;
    } else {
      messages.unshift({ role: 'system', content: section, markContent: (mark) => `${mark(definitions)}${tail}` });
    }
  }
  const options: RenderChatOptions = { addGenerationPrompt: true, bosToken: added(t.bosId) ?? '' };
  const eos = added(t.eosId);
  if (eos !== undefined) options.eosToken = eos;
  if (request.template !== undefined) options.template = request.template;
  const pieces = renderPieces(messages, options, t);
  const text = (): string => pieces.map((p) => p.text).join('');
  const opensThought = text().endsWith(THINK_OPEN);
  const closeThought = (): void => {
    if (opensThought) pieces.push({ text: EMPTY_THOUGHT_CLOSE, trusted: true });
  };
  const plan = (thinking: ThinkingMode): PromptPlan => ({ text: text(), pieces, thinking });

  if (request.forcedTool !== undefined) {
    closeThought();
    pieces.push({ text: forcedCallPrefix(request.forcedTool), trusted: true });
    return plan('off');
  }
  if (request.prefix) {
    const { content, reasoning } = request.prefix;
    if (request.thinking && reasoning !== undefined && content === '' && opensThought) {
      pieces.push({ text: reasoning, trusted: false });
      return plan('prefilled'); // continue the thought
    }
    if (opensThought) {
      pieces.push({ text: reasoning ?? '', trusted: false });
      pieces.push({ text: EMPTY_THOUGHT_CLOSE, trusted: true });
    }
    pieces.push({ text: content, trusted: false });
    return plan('off');
  }
  if (!request.thinking) {
    closeThought();
    return plan('off');
  }
  return plan('auto');
}

/** A message whose content is partly the server's own text: markContent writes it with the request's parts marked. */
type TrustedMessage = ChatMessage & { markContent?: (mark: (content: string) => string) => string };

function commonSuffix(a: string, b: string): string {
  let n = 0;
  while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
  return a.slice(a.length - n);
}

const SENTINEL_OPEN = '\uE000';
const SENTINEL_CLOSE = '\uE001';
/** Any sentinel: the nonce, then the content's index (compiled once; a pattern per nonce cost a regex compilation per request). */
const SENTINEL = /\uE000([0-9a-z]+):(\d+)\uE001/g;
/** A per-process secret and a counter make each rendering's nonce: unguessable by the contents, without random bytes per request. */
const NONCE_SECRET = randomBytes(8).toString('hex');
let nonces = 0;

/**
 * Renders the chat and splits it into template text and contents: renders once with the real
 * contents and once with each content replaced by a sentinel, and checks that putting the contents
 * back into the sentinel rendering gives the real one. A template that rewrites contents (R1 drops
 * an assistant answer's text up to the last `</think>`, handled here) can fail that check; then the
 * whole rendering counts as template text, which is refused if any content holds added-token text.
 */
function renderPieces(messages: readonly TrustedMessage[], options: RenderChatOptions, t: TemplateTokenizer): PromptPiece[] {
  const plain = (m: TrustedMessage): ChatMessage => {
    const { markContent: _, ...rest } = m;
    return rest;
  };
  const real = renderChat(messages.map(plain), options);
  const nonce = `${NONCE_SECRET}${(nonces++).toString(36)}`;
  const contents: string[] = [];
  const mark = (content: string): string => {
    contents.push(content);
    return `${SENTINEL_OPEN}${nonce}:${contents.length - 1}${SENTINEL_CLOSE}`;
  };
  const marked = messages.map((m): ChatMessage => {
    const out = plain(m);
    if (m.markContent) {
      out.content = m.markContent(mark);
    } else if (typeof m.content === 'string') {
      const cut = m.role === 'assistant' ? m.content.lastIndexOf('</think>') : -1;
      out.content = cut >= 0 ? `</think>${mark(m.content.slice(cut + '</think>'.length))}` : mark(m.content);
    }
    if (typeof m.reasoning_content === 'string') out.reasoning_content = mark(m.reasoning_content);
    if (m.tool_calls) {
      out.tool_calls = m.tool_calls.map((c) => ({
        ...c,
        function: {
          name: mark(c.function.name),
          arguments: typeof c.function.arguments === 'string' ? mark(c.function.arguments) : c.function.arguments,
        },
      }));
    }
    return out;
  });
  const pieces: PromptPiece[] = [];
  const rendered = renderChat(marked, options);
  let at = 0;
  for (const match of rendered.matchAll(SENTINEL)) {
    if (match[1] !== nonce) continue;
    if (match.index > at) pieces.push({ text: rendered.slice(at, match.index), trusted: true });
    pieces.push({ text: contents[Number(match[2])]!, trusted: false });
    at = match.index + match[0].length;
  }
  if (at < rendered.length) pieces.push({ text: rendered.slice(at), trusted: true });
  if (pieces.map((p) => p.text).join('') === real) return pieces;
  const markers = addedTokenTexts(t);
  const injected = markers.find((s) => contents.some((c) => c.includes(s)));
  if (injected !== undefined) {
    throw new ApiError(400, `a message contains the special token text ${JSON.stringify(injected)} where the chat template rewrites the content; remove it`, 'messages');
  }
  return [{ text: real, trusted: true }];
}

/** The texts of the tokenizer's added tokens, special or not (empty when the tokenizer does not list them). */
function addedTokenTexts(t: TemplateTokenizer): string[] {
  return (t.spec?.addedTokens ?? []).filter((a) => a.content !== '').map((a) => a.content);
}

/**
 * Prompt -> token ids (no extra BOS: the template writes it). For a PromptPlan, added tokens are
 * matched only inside the template's own pieces; the text between them (contents included) is
 * encoded as plain text, an added token's text inside it split so that it cannot match. The ids
 * equal those of encoding the whole text with special tokens parsed whenever the contents hold no
 * added-token text. A bare string is trusted as a whole (special tokens parsed).
 */
export function encodePrompt(tokenizer: GenerationTokenizer, prompt: PromptPlan | string): Int32Array {
  if (typeof prompt === 'string') return Int32Array.from(tokenizer.encode(prompt, { addSpecialTokens: false, parseSpecial: true }));
  const markers = markerIndex(tokenizer as TemplateTokenizer);
  if (markers.size === 0) {
    // A tokenizer that does not list its added tokens (test fakes): only the template's pieces may hold markers.
    const ids: number[] = [];
    for (const p of prompt.pieces) ids.push(...Array.from(tokenizer.encode(p.text, { addSpecialTokens: false, parseSpecial: p.trusted })));
    return Int32Array.from(ids);
  }
  const ids: number[] = [];
  let run = '';
  const flush = (): void => {
    encodePlainText(tokenizer, run, markers, ids);
    run = '';
  };
  for (const piece of prompt.pieces) {
    if (!piece.trusted) {
      run += piece.text;
      continue;
    }
    let at = 0;
    for (let found = nextMarker(piece.text, at, markers); found; found = nextMarker(piece.text, at, markers)) {
      run += piece.text.slice(at, found.index);
      flush();
      const id = tokenizer.tokenId(found.text);
      if (id === undefined) throw new Error(`added token ${JSON.stringify(found.text)} has no id`);
      ids.push(id);
      at = found.index + found.text.length;
    }
    run += piece.text.slice(at);
  }
  flush();
  return Int32Array.from(ids);
}

/**
 * Appends the ids of `text` as plain text: no added token is matched. Text holding an added
 * token's spelling is cut inside that spelling (before its first letter, when it has one that is
 * not first) and the parts are encoded separately, so the same characters come out as ordinary tokens.
 */
function encodePlainText(tokenizer: GenerationTokenizer, text: string, markers: MarkerIndex, ids: number[]): void {
  if (text === '') return;
  const found = nextMarker(text, 0, markers);
  if (!found) {
    ids.push(...Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: false })));
    return;
  }
  if (found.text.length < 2) throw new Error(`cannot encode the added token text ${JSON.stringify(found.text)} as plain text`);
  let cut = found.text.slice(1).search(/\p{L}/u) + 1;
  if (cut <= 0) cut = 1;
  encodePlainText(tokenizer, text.slice(0, found.index), markers, ids);
  encodePlainText(tokenizer, found.text.slice(0, cut), markers, ids);
  encodePlainText(tokenizer, found.text.slice(cut) + text.slice(found.index + found.text.length), markers, ids);
}

/** The leftmost added-token text in `text` at or after `from` (the longest one at that place). */
function nextMarker(text: string, from: number, markers: MarkerIndex): { index: number; text: string } | undefined {
  for (let i = from; i < text.length; i++) {
    const candidates = markers.get(text[i]!);
    if (!candidates) continue;
    for (const s of candidates) if (text.startsWith(s, i)) return { index: i, text: s };
  }
  return undefined;
}

/** Added-token texts by first character, longest first. */
type MarkerIndex = Map<string, string[]>;
const markerIndexes = new WeakMap<object, MarkerIndex>();

function markerIndex(t: TemplateTokenizer): MarkerIndex {
  let index = markerIndexes.get(t);
  if (!index) {
    index = new Map();
    for (const s of addedTokenTexts(t)) {
      const list = index.get(s[0]!) ?? [];
      list.push(s);
      index.set(s[0]!, list);
    }
    for (const list of index.values()) list.sort((a, b) => b.length - a.length);
    markerIndexes.set(t, index);
  }
  return index;
}

/**
 * A fill-in-the-middle prompt in DeepSeek-V3's format: BOS, `<｜fim▁begin｜>` prefix `<｜fim▁hole｜>`
 * suffix `<｜fim▁end｜>`; the markers are parsed as special tokens, the user's text never is.
 */
export function fimPrompt(tokenizer: GenerationTokenizer, prefix: string, suffix: string): Int32Array {
  const plain = (text: string): number[] => Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: false }));
  const special = (text: string): number[] => Array.from(tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true }));
  const bos = Array.from(tokenizer.encode('', { addSpecialTokens: true }));
  return Int32Array.from([...bos, ...special('<｜fim▁begin｜>'), ...plain(prefix), ...special('<｜fim▁hole｜>'), ...plain(suffix), ...special('<｜fim▁end｜>')]);
}
