import { accessSync, closeSync, constants, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where temporary test files go: memory-backed /dev/shm when present (writes to disk here cost ~3 ms each). */
function tempRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'frugal-formats-'): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tempRoot(), prefix));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * An independent little-endian byte builder for hand-made (often deliberately broken) files.
 * `at()` gives the offset of the next byte, so tests can name the offsets errors must report.
 */
export class Bytes {
  private parts: number[] = [];

  at(): number {
    return this.parts.length;
  }
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.u8(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn));
    return this;
  }
  u64(v: number | bigint): this {
    const b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) this.u8(Number((b >> BigInt(8 * i)) & 0xffn));
    return this;
  }
  f32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    return this.raw(b);
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.parts.push(bytes[i]! & 0xff);
    return this;
  }
  /** gguf_string: u64 length + bytes. */
  str(s: string | Uint8Array): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    return this.u64(b.length).raw(b);
  }
  pad(alignment: number): this {
    while (this.parts.length % alignment !== 0) this.parts.push(0);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
  writeTo(path: string): string {
    writeFileSync(path, this.bytes());
    return path;
  }
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

/**
 * A file rewritten in place many times (fuzzing): truncate + write on one open descriptor is
 * about 100x faster than writeFileSync on some filesystems.
 */
export class ScratchFile {
  private readonly fd: number;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  write(bytes: Uint8Array): void {
    ftruncateSync(this.fd, 0);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, done);
  }
  close(): void {
    closeSync(this.fd);
  }
}
