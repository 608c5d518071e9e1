/**
 * A small, safe markdown renderer for model output. It parses text into a tree of whitelisted
 * elements whose leaves are plain strings; nothing in the input can produce markup of its own:
 * raw HTML stays text, links keep only absolute http(s) hrefs, code blocks get only a sanitized
 * language class. The browser turns the tree into DOM nodes with createElement/textContent
 * (render-markdown.ts); `markdownToHtml` serializes it with escaping (for tests and previews).
 *
 * Pure TypeScript with no DOM dependency, so Node tests import it directly.
 * Supported: paragraphs, ATX headings, fenced code (``` and ~~~, unclosed fences run to the end,
 * which suits streaming), bullet and ordered lists (nested by indentation), blockquotes,
 * thematic breaks, pipe tables, emphasis/strong/strikethrough, code spans, links, autolinks,
 * hard line breaks (two trailing spaces or a backslash). HTML entities are not decoded: they are
 * shown exactly as written.
 */

export type MdTag =
  | 'p' | 'h1' | 'h2' | 'h3' | 'h4' | 'h5' | 'h6' | 'pre' | 'code' | 'ul' | 'ol' | 'li'
  | 'blockquote' | 'hr' | 'br' | 'em' | 'strong' | 'del' | 'a'
  | 'table' | 'thead' | 'tbody' | 'tr' | 'th' | 'td';

/** Every tag the renderer can produce. */
export const MD_TAGS: ReadonlySet<MdTag> = new Set<MdTag>([
  'p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'pre', 'code', 'ul', 'ol', 'li', 'blockquote', 'hr', 'br',
  'em', 'strong', 'del', 'a', 'table', 'thead', 'tbody', 'tr', 'th', 'td',
]);

/** The only attributes an element can carry (each produced by the renderer, never copied from input unchecked). */
export interface MdAttrs {
  /** Links only: an absolute http(s) URL (see safeHref). */
  href?: string;
  /** Links only: always "noopener noreferrer". */
  rel?: string;
  /** Links only: always "_blank". */
  target?: string;
  /** Code inside a fenced block only: "language-<name>" with name matching LANGUAGE_NAME. */
  class?: string;
  /** Ordered lists only: the first number, digits only. */
  start?: string;
  /** Table cells only: "left" | "center" | "right". */
  align?: string;
}

export interface MdElement {
  tag: MdTag;
  attrs?: MdAttrs;
  children: MdNode[];
}

/** A tree node: an element or a run of plain text. */
export type MdNode = MdElement | string;

const LANGUAGE_NAME = /^[A-Za-z0-9_+#.-]{1,32}$/;
const MAX_NESTING = 16;

function el(tag: MdTag, children: MdNode[] = [], attrs?: MdAttrs): MdElement {
  return attrs ? { tag, attrs, children } : { tag, children };
}

/**
 * The href to use for a link target, or undefined when it is not a plain absolute http(s) URL
 * (javascript:, data:, relative, protocol-relative, anything with spaces or control characters).
 */
export function safeHref(raw: string): string | undefined {
  const url = raw.trim();
  if (!/^https?:\/\/[^\s/?#]+/i.test(url)) return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f<>"'`\\]/.test(url)) return undefined;
  return url;
}

// ---------------------------------------------------------------------------------------------
// Blocks

// Block patterns match a prefix, or end in "[^]*$" (which cannot fail): none may backtrack over a
// long line (a 100 KB line of spaces must not cost seconds), and "[^]" also matches U+2028/U+2029,
// which "." does not.
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const HEADING_OPEN = /^ {0,3}(#{1,6})(?=[ \t]|$)/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?([^]*)$/;
const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+([^]*))?$/;
const TABLE_DELIMITER_CELL = /^:?-+:?$/;
/** Padded (missing) table cells allowed beyond one cell per source character (see parseTable). */
const TABLE_CELL_SLACK = 1000;

interface FenceOpening {
  marker: string;
  lang: string;
}

/** The opening line of a fenced code block: a run of 3+ backticks or tildes, then an info string without backticks. */
function fenceOpening(line: string): FenceOpening | undefined {
  const m = FENCE_OPEN.exec(line);
  if (!m) return undefined;
  const info = line.slice(m[0].length);
  if (info.includes('`')) return undefined;
  return { marker: m[1]!, lang: /^\S*/.exec(info.trimStart())![0] };
}

function isSpaceOrTab(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

/** `text` without leading and trailing spaces and tabs (a loop: /[ \t]+$/ is quadratic in V8). */
function trimSpacesAndTabs(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isSpaceOrTab(text[start])) start++;
  while (end > start && isSpaceOrTab(text[end - 1])) end--;
  return text.slice(start, end);
}

/** An ATX heading: its level and its text without the optional closing "#" run. */
function headingOf(line: string): { level: number; text: string } | undefined {
  const m = HEADING_OPEN.exec(line);
  if (!m) return undefined;
  let text = trimSpacesAndTabs(line.slice(m[0].length));
  let hashes = text.length;
  while (hashes > 0 && text[hashes - 1] === '#') hashes--;
  if (hashes < text.length && (hashes === 0 || isSpaceOrTab(text[hashes - 1]))) text = trimSpacesAndTabs(text.slice(0, hashes));
  return { level: m[1]!.length, text };
}

function isTableDelimiter(line: string): boolean {
  return line.includes('-') && splitTableRow(line).every((cell) => TABLE_DELIMITER_CELL.test(cell));
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** Whether `line` starts a block other than a paragraph (so it interrupts a paragraph). */
function startsBlock(line: string): boolean {
  return fenceOpening(line) !== undefined || HEADING_OPEN.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

function splitTableRow(line: string): string[] {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells: string[] = [];
  let cell = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && s[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (c === '|') {
      cells.push(cell.trim());
      cell = '';
    } else cell += c;
  }
  cells.push(cell.trim());
  return cells;
}

function tableAlign(delimiterCell: string): string | undefined {
  const left = delimiterCell.startsWith(':');
  const right = delimiterCell.endsWith(':');
  if (left && right) return 'center';
  if (right) return 'right';
  if (left) return 'left';
  return undefined;
}

function parseBlocks(lines: string[], depth: number): MdElement[] {
  const out: MdElement[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = fenceOpening(line);
    if (fence) {
      const marker = fence.marker;
      const indent = line.length - line.trimStart().length;
      const body: string[] = [];
      i++;
      while (i < lines.length) {
        const closing = lines[i]!.trim();
        if (closing.startsWith(marker[0]!.repeat(marker.length)) && /^(`+|~+)$/.test(closing) && closing[0] === marker[0]) {
          i++;
          break;
        }
        body.push(removeIndent(lines[i]!, indent));
        i++;
      }
      const lang = fence.lang;
      const attrs = LANGUAGE_NAME.test(lang) ? { class: `language-${lang}` } : undefined;
      out.push(el('pre', [el('code', [body.join('\n')], attrs)]));
      continue;
    }
    const heading = headingOf(line);
    if (heading) {
      const level = heading.level as 1 | 2 | 3 | 4 | 5 | 6;
      out.push(el(`h${level}`, parseInline(heading.text, depth)));
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push(el('hr'));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      while (i < lines.length && !isBlank(lines[i]!)) {
        const m = QUOTE.exec(lines[i]!);
        if (m) body.push(m[1]!);
        else if (startsBlock(lines[i]!)) break;
        else body.push(lines[i]!); // lazy continuation
        i++;
      }
      out.push(el('blockquote', depth < MAX_NESTING ? parseBlocks(body, depth + 1) : [el('p', [body.join('\n')])]));
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      i = parseList(lines, i, depth, out);
      continue;
    }
    if (i + 1 < lines.length && line.includes('|') && isTableDelimiter(lines[i + 1]!)) {
      const header = splitTableRow(line);
      const aligns = splitTableRow(lines[i + 1]!).map(tableAlign);
      if (aligns.length === header.length) {
        i = parseTable(lines, i + 2, header, aligns, depth, out);
        continue;
      }
    }
    const para: string[] = [];
    while (i < lines.length && !isBlank(lines[i]!) && (para.length === 0 || !startsBlock(lines[i]!))) {
      para.push(lines[i]!);
      i++;
    }
    out.push(el('p', parseInline(para.map((l) => l.trimStart()).join('\n'), depth)));
  }
  return out;
}

function removeIndent(line: string, indent: number): string {
  let n = 0;
  while (n < indent && line[n] === ' ') n++;
  return line.slice(n);
}

function parseTable(lines: string[], start: number, header: string[], aligns: (string | undefined)[], depth: number, out: MdElement[]): number {
  const cell = (tag: 'th' | 'td', text: string, col: number): MdElement => {
    const align = aligns[col];
    return el(tag, parseInline(text, depth), align ? { align } : undefined);
  };
  const rows: MdElement[] = [];
  // Short rows are padded to the header's width: without a bound, a wide header over thousands of
  // "|" lines would turn 100 KB into hundreds of millions of cells. The table ends where its cells
  // would outnumber its source characters (plus some slack); legitimate tables never get there.
  let cellBudget = lines[start - 2]!.length + lines[start - 1]!.length + TABLE_CELL_SLACK - header.length;
  let i = start;
  while (i < lines.length && !isBlank(lines[i]!) && lines[i]!.includes('|')) {
    cellBudget += lines[i]!.length + 1 - header.length;
    if (cellBudget < 0) break;
    const cells = splitTableRow(lines[i]!);
    rows.push(el('tr', header.map((_, c) => cell('td', cells[c] ?? '', c))));
    i++;
  }
  const head = el('thead', [el('tr', header.map((h, c) => cell('th', h, c)))]);
  out.push(el('table', rows.length ? [head, el('tbody', rows)] : [head]));
  return i;
}

/** Parses a run of list items of the same kind starting at lines[start]; returns the next line index. */
function parseList(lines: string[], start: number, depth: number, out: MdElement[]): number {
  const first = LIST_ITEM.exec(lines[start]!)!;
  const baseIndent = first[1]!.length;
  const ordered = /\d/.test(first[2]!);
  const items: MdElement[] = [];
  let tight = true;
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]!);
    if (!m || m[1]!.length !== baseIndent || /\d/.test(m[2]!) !== ordered) break;
    const contentIndent = baseIndent + m[2]!.length + 1;
    const body = [m[3] ?? ''];
    i++;
    let sawBlank = false;
    while (i < lines.length) {
      const line = lines[i]!;
      if (isBlank(line)) {
        sawBlank = true;
        body.push('');
        i++;
        continue;
      }
      const indent = line.length - line.trimStart().length;
      if (indent >= contentIndent || (indent > baseIndent && LIST_ITEM.test(line))) {
        body.push(removeIndent(line, Math.min(indent, contentIndent)));
      } else if (!sawBlank && !startsBlock(line)) {
        body.push(line.trimStart()); // lazy continuation of the item's paragraph
      } else break;
      sawBlank = false;
      i++;
    }
    while (body.length > 1 && body[body.length - 1] === '') body.pop();
    if (body.includes('')) tight = false;
    const blocks = depth < MAX_NESTING ? parseBlocks(body, depth + 1) : [el('p', [body.join('\n')])];
    items.push(el('li', blocks));
    // A blank line between items makes the list loose.
    if (i < lines.length && i > 0 && isBlank(lines[i - 1]!)) tight = false;
  }
  if (tight) {
    for (const li of items) {
      li.children = li.children.flatMap((child) => (typeof child !== 'string' && child.tag === 'p' ? child.children : [child]));
    }
  }
  const startNumber = ordered ? String(parseInt(first[2]!, 10)) : undefined;
  out.push(el(ordered ? 'ol' : 'ul', items, startNumber && startNumber !== '1' ? { start: startNumber } : undefined));
  return i;
}

// ---------------------------------------------------------------------------------------------
// Inlines
//
// Every scan that looks ahead for a closer is bounded or remembered, so that text full of
// unmatched markers costs linear time, not quadratic: the whole tree is re-rendered for each
// streamed delta.

const PUNCTUATION = /[!-/:-@[-`{-~]/;
/** Characters that may start something other than plain text. */
const SPECIAL = /[\\\n`<hH[!*_~]/g;
/** Longest link destination or title looked for. */
const MAX_URL = 2048;

/** Appends text, merging with a preceding text node. */
function pushText(out: MdNode[], text: string): void {
  if (text === '') return;
  const last = out.length - 1;
  if (last >= 0 && typeof out[last] === 'string') out[last] = (out[last] as string) + text;
  else out.push(text);
}

function backtickRun(s: string, at: number): number {
  let n = 0;
  while (s[at + n] === '`') n++;
  return n;
}

/** Index of the first entry of an ascending list that is >= `from`, or the list's length. */
function firstAtOrAfter(sorted: readonly number[], from: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < from) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The first entry of an ascending list that is >= `from`, or -1. */
function nextIn(sorted: readonly number[], from: number): number {
  const k = firstAtOrAfter(sorted, from);
  return k < sorted.length ? sorted[k]! : -1;
}

/**
 * The backtick runs of a string, by length, found in one pass: the closer of a code span is then
 * a binary search, not a scan to the end of the text for every unmatched run.
 */
class BacktickRuns {
  private readonly startsByLength = new Map<number, number[]>();

  constructor(s: string) {
    for (let i = s.indexOf('`'); i >= 0; i = s.indexOf('`', i)) {
      const run = backtickRun(s, i);
      const starts = this.startsByLength.get(run);
      if (starts) starts.push(i);
      else this.startsByLength.set(run, [i]);
      i += run;
    }
  }

  /** Index of a run of exactly `run` backticks starting at or after `from` (a run boundary), or -1. */
  closeFrom(from: number, run: number): number {
    return nextIn(this.startsByLength.get(run) ?? [], from);
  }
}

/**
 * Pairs every "[" with its matching "]" in one left-to-right pass (skipping escapes and code
 * spans): the map from an opening bracket's index to its closing bracket's index.
 */
function matchBrackets(s: string, runs: BacktickRuns): Map<number, number> {
  const pairs = new Map<number, number>();
  const open: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '`') {
      const run = backtickRun(s, i);
      const close = runs.closeFrom(i + run, run);
      i = (close >= 0 ? close + run : i + run) - 1;
    } else if (c === '[') open.push(i);
    else if (c === ']' && open.length > 0) pairs.set(open.pop()!, i);
  }
  return pairs;
}

/** The ascending indexes of the characters of `s` whose code passes `test`. */
function positionsOf(s: string, test: (code: number) => boolean): number[] {
  const found: number[] = [];
  for (let i = 0; i < s.length; i++) if (test(s.charCodeAt(i))) found.push(i);
  return found;
}

/**
 * What link destinations need to know about a string, computed once per string: where each "("
 * closes, and where the next space, ">" and quotes are. Without it, thousands of "[x](" in a row
 * would each scan up to MAX_URL characters ahead.
 */
class LinkScanner {
  /** "(" index -> its matching ")", both inside one run without whitespace. */
  private readonly closeParen = new Map<number, number>();
  /** Start of a run without whitespace -> its first ")" that closes nothing in the run. */
  private readonly strayClose = new Map<number, number>();
  private readonly spaces: number[];
  private readonly closeAngles: number[];
  private readonly doubleQuotes: number[];
  private readonly singleQuotes: number[];

  constructor(private readonly s: string) {
    this.matchParens();
    this.spaces = positionsOf(s, (code) => code <= 32);
    this.closeAngles = positionsOf(s, (code) => code === 62);
    this.doubleQuotes = positionsOf(s, (code) => code === 34);
    this.singleQuotes = positionsOf(s, (code) => code === 39);
  }

  private matchParens(): void {
    const open: number[] = [];
    let runStart = 0;
    for (let i = 0; i < this.s.length; i++) {
      const code = this.s.charCodeAt(i);
      if (code <= 32) {
        open.length = 0;
        runStart = i + 1;
      } else if (code === 40) open.push(i);
      else if (code === 41 && open.length > 0) this.closeParen.set(open.pop()!, i);
      else if (code === 41 && !this.strayClose.has(runStart)) this.strayClose.set(runStart, i);
    }
  }

  /** Parses "(url "title")" at `at` (right after a link's closing bracket); returns the url and the end index. */
  destination(at: number): { url: string; end: number } | undefined {
    const s = this.s;
    if (s[at] !== '(') return undefined;
    let i = at + 1;
    while (s[i] === ' ') i++;
    let url: string;
    if (s[i] === '<') {
      const close = nextIn(this.closeAngles, i);
      if (close < 0 || close - i > MAX_URL) return undefined;
      url = s.slice(i + 1, close);
      i = close + 1;
    } else {
      const end = this.bareDestinationEnd(at, i);
      if (end - i >= MAX_URL && i + MAX_URL < s.length) return undefined;
      url = s.slice(i, end);
      i = end;
    }
    while (s[i] === ' ') i++;
    if (s[i] === '"' || s[i] === "'") {
      const close = nextIn(s[i] === '"' ? this.doubleQuotes : this.singleQuotes, i + 1);
      if (close < 0 || close - i > MAX_URL) return undefined;
      i = close + 1;
      while (s[i] === ' ') i++;
    }
    if (s[i] !== ')') return undefined;
    return { url, end: i + 1 };
  }

  /**
   * Where a destination without angle brackets that starts at `start` ends: at the ")" that closes
   * the link's "(" at `open` (parentheses inside must balance), else at the next whitespace.
   */
  private bareDestinationEnd(open: number, start: number): number {
    const close = start === open + 1 ? this.closeParen.get(open) : this.strayClose.get(start);
    if (close !== undefined) return close;
    const space = nextIn(this.spaces, start);
    return space < 0 ? this.s.length : space;
  }
}

const DELIMITERS: readonly { marker: string; tag: MdTag }[] = [
  { marker: '**', tag: 'strong' },
  { marker: '__', tag: 'strong' },
  { marker: '~~', tag: 'del' },
  { marker: '*', tag: 'em' },
  { marker: '_', tag: 'em' },
];

/** Index of a closing `marker` for an emphasis opened just before `from`, or -1. */
function findEmphasisClose(s: string, from: number, marker: string, runs: BacktickRuns): number {
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '`') {
      const run = backtickRun(s, i);
      const close = runs.closeFrom(i + run, run);
      i = (close >= 0 ? close + run : i + run) - 1;
      continue;
    }
    if (!s.startsWith(marker, i) || i === from) continue;
    if (/\s/.test(s[i - 1]!)) continue;
    // A single-character marker must not be part of a doubled one ("*a**b*" closes at the last "*").
    if (marker.length === 1 && (s[i + 1] === marker || s[i - 1] === marker)) continue;
    if (marker[0] === '_' && /[A-Za-z0-9]/.test(s[i + marker.length] ?? '')) continue;
    // A doubled marker closes at the end of a longer run ("***x***" is strong around "*x*").
    let end = i;
    if (marker.length === 2) while (s[end + 2] === marker[0]) end++;
    return end;
  }
  return -1;
}

const AUTOLINK = /<(https?:\/\/[^\s<>]+)>/iy;
// Stops at the characters safeHref refuses, so a match fails safeHref only when it has no host.
// eslint-disable-next-line no-control-regex
const BARE_URL = /https?:\/\/[^\s<>"'`\\\u0000-\u001f\u007f-\u009f]+/iy;
const TRAILING_PUNCTUATION = '.,:;!?)]';

/** `url` without trailing punctuation (a loop: /[.,)]+$/ is quadratic in V8 on a long run). */
function trimTrailingPunctuation(url: string): string {
  let end = url.length;
  while (end > 0 && TRAILING_PUNCTUATION.includes(url[end - 1]!)) end--;
  return url.slice(0, end);
}

function link(children: MdNode[], href: string): MdElement {
  return el('a', children, { href, rel: 'noopener noreferrer', target: '_blank' });
}

function parseInline(s: string, depth: number): MdNode[] {
  const out: MdNode[] = [];
  let text = '';
  const flush = (): void => {
    pushText(out, text);
    text = '';
  };
  // Searches for a closer that failed from position p fail from any later position too: remember
  // them, so text full of unmatched markers stays linear instead of quadratic.
  const failedFrom = new Map<string, number>();
  const closeOf = (key: string, from: number, find: () => number): number => {
    if (from >= (failedFrom.get(key) ?? Infinity)) return -1;
    const found = find();
    if (found < 0) failedFrom.set(key, Math.min(from, failedFrom.get(key) ?? Infinity));
    return found;
  };
  const runs = new BacktickRuns(s);
  const brackets = s.includes('[') ? matchBrackets(s, runs) : new Map<number, number>();
  let links: LinkScanner | undefined;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\\') {
      const next = s[i + 1];
      if (next === '\n') {
        flush();
        out.push(el('br'));
        i += 2;
        continue;
      }
      if (next !== undefined && PUNCTUATION.test(next)) {
        text += next;
        i += 2;
        continue;
      }
      text += c;
      i++;
      continue;
    }
    if (c === '\n') {
      let spaces = 0;
      while (spaces < i && s[i - 1 - spaces] === ' ') spaces++;
      if (spaces > 0) text = text.slice(0, Math.max(0, text.length - spaces));
      if (spaces >= 2) {
        flush();
        out.push(el('br'));
      } else text += '\n';
      i++;
      continue;
    }
    if (c === '`') {
      const run = backtickRun(s, i);
      const close = runs.closeFrom(i + run, run);
      if (close < 0) {
        text += '`'.repeat(run);
        i += run;
        continue;
      }
      let code = s.slice(i + run, close).replace(/\n/g, ' ');
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') code = code.slice(1, -1);
      flush();
      out.push(el('code', [code]));
      i = close + run;
      continue;
    }
    if (c === '<') {
      AUTOLINK.lastIndex = i;
      const m = AUTOLINK.exec(s);
      const href = m ? safeHref(m[1]!) : undefined;
      if (m && href) {
        flush();
        out.push(link([href], href));
        i += m[0].length;
        continue;
      }
    }
    if ((c === 'h' || c === 'H') && (i === 0 || /[\s(]/.test(s[i - 1]!))) {
      BARE_URL.lastIndex = i;
      const m = BARE_URL.exec(s);
      if (m) {
        const url = trimTrailingPunctuation(m[0]);
        const href = safeHref(url);
        if (href) {
          flush();
          out.push(link([url], href));
          i += url.length;
        } else {
          // No host ("https:///..."): plain text, skipped whole so that it is not scanned again.
          text += m[0];
          i += m[0].length;
        }
        continue;
      }
    }
    if (c === '[' || (c === '!' && s[i + 1] === '[')) {
      const open = c === '!' ? i + 1 : i;
      const close = brackets.get(open);
      const dest = close !== undefined ? (links ??= new LinkScanner(s)).destination(close + 1) : undefined;
      if (close !== undefined && dest) {
        const label = s.slice(open + 1, close);
        const children = depth < MAX_NESTING ? parseInline(label, depth + 1) : [label];
        const href = safeHref(dest.url);
        flush();
        // Images are shown as links (or their alt text): the UI never loads remote content.
        if (href) out.push(link(children.length ? children : [href], href));
        else for (const child of children) typeof child === 'string' ? pushText(out, child) : out.push(child);
        i = dest.end;
        continue;
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      const delim = DELIMITERS.find((d) => s.startsWith(d.marker, i));
      const after = delim ? s[i + delim.marker.length] : undefined;
      const intraword = c === '_' && i > 0 && /[A-Za-z0-9]/.test(s[i - 1]!);
      if (delim && after !== undefined && !/\s/.test(after) && !intraword) {
        const from = i + delim.marker.length;
        const close = closeOf(delim.marker, from, () => findEmphasisClose(s, from, delim.marker, runs));
        if (close >= 0) {
          const inner = s.slice(from, close);
          flush();
          out.push(el(delim.tag, depth < MAX_NESTING ? parseInline(inner, depth + 1) : [inner]));
          i = close + delim.marker.length;
          continue;
        }
      }
      // An unmatched run of markers is text.
      let n = 0;
      while (s[i + n] === c) n++;
      text += s.slice(i, i + n);
      i += n;
      continue;
    }
    // Plain text up to the next character that may start something else.
    SPECIAL.lastIndex = i + 1;
    const next = SPECIAL.exec(s)?.index ?? s.length;
    text += s.slice(i, next);
    i = next;
  }
  flush();
  return out;
}

/** Parses markdown text into a tree of whitelisted elements. */
export function parseMarkdown(source: string): MdElement[] {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  return parseBlocks(lines, 0);
}

// ---------------------------------------------------------------------------------------------
// Serialization

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for use in HTML text or a double-quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const VOID_TAGS: ReadonlySet<MdTag> = new Set<MdTag>(['hr', 'br']);
const ATTR_ORDER: readonly (keyof MdAttrs)[] = ['href', 'rel', 'target', 'class', 'start', 'align'];

function nodeToHtml(node: MdNode): string {
  if (typeof node === 'string') return escapeHtml(node);
  const attrs = ATTR_ORDER.filter((k) => node.attrs?.[k] !== undefined)
    .map((k) => ` ${k}="${escapeHtml(node.attrs![k]!)}"`)
    .join('');
  if (VOID_TAGS.has(node.tag)) return `<${node.tag}${attrs}>`;
  return `<${node.tag}${attrs}>${node.children.map(nodeToHtml).join('')}</${node.tag}>`;
}

/** Serializes a tree to HTML, escaping all text and attribute values. */
export function markdownTreeToHtml(nodes: readonly MdNode[]): string {
  return nodes.map(nodeToHtml).join('');
}

/** parseMarkdown + markdownTreeToHtml. */
export function markdownToHtml(source: string): string {
  return markdownTreeToHtml(parseMarkdown(source));
}
