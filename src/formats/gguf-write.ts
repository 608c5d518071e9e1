import { type DType, dtypeInfo } from '../tensor/dtype.js';
import { writeFileAtomic } from './atomic-write.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ARRAY_COUNT, GGUF_MAX_ARRAY_DEPTH, GGUF_MAX_DIMS, GGUF_MAX_KEY_BYTES,
  GGUF_MAX_STRING_BYTES, GGUF_MAX_TENSOR_NAME_BYTES, GGUF_TYPE_CODES, alignUp,
} from './gguf.js';
import type { GgufValue } from './gguf-value.js';

/**
 * GGUF v3 writer (../shared/spec/formats-and-api.md §1): metadata in the given order, tensor infos
 * in the given order, each tensor's data at the next multiple of the alignment (padded with 0x00,
 * the last one included, as gguf-py does). Tensor data is streamed to disk one tensor at a time
 * (`data` may be a function that produces the bytes when they are written), and the file appears
 * atomically (temporary file, fsync, rename).
 */

export interface GgufTensorInput {
  readonly name: string;
  /** ggml order: ne[0] is the contiguous dimension (HF shape reversed). */
  readonly dims: readonly number[];
  readonly dtype: DType;
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface GgufWriteInput {
  readonly metadata: ReadonlyMap<string, GgufValue> | Iterable<readonly [string, GgufValue]>;
  readonly tensors: readonly GgufTensorInput[];
  /** Data alignment (a power of two). Default: `general.alignment` from the metadata, else 32. */
  readonly alignment?: number;
}

export interface GgufWriteResult {
  readonly fileSize: number;
  readonly dataOffset: number;
  /** Absolute file offset of each tensor's data, in input order. */
  readonly tensorOffsets: readonly number[];
}

export function writeGguf(path: string, input: GgufWriteInput): GgufWriteResult {
  const metadata = [...(input.metadata instanceof Map ? input.metadata.entries() : input.metadata)] as [string, GgufValue][];
  const alignment = resolveAlignment(metadata, input.alignment);
  const keys = new Set<string>();
  for (const [key, value] of metadata) {
    checkKey(key, keys);
    checkValue(value, `metadata '${key}'`, 0);
  }
  const layout = layoutTensors(input.tensors, alignment);

  const header = new Encoder();
  header.u32(GGUF_MAGIC);
  header.u32(3);
  header.u64(BigInt(input.tensors.length));
  header.u64(BigInt(metadata.length));
  for (const [key, value] of metadata) {
    header.string(key);
    header.u32(GGUF_TYPE_CODES[value.type]);
    encodeValue(header, value);
  }
  input.tensors.forEach((t, i) => {
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(BigInt(d));
    header.u32(dtypeInfo(t.dtype).ggmlType!);
    header.u64(BigInt(layout.relative[i]!));
  });
  const dataOffset = input.tensors.length > 0 ? alignUp(header.length, alignment) : header.length;
  const zeros = new Uint8Array(alignment);

  const fileSize = writeFileAtomic(path, (write) => {
    let pos = write(header.bytes());
    if (dataOffset > pos) pos = write(zeros.subarray(0, dataOffset - pos));
    input.tensors.forEach((t, i) => {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.byteLength !== layout.sizes[i]) {
        throw new Error(`writeGguf: tensor '${t.name}' ${t.dtype} [${t.dims.join(', ')}] needs ${layout.sizes[i]} bytes, got ${data.byteLength}`);
      }
      pos = write(data);
      const padded = alignUp(pos, alignment);
      if (padded > pos) pos = write(zeros.subarray(0, padded - pos));
    });
  });
  return { fileSize, dataOffset, tensorOffsets: layout.relative.map((r) => dataOffset + r) };
}

function resolveAlignment(metadata: [string, GgufValue][], requested: number | undefined): number {
  const entry = metadata.find(([key]) => key === 'general.alignment')?.[1];
  if (entry !== undefined && entry.type !== 'u32') throw new Error(`writeGguf: 'general.alignment' must be a u32, got ${entry.type}`);
  const declared = entry?.value as number | undefined;
  if (requested !== undefined && declared !== undefined && requested !== declared) {
    throw new Error(`writeGguf: alignment ${requested} disagrees with metadata 'general.alignment' = ${declared}`);
  }
  const alignment = requested ?? declared ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 2 ** 31 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`writeGguf: alignment ${alignment} is not a power of two`);
  }
  if (declared === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) {
    metadata.push(['general.alignment', { type: 'u32', value: alignment }]);
  }
  return alignment;
}

function layoutTensors(tensors: readonly GgufTensorInput[], alignment: number): { relative: number[]; sizes: number[] } {
  const names = new Set<string>();
  const relative: number[] = [];
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const where = `writeGguf: tensor '${t.name}'`;
    const nameBytes = Buffer.byteLength(t.name, 'utf8');
    if (nameBytes === 0 || nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) throw new Error(`${where}: name must be 1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes (is ${nameBytes})`);
    if (hasLoneSurrogate(t.name)) throw new Error(`${where}: name is not valid Unicode`);
    if (names.has(t.name)) throw new Error(`${where}: duplicate tensor name`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > GGUF_MAX_DIMS) throw new Error(`${where}: needs 1..${GGUF_MAX_DIMS} dims, got ${t.dims.length}`);
    let elements = 1;
    for (const d of t.dims) {
      if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: invalid dimension ${d}`);
      elements *= d;
    }
    if (!Number.isSafeInteger(elements)) throw new Error(`${where}: too many elements`);
    const info = dtypeInfo(t.dtype);
    if (info.ggmlType === undefined) throw new Error(`${where}: dtype ${t.dtype} has no GGUF type`);
    if (t.dims[0]! % info.blockElements !== 0) throw new Error(`${where}: ne[0] = ${t.dims[0]} is not a multiple of the ${t.dtype} block size ${info.blockElements}`);
    const size = (elements / info.blockElements) * info.blockBytes;
    if (typeof t.data !== 'function' && t.data.byteLength !== size) {
      throw new Error(`${where}: ${t.dtype} [${t.dims.join(', ')}] needs ${size} bytes, got ${t.data.byteLength}`);
    }
    relative.push(offset);
    sizes.push(size);
    offset = alignUp(offset + size, alignment);
  }
  return { relative, sizes };
}

function checkKey(key: string, seen: Set<string>): void {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes === 0 || bytes > GGUF_MAX_KEY_BYTES) throw new Error(`writeGguf: metadata key '${key.slice(0, 80)}' must be 1..${GGUF_MAX_KEY_BYTES} bytes`);
  if (hasLoneSurrogate(key)) throw new Error(`writeGguf: metadata key '${key}' is not valid Unicode`);
  if (seen.has(key)) throw new Error(`writeGguf: duplicate metadata key '${key}'`);
  seen.add(key);
}

const INTEGER_RANGES: Record<string, [number, number]> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Record<string, [bigint, bigint]> = { u64: [0n, (1n << 64n) - 1n], i64: [-(1n << 63n), (1n << 63n) - 1n] };

function checkScalar(type: string, value: unknown, where: string, index?: number): void {
  const bad = (why: string): never => {
    throw new Error(`writeGguf: ${where}${index === undefined ? '' : `[${index}]`}: ${why}`);
  };
  if (type in INTEGER_RANGES) {
    const [lo, hi] = INTEGER_RANGES[type]!;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < lo || value > hi) bad(`${String(value)} is not a valid ${type}`);
  } else if (type === 'f32' || type === 'f64') {
    if (typeof value !== 'number') bad(`${String(value)} is not a number`);
  } else if (type in BIGINT_RANGES) {
    const [lo, hi] = BIGINT_RANGES[type]!;
    if (typeof value !== 'bigint' || value < lo || value > hi) bad(`${String(value)} is not a valid ${type} (a bigint)`);
  } else if (type === 'bool') {
    if (typeof value !== 'boolean') bad(`${String(value)} is not a boolean`);
  } else if (type === 'string') {
    if (typeof value !== 'string') bad('not a string');
    if (hasLoneSurrogate(value as string)) bad('string is not valid Unicode (lone surrogate)');
    if ((value as string).length > GGUF_MAX_STRING_BYTES / 3 && Buffer.byteLength(value as string, 'utf8') > GGUF_MAX_STRING_BYTES) bad('string longer than 1 GiB');
  } else {
    bad(`unknown value type '${type}'`);
  }
}

function checkValue(value: GgufValue, where: string, depth: number): void {
  if (value.type !== 'array') return checkScalar(value.type, value.value, where);
  if (!Array.isArray(value.value)) throw new Error(`writeGguf: ${where}: array value is not an array`);
  if (value.value.length > GGUF_MAX_ARRAY_COUNT) throw new Error(`writeGguf: ${where}: more than ${GGUF_MAX_ARRAY_COUNT} items`);
  if (value.itemType === 'array') {
    if (depth + 1 >= GGUF_MAX_ARRAY_DEPTH) throw new Error(`writeGguf: ${where}: arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH} levels`);
    value.value.forEach((item, i) => {
      if (item.type !== 'array') throw new Error(`writeGguf: ${where}[${i}]: an array of arrays holds ${item.type}`);
      checkValue(item, `${where}[${i}]`, depth + 1);
    });
    return;
  }
  const itemType = value.itemType;
  const items = value.value as readonly unknown[];
  for (let i = 0; i < items.length; i++) checkScalar(itemType, items[i], where, i);
}

function encodeValue(e: Encoder, value: GgufValue): void {
  if (value.type === 'array') {
    e.u32(GGUF_TYPE_CODES[value.itemType]);
    e.u64(BigInt(value.value.length));
    for (const item of value.value) encodeScalar(e, value.itemType, item);
    return;
  }
  encodeScalar(e, value.type, value.value);
}

function encodeScalar(e: Encoder, type: GgufValue['type'] | 'array', value: unknown): void {
  switch (type) {
    case 'u8': return e.put(1, (b, at) => b.writeUInt8(value as number, at));
    case 'i8': return e.put(1, (b, at) => b.writeInt8(value as number, at));
    case 'u16': return e.put(2, (b, at) => b.writeUInt16LE(value as number, at));
    case 'i16': return e.put(2, (b, at) => b.writeInt16LE(value as number, at));
    case 'u32': return e.u32(value as number);
    case 'i32': return e.put(4, (b, at) => b.writeInt32LE(value as number, at));
    case 'f32': return e.put(4, (b, at) => b.writeFloatLE(value as number, at));
    case 'f64': return e.put(8, (b, at) => b.writeDoubleLE(value as number, at));
    case 'u64': return e.u64(value as bigint);
    case 'i64': return e.put(8, (b, at) => b.writeBigInt64LE(value as bigint, at));
    case 'bool': return e.put(1, (b, at) => b.writeUInt8(value ? 1 : 0, at));
    case 'string': return e.string(value as string);
    case 'array': return encodeValue(e, value as GgufValue);
  }
}

/** A growable little-endian byte buffer for the header. */
class Encoder {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  put(n: number, write: (buf: Buffer, at: number) => void): void {
    this.reserve(n);
    write(this.buf, this.length);
    this.length += n;
  }

  u32(v: number): void {
    this.put(4, (b, at) => b.writeUInt32LE(v, at));
  }

  u64(v: bigint): void {
    this.put(8, (b, at) => b.writeBigUInt64LE(v, at));
  }

  string(s: string): void {
    // reserve the worst case (3 bytes per UTF-16 unit), write the text, then its length before it
    this.reserve(8 + 3 * s.length);
    const n = this.buf.write(s, this.length + 8, 'utf8');
    this.buf.writeUInt32LE(n % 0x100000000, this.length);
    this.buf.writeUInt32LE(Math.floor(n / 0x100000000), this.length + 4);
    this.length += 8 + n;
  }

  private reserve(n: number): void {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function hasLoneSurrogate(s: string): boolean {
  return SURROGATE.test(s) && LONE_SURROGATE.test(s);
}
