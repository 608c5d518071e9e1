/**
 * A small arithmetic expression parser and exact evaluator (no eval): whole numbers, binary
 * + - * / (also written x, X, ×, ·, ∗, ÷, and − for minus) and parentheses. Unary minus, decimals,
 * implicit multiplication and any other character are rejected with a reason. Input is capped at
 * MAX_EXPRESSION_CHARS characters and MAX_NESTING parentheses deep, so nothing can blow the stack.
 * Parsing never throws: it returns { ok: false, error }.
 */
import { type Rational, add, div, mul, rational, sub } from './rational.js';

export type Op = '+' | '-' | '*' | '/';
export type Expr = { kind: 'num'; value: bigint; text: string } | { kind: 'bin'; op: Op; left: Expr; right: Expr };

export const MAX_EXPRESSION_CHARS = 1000;
export const MAX_NESTING = 64;

const OP_ALIASES: Record<string, Op> = {
  '+': '+', '-': '-', '−': '-', '–': '-', '*': '*', x: '*', X: '*', '×': '*', '·': '*', '∗': '*', '/': '/', '÷': '/',
};

type Token = { kind: 'num'; text: string; at: number } | { kind: 'op'; op: Op; at: number } | { kind: '(' | ')'; at: number };

class ParseError extends Error {}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch >= '0' && ch <= '9') {
      let j = i;
      while (j < text.length && text[j]! >= '0' && text[j]! <= '9') j++;
      if (text[j] === '.' && /[0-9]/.test(text[j + 1] ?? '')) throw new ParseError(`decimal number at ${i}: only whole numbers are allowed`);
      tokens.push({ kind: 'num', text: text.slice(i, j), at: i });
      i = j;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch, at: i });
      i++;
    } else if (ch in OP_ALIASES) {
      tokens.push({ kind: 'op', op: OP_ALIASES[ch]!, at: i });
      i++;
    } else {
      throw new ParseError(`unexpected character ${JSON.stringify(ch)} at ${i}`);
    }
  }
  return tokens;
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Expr {
    if (this.tokens.length === 0) throw new ParseError('empty expression');
    const e = this.sum();
    const t = this.tokens[this.pos];
    if (t !== undefined) throw new ParseError(t.kind === 'num' || t.kind === '(' ? `missing operator at ${t.at}` : `unexpected ${t.kind === 'op' ? t.op : t.kind} at ${t.at}`);
    return e;
  }

  private sum(): Expr {
    let left = this.product();
    for (let t = this.tokens[this.pos]; t?.kind === 'op' && (t.op === '+' || t.op === '-'); t = this.tokens[this.pos]) {
      this.pos++;
      left = { kind: 'bin', op: t.op, left, right: this.product() };
    }
    return left;
  }

  private product(): Expr {
    let left = this.atom();
    for (let t = this.tokens[this.pos]; t?.kind === 'op' && (t.op === '*' || t.op === '/'); t = this.tokens[this.pos]) {
      this.pos++;
      left = { kind: 'bin', op: t.op, left, right: this.atom() };
    }
    return left;
  }

  private atom(): Expr {
    const t = this.tokens[this.pos];
    if (t === undefined) throw new ParseError('expression ends where a number was expected');
    if (t.kind === 'num') {
      this.pos++;
      return { kind: 'num', value: BigInt(t.text), text: t.text };
    }
    if (t.kind === '(') {
      if (++this.depth > MAX_NESTING) throw new ParseError(`parentheses nested deeper than ${MAX_NESTING}`);
      this.pos++;
      const inner = this.sum();
      const close = this.tokens[this.pos];
      if (close?.kind !== ')') throw new ParseError(close === undefined ? 'unclosed parenthesis' : `expected ) at ${close.at}`);
      this.pos++;
      this.depth--;
      return inner;
    }
    if (t.kind === 'op' && t.op === '-') throw new ParseError(`unary minus at ${t.at} is not allowed`);
    throw new ParseError(`unexpected ${t.kind === 'op' ? t.op : t.kind} at ${t.at}`);
  }
}

export type ParseResult = { ok: true; expr: Expr } | { ok: false; error: string };

export function parseExpression(text: string): ParseResult {
  if (text.length > MAX_EXPRESSION_CHARS) return { ok: false, error: `expression longer than ${MAX_EXPRESSION_CHARS} characters` };
  try {
    return { ok: true, expr: new Parser(tokenize(text)).parse() };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, error: e.message };
    throw e;
  }
}

/** Exact value, or null when some division divides by zero. */
export function evaluate(e: Expr): Rational | null {
  if (e.kind === 'num') return rational(e.value);
  const l = evaluate(e.left);
  const r = evaluate(e.right);
  if (l === null || r === null) return null;
  switch (e.op) {
    case '+': return add(l, r);
    case '-': return sub(l, r);
    case '*': return mul(l, r);
    case '/': return div(l, r);
  }
}

/** The number literals, left to right, with the text each was written as. */
export function literals(e: Expr, out: { value: bigint; text: string }[] = []): { value: bigint; text: string }[] {
  if (e.kind === 'num') out.push({ value: e.value, text: e.text });
  else {
    literals(e.left, out);
    literals(e.right, out);
  }
  return out;
}

const PRECEDENCE: Record<Op, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

/** ASCII text with the fewest parentheses that keep the tree: `(8 - 2) * 4`. */
export function formatExpression(e: Expr): string {
  if (e.kind === 'num') return e.value.toString();
  const p = PRECEDENCE[e.op];
  const l = formatExpression(e.left);
  const r = formatExpression(e.right);
  const wrapL = e.left.kind === 'bin' && PRECEDENCE[e.left.op] < p;
  // Right operand: same precedence needs parentheses unless the operator is associative (+, *).
  const wrapR = e.right.kind === 'bin' && (PRECEDENCE[e.right.op] < p || (PRECEDENCE[e.right.op] === p && (e.op === '-' || e.op === '/')));
  return `${wrapL ? `(${l})` : l} ${e.op} ${wrapR ? `(${r})` : r}`;
}
