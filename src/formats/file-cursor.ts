import { readSync } from 'node:fs';
import { FormatError } from './format-error.js';

/**
 * Reads `length` bytes at `position` of an open file into `into` (from its start), or throws a
 * FormatError when the file ends first (it may have shrunk since it was opened).
 */
export function readFully(fd: number, file: string, into: Uint8Array, position: number, field: string): void {
  let done = 0;
  while (done < into.byteLength) {
    const chunk = Math.min(into.byteLength - done, 1 << 30);
    const n = readSync(fd, into, done, chunk, position + done);
    if (n <= 0) throw new FormatError(file, field, position + done, `file ended early (read ${done} of ${into.byteLength} bytes)`);
    done += n;
  }
}

/** A fresh, zero-offset buffer (so typed-array views of it are always aligned) filled from the file. */
export function readBytesAt(fd: number, file: string, position: number, length: number, field: string): Uint8Array {
  const out = new Uint8Array(length);
  readFully(fd, file, out, position, field);
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A little-endian reader over a file that loads bounded chunks on demand. It never reads past the
 * file size or past `limit` (the header size cap); both raise a FormatError naming the field and offset.
 */
export class FileCursor {
  pos = 0;
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    readonly fd: number,
    readonly file: string,
    readonly fileSize: number,
    readonly limit: number,
    readonly limitName: string,
    private readonly chunkBytes = 1 << 20,
  ) {}

  /** Bytes that may still be read: up to the end of the file or the header limit, whichever is first. */
  remaining(): number {
    return Math.max(0, Math.min(this.fileSize, this.limit) - this.pos);
  }

  fail(field: string, problem: string, offset: number = this.pos): never {
    throw new FormatError(this.file, field, offset, problem);
  }

  /** Makes bytes [pos, pos+n) resident and returns their index in `buf`. */
  private ensure(n: number, field: string): number {
    if (n > this.fileSize - this.pos) {
      this.fail(field, `truncated: needs ${n} bytes but the file ends at byte ${this.fileSize}`);
    }
    if (n > this.limit - this.pos) {
      this.fail(field, `header exceeds the ${this.limit}-byte limit (${this.limitName})`);
    }
    const at = this.pos - this.bufStart;
    if (at >= 0 && at + n <= this.buf.length) return at;
    const want = Math.min(Math.max(n, this.chunkBytes), Math.min(this.fileSize, this.limit) - this.pos);
    const buf = Buffer.allocUnsafe(want);
    readFully(this.fd, this.file, buf, this.pos, field);
    this.buf = buf;
    this.bufStart = this.pos;
    return 0;
  }

  u8(field: string): number {
    const at = this.ensure(1, field);
    this.pos += 1;
    return this.buf[at]!;
  }
  i8(field: string): number {
    const at = this.ensure(1, field);
    this.pos += 1;
    return this.buf.readInt8(at);
  }
  u16(field: string): number {
    const at = this.ensure(2, field);
    this.pos += 2;
    return this.buf.readUInt16LE(at);
  }
  i16(field: string): number {
    const at = this.ensure(2, field);
    this.pos += 2;
    return this.buf.readInt16LE(at);
  }
  u32(field: string): number {
    const at = this.ensure(4, field);
    this.pos += 4;
    return this.buf.readUInt32LE(at);
  }
  i32(field: string): number {
    const at = this.ensure(4, field);
    this.pos += 4;
    return this.buf.readInt32LE(at);
  }
  f32(field: string): number {
    const at = this.ensure(4, field);
    this.pos += 4;
    return this.buf.readFloatLE(at);
  }
  f64(field: string): number {
    const at = this.ensure(8, field);
    this.pos += 8;
    return this.buf.readDoubleLE(at);
  }
  u64(field: string): bigint {
    const at = this.ensure(8, field);
    this.pos += 8;
    return this.buf.readBigUInt64LE(at);
  }
  i64(field: string): bigint {
    const at = this.ensure(8, field);
    this.pos += 8;
    return this.buf.readBigInt64LE(at);
  }

  /**
   * A u64 count or length that must not exceed `max`, returned as a number. Errors name the
   * field as `field + suffix` (the suffix is only concatenated on failure).
   */
  count(field: string, max: number, why: string, suffix = ''): number {
    const start = this.pos;
    if (this.fileSize - this.pos < 8 || this.limit - this.pos < 8) this.ensure(8, field + suffix);
    const at = this.ensure(8, field);
    this.pos += 8;
    const lo = this.buf.readUInt32LE(at);
    const hi = this.buf.readUInt32LE(at + 4);
    if (hi >= 0x200000 || hi * 0x100000000 + lo > max) {
      const value = (BigInt(hi) << 32n) | BigInt(lo);
      this.fail(field + suffix, `${value} is too large (${why}, at most ${max})`, start);
    }
    return hi * 0x100000000 + lo;
  }

  /** `n` raw bytes (a view that stays valid after later reads). */
  bytes(n: number, field: string): Uint8Array {
    const at = this.ensure(n, field);
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  /** A UTF-8 string of `n` bytes; invalid UTF-8 is an error. */
  utf8(n: number, field: string): string {
    const start = this.pos;
    const at = this.ensure(n, field);
    this.pos += n;
    const end = at + n;
    const buf = this.buf;
    let ascii = true;
    for (let i = at; i < end; i++) {
      if (buf[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return buf.toString('latin1', at, end);
    const text = buf.toString('utf8', at, end);
    // Node substitutes U+FFFD for invalid sequences: only then is a strict decode needed to tell
    // an invalid string from one that really contains U+FFFD.
    if (text.includes('\uFFFD')) {
      try {
        utf8.decode(buf.subarray(at, end));
      } catch {
        return this.fail(field, `string of ${n} bytes is not valid UTF-8`, start);
      }
    }
    return text;
  }
}
