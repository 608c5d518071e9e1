/**
 * Function calling in the DeepSeek-V3/R1 format: tool definitions are described in the system
 * prompt, and the model answers a call with
 *
 *   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{ARGS}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
 *
 * which parseToolCalls turns into OpenAI `tool_calls` (arguments as a JSON string).
 */
import { ApiError } from './errors.js';
import { checkJsonSchema, type JsonSchema } from './json-schema.js';

export const TOOL_CALLS_BEGIN = '<｜tool▁calls▁begin｜>';
export const TOOL_CALLS_END = '<｜tool▁calls▁end｜>';
export const TOOL_CALL_BEGIN = '<｜tool▁call▁begin｜>';
export const TOOL_CALL_END = '<｜tool▁call▁end｜>';
export const TOOL_SEP = '<｜tool▁sep｜>';

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: unknown; strict?: boolean };
}

export interface ParsedToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A request's `tools` (OpenAI's and Ollama's shape), checked: at most 128 functions with plain names. */
export function parseToolDefinitions(raw: unknown): ToolDefinition[] {
  if (!Array.isArray(raw)) throw new ApiError(400, 'tools must be an array', 'tools');
  if (raw.length > 128) throw new ApiError(422, `at most 128 tools, got ${raw.length}`, 'tools');
  return raw.map((t, i) => {
    const tool = t as { type?: unknown; function?: { name?: unknown } } | null;
    const fn = tool?.function;
    if (tool?.type !== 'function' || !fn || typeof fn.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(fn.name)) {
      throw new ApiError(400, `tools[${i}] must be {"type": "function", "function": {"name": ..., "parameters": ...}} with a name of letters, digits, _ or -`, `tools[${i}]`);
    }
    return t as ToolDefinition;
  });
}

/**
 * The tool calls of an earlier assistant message (OpenAI's shape, or Ollama's with arguments as an
 * object and no id), as the prompt renders them; 400 naming the call without a function name.
 */
export function historyToolCalls(calls: readonly unknown[], message: number): ParsedToolCall[] {
  return calls.map((call, j) => {
    const c = call as { id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null;
    const fn = c?.function;
    if (!fn || typeof fn.name !== 'string') throw new ApiError(400, `messages[${message}].tool_calls[${j}].function.name must be a string`, `messages[${message}].tool_calls`);
    const args = fn.arguments;
    return { id: typeof c.id === 'string' ? c.id : toolCallId(), type: 'function', function: { name: fn.name, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) } };
  });
}

/** The system-prompt section that describes the tools and the call format. */
export function toolsPrompt(tools: readonly ToolDefinition[]): string {
  const lines = ['## Tools', '', 'You can call these functions:', ''];
  for (const tool of tools) {
    lines.push(`### ${tool.function.name}`);
    if (tool.function.description) lines.push(tool.function.description);
    if (tool.function.parameters !== undefined) lines.push(`Parameters (JSON schema): ${JSON.stringify(tool.function.parameters)}`);
    lines.push('');
  }
  lines.push(
    'To call functions, answer only with:',
    `${TOOL_CALLS_BEGIN}${TOOL_CALL_BEGIN}function${TOOL_SEP}FUNCTION_NAME\n\`\`\`json\n{"argument": "value"}\n\`\`\`${TOOL_CALL_END}${TOOL_CALLS_END}`,
  );
  return lines.join('\n');
}

/** The text a forced call starts with (the model then writes the JSON arguments). */
export function forcedCallPrefix(name: string): string {
  return `${TOOL_CALLS_BEGIN}${TOOL_CALL_BEGIN}function${TOOL_SEP}${name}\n\`\`\`json\n`;
}

let counter = 0;
export function toolCallId(): string {
  counter = (counter + 1) % 1e9;
  return `call_${Date.now().toString(36)}${counter.toString(36)}`;
}

/**
 * Splits generated content into the text before the calls and the calls. Returns no calls when
 * the content has no well-formed call (the text then stays content as it is).
 */
export function parseToolCalls(content: string): { content: string; calls: ParsedToolCall[] } {
  const begin = content.indexOf(TOOL_CALLS_BEGIN);
  if (begin < 0) return { content, calls: [] };
  const calls: ParsedToolCall[] = [];
  const body = content.slice(begin + TOOL_CALLS_BEGIN.length);
  for (let at = body.indexOf(TOOL_CALL_BEGIN); at >= 0; ) {
    const parsed = parseOneCall(body, at);
    if (parsed) calls.push(parsed.call);
    at = body.indexOf(TOOL_CALL_BEGIN, parsed ? parsed.end : at + TOOL_CALL_BEGIN.length);
  }
  if (calls.length === 0) return { content, calls };
  return { content: content.slice(0, begin).trim(), calls };
}

const CALL_HEADER = new RegExp(`^${TOOL_CALL_BEGIN}\\s*(\\w+)${TOOL_SEP}([^\\n]+)\\n\`\`\`(?:json)?\\n`);
const CALL_FENCE_END = `\\n?\`\`\`\\s*(?:${TOOL_CALL_END}|$)`;

/**
 * The call whose `<｜tool▁call▁begin｜>` is at `at`, and where it ends. Its arguments run to the
 * first closing fence before which they are JSON: a fence inside a JSON string (a code argument
 * holding "```") does not end them. Undefined when the call is malformed.
 */
function parseOneCall(body: string, at: number): { call: ParsedToolCall; end: number } | undefined {
  const header = CALL_HEADER.exec(body.slice(at));
  if (!header) return undefined;
  const start = at + header[0].length;
  const fence = new RegExp(CALL_FENCE_END, 'g');
  fence.lastIndex = start;
  for (let m = fence.exec(body); m !== null; m = fence.exec(body)) {
    const args = body.slice(start, m.index).trim();
    try {
      JSON.parse(args);
    } catch {
      continue;
    }
    return { call: { id: toolCallId(), type: 'function', function: { name: header[2]!.trim(), arguments: args } }, end: m.index + m[0].length };
  }
  return undefined;
}

/** A request's tools with its tool_choice: the tools, the function a call is forced to, and whether calls are parsed from the answer. */
export interface ToolUse {
  tools?: ToolDefinition[];
  forced?: string;
  use: boolean;
}

/**
 * `tools` and `tool_choice` of a request (OpenAI's chat shape): "none", "auto" (default),
 * "required" (the first tool) or {"type": "function", "function": {"name": ...}}.
 */
export function parseTools(b: { tools?: unknown; tool_choice?: unknown }): ToolUse {
  const raw = b.tools;
  if (raw === undefined || raw === null) {
    if (b.tool_choice !== undefined && b.tool_choice !== null && b.tool_choice !== 'none') throw new ApiError(422, 'tool_choice needs tools', 'tool_choice');
    return { use: false };
  }
  const tools = parseToolDefinitions(raw);
  const choice = b.tool_choice ?? 'auto';
  if (choice === 'none') return { tools: [], use: false };
  if (choice === 'auto') return { tools, use: true };
  if (choice === 'required') {
    // "required" forces a call of the first tool: with `tools: []` there is none to call
    if (tools.length === 0) throw new ApiError(422, 'tool_choice "required" needs at least one tool; tools is empty', 'tool_choice');
    return { tools, forced: tools[0]!.function.name, use: true };
  }
  const name = ((choice as { function?: { name?: unknown } } | null)?.function)?.name;
  if (typeof name !== 'string') throw new ApiError(400, 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}', 'tool_choice');
  if (!tools.some((t) => t.function.name === name)) throw new ApiError(422, `tool_choice names '${name}', which is not among the tools`, 'tool_choice');
  return { tools, forced: name, use: true };
}

/** A forced call's arguments follow the tool's parameter schema when it is one we can enforce (else any JSON object). */
export function forcedToolSchema(tools: ToolUse): Exclude<JsonSchema, boolean> | undefined {
  const parameters = tools.tools?.find((t) => t.function.name === tools.forced)?.function.parameters;
  if (parameters === undefined) return undefined;
  try {
    return checkJsonSchema(parameters, 'parameters') as Exclude<JsonSchema, boolean>;
  } catch {
    return undefined;
  }
}

/**
 * The tool calls of a finished answer: with a forced function, the answer (JSON, as the output
 * constraint made it) is that call's arguments; with tools in use, the calls parsed from it.
 */
export function answerToolCalls(content: string, tools: { use: boolean; forced?: string | undefined }): { content: string; calls: ParsedToolCall[] } {
  if (tools.forced !== undefined) {
    try {
      JSON.parse(content);
    } catch {
      return { content, calls: [] };
    }
    return { content: '', calls: [{ id: toolCallId(), type: 'function', function: { name: tools.forced, arguments: content.trim() } }] };
  }
  if (!tools.use) return { content, calls: [] };
  return parseToolCalls(content);
}
