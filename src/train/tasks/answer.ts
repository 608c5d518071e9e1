/**
 * Final-answer extraction, shared by every task. The exact rules:
 *
 * 1. Only the text after the LAST `</think>` counts (the "answer part"). A completion without
 *    `</think>` has no answer (unless `requireThink: false`, for non-reasoning evaluation, where
 *    the whole text is the answer part). An answer that appears only inside the reasoning earns
 *    nothing.
 * 2. Inside the answer part, the first of these that exists is the answer text:
 *    a. the LAST `<answer>…</answer>`; an `<answer>` never closed runs to the end of the text
 *       (generation often stops on the closing tag). Empty content is "no answer".
 *    b. the LAST `\boxed{…}` (braces matched).
 *    c. the LAST line of the form `Answer: …` (also "Final answer:", markdown ** or # around it,
 *       full-width colon).
 *    d. otherwise the whole answer part, and the task applies its own fallback (numeric tasks:
 *       the last number in it; Countdown: its last non-empty line; sort: the whole text).
 * 3. Normalization of the answer text (normalizeAnswerText): unicode minus signs and dashes
 *    (− ‒ – ﹣ －) become "-", non-breaking and thin spaces become spaces, whitespace runs collapse,
 *    surrounding $…$, \(…\), ** and backticks are dropped, trailing periods are dropped.
 * 4. Numbers (parseExactNumber): an optional `name =` prefix is dropped (the text after the last
 *    "=" is kept, so "x = 5" and "12 + 30 = 42" read as 5 and 42; "5 = x" reads as 5); then a whole number with
 *    optional sign and valid thousands commas ("1,234", not "12,34"), a finite decimal ("2.5"),
 *    or a fraction of whole numbers ("10/4", "-5/2", "\frac{5}{2}") when the task allows it.
 *    Values are exact BigInt rationals, never floats. Anything else is not a number.
 */
import { type Rational, rational } from './rational.js';

export type AnswerSource = 'answer-tag' | 'boxed' | 'answer-line' | 'rest';
export type Extraction = { ok: true; text: string; source: AnswerSource } | { ok: false; reason: string };

export interface ExtractOptions {
  /** Default true: without `</think>` there is no answer. */
  requireThink?: boolean;
}

const THINK_CLOSE = '</think>';

/** The text after the last `</think>`, or null when there is none (and it is required). */
export function answerPart(completion: string, options: ExtractOptions = {}): string | null {
  const at = completion.lastIndexOf(THINK_CLOSE);
  if (at < 0) return options.requireThink === false ? completion : null;
  return completion.slice(at + THINK_CLOSE.length);
}

function lastBoxed(text: string): string | null {
  const at = text.lastIndexOf('\\boxed{');
  if (at < 0) return null;
  let depth = 0;
  for (let i = at + '\\boxed'.length; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(at + '\\boxed{'.length, i);
  }
  return null;
}

const ANSWER_LINE = /^[\s*#>_]*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?(.*)$/i;

export function extractAnswer(completion: string, options: ExtractOptions = {}): Extraction {
  const part = answerPart(completion, options);
  if (part === null) return { ok: false, reason: 'no </think>: the answer is read only after the reasoning' };
  const open = part.lastIndexOf('<answer>');
  if (open >= 0) {
    const start = open + '<answer>'.length;
    const close = part.indexOf('</answer>', start);
    const text = (close >= 0 ? part.slice(start, close) : part.slice(start)).trim();
    return text === '' ? { ok: false, reason: 'empty <answer>' } : { ok: true, text, source: 'answer-tag' };
  }
  const boxed = lastBoxed(part);
  if (boxed !== null) {
    return boxed.trim() === '' ? { ok: false, reason: 'empty \\boxed{}' } : { ok: true, text: boxed.trim(), source: 'boxed' };
  }
  const lines = part.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = ANSWER_LINE.exec(lines[i]!);
    if (m && m[1]!.trim() !== '') return { ok: true, text: m[1]!.trim(), source: 'answer-line' };
  }
  if (part.trim() === '') return { ok: false, reason: 'nothing after </think>' };
  return { ok: true, text: part.trim(), source: 'rest' };
}

const MINUS = /[\u2212\u2012\u2013\uFE63\uFF0D]/g;
const ODD_SPACE = /[\u00A0\u2007\u2009\u202F\u200A]/g;

export function normalizeAnswerText(text: string): string {
  let s = text.replace(MINUS, '-').replace(ODD_SPACE, ' ').replace(/\s+/g, ' ').trim();
  for (let changed = true; changed; ) {
    const before = s;
    s = s.replace(/[.。]+$/, '').trim();
    if (/^\$.*\$$/.test(s) && s.length >= 2) s = s.slice(1, -1).trim();
    if (s.startsWith('\\(') && s.endsWith('\\)')) s = s.slice(2, -2).trim();
    if (/^\*\*.*\*\*$/.test(s) && s.length >= 4) s = s.slice(2, -2).trim();
    if (/^`.*`$/.test(s) && s.length >= 2) s = s.slice(1, -1).trim();
    changed = s !== before;
  }
  return s;
}

export interface NumberPolicy {
  allowDecimal?: boolean;
  allowFraction?: boolean;
}

export type NumberParse = { ok: true; value: Rational } | { ok: false; reason: string };

const INTEGER = /^([+-]?)(\d{1,3}(?:,\d{3})+|\d+)$/;
const DECIMAL = /^([+-]?)(\d+)\.(\d+)$/;
const FRACTION = /^([+-]?)(\d+)\s*\/\s*([+-]?)(\d+)$/;
const LATEX_FRACTION = /^([+-]?)\\[dt]?frac\s*\{\s*([+-]?)(\d+)\s*\}\s*\{\s*([+-]?)(\d+)\s*\}$/;

/** Reads one exact number per the header's rule 4 (the text is normalized first). */
export function parseExactNumber(text: string, policy: NumberPolicy = {}): NumberParse {
  let s = normalizeAnswerText(text);
  const eq = s.lastIndexOf('=');
  if (eq >= 0) {
    const right = s.slice(eq + 1).trim();
    // "5 = x": a lone variable on the right means the value is on the left.
    s = /^[a-z]$/i.test(right) ? s.slice(0, eq).trim() : right;
  }
  s = normalizeAnswerText(s);
  if (s === '') return { ok: false, reason: 'empty answer' };
  const sign = (c: string | undefined): bigint => (c === '-' ? -1n : 1n);
  let m = INTEGER.exec(s);
  if (m) return { ok: true, value: rational(sign(m[1]) * BigInt(m[2]!.replace(/,/g, ''))) };
  m = DECIMAL.exec(s);
  if (m) {
    if (!policy.allowDecimal) return { ok: false, reason: `${JSON.stringify(s)} is not a whole number` };
    return { ok: true, value: rational(sign(m[1]) * BigInt(m[2]! + m[3]!), 10n ** BigInt(m[3]!.length)) };
  }
  const f = FRACTION.exec(s);
  const l = f ? null : LATEX_FRACTION.exec(s);
  if (f || l) {
    if (!policy.allowFraction) return { ok: false, reason: `${JSON.stringify(s)} is a fraction, a whole number is expected` };
    const [outer, numSign, num, denSign, den] = f ? ['', f[1], f[2]!, f[3], f[4]!] : [l![1], l![2], l![3]!, l![4], l![5]!];
    if (BigInt(den) === 0n) return { ok: false, reason: 'division by zero in the answer' };
    return { ok: true, value: rational(sign(outer) * sign(numSign) * sign(denSign) * BigInt(num), BigInt(den)) };
  }
  return { ok: false, reason: `${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)} is not a single number` };
}

/** The last number-looking token of a text (fallback d for numeric tasks), or null. */
export function lastNumberText(text: string): string | null {
  const s = normalizeAnswerText(text);
  // A '-' counts as a sign only when not preceded by a word character or ')' (so 3-5 reads 3 and 5).
  const re = /(?:(?<![\w)])-)?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*\/\s*\d+)?/g;
  let last: string | null = null;
  for (const m of s.matchAll(re)) last = m[0];
  return last;
}
