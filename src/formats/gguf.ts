import { closeSync, fstatSync, openSync } from 'node:fs';
import { type DType, dtypeOfGgmlType } from '../tensor/dtype.js';
import { dequantize } from '../tensor/quant/index.js';
import { type WeightMatrix, weightMatrix } from '../tensor/tensor.js';
import { FileCursor } from './file-cursor.js';
import { DEFAULT_MAP_SEGMENT_BYTES, type MapOptions, MappedFile } from './mapped-file.js';
import { FormatError, wrapFormatErrors } from './format-error.js';
import { type GgufPlainValue, type GgufValue, plainValue } from './gguf-value.js';

/**
 * GGUF reader (versions 2 and 3, little-endian; ../shared/spec/formats-and-api.md §1). Only the
 * header is parsed when the file is opened, through bounded buffered reads. Tensor bytes are then
 * views of a memory mapping of the data section when the native addon is built (FRUGAL_MMAP=0
 * turns that off): opening is instant, the OS page cache holds the weights, and only the pages a
 * computation touches are read, so a model larger than RAM still runs. Otherwise they are read on
 * demand by offset into fresh buffers. Every malformed input raises a FormatError naming file,
 * field and byte offset.
 */

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: ne[0] is the innermost (contiguous) dimension. */
  readonly dims: readonly number[];
  readonly dtype: DType;
  readonly ggmlType: number;
  /** Absolute file offset of the first byte. */
  readonly offset: number;
  readonly byteLength: number;
  readonly elements: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly alignment: number;
  /** Absolute file offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
  /** Whether tensor bytes are views of a memory mapping (else they are read into fresh buffers). */
  readonly mapped: boolean;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  tensor(name: string): GgufTensorInfo | undefined;
  value(key: string): GgufPlainValue | undefined;
  /**
   * The tensor's bytes, 4-byte aligned (so Float32Array views are possible): a view of the
   * mapping when mapped (no copy; its pages are read when first touched, and writes to it stay in
   * this process), else a fresh buffer.
   */
  readTensorBytes(info: GgufTensorInfo): Uint8Array;
  /** `length` bytes at absolute file offset `offset` (bounds-checked against the file), as readTensorBytes. */
  readRange(offset: number, length: number, field?: string): Uint8Array;
  /** Closes the file. Views already returned stay valid (a mapping is released when its last view is collected). */
  close(): void;
}

export interface GgufOpenOptions extends MapOptions {
  /** Largest header (metadata + tensor infos) accepted, in bytes. Default 64 MiB (real tokenizers need under 16 MiB). */
  maxHeaderBytes?: number;
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_DEFAULT_MAX_HEADER_BYTES = 64 * 1024 * 1024;
export const GGUF_DEFAULT_MAP_SEGMENT_BYTES = DEFAULT_MAP_SEGMENT_BYTES;
/** Limits shared with ggml's reader (gguf.cpp). */
export const GGUF_MAX_KEY_BYTES = 65535;
export const GGUF_MAX_STRING_BYTES = 1 << 30;
export const GGUF_MAX_ARRAY_COUNT = 1 << 30;
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
export const GGUF_MAX_DIMS = 4;
/** Arrays of arrays may nest this deep (ggml itself rejects any nesting). */
export const GGUF_MAX_ARRAY_DEPTH = 4;

/** GGUF value type codes (§1.2). */
export const GGUF_TYPE_CODES = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
} as const;
export type GgufTypeName = keyof typeof GGUF_TYPE_CODES;
const TYPE_NAMES: readonly GgufTypeName[] = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

/** Smallest encoding of one value of each type (for capping counts against the bytes left). */
const MIN_VALUE_BYTES: Record<GgufTypeName, number> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};
/** key length (8) + at least one key byte + value type (4) + smallest value (1). */
const MIN_KV_BYTES = 14;
/** name length (8) + n_dims (4) + type (4) + offset (8). */
const MIN_TENSOR_INFO_BYTES = 24;

/** ggml type names for ids this project cannot compute with, used in error messages. */
const UNSUPPORTED_GGML_TYPES: Record<number, string> = {
  4: 'Q4_2 (removed)', 5: 'Q4_3 (removed)', 9: 'Q8_1', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S',
  21: 'IQ3_S', 22: 'IQ2_S', 29: 'IQ1_M', 31: 'Q4_0_4_4 (removed)', 32: 'Q4_0_4_8 (removed)',
  33: 'Q4_0_8_8 (removed)', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4', 40: 'NVFP4', 41: 'Q1_0', 42: 'Q2_0',
};

export function ggmlTypeDescription(id: number): string {
  const known = dtypeOfGgmlType(id);
  if (known) return known.name;
  return UNSUPPORTED_GGML_TYPES[id] ?? 'unknown';
}

export function alignUp(x: number, alignment: number): number {
  return x + ((alignment - (x % alignment)) % alignment);
}

export function openGguf(path: string, options: GgufOpenOptions = {}): GgufFile {
  const maxHeaderBytes = options.maxHeaderBytes ?? GGUF_DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 24) throw new Error(`openGguf: invalid maxHeaderBytes ${maxHeaderBytes}`);
  const mapSegmentBytes = options.mapSegmentBytes ?? GGUF_DEFAULT_MAP_SEGMENT_BYTES;
  if (!Number.isSafeInteger(mapSegmentBytes) || mapSegmentBytes < 1) throw new Error(`openGguf: invalid mapSegmentBytes ${mapSegmentBytes}`);
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const header = wrapFormatErrors(path, 'header', () => parseHeader(new FileCursor(fd, path, fileSize, maxHeaderBytes, 'maxHeaderBytes')));
    return new OpenGgufFile(new MappedFile(fd, path, fileSize, header.tensors, { ...options, mapSegmentBytes }), path, fileSize, header);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

interface ParsedHeader {
  version: number;
  alignment: number;
  dataOffset: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

function parseHeader(c: FileCursor): ParsedHeader {
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const bytes = [magic & 0xff, (magic >>> 8) & 0xff, (magic >>> 16) & 0xff, magic >>> 24];
    c.fail('magic', `not a GGUF file: expected bytes 47 47 55 46 ("GGUF"), found ${bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')}`, 0);
  }
  const version = c.u32('version');
  if (version === 1) c.fail('version', 'GGUF version 1 is not supported (32-bit counts; re-convert the file with a current llama.cpp)', 4);
  if (version !== 0 && (version & 0xffff) === 0) {
    c.fail('version', `version field 0x${version.toString(16)} looks byte-swapped: big-endian GGUF files are not supported`, 4);
  }
  if (version !== 2 && version !== 3) c.fail('version', `unsupported GGUF version ${version} (supported: 2, 3)`, 4);

  const tensorCount = readCount(c, 'tensor_count', MIN_TENSOR_INFO_BYTES, 'tensor infos');
  const kvCount = readCount(c, 'kv_count', MIN_KV_BYTES, 'key-value pairs');

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = readString(c, `metadata[${i}] key`, GGUF_MAX_KEY_BYTES);
    if (key.length === 0) c.fail(`metadata[${i}] key`, 'empty key', keyAt);
    if (metadata.has(key)) c.fail(`metadata[${i}] key '${key}'`, 'duplicate key', keyAt);
    const field = `metadata '${key}'`;
    const typeAt = c.pos;
    const type = c.u32(`${field} value type`);
    metadata.set(key, readValue(c, type, typeAt, field, 0));
  }

  const alignment = readAlignment(c, metadata);

  const tensors: GgufTensorInfo[] = [];
  const relativeOffsets: { offset: bigint; at: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const nameAt = c.pos;
    const name = readString(c, `tensor_infos[${i}] name`, GGUF_MAX_TENSOR_NAME_BYTES);
    if (names.has(name)) c.fail(`tensor_infos[${i}] name '${name}'`, 'duplicate tensor name', nameAt);
    names.add(name);
    const field = `tensor_infos[${i}] '${name}'`;
    const nDimsAt = c.pos;
    const nDims = c.u32(`${field} n_dims`);
    if (nDims > GGUF_MAX_DIMS) c.fail(`${field} n_dims`, `${nDims} dimensions (at most ${GGUF_MAX_DIMS})`, nDimsAt);
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const at = c.pos;
      const ne = c.i64(`${field} ne[${d}]`);
      if (ne < 0n) c.fail(`${field} ne[${d}]`, `dimension ${BigInt.asUintN(64, ne)} is negative as int64`, at);
      if (ne > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`${field} ne[${d}]`, `dimension ${ne} is too large`, at);
      elements *= ne;
      dims.push(Number(ne));
    }
    if (nDims === 0) dims.push(1);
    const typeAt = c.pos;
    const ggmlType = c.u32(`${field} type`);
    const info = dtypeOfGgmlType(ggmlType);
    if (!info) c.fail(`${field} type`, `ggml type ${ggmlType} (${ggmlTypeDescription(ggmlType)}) is not supported`, typeAt);
    if (dims[0]! % info.blockElements !== 0) {
      c.fail(`${field} ne[0]`, `${dims[0]} is not a multiple of the ${info.name} block size ${info.blockElements}`, nDimsAt + 4);
    }
    const byteLength = (elements / BigInt(info.blockElements)) * BigInt(info.blockBytes);
    if (elements > BigInt(Number.MAX_SAFE_INTEGER) || byteLength > BigInt(c.fileSize)) {
      c.fail(`${field} ne`, `${info.name} tensor of ${elements} elements needs ${byteLength} bytes, more than the whole file (${c.fileSize})`, nDimsAt + 4);
    }
    const offsetAt = c.pos;
    const offset = c.u64(`${field} offset`);
    if (offset % BigInt(alignment) !== 0n) c.fail(`${field} offset`, `data offset ${offset} is not a multiple of the alignment ${alignment}`, offsetAt);
    relativeOffsets.push({ offset, at: offsetAt });
    tensors.push({ name, dims, dtype: info.name, ggmlType, offset: 0, byteLength: Number(byteLength), elements: Number(elements) });
  }

  const dataOffset = alignUp(c.pos, alignment);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    const { offset, at } = relativeOffsets[i]!;
    const begin = BigInt(dataOffset) + offset;
    const end = begin + BigInt(t.byteLength);
    if (end > BigInt(c.fileSize)) {
      c.fail(`tensor_infos[${i}] '${t.name}' offset`, `data [${begin}, ${end}) lies beyond the end of the file (${c.fileSize} bytes): truncated or bad offset`, at);
    }
    tensors[i] = { ...t, offset: Number(begin) };
  }
  checkNoOverlap(c, tensors);
  return { version, alignment, dataOffset, metadata, tensors };
}

function readCount(c: FileCursor, field: string, minBytes: number, what: string): number {
  const at = c.pos;
  const raw = c.u64(field);
  if (raw >= 1n << 63n) c.fail(field, `${raw} is negative as int64`, at);
  const max = Math.floor(c.remaining() / minBytes);
  if (raw > BigInt(max)) c.fail(field, `${raw} ${what} cannot fit in the ${c.remaining()} bytes left (header limit or end of file)`, at);
  return Number(raw);
}

function readString(c: FileCursor, field: string, maxBytes: number): string {
  const limit = Math.min(maxBytes, c.remaining() - 8);
  const length = c.count(field, Math.max(0, limit), limit < maxBytes ? 'beyond the end of the file or header limit' : 'string length limit', ' length');
  return c.utf8(length, field);
}

/**
 * Reads `count` array items with `read(i)`; an error inside item i is re-raised with the item
 * index in its field name (built only on failure: tokenizer arrays hold ~10^5 items).
 */
function readItems<T>(c: FileCursor, field: string, count: number, read: () => T): T[] {
  const out: T[] = new Array(count);
  let i = 0;
  try {
    for (; i < count; i++) out[i] = read();
  } catch (error) {
    if (error instanceof FormatError && error.field.startsWith(field)) {
      throw new FormatError(c.file, `${field}[${i}]${error.field.slice(field.length)}`, error.offset, error.problem, { cause: error.cause });
    }
    throw error;
  }
  return out;
}

function readValue(c: FileCursor, type: number, typeAt: number, field: string, depth: number): GgufValue {
  switch (type) {
    case 0: return { type: 'u8', value: c.u8(field) };
    case 1: return { type: 'i8', value: c.i8(field) };
    case 2: return { type: 'u16', value: c.u16(field) };
    case 3: return { type: 'i16', value: c.i16(field) };
    case 4: return { type: 'u32', value: c.u32(field) };
    case 5: return { type: 'i32', value: c.i32(field) };
    case 6: return { type: 'f32', value: c.f32(field) };
    case 7: return { type: 'bool', value: readBool(c, field) };
    case 8: return { type: 'string', value: readString(c, field, GGUF_MAX_STRING_BYTES) };
    case 9: return readArray(c, field, depth);
    case 10: return { type: 'u64', value: c.u64(field) };
    case 11: return { type: 'i64', value: c.i64(field) };
    case 12: return { type: 'f64', value: c.f64(field) };
    default: return c.fail(`${field} value type`, `unknown GGUF value type ${type}`, typeAt);
  }
}

function readBool(c: FileCursor, field: string): boolean {
  const at = c.pos;
  const b = c.u8(field);
  if (b > 1) c.fail(field, `bool byte is ${b} (must be 0 or 1)`, at);
  return b === 1;
}

function readArray(c: FileCursor, field: string, depth: number): GgufValue {
  const typeAt = c.pos;
  const itemCode = c.u32(`${field} array item type`);
  const itemType = TYPE_NAMES[itemCode];
  if (itemType === undefined) c.fail(`${field} array item type`, `unknown GGUF value type ${itemCode}`, typeAt);
  if (itemType === 'array' && depth + 1 >= GGUF_MAX_ARRAY_DEPTH) {
    c.fail(`${field} array item type`, `arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH} levels`, typeAt);
  }
  const maxCount = Math.min(GGUF_MAX_ARRAY_COUNT, Math.floor(Math.max(0, c.remaining() - 8) / MIN_VALUE_BYTES[itemType]));
  const count = c.count(field, maxCount, `${itemType} items that fit in the bytes left, capped at ${GGUF_MAX_ARRAY_COUNT}`, ' array count');
  switch (itemType) {
    case 'string':
      return { type: 'array', itemType, value: readItems(c, field, count, () => readString(c, field, GGUF_MAX_STRING_BYTES)) };
    case 'bool':
      return { type: 'array', itemType, value: readItems(c, field, count, () => readBool(c, field)) };
    case 'u64':
      return { type: 'array', itemType, value: readItems(c, field, count, () => c.u64(field)) };
    case 'i64':
      return { type: 'array', itemType, value: readItems(c, field, count, () => c.i64(field)) };
    case 'array': {
      const value: GgufValue[] = new Array(count);
      for (let i = 0; i < count; i++) value[i] = readArray(c, `${field}[${i}]`, depth + 1);
      return { type: 'array', itemType, value };
    }
    default: {
      const read = {
        u8: () => c.u8(field), i8: () => c.i8(field), u16: () => c.u16(field), i16: () => c.i16(field),
        u32: () => c.u32(field), i32: () => c.i32(field), f32: () => c.f32(field), f64: () => c.f64(field),
      }[itemType];
      return { type: 'array', itemType, value: readItems(c, field, count, read) };
    }
  }
}

function readAlignment(c: FileCursor, metadata: ReadonlyMap<string, GgufValue>): number {
  const entry = metadata.get('general.alignment');
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const field = "metadata 'general.alignment'";
  if (entry.type !== 'u32') throw new FormatError(c.file, field, undefined, `must be a u32, found ${entry.type}`);
  const a = entry.value;
  if (a === 0 || (a & (a - 1)) !== 0) throw new FormatError(c.file, field, undefined, `${a} is not a power of two`);
  return a;
}

function checkNoOverlap(c: FileCursor, tensors: readonly GgufTensorInfo[]): void {
  const ordered = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < ordered.length; i++) {
    const prev = ordered[i - 1]!;
    const t = ordered[i]!;
    if (t.offset < prev.offset + prev.byteLength) {
      c.fail(`tensor '${t.name}' data`, `bytes [${t.offset}, ${t.offset + t.byteLength}) overlap tensor '${prev.name}' [${prev.offset}, ${prev.offset + prev.byteLength})`, t.offset);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Memory mapping

class OpenGgufFile implements GgufFile {
  readonly version: number;
  readonly alignment: number;
  readonly dataOffset: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  private readonly byName: Map<string, GgufTensorInfo>;

  constructor(private readonly file: MappedFile, readonly path: string, readonly fileSize: number, header: ParsedHeader) {
    this.version = header.version;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  get mapped(): boolean {
    return this.file.mapped;
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  value(key: string): GgufPlainValue | undefined {
    const v = this.metadata.get(key);
    return v === undefined ? undefined : plainValue(v);
  }

  readTensorBytes(info: GgufTensorInfo): Uint8Array {
    return this.readRange(info.offset, info.byteLength, `tensor '${info.name}' data`);
  }

  readRange(offset: number, length: number, field = 'data range'): Uint8Array {
    return this.file.read(offset, length, field);
  }

  close(): void {
    this.file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Typed metadata access

/** A numeric metadata value (any integer or float type; bigints must be exact numbers), or undefined. */
export function ggufNumber(file: GgufFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type === 'u64' || v.type === 'i64') {
    if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError(file.path, `metadata '${key}'`, undefined, `${v.value} does not fit in a JavaScript number`);
    }
    return Number(v.value);
  }
  if (v.type === 'array' || v.type === 'string' || v.type === 'bool') {
    throw new FormatError(file.path, `metadata '${key}'`, undefined, `expected a number, found ${v.type}`);
  }
  return v.value as number;
}

export function requireGgufNumber(file: GgufFile, key: string): number {
  const v = ggufNumber(file, key);
  if (v === undefined) throw new FormatError(file.path, `metadata '${key}'`, undefined, 'required key is missing');
  return v;
}

export function ggufString(file: GgufFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'string') throw new FormatError(file.path, `metadata '${key}'`, undefined, `expected a string, found ${v.type}`);
  return v.value;
}

export function ggufBool(file: GgufFile, key: string): boolean | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== 'bool') throw new FormatError(file.path, `metadata '${key}'`, undefined, `expected a bool, found ${v.type}`);
  return v.value;
}

// ---------------------------------------------------------------------------------------------
// Weights

function requireTensor(file: GgufFile, name: string): GgufTensorInfo {
  const info = file.tensor(name);
  if (!info) throw new FormatError(file.path, `tensor '${name}'`, undefined, 'no such tensor in the file');
  return info;
}

/**
 * A 2-D tensor (or a 1-D one as [1, n]; trailing dimensions of 1 are ignored) as a WeightMatrix in
 * its storage dtype: rows = ne[1], cols = ne[0].
 */
export function readWeightMatrix(file: GgufFile, name: string): WeightMatrix {
  const info = requireTensor(file, name);
  const dims = info.dims;
  if (dims.slice(2).some((d) => d !== 1)) {
    throw new FormatError(file.path, `tensor '${name}'`, info.offset, `has dims [${dims.join(', ')}]: not a matrix (use readExpertMatrix for expert stacks)`);
  }
  return weightMatrix(info.dtype, dims[1] ?? 1, dims[0]!, file.readTensorBytes(info));
}

/** Number of experts in a 3-D stack ne = [cols, rows, n_expert]. */
export function expertCount(file: GgufFile, name: string): number {
  const info = requireTensor(file, name);
  if (info.dims.length !== 3) throw new FormatError(file.path, `tensor '${name}'`, info.offset, `has dims [${info.dims.join(', ')}]: not a 3-D expert stack`);
  return info.dims[2]!;
}

/** Expert `expert` of a 3-D stack ne = [cols, rows, n_expert] (HF [n_expert, rows, cols]), reading only its bytes. */
export function readExpertMatrix(file: GgufFile, name: string, expert: number): WeightMatrix {
  const info = requireTensor(file, name);
  const n = expertCount(file, name);
  if (!Number.isInteger(expert) || expert < 0 || expert >= n) {
    throw new RangeError(`${file.path}: tensor '${name}' has ${n} experts, asked for expert ${expert}`);
  }
  const [cols, rows] = info.dims as [number, number, number];
  const bytes = info.byteLength / n;
  return weightMatrix(info.dtype, rows, cols, file.readRange(info.offset + expert * bytes, bytes, `tensor '${name}' expert ${expert}`));
}

/** The whole tensor dequantized to f32 (row-major over ggml order: ne[0] fastest). */
export function readF32(file: GgufFile, name: string): Float32Array {
  const info = requireTensor(file, name);
  return dequantize(info.dtype, file.readTensorBytes(info), info.elements);
}
