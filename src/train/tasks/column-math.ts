/**
 * Schoolbook arithmetic on decimal digit strings (non-negative, no leading zeros), recording each
 * column step in words. Used for the worked solutions: their answers come from these digit loops,
 * not from BigInt, so a test comparing them with BigInt results checks something real.
 */

const PLACE = ['ones', 'tens', 'hundreds', 'thousands', 'ten-thousands', 'hundred-thousands', 'millions'];
export const placeName = (i: number): string => PLACE[i] ?? `column ${i + 1}`;

const digitAt = (s: string, i: number): number => (i < s.length ? s.charCodeAt(s.length - 1 - i) - 48 : 0);
const stripZeros = (s: string): string => s.replace(/^0+(?=\d)/, '');

export interface ColumnResult {
  result: string;
  steps: string[];
}

export function addColumns(x: string, y: string): ColumnResult {
  const steps: string[] = [];
  let carry = 0;
  let out = '';
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const a = digitAt(x, i);
    const b = digitAt(y, i);
    const sum = a + b + carry;
    const terms = `${a} + ${b}${carry ? ` + ${carry}` : ''}`;
    out = String(sum % 10) + out;
    steps.push(`${placeName(i)}: ${terms} = ${sum}, write ${sum % 10}${sum >= 10 ? ', carry 1' : ''}.`);
    carry = sum >= 10 ? 1 : 0;
  }
  if (carry) {
    out = '1' + out;
    steps.push('The last carry 1 becomes the leading digit.');
  }
  return { result: stripZeros(out), steps };
}

/** x - y for x >= y (as numbers). */
export function subtractColumns(x: string, y: string): ColumnResult {
  const steps: string[] = [];
  let borrow = 0;
  let out = '';
  for (let i = 0; i < x.length; i++) {
    const a = digitAt(x, i) - borrow;
    const b = digitAt(y, i);
    const top = borrow ? `${a + 1} - 1 (borrowed) = ${a}` : `${a}`;
    if (a < b) {
      out = String(a + 10 - b) + out;
      steps.push(`${placeName(i)}: ${top}, smaller than ${b}, so borrow: ${a + 10} - ${b} = ${a + 10 - b}.`);
      borrow = 1;
    } else {
      out = String(a - b) + out;
      steps.push(`${placeName(i)}: ${top}; ${a} - ${b} = ${a - b}.`);
      borrow = 0;
    }
  }
  if (borrow) throw new Error(`subtractColumns: ${x} < ${y}`);
  return { result: stripZeros(out), steps };
}

/** x * d for one digit d. */
export function multiplyByDigit(x: string, d: number): ColumnResult {
  const steps: string[] = [];
  let carry = 0;
  let out = '';
  for (let i = 0; i < x.length; i++) {
    const a = digitAt(x, i);
    const p = a * d + carry;
    steps.push(`${a} × ${d}${carry ? ` + ${carry}` : ''} = ${p}, write ${p % 10}${p >= 10 ? `, carry ${Math.floor(p / 10)}` : ''}.`);
    out = String(p % 10) + out;
    carry = Math.floor(p / 10);
  }
  if (carry) out = String(carry) + out;
  return { result: stripZeros(out), steps };
}

/** Compares non-negative digit strings without leading zeros. */
export function compareDigits(x: string, y: string): number {
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}
