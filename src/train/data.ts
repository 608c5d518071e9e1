/**
 * Training data: text files or JSONL files (one JSON object per line with a string field "text"),
 * read in chunks, tokenized with our Tokenizer, documents joined by a separator token, and cached
 * as a token file so that re-runs do not re-tokenize. The token stream is packed into
 * non-overlapping sequences of seq_len + 1 tokens (inputs and shifted targets); the order of the
 * sequences is a seeded permutation per epoch, a pure function of (seed, epoch), so the data
 * position of a run is one integer (sequences consumed).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../formats/atomic-write.js';
import { Random } from '../autograd/random.js';
import type { Tokenizer } from '../tokenizer/index.js';

const CACHE_MAGIC = 0x54475246; // "FRGT"
const CACHE_VERSION = 1;
const CHUNK_BYTES = 1 << 20;

/** Calls onText with consecutive pieces of a file's text, each ending at a line break (or the file end). */
export function readTextChunks(path: string, onText: (text: string, firstLine: number) => void): void {
  const fd = openSync(path, 'r');
  try {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const buffer = new Uint8Array(CHUNK_BYTES);
    let carry = '';
    let line = 1;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      let text: string;
      try {
        text = carry + decoder.decode(buffer.subarray(0, n), { stream: n > 0 });
      } catch {
        throw new Error(`${path}: not valid UTF-8 (near line ${line})`);
      }
      if (n === 0) {
        if (text.length > 0) onText(text, line);
        return;
      }
      const cut = text.lastIndexOf('\n') + 1;
      carry = text.slice(cut);
      if (cut > 0) {
        const piece = text.slice(0, cut);
        onText(piece, line);
        for (let i = 0; i < piece.length; i++) if (piece.charCodeAt(i) === 10) line++;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The documents of a file: each JSONL line's "text", or a plain text file's content (in line-aligned pieces). */
export function forEachDocumentPiece(path: string, onPiece: (text: string, endOfDocument: boolean) => void): void {
  const jsonl = path.endsWith('.jsonl');
  readTextChunks(path, (text, firstLine) => {
    if (!jsonl) {
      onPiece(text, false);
      return;
    }
    const lines = text.split('\n');
    lines.forEach((raw, i) => {
      const line = raw.trim();
      if (line.length === 0) return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new Error(`${path}:${firstLine + i}: not valid JSON (${(error as Error).message})`);
      }
      const t = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)['text'] : undefined;
      if (typeof t !== 'string') throw new Error(`${path}:${firstLine + i}: expected an object with a string field "text"`);
      onPiece(t, true);
    });
  });
  if (!jsonl) onPiece('', true);
}

/** Tokenizes files into one stream, `separator` (when ≥ 0) after each document. */
export function tokenizeFiles(paths: readonly string[], tokenizer: Tokenizer, separator: number): Int32Array {
  let out = new Int32Array(1 << 16);
  let length = 0;
  const push = (ids: readonly number[]) => {
    if (length + ids.length > out.length) {
      const grown = new Int32Array(Math.max(out.length * 2, length + ids.length));
      grown.set(out.subarray(0, length));
      out = grown;
    }
    for (const id of ids) out[length++] = id;
  };
  for (const path of paths) {
    if (!existsSync(path)) throw new Error(`data file not found: ${path}`);
    forEachDocumentPiece(path, (text, end) => {
      if (text.length > 0) push(tokenizer.encode(text));
      if (end && separator >= 0) push([separator]);
    });
  }
  return out.slice(0, length);
}

function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The cache key: the files (absolute path, size, mtime), the tokenizer's bytes and the separator. */
export function tokenCacheKey(paths: readonly string[], tokenizerPath: string, separator: number): string {
  const files = paths.map((p) => {
    const s = statSync(p);
    return [resolve(p), s.size, s.mtimeMs];
  });
  return createHash('sha256').update(JSON.stringify({ files, tokenizer: fileSha256(tokenizerPath), separator, v: CACHE_VERSION })).digest('hex').slice(0, 32);
}

export function writeTokenFile(path: string, tokens: Int32Array): void {
  const header = new Uint32Array([CACHE_MAGIC, CACHE_VERSION, tokens.length]);
  writeFileAtomic(path, (write) => {
    write(new Uint8Array(header.buffer));
    write(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  });
}

export function readTokenFile(path: string): Int32Array {
  const bytes = readFileSync(path);
  if (bytes.length < 12) throw new Error(`${path}: token cache is truncated (${bytes.length} bytes)`);
  const magic = bytes.readUInt32LE(0);
  const version = bytes.readUInt32LE(4);
  const count = bytes.readUInt32LE(8);
  if (magic !== CACHE_MAGIC || version !== CACHE_VERSION) throw new Error(`${path}: not a frugal token cache (version ${CACHE_VERSION})`);
  if (bytes.length !== 12 + 4 * count) throw new Error(`${path}: token cache holds ${bytes.length - 12} bytes for ${count} tokens`);
  const out = new Int32Array(count);
  new Uint8Array(out.buffer).set(bytes.subarray(12));
  return out;
}

/** Tokens of the files, from the cache when the key matches; `cached` says which. */
export function loadTokens(paths: readonly string[], tokenizer: Tokenizer, tokenizerPath: string, separator: number, cacheDir: string): { tokens: Int32Array; cached: boolean; cachePath: string } {
  for (const p of paths) if (!existsSync(p)) throw new Error(`data file not found: ${p}`);
  mkdirSync(cacheDir, { recursive: true });
  const cachePath = join(cacheDir, `${tokenCacheKey(paths, tokenizerPath, separator)}.tokens`);
  if (existsSync(cachePath)) {
    try {
      return { tokens: readTokenFile(cachePath), cached: true, cachePath };
    } catch {
      // a damaged cache is rebuilt below
    }
  }
  const tokens = tokenizeFiles(paths, tokenizer, separator);
  writeTokenFile(cachePath, tokens);
  return { tokens, cached: false, cachePath };
}

/** Packed sequences of `length` tokens over a token stream. */
export class PackedSequences {
  readonly count: number;
  constructor(readonly tokens: Int32Array, readonly length: number, readonly first = 0, count?: number) {
    const available = Math.floor(tokens.length / length) - first;
    this.count = count ?? available;
    if (this.count < 0 || this.count > available) throw new Error(`PackedSequences: ${this.count} sequences from ${first} exceed the ${available} available`);
  }

  sequence(i: number): Int32Array {
    const at = (this.first + i) * this.length;
    return this.tokens.subarray(at, at + this.length);
  }
}

/** Splits the packed stream: the last `fraction` of the sequences (at least one) are held out for validation. */
export function holdOut(tokens: Int32Array, length: number, fraction: number): { train: PackedSequences; validation: PackedSequences } {
  const total = Math.floor(tokens.length / length);
  const held = Math.max(1, Math.round(total * fraction));
  if (total - held < 1) throw new Error(`the data holds ${total} sequences of ${length} tokens: too few to hold out ${held} for validation and train on the rest`);
  return { train: new PackedSequences(tokens, length, 0, total - held), validation: new PackedSequences(tokens, length, total - held, held) };
}

/** The seeded order of sequences: position `cursor` of the stream → sequence index (a new permutation each epoch). */
export class SequenceOrder {
  private epoch = -1;
  private perm: Int32Array = new Int32Array(0);
  constructor(readonly count: number, readonly seed: number) {
    if (count < 1) throw new Error('SequenceOrder: no sequences to train on');
  }

  at(cursor: number): number {
    const epoch = Math.floor(cursor / this.count);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.perm = permutation(this.count, new Random(((this.seed * 1000003) ^ (epoch * 7919 + 17)) >>> 0));
    }
    return this.perm[cursor - epoch * this.count]!;
  }

  /** B sequences from `cursor` on, concatenated ([B, length]). */
  batch(data: PackedSequences, cursor: number, size: number): Int32Array {
    const out = new Int32Array(size * data.length);
    for (let b = 0; b < size; b++) out.set(data.sequence(this.at(cursor + b)), b * data.length);
    return out;
  }
}

function permutation(n: number, rng: Random): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
