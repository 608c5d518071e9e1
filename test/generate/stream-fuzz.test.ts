/**
 * Property-based fuzzing of the text pipeline (detokenization, reasoning split, stop strings,
 * max_tokens, usage) with real tokenizers (DeepSeek-V3, Qwen2.5) and the 256-byte tokenizer, and a
 * fake model that emits a chosen token sequence. Every run is compared with a reference computed
 * from the whole decoded output (not from the streaming code under test). Seeded and bounded.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from '../../src/generate/engine.js';
import type { DoneEvent, GenerationEvent } from '../../src/generate/events.js';
import { Rng } from '../../src/generate/rng.js';
import { concat } from '../formats/mutate.js';
import { defaultStopTokenIds, type ThinkingMode } from '../../src/generate/sequence.js';
import { plainValue } from '../../src/formats/gguf-value.js';
import { tinyTokenizerMetadata, tinyTokenizerPath } from '../../src/models/tiny.js';
import { BYTE_TO_CHAR } from '../../src/tokenizer/byte-level.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { parseToolCalls, TOOL_CALL_BEGIN, TOOL_CALL_END, TOOL_CALLS_BEGIN, TOOL_CALLS_END, TOOL_SEP } from '../../src/server/tools.js';
import { FakeModel } from './fakes.js';

const OPEN = '<think>';
const CLOSE = '</think>';

// ---------------------------------------------------------------------------------------------
// Tokenizers

interface FuzzTokenizer {
  name: string;
  tokenizer: Tokenizer;
  stopIds: Set<number>;
  /** Id of the single-byte token for each byte value. */
  byteIds: number[];
}

function fuzzTokenizer(name: string, tokenizer: Tokenizer): FuzzTokenizer {
  const byteIds = BYTE_TO_CHAR.map((char, byte) => {
    const id = tokenizer.tokenId(char);
    if (id === undefined) throw new Error(`${name}: no token for byte ${byte}`);
    return id;
  });
  return { name, tokenizer, stopIds: new Set(defaultStopTokenIds(tokenizer)), byteIds };
}

function byteTokenizer(): Tokenizer {
  const entries = new Map(tinyTokenizerMetadata('bytes').entries);
  return Tokenizer.fromGgufMetadata((key) => {
    const value = entries.get(key);
    return value === undefined ? undefined : plainValue(value);
  });
}

const tokenizers: FuzzTokenizer[] = [];
before(() => {
  tokenizers.push(fuzzTokenizer('bytes', byteTokenizer()));
  tokenizers.push(fuzzTokenizer('deepseek-v3', Tokenizer.fromFile(tinyTokenizerPath('deepseek-v3'))));
  tokenizers.push(fuzzTokenizer('qwen2.5', Tokenizer.fromFile(tinyTokenizerPath('qwen2.5'))));
});

function tokenizerNamed(name: string): FuzzTokenizer {
  const found = tokenizers.find((t) => t.name === name);
  if (!found) throw new Error(`no tokenizer ${name}`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// Reference: what the stream must equal, computed from whole texts

/** Length of the trailing incomplete-but-valid-so-far UTF-8 sequence (a streaming decoder holds it). */
export function incompleteUtf8Tail(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const lead = bytes[bytes.length - back]!;
    if (lead < 0xc2 || lead > 0xf4) continue;
    const needed = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
    if (back >= needed) return 0;
    for (let i = 1; i < back; i++) {
      const b = bytes[bytes.length - back + i]!;
      const [low, high] = i === 1 ? secondByteRange(lead) : [0x80, 0xbf];
      if (b < low || b > high) return 0;
    }
    return back;
  }
  return 0;
}

function secondByteRange(lead: number): [number, number] {
  if (lead === 0xe0) return [0xa0, 0xbf];
  if (lead === 0xed) return [0x80, 0x9f];
  if (lead === 0xf0) return [0x90, 0xbf];
  if (lead === 0xf4) return [0x80, 0x8f];
  return [0x80, 0xbf];
}

function tokenBytes(tokenizer: Tokenizer, ids: readonly number[]): Uint8Array {
  return concat(...ids.map((id) => tokenizer.tokenBytesOf(id)));
}

/** The text a streaming decoder has released after `ids` (whole characters only). */
function releasedText(tokenizer: Tokenizer, ids: readonly number[]): string {
  const bytes = tokenBytes(tokenizer, ids);
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes.subarray(0, bytes.length - incompleteUtf8Tail(bytes)));
}

interface Split {
  reasoning: string;
  content: string;
  inReasoning: boolean;
}

/** Longest suffix of `text` that is a proper prefix of `tag`. */
function partialSuffixLength(text: string, tag: string): number {
  for (let len = Math.min(tag.length - 1, text.length); len > 0; len--) if (text.endsWith(tag.slice(0, len))) return len;
  return 0;
}

/**
 * The R1 split of a (prefix of the) output: with the thought opened by the prompt, everything
 * before the first `</think>` is reasoning; otherwise only output starting with `<think>` has one.
 * Reasoning trimmed, content without its leading whitespace after `</think>`. Not `final`: text
 * that may still become a tag is held back.
 */
function referenceSplit(text: string, startInReasoning: boolean, final: boolean): Split {
  let body = text;
  if (!startInReasoning) {
    const rest = text.trimStart();
    if (rest.startsWith(OPEN)) body = rest.slice(OPEN.length);
    else if (!final && OPEN.startsWith(rest)) return { reasoning: '', content: '', inReasoning: false };
    else return { reasoning: '', content: text, inReasoning: false };
  }
  const close = body.indexOf(CLOSE);
  if (close >= 0) return { reasoning: body.slice(0, close).trim(), content: body.slice(close + CLOSE.length).trimStart(), inReasoning: false };
  const held = final ? 0 : partialSuffixLength(body, CLOSE);
  return { reasoning: body.slice(0, body.length - held).trim(), content: '', inReasoning: true };
}

/** True for a text in which the reference is inside an opened, unclosed thought. */
function referenceInReasoning(text: string, startInReasoning: boolean): boolean {
  if (!startInReasoning && !text.trimStart().startsWith(OPEN)) return false;
  return referenceSplit(text, startInReasoning, false).inReasoning;
}

/** The text the reasoning parser has seen: with stops over all text, up to a stop and less what may begin one. */
function parserText(text: string, c: FuzzCase): string {
  if (c.stopScope !== 'all') return text;
  const hit = firstStop(text, c.stops);
  if (hit) return text.slice(0, hit.at);
  let held = 0;
  for (const stop of c.stops) held = Math.max(held, partialStopLength(text, stop));
  return text.slice(0, text.length - held);
}

/** Earliest occurrence of any stop (longest at equal positions), or undefined. */
function firstStop(text: string, stops: readonly string[]): { at: number; stop: string } | undefined {
  const bounds = codePointBoundaries(text);
  for (const at of bounds) {
    const matching = stops.filter((stop) => text.startsWith(stop, at) && bounds.has(at + stop.length));
    if (matching.length > 0) return { at, stop: matching.reduce((a, b) => (b.length > a.length ? b : a)) };
  }
  return undefined;
}

/** Indices between characters (never inside a surrogate pair), in order. */
function codePointBoundaries(text: string): Set<number> {
  const bounds = new Set<number>([0]);
  let index = 0;
  for (const char of text) bounds.add((index += char.length));
  return bounds;
}

/** Longest suffix of `text`, starting between characters, that is a proper prefix of `stop`. */
function partialStopLength(text: string, stop: string): number {
  const bounds = codePointBoundaries(text);
  for (let len = Math.min(stop.length - 1, text.length); len > 0; len--) {
    if (bounds.has(text.length - len) && text.endsWith(stop.slice(0, len))) return len;
  }
  return 0;
}

export interface FuzzCase {
  tokenizer: string;
  prompt: number[];
  /** What the model emits, in order (the k-th output position gets script[k]; then EOS). */
  script: number[];
  thinking: ThinkingMode;
  stops: string[];
  stopScope: 'all' | 'content';
  maxTokens?: number;
  reasoningBudget?: number;
}

interface Expected {
  tokens: number[];
  reasoning: string;
  content: string;
  finishReason: 'stop' | 'length';
  stopString?: string;
  reasoningTokens: number;
  /** Reasoning and content released after each token but the last. */
  steps: Released[];
}

interface Released {
  reasoning: string;
  content: string;
}

function promptStartsThought(tokenizer: Tokenizer, c: FuzzCase): boolean {
  if (c.thinking === 'off' || c.thinking === 'detect') return false;
  if (c.thinking === 'prefilled') return true;
  const text = tokenizer.decode(c.prompt);
  const open = text.lastIndexOf(OPEN);
  return open >= 0 && text.slice(open + OPEN.length).trim() === '';
}

/** Content released so far (for stops with stopScope 'content'). */
function contentSoFar(text: string, startInReasoning: boolean, thinking: ThinkingMode): string {
  return thinking === 'off' ? text : referenceSplit(text, startInReasoning, false).content;
}

/** The stop (if any) that the output up to `text` completed, and the text kept before it. */
function stopCut(text: string, c: FuzzCase, startInReasoning: boolean): { kept: string; stop: string } | undefined {
  if (c.stops.length === 0) return undefined;
  if (c.stopScope === 'all' || c.thinking === 'off') {
    const hit = firstStop(text, c.stops);
    return hit && { kept: text.slice(0, hit.at), stop: hit.stop };
  }
  const content = contentSoFar(text, startInReasoning, c.thinking);
  const hit = firstStop(content, c.stops);
  return hit && { kept: content.slice(0, hit.at), stop: hit.stop };
}

/** Simulates the run from whole texts: forced close, stop strings, EOS, max_tokens. */
export function expectedRun(ft: FuzzTokenizer, c: FuzzCase): Expected {
  const tokenizer = ft.tokenizer;
  const startInReasoning = promptStartsThought(tokenizer, c);
  const parsing = c.thinking !== 'off';
  const closeIds = [...tokenizer.encode('\n</think>\n\n', { addSpecialTokens: false, parseSpecial: true })];
  const max = c.maxTokens ?? Infinity;
  const budget = c.reasoningBudget ?? Infinity;
  const tokens: number[] = [];
  let reasoningTokens = 0;
  const steps: Released[] = [];
  /** Inside the thought after the text so far (in scope 'all', as far as stops let the text through). */
  const inReasoning = (): boolean => parsing && referenceInReasoning(parserText(releasedText(tokenizer, tokens), c), startInReasoning);
  const finishWith = (reason: 'stop' | 'length'): Expected => {
    const text = tokenizer.decode(tokens);
    const split = parsing ? referenceSplit(text, startInReasoning, true) : { reasoning: '', content: text };
    // content held back until the end (a possible `<think>`) may hold a stop: cut there
    const lateStop = c.stopScope === 'content' && parsing ? firstStop(split.content, c.stops) : undefined;
    if (lateStop) return { tokens: [...tokens], reasoning: split.reasoning, content: split.content.slice(0, lateStop.at), finishReason: 'stop', stopString: lateStop.stop, reasoningTokens, steps };
    return { tokens: [...tokens], reasoning: split.reasoning, content: split.content, finishReason: reason, reasoningTokens, steps };
  };
  /** Emits one token; returns the finished result when it ended the run. */
  const emit = (id: number): Expected | undefined => {
    const was = inReasoning();
    tokens.push(id);
    if (was || inReasoning()) reasoningTokens++;
    const text = releasedText(tokenizer, tokens);
    const cut = stopCut(text, c, startInReasoning);
    if (cut) return stoppedRun(cut, tokens, text, startInReasoning, parsing, reasoningTokens, steps, c);
    steps.push(releasedSoFar(text, c, startInReasoning));
    return undefined;
  };
  for (;;) {
    if (inReasoning() && reasoningTokens >= budget) {
      for (const id of closeIds) {
        if (tokens.length >= max) break;
        const done = emit(id);
        if (done) return done;
      }
      if (tokens.length >= max) return finishWith('length');
      continue;
    }
    const id = c.script[tokens.length];
    if (id === undefined || ft.stopIds.has(id)) return finishWith('stop');
    const done = emit(id);
    if (done) return done;
    if (tokens.length >= max) return finishWith('length');
  }
}

/** What the stream must have released after an output whose decoded text so far is `text`. */
function releasedSoFar(text: string, c: FuzzCase, startInReasoning: boolean): Released {
  const held = (t: string): string => t.slice(0, t.length - Math.max(0, ...c.stops.map((stop) => partialStopLength(t, stop))));
  if (c.thinking === 'off') return { reasoning: '', content: held(text) };
  if (c.stopScope === 'all') return pick(referenceSplit(parserText(text, c), startInReasoning, false));
  const split = referenceSplit(text, startInReasoning, false);
  return { reasoning: split.reasoning, content: held(split.content) };
}

function stoppedRun(
  cut: { kept: string; stop: string }, tokens: number[], text: string, startInReasoning: boolean, parsing: boolean, reasoningTokens: number, steps: Released[], c: FuzzCase,
): Expected {
  const common = { tokens: [...tokens], finishReason: 'stop' as const, stopString: cut.stop, reasoningTokens, steps };
  if (!parsing) return { ...common, reasoning: '', content: cut.kept };
  if (c.stopScope === 'all') return { ...common, ...pick(referenceSplit(cut.kept, startInReasoning, true)) };
  return { ...common, reasoning: referenceSplit(text, startInReasoning, true).reasoning, content: cut.kept };
}

function pick(split: Split): { reasoning: string; content: string } {
  return { reasoning: split.reasoning, content: split.content };
}

// ---------------------------------------------------------------------------------------------
// Running a case through the engine

/** A model that emits `script[k]` at output position k, then EOS; one reused logits buffer. */
function scriptModel(ft: FuzzTokenizer, promptLength: number, script: readonly number[]): FakeModel {
  const vocab = ft.tokenizer.vocabSize;
  const logits = new Float32Array(vocab);
  let last = -1;
  const eos = ft.tokenizer.eosId ?? 0;
  return new FakeModel(vocab, (context) => {
    if (last >= 0) logits[last] = 0;
    last = script[context.length - promptLength] ?? eos;
    logits[last] = 10;
    return logits;
  });
}

export interface Observed {
  events: GenerationEvent[];
  done: DoneEvent;
  reasoning: string;
  content: string;
  tokens: number[];
  /** Reasoning and content released after each token (and the text events of its step). */
  steps: Released[];
}

export async function runCase(c: FuzzCase): Promise<Observed> {
  const ft = tokenizerNamed(c.tokenizer);
  const model = scriptModel(ft, c.prompt.length, c.script);
  const request = {
    prompt: c.prompt, sampling: { temperature: 0 }, thinking: c.thinking, stop: c.stops, stopScope: c.stopScope,
    ...(c.maxTokens !== undefined ? { maxTokens: c.maxTokens } : {}),
    ...(c.reasoningBudget !== undefined ? { reasoningBudget: c.reasoningBudget } : {}),
  };
  const events: GenerationEvent[] = [];
  for await (const event of generate(model, ft.tokenizer, request)) events.push(event);
  const done = events.pop();
  if (done?.type !== 'done') throw new Error('no done event last');
  let reasoning = '';
  let content = '';
  const tokens: number[] = [];
  const steps: Released[] = [];
  for (const event of events) {
    if (event.type === 'done') throw new Error('done event before the end');
    if (event.type === 'token' && tokens.length > 0) steps.push({ reasoning, content });
    if (event.type === 'token') tokens.push(event.id);
    if (event.channel === 'reasoning') reasoning += event.text;
    else content += event.text;
  }
  steps.push({ reasoning, content });
  return { events, done, reasoning, content, tokens, steps };
}

/** Problems with a run, compared with the reference; empty when it holds every property. */
export async function checkCase(c: FuzzCase): Promise<string[]> {
  const ft = tokenizerNamed(c.tokenizer);
  const expected = expectedRun(ft, c);
  const run = await runCase(c);
  const problems: string[] = [];
  const same = (what: string, got: unknown, want: unknown): void => {
    if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  same('tokens', run.tokens, expected.tokens);
  same('reasoning', run.reasoning, expected.reasoning);
  same('content', run.content, expected.content);
  same('finishReason', run.done.finishReason, expected.finishReason);
  same('stopString', run.done.stopString, expected.stopString);
  same('completionTokens', run.done.usage.completionTokens, expected.tokens.length);
  same('reasoningTokens', run.done.usage.reasoningTokens, expected.reasoningTokens);
  const last = Math.min(run.steps.length, expected.tokens.length) - 1;
  for (let k = 0; k < last; k++) same(`released after token ${k + 1}`, run.steps[k], expected.steps[k]);
  problems.push(...eventProblems(run.events));
  return problems;
}

/** Per-event properties: no lone surrogate (a split pair), reasoning never after content. */
function eventProblems(events: readonly GenerationEvent[]): string[] {
  const problems: string[] = [];
  let contentBegun = false;
  for (const [i, event] of events.entries()) {
    if (event.type === 'done') continue;
    if (/[\uD800-\uDFFF]/u.test(event.text)) problems.push(`event ${i} splits a surrogate pair: ${JSON.stringify(event.text)}`);
    if (event.channel === 'content' && event.text) contentBegun = true;
    if (event.channel === 'reasoning' && event.text && contentBegun) problems.push(`event ${i}: reasoning text after content`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Random cases

class Random {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rng.nextFloat() * n);
  }
  chance(p: number): boolean {
    return this.rng.nextFloat() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const FRAGMENTS = [
  'Let', ' me', ' think', '.', ' The', ' answer', ' is', ' 42', '!', 'ab', 'abc', 'a', 'b', 'c', 'x', '\n', '\n\n', ' ', '  ', '\t', '\u3000', '\u00a0',
  '😀', '👩‍👩‍👧', '🇯🇵', '👍🏽', '𝔘', '深度求索', '推理', '模型', 'こんにちは', 'e\u0301', 'a\u0308\u0323', '\u1100\u1161', 'ﬁ', 'Ω',
  OPEN, CLOSE, '<thi', 'nk>', '</', 'think>', '<', '>', '</think', '<think>\n', '\n</think>\n\n',
  '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
  '<｜User｜>', '<｜Assistant｜>', '<｜tool▁sep｜>', '```', '{"a": 1}',
];

const UNICODE_STOPS = ['😀', '深度', 'e\u0301', '\u0301', '👩', '\u200d', 'Ω', '\n\n', '\n', 'think', '</', '>', 'ab', 'abc', 'b', 'bc', 'a'];

function randomText(r: Random, parts: number): string {
  let text = '';
  for (let i = 0; i < parts; i++) text += r.pick(FRAGMENTS);
  return text;
}

/** Encodes `text`, then splits some tokens into byte tokens and inserts arbitrary ids. */
function randomScript(r: Random, ft: FuzzTokenizer, text: string): number[] {
  const ids: number[] = [];
  for (const id of ft.tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: true })) {
    if (r.chance(0.15)) ids.push(...[...ft.tokenizer.tokenBytesOf(id)].map((b) => ft.byteIds[b]!));
    else ids.push(id);
    if (r.chance(0.03)) ids.push(r.int(ft.tokenizer.vocabSize));
    if (r.chance(0.03)) ids.push(ft.byteIds[0x80 + r.int(0x80)]!);
  }
  return ids.filter((id) => !ft.stopIds.has(id));
}

function randomStops(r: Random, text: string): string[] {
  const stops: string[] = [];
  const count = r.pick([0, 0, 1, 1, 2, 3]);
  for (let i = 0; i < count; i++) {
    if (r.chance(0.5) && text.length > 0) {
      const at = r.int(text.length);
      stops.push(text.slice(at, at + 1 + r.int(6)));
    } else stops.push(r.pick(UNICODE_STOPS));
  }
  if (r.chance(0.05)) stops.push(r.pick(['\uDE00', '\uD83D', '\uDE00x', 'x\uD83D']));
  return stops.filter((s) => s.length > 0 && !s.includes('\uFFFD'));
}

const PROMPT_ENDINGS = ['<｜Assistant｜><think>\n', '<｜Assistant｜>', '<｜Assistant｜><think>\n\n', '<｜Assistant｜><think>', '<｜Assistant｜><think>\n</think>\n\n'];

export function randomCase(r: Random, ft: FuzzTokenizer): FuzzCase {
  const promptText = `<｜begin▁of▁sentence｜><｜User｜>${randomText(r, 2)}${r.pick(PROMPT_ENDINGS)}`;
  const prompt = [...ft.tokenizer.encode(promptText, { addSpecialTokens: false, parseSpecial: true })];
  const text = randomText(r, 1 + r.int(14));
  const c: FuzzCase = {
    tokenizer: ft.name, prompt, script: randomScript(r, ft, text),
    thinking: r.pick<ThinkingMode>(['auto', 'auto', 'auto', 'prefilled', 'detect', 'off']),
    stops: randomStops(r, text), stopScope: r.chance(0.7) ? 'all' : 'content',
  };
  if (r.chance(0.3)) c.maxTokens = 1 + r.int(Math.max(1, c.script.length));
  if (r.chance(0.15)) c.reasoningBudget = r.int(8);
  return c;
}

async function fuzz(name: string, seed: number, cases: number): Promise<void> {
  const ft = tokenizerNamed(name);
  const r = new Random(seed);
  const failures: string[] = [];
  for (let i = 0; i < cases; i++) {
    const c = randomCase(r, ft);
    const problems = await checkCase(c);
    if (problems.length > 0) failures.push(`case ${i} ${JSON.stringify(c)}\n  ${problems.join('\n  ')}`);
  }
  assert.equal(failures.length, 0, `${failures.length} of ${cases} cases fail:\n${failures.slice(0, 5).join('\n')}`);
}

/** Random cases per tokenizer (FUZZ_CASES=3000 for a longer hunt; 120 take under a second each). */
const CASES = Number(process.env.FUZZ_CASES ?? 150);

test('fuzz: byte tokenizer', async () => fuzz('bytes', 1, CASES));
test('fuzz: DeepSeek-V3 tokenizer', async () => fuzz('deepseek-v3', 2, CASES));
test('fuzz: Qwen2.5 tokenizer', async () => fuzz('qwen2.5', 3, CASES));

// ---------------------------------------------------------------------------------------------
// Violations the fuzzing found, minimized

/** A case on the byte tokenizer: prompt and output given as text. */
function byteCase(promptText: string, output: string, options: Partial<FuzzCase> = {}): FuzzCase {
  const tokenizer = tokenizerNamed('bytes').tokenizer;
  const encode = (text: string): number[] => [...tokenizer.encode(text, { addSpecialTokens: false, parseSpecial: false })];
  return { tokenizer: 'bytes', prompt: encode(promptText), script: encode(output), thinking: 'auto', stops: [], stopScope: 'all', ...options };
}

test('a prompt ending in "<think>\\n\\n" opens the thought with a byte tokenizer (9 tokens, more than the 8 decoded)', async () => {
  const c = byteCase('<｜User｜>hi<｜Assistant｜><think>\n\n', 'ok\n</think>\n\nyes');
  const run = await runCase(c);
  assert.deepEqual([run.reasoning, run.content, run.done.usage.reasoningTokens], ['ok', 'yes', 11]);
  assert.deepEqual(await checkCase(c), []);
});

test('a stop string holding half a surrogate pair never cuts an emoji in two', async () => {
  // the low half of 😀 matched inside it: the stream ended with a lone high surrogate
  const lowHalf = await runCase(byteCase('q', 'a😀b', { thinking: 'off', stops: ['\uDE00'] }));
  assert.deepEqual([lowHalf.content, lowHalf.done.finishReason, lowHalf.done.stopString], ['a😀b', 'stop', undefined]);
  // held as a possible stop, the low half went out in a later event than the high half
  const held = byteCase('q', 'a😀y', { thinking: 'off', stops: ['\uDE00x'] });
  assert.equal((await runCase(held)).content, 'a😀y');
  assert.deepEqual(await checkCase(held), []);
});

test('a stop in content held back until the end (a possible <think>) ends the run as a stop', async () => {
  // detect mode holds "<th" (it may become <think>); released at max_tokens, it holds the stop "<"
  const c = byteCase('q', '<thx', { thinking: 'detect', stops: ['<'], stopScope: 'content', maxTokens: 3 });
  const run = await runCase(c);
  assert.deepEqual([run.content, run.done.finishReason, run.done.stopString], ['', 'stop', '<']);
  assert.deepEqual(await checkCase(c), []);
});

test('a tool call whose JSON arguments hold a closing fence and the end marker is not dropped', () => {
  const args = JSON.stringify({ code: `\`\`\`${TOOL_CALL_END}x` });
  const text = `${TOOL_CALLS_BEGIN}${TOOL_CALL_BEGIN}function${TOOL_SEP}run\n\`\`\`json\n${args}\n\`\`\`${TOOL_CALL_END}${TOOL_CALLS_END}`;
  const parsed = parseToolCalls(text);
  assert.deepEqual(parsed.calls.map((call) => [call.function.name, call.function.arguments]), [['run', args]]);
  assert.equal(parsed.content, '');
});

// ---------------------------------------------------------------------------------------------
// Tool calls: what the model writes in the R1 format parses back to the same calls

const JSON_STRINGS = ['Paris', '```<｜tool▁call▁end｜>', '``` ', '', 'a "quoted" word', 'line\nbreak', '```', '```json\n{}\n```', '深度求索 😀', 'e\u0301', '\\', '<｜tool▁sep｜>', '{"not": "json"', '\t', ' '];

function randomJsonValue(r: Random, depth: number): unknown {
  const kind = r.int(depth > 2 ? 4 : 6);
  if (kind === 0) return r.pick(JSON_STRINGS);
  if (kind === 1) return r.int(2000) - 1000;
  if (kind === 2) return r.pick([true, false, null, 0.5, -1e-7]);
  if (kind === 3) return r.pick(JSON_STRINGS) + r.pick(JSON_STRINGS);
  if (kind === 4) return Array.from({ length: r.int(3) }, () => randomJsonValue(r, depth + 1));
  return randomJsonObject(r, depth + 1);
}

function randomJsonObject(r: Random, depth: number): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let i = r.int(4); i > 0; i--) object[r.pick(['city', 'code', 'q', 'n', '深度', 'a b'])] = randomJsonValue(r, depth);
  return object;
}

interface ToolCallCase {
  text: string;
  before: string;
  calls: { name: string; args: unknown }[];
}

function randomToolCallText(r: Random): ToolCallCase {
  const before = r.pick(['', 'Let me check.', '\n\n', 'Sure: ```x```\n']);
  const calls = Array.from({ length: 1 + r.int(3) }, () => ({ name: r.pick(['get_weather', 'search', 'run-code', 'f_2']), args: randomJsonObject(r, 0) }));
  const rendered = calls.map(({ name, args }) => {
    const json = r.chance(0.5) ? JSON.stringify(args) : JSON.stringify(args, null, 2);
    return `${TOOL_CALL_BEGIN}function${TOOL_SEP}${name}\n\`\`\`${r.pick(['json', ''])}\n${json}\n\`\`\`${TOOL_CALL_END}`;
  });
  const end = r.pick([TOOL_CALLS_END, '', `${TOOL_CALLS_END}\n`]);
  return { text: `${before}${TOOL_CALLS_BEGIN}${rendered.join(r.pick(['\n', '']))}${end}`, before, calls };
}

test('fuzz: tool calls in the R1 format parse back to the calls written', () => {
  const r = new Random(4);
  for (let i = 0; i < 400; i++) {
    const c = randomToolCallText(r);
    const parsed = parseToolCalls(c.text);
    const got = parsed.calls.map((call) => ({ name: call.function.name, args: JSON.parse(call.function.arguments) as unknown }));
    assert.deepEqual(got, c.calls, JSON.stringify(c.text));
    assert.equal(parsed.content, c.before.trim(), JSON.stringify(c.text));
  }
});

test('the default stops: EOS and every end-of-turn marker the vocabulary has (Llama 3.1 <|eom_id|> too)', () => {
  const ids: Record<string, number> = { '<|eot_id|>': 128009, '<|eom_id|>': 128008, '<|end_of_text|>': 128001 };
  const llama31 = { eosId: 128009, tokenId: (text: string) => ids[text] } as unknown as Parameters<typeof defaultStopTokenIds>[0];
  assert.deepEqual(defaultStopTokenIds(llama31).sort((a, b) => a - b), [128001, 128008, 128009]);
});
