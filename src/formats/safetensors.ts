import { closeSync, fstatSync, openSync } from 'node:fs';
import type { DType } from '../tensor/dtype.js';
import { readBytesAt } from './file-cursor.js';
import { FormatError, wrapFormatErrors } from './format-error.js';
import { type MapOptions, MappedFile } from './mapped-file.js';

/**
 * safetensors reader (../shared/spec/formats-and-api.md §3.1): u64 header length N, N bytes of
 * JSON, then the data buffer. Only the header is read when the file is opened; tensor bytes are
 * read on demand (views of a memory mapping when the addon loads: src/formats/mapped-file.ts).
 * Validation follows the reference reader: tensors tile the data buffer exactly
 * (sorted by offset: no gaps, no overlap, ending at the end of the file) and each byte range
 * matches shape x dtype.
 */

/** Element width in bits of each safetensors dtype. */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8, U8: 8, I8: 8, F8_E4M3: 8, F8_E5M2: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, I64: 64, U64: 64, F64: 64, C64: 64,
  F4: 4, F6_E2M3: 6, F6_E3M2: 6,
} as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BITS;

const TO_DTYPE: Partial<Record<SafetensorsDtype, DType>> = {
  F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16', I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', F8_E4M3: 'fp8_e4m3',
};

/** Our DType for a safetensors dtype, or undefined where the project has no compute type (U8, BOOL, F8_E5M2, ...). */
export function dtypeOfSafetensors(dtype: SafetensorsDtype): DType | undefined {
  return TO_DTYPE[dtype];
}

/** The safetensors dtype that stores a DType (quantized ggml types have none). */
export function safetensorsDtypeOf(dtype: DType): SafetensorsDtype {
  for (const [st, ours] of Object.entries(TO_DTYPE)) if (ours === dtype) return st as SafetensorsDtype;
  throw new Error(`dtype ${dtype} cannot be stored in safetensors`);
}

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  /** The project's DType for these bytes, when it has one. */
  readonly computeDtype: DType | undefined;
  /** PyTorch order (row-major, last dimension contiguous). */
  readonly shape: readonly number[];
  /** Absolute file offset of the first byte. */
  readonly offset: number;
  readonly byteLength: number;
  readonly elements: number;
}

export interface SafetensorsFile {
  readonly path: string;
  readonly fileSize: number;
  /** Absolute file offset of the data buffer (8 + header length). */
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** In data order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  tensor(name: string): SafetensorsTensorInfo | undefined;
  /**
   * The tensor's bytes: a view of the file's mapping when mapped and 4-byte aligned (writes to it
   * stay in this process), else a fresh zero-offset buffer. Typed-array views of it are aligned.
   */
  readTensorBytes(info: SafetensorsTensorInfo): Uint8Array;
  /** Whether tensor bytes come from a memory mapping. */
  readonly mapped: boolean;
  close(): void;
}

export interface SafetensorsOpenOptions extends MapOptions {
  /** Largest JSON header accepted, in bytes. Default 100,000,000 (the reference reader's limit). */
  maxHeaderBytes?: number;
}

export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

export function openSafetensors(path: string, options: SafetensorsOpenOptions = {}): SafetensorsFile {
  const maxHeaderBytes = options.maxHeaderBytes ?? SAFETENSORS_MAX_HEADER_BYTES;
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const parsed = wrapFormatErrors(path, 'header', () => parseHeader(fd, path, fileSize, maxHeaderBytes));
    return new OpenSafetensors(new MappedFile(fd, path, fileSize, parsed.tensors, options), path, fileSize, parsed);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

interface Parsed {
  dataOffset: number;
  metadata: Record<string, string>;
  tensors: SafetensorsTensorInfo[];
}

function parseHeader(fd: number, path: string, fileSize: number, maxHeaderBytes: number): Parsed {
  const fail = (field: string, offset: number | undefined, problem: string): never => {
    throw new FormatError(path, field, offset, problem);
  };
  if (fileSize < 8) fail('header length', 0, `truncated: the file has ${fileSize} bytes, the header length alone needs 8`);
  const headerLength = Buffer.from(readBytesAt(fd, path, 0, 8, 'header length')).readBigUInt64LE(0);
  if (headerLength > BigInt(maxHeaderBytes)) fail('header length', 0, `${headerLength} bytes exceeds the ${maxHeaderBytes}-byte header limit`);
  const n = Number(headerLength);
  if (8 + n > fileSize) fail('header length', 0, `header of ${n} bytes runs past the end of the file (${fileSize} bytes): truncated`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readBytesAt(fd, path, 8, n, 'header'));
  } catch (error) {
    if (error instanceof FormatError) throw error;
    return fail('header', 8, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return fail('header', 8, `header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(json)) return fail('header', 8, 'header JSON is not an object');

  const dataOffset = 8 + n;
  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const relative: { begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, (problem) => fail("header '__metadata__'", 8, problem));
      continue;
    }
    const field = `header '${name}'`;
    if (!isPlainObject(entry)) return fail(field, 8, 'tensor entry is not an object');
    const dtype = entry.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BITS, dtype)) fail(`${field}.dtype`, 8, `unknown dtype ${JSON.stringify(dtype)}`);
    const bits = SAFETENSORS_DTYPE_BITS[dtype as SafetensorsDtype];
    const shape = entry.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
      fail(`${field}.shape`, 8, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    let elements = 1n;
    for (const d of shape as number[]) elements *= BigInt(d);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || (o as number) < 0)) {
      fail(`${field}.data_offsets`, 8, `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${field}.data_offsets`, 8, `end ${end} is before begin ${begin}`);
    const bitLength = elements * BigInt(bits);
    if (bitLength % 8n !== 0n) fail(`${field}.shape`, 8, `${elements} elements of ${dtype} is not a whole number of bytes`);
    if (bitLength / 8n !== BigInt(end - begin)) {
      fail(`${field}.data_offsets`, 8, `[${begin}, ${end}) holds ${end - begin} bytes, but ${dtype} [${(shape as number[]).join(', ')}] needs ${bitLength / 8n}`);
    }
    tensors.push({
      name, dtype: dtype as SafetensorsDtype, computeDtype: TO_DTYPE[dtype as SafetensorsDtype], shape: [...(shape as number[])],
      offset: dataOffset + begin, byteLength: end - begin, elements: Number(elements),
    });
    relative.push({ begin, end });
  }

  const order = tensors.map((_, i) => i).sort((a, b) => relative[a]!.begin - relative[b]!.begin || relative[a]!.end - relative[b]!.end);
  let expected = 0;
  for (const i of order) {
    const { begin, end } = relative[i]!;
    const t = tensors[i]!;
    if (begin < expected) fail(`header '${t.name}'.data_offsets`, dataOffset + begin, `[${begin}, ${end}) overlaps the previous tensor (which ends at ${expected})`);
    if (begin > expected) fail(`header '${t.name}'.data_offsets`, dataOffset + begin, `[${begin}, ${end}) leaves a gap after offset ${expected}`);
    expected = end;
  }
  if (dataOffset + expected > fileSize) {
    fail('data', fileSize, `tensors need ${expected} data bytes, the file has ${fileSize - dataOffset} after the header: truncated`);
  }
  if (dataOffset + expected < fileSize) fail('data', dataOffset + expected, `${fileSize - dataOffset - expected} bytes after the last tensor`);
  return { dataOffset, metadata, tensors: order.map((i) => tensors[i]!) };
}

function parseMetadata(entry: unknown, fail: (problem: string) => never): Record<string, string> {
  if (!isPlainObject(entry)) return fail('is not an object');
  const out: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') fail(`value of '${key}' is not a string`);
    out[key] = value as string;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class OpenSafetensors implements SafetensorsFile {
  readonly dataOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: readonly SafetensorsTensorInfo[];
  private readonly byName: Map<string, SafetensorsTensorInfo>;

  constructor(private readonly file: MappedFile, readonly path: string, readonly fileSize: number, parsed: Parsed) {
    this.dataOffset = parsed.dataOffset;
    this.metadata = parsed.metadata;
    this.tensors = parsed.tensors;
    this.byName = new Map(parsed.tensors.map((t) => [t.name, t]));
  }

  get mapped(): boolean {
    return this.file.mapped;
  }

  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.byName.get(name);
  }

  readTensorBytes(info: SafetensorsTensorInfo): Uint8Array {
    if (this.file.closed) throw new Error(`${this.path}: file is closed`);
    const field = `tensor '${info.name}' data`;
    if (!Number.isSafeInteger(info.offset) || info.offset < this.dataOffset || info.offset + info.byteLength > this.fileSize) {
      throw new FormatError(this.path, field, info.offset, `range of ${info.byteLength} bytes is outside the data buffer`);
    }
    return this.file.read(info.offset, info.byteLength, field);
  }

  close(): void {
    this.file.close();
  }
}
