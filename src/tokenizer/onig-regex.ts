/**
 * Translates the Oniguruma patterns found in tokenizer.json pre-tokenizers (HF `tokenizers` runs
 * them with Oniguruma's Ruby syntax on UTF-8) into JavaScript `u`-flag regexes that match the same
 * strings. The differences that matter for tokenizer patterns:
 * - `\s` is Unicode White_Space in Oniguruma: U+0009..U+000D, U+0085 and the Zs/Zl/Zp categories.
 *   JavaScript's `\s` also takes U+FEFF and leaves out U+0085.
 * - `(?i:...)` groups do not exist in Node 20: letters inside become explicit case classes, with
 *   the Unicode simple case folds Oniguruma applies (`s` also matches U+017F LATIN SMALL LETTER
 *   LONG S, `k` also U+212A KELVIN SIGN).
 * - `\d`, `\w` are Unicode-aware in Oniguruma; `\p{Name}` accepts script names without `Script=`.
 * - Escaped punctuation that `u` mode rejects (`\#`, `\&`, `\~`, `\'` ...) loses its backslash.
 * Constructs outside this set (nested classes, POSIX brackets, `\h`, absent groups) raise an Error
 * naming the pattern and the offset rather than silently changing meaning.
 */

const WHITE_SPACE = '\\t\\n\\v\\f\\r\\x85\\p{Zs}\\p{Zl}\\p{Zp}';
const WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';
/** Escapable in a `u`-mode regex outside a class (SyntaxCharacter and `/`). */
const U_MODE_ESCAPABLE = new Set('^$\\.*+?()[]{}|/');
/** Extra simple case folds beyond ASCII for the letters whose fold class is larger than {x, X}. */
const EXTRA_FOLDS: Record<string, string> = { s: '\u017f', k: '\u212a' };

export class RegexTranslationError extends Error {}

function caseClassBody(letter: string): string {
  const lower = letter.toLowerCase();
  return lower + lower.toUpperCase() + (EXTRA_FOLDS[lower] ?? '');
}

function propertyName(name: string, pattern: string, at: number): string {
  const candidates = [name, `Script=${name}`];
  for (const candidate of candidates) {
    try {
      new RegExp(`\\p{${candidate}}`, 'u');
      return candidate;
    } catch {
      // try the next spelling
    }
  }
  throw new RegexTranslationError(`unsupported Unicode property \\p{${name}} at offset ${at} of pattern ${JSON.stringify(pattern)}`);
}

/** The JavaScript source (for `new RegExp(source, 'gu')`) equivalent to an Oniguruma pattern. */
export function translateOnigurumaPattern(pattern: string): string {
  let out = '';
  let inClass = false;
  let classStart = -1;
  // Stack of open groups; true where the group switched case-insensitivity on.
  const groups: boolean[] = [];
  let caseInsensitiveDepth = 0;
  const fail = (what: string, at: number): never => {
    throw new RegexTranslationError(`${what} at offset ${at} of pattern ${JSON.stringify(pattern)}`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const e = pattern[i + 1];
      if (e === undefined) fail('dangling backslash', i);
      i++;
      switch (e) {
        case 's':
          out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
          break;
        case 'S':
          if (inClass) fail('\\S inside a character class is not supported', i - 1);
          out += `[^${WHITE_SPACE}]`;
          break;
        case 'd':
          out += '\\p{Nd}';
          break;
        case 'D':
          out += '\\P{Nd}';
          break;
        case 'w':
          out += inClass ? WORD : `[${WORD}]`;
          break;
        case 'W':
          if (inClass) fail('\\W inside a character class is not supported', i - 1);
          out += `[^${WORD}]`;
          break;
        case 'p':
        case 'P': {
          const close = pattern.indexOf('}', i);
          if (pattern[i + 1] !== '{' || close < 0) fail(`malformed \\${e}`, i - 1);
          let name = pattern.slice(i + 2, close);
          let negate = e === 'P';
          if (name.startsWith('^')) {
            negate = !negate;
            name = name.slice(1);
          }
          out += `\\${negate ? 'P' : 'p'}{${propertyName(name, pattern, i - 1)}}`;
          i = close;
          break;
        }
        case 'h':
        case 'H':
        case 'A':
        case 'z':
        case 'Z':
        case 'G':
        case 'K':
        case 'R':
        case 'X':
        case 'y':
        case 'Y':
          fail(`unsupported escape \\${e}`, i - 1);
          break;
        default:
          if (/[A-Za-z0-9]/.test(e!)) {
            out += `\\${e}`; // \n \r \t \x.. \u.... \b \B and back-references keep their meaning
          } else if (U_MODE_ESCAPABLE.has(e!) || (inClass && e === '-')) {
            out += `\\${e}`;
          } else {
            out += e; // e.g. \# \& \~ \' \" \- (outside a class): a plain literal
          }
      }
      continue;
    }
    if (inClass) {
      if (c === '[') {
        if (pattern[i + 1] === ':') fail('POSIX bracket expressions are not supported', i);
        fail('nested character classes are not supported', i);
      }
      if (c === ']') {
        inClass = false;
        out += c;
        continue;
      }
      if (c === '&' && pattern[i + 1] === '&') fail('class intersection (&&) is not supported', i);
      if (caseInsensitiveDepth > 0 && /[A-Za-z]/.test(c)) {
        if (pattern[i + 1] === '-' || pattern[i - 1] === '-') fail('ranges inside (?i:) classes are not supported', i);
        out += caseClassBody(c);
        continue;
      }
      out += c;
      continue;
    }
    switch (c) {
      case '[':
        inClass = true;
        classStart = i;
        out += c;
        // A `]` right after `[` or `[^` is a literal in Oniguruma; JavaScript needs it escaped.
        if (pattern[i + 1] === '^') {
          out += '^';
          i++;
        }
        if (pattern[i + 1] === ']') {
          out += '\\]';
          i++;
        }
        break;
      case '(': {
        if (pattern[i + 1] !== '?') {
          groups.push(false);
          out += c;
          break;
        }
        const rest = pattern.slice(i + 2);
        const flags = /^([imx]*)(?:-([imx]*))?([:)])/.exec(rest);
        if (flags && flags[0] !== ':' && !rest.startsWith(':')) {
          const on = flags[1] ?? '';
          const off = flags[2] ?? '';
          if (/[mx]/.test(on + off) || off.includes('i')) fail(`unsupported inline option group (?${flags[0]}`, i);
          if (flags[3] === ')') fail('inline options without a group ((?i)) are not supported', i);
          groups.push(true);
          caseInsensitiveDepth++;
          out += '(?:';
          i += 1 + flags[0].length;
          break;
        }
        if (/^(?::|=|!|<=|<!|<[A-Za-z_])/.test(rest)) {
          groups.push(false);
          out += c;
          break;
        }
        fail(`unsupported group syntax (?${rest.slice(0, 2)}`, i);
        break;
      }
      case ')': {
        const switched = groups.pop();
        if (switched === undefined) fail('unbalanced )', i);
        if (switched) caseInsensitiveDepth--;
        out += c;
        break;
      }
      default:
        if (caseInsensitiveDepth > 0 && /[A-Za-z]/.test(c)) out += `[${caseClassBody(c)}]`;
        else out += c;
    }
  }
  if (inClass) fail('unterminated character class', classStart);
  if (groups.length > 0) fail('unterminated group', pattern.length);
  return out;
}

/** Compiles an Oniguruma pattern into a global JavaScript regex with the same matches. */
export function compileOnigurumaPattern(pattern: string): RegExp {
  const source = translateOnigurumaPattern(pattern);
  try {
    return new RegExp(source, 'gu');
  } catch (error) {
    throw new RegexTranslationError(`pattern ${JSON.stringify(pattern)} does not compile as JavaScript (${source}): ${(error as Error).message}`);
  }
}
