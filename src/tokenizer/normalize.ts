/**
 * Unicode normalization as HF `tokenizers` applies it (its NFC normalizer; the other forms are
 * left to `String.prototype.normalize`, not having been measured against HF).
 *
 * HF normalizes with the `unicode-normalization-alignments` crate, whose tables are those of
 * Unicode 9.0; JavaScript's `String.prototype.normalize` uses the runtime's ICU (Unicode 15-17 in
 * Node 20). The two agree except on characters assigned after Unicode 9.0 that take part in
 * normalization: combining marks with a non-zero canonical combining class (U+1DF6..U+1DF9, U+1AC1
 * ..., Wancho, Dives Akuru ...) and the canonical compositions of newer scripts (Vithkuqi,
 * Dives Akuru, Tulu-Tigalari, Gurung Khema, Kirat Rai). To HF such a character is unknown: a
 * starter (class 0) with no decomposition that composes with nothing, so no mark is reordered
 * across it and nothing composes with it. NFC of text containing one is therefore NFC of the text
 * before it, the character unchanged, and NFC of the text after it; that is what we compute.
 *
 * NEWER_THAN_HF lists exactly the characters on which Node 20 (ICU 78, Unicode 17.0) and HF
 * tokenizers 0.23.2 were measured to disagree under NFC, probing every assigned code point alone,
 * after a mark and before one (plus the pieces of the compositions HF does not know). A runtime
 * with an older ICU that does not know one of them treats it the same way, so the result is the same.
 */
import type { Normalization } from './tokenizer.js';

// prettier-ignore
const NEWER_THAN_HF = /[\u07fd\u0897-\u089f\u08ca-\u08d3\u09fe\u0c3c\u0d3b-\u0d3c\u0eba\u1715\u1abf-\u1add\u1ae0-\u1aeb\u1df6-\u1dfa\ua82c\u{105c9}\u{105d2}\u{105da}\u{105e4}\u{10d24}-\u{10d27}\u{10d69}-\u{10d6d}\u{10eab}-\u{10eac}\u{10efa}-\u{10efb}\u{10efd}-\u{10eff}\u{10f46}-\u{10f50}\u{10f82}-\u{10f85}\u{11070}\u{1133b}\u{11382}-\u{11385}\u{1138b}\u{1138e}\u{11390}-\u{11391}\u{113b8}\u{113bb}\u{113c2}\u{113c5}\u{113c7}-\u{113c9}\u{113ce}-\u{113d0}\u{1145e}\u{11839}-\u{1183a}\u{11930}\u{11935}\u{11938}\u{1193d}-\u{1193e}\u{11943}\u{119e0}\u{11a34}\u{11a47}\u{11a99}\u{11d42}\u{11d44}-\u{11d45}\u{11d97}\u{11f41}-\u{11f42}\u{1611e}-\u{16129}\u{1612f}\u{16d63}\u{16d67}-\u{16d6a}\u{16ff0}-\u{16ff1}\u{1e08f}\u{1e130}-\u{1e136}\u{1e2ae}\u{1e2ec}-\u{1e2ef}\u{1e4ec}-\u{1e4ef}\u{1e5ee}-\u{1e5ef}\u{1e6e3}\u{1e6e6}\u{1e6ee}-\u{1e6ef}\u{1e6f5}]/gu;
const HAS_NEWER = new RegExp(NEWER_THAN_HF.source, 'u');

/** `text` normalized to `form` the way HF tokenizers does it ('none': unchanged). */
export function normalizeLikeHf(text: string, form: Normalization): string {
  if (form === 'none') return text;
  if (form !== 'NFC' || !HAS_NEWER.test(text)) return text.normalize(form);
  let out = '';
  let previous = 0;
  NEWER_THAN_HF.lastIndex = 0;
  for (let match = NEWER_THAN_HF.exec(text); match !== null; match = NEWER_THAN_HF.exec(text)) {
    out += text.slice(previous, match.index).normalize(form) + match[0];
    previous = match.index + match[0].length;
  }
  return out + text.slice(previous).normalize(form);
}
