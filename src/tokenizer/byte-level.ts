/**
 * GPT-2 `bytes_to_unicode` (../shared/spec/formats-and-api.md §4.2): every byte gets a printable
 * stand-in character so that byte strings can live in a JSON vocabulary. Bytes 0x21..0x7E,
 * 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68 bytes, in increasing order, map to
 * U+0100, U+0101, ...
 */

function buildByteToChar(): string[] {
  const chars: string[] = new Array(256);
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    chars[byte] = String.fromCharCode(printable ? byte : next++);
  }
  return chars;
}

/** BYTE_TO_CHAR[b] is the single-character stand-in of byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Code unit of a stand-in character -> byte value. */
const CHAR_TO_BYTE = new Map<number, number>(BYTE_TO_CHAR.map((char, byte) => [char.charCodeAt(0), byte]));

/** The byte-level form of a string: its UTF-8 bytes, one stand-in character each. */
export function toByteLevel(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += BYTE_TO_CHAR[byte];
  return out;
}

/**
 * The bytes a byte-level token stands for, or undefined when some character of it is not a
 * stand-in (HF's ByteLevel decoder then keeps the token's own UTF-8 bytes).
 */
export function fromByteLevel(token: string): Uint8Array | undefined {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const byte = CHAR_TO_BYTE.get(token.charCodeAt(i));
    if (byte === undefined) return undefined;
    bytes[i] = byte;
  }
  return bytes;
}

/**
 * Writes the UTF-8 bytes of `text` into `out` starting at 0 and returns the byte count. `out` must
 * hold at least 3 * text.length bytes. Lone surrogates become U+FFFD (as TextEncoder does).
 */
export function utf8Encode(text: string, out: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const low = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
          i++;
          out[n++] = 0xf0 | (cp >> 18);
          out[n++] = 0x80 | ((cp >> 12) & 0x3f);
          out[n++] = 0x80 | ((cp >> 6) & 0x3f);
          out[n++] = 0x80 | (cp & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}
