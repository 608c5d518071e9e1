/**
 * Whole-number flag values, parsed strictly: Number() would read '' as 0 (a random port, a skipped
 * test), '0x50' as 80 and '1e3' as 1000, so a flag takes decimal digits only.
 */

/** `text` as a whole number (decimal digits only, at most 2^53 - 1), else NaN. */
export function wholeNumber(text: string): number {
  return /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : NaN;
}

/** `--flag`'s whole number of at least `min` (`fallback` when the flag is absent), or an error naming the flag. */
export function integerFlag(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = wholeNumber(text);
  if (!(n >= min)) throw new Error(`--${flag}: '${text}' is not an integer >= ${min}`);
  return n;
}
