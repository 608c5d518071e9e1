import { writeFileAtomic } from './atomic-write.js';
import { SAFETENSORS_DTYPE_BITS, type SafetensorsDtype } from './safetensors.js';

/**
 * safetensors writer laid out like the reference: `__metadata__` first, tensors ordered by
 * descending element width then name (so each tensor is naturally aligned), the JSON header padded
 * with spaces to a multiple of 8 bytes. Data is streamed one tensor at a time and the file appears
 * atomically (temporary file, fsync, rename).
 */

export interface SafetensorsTensorInput {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  /** PyTorch order (row-major). */
  readonly shape: readonly number[];
  readonly data: Uint8Array | (() => Uint8Array);
}

export interface SafetensorsWriteResult {
  readonly fileSize: number;
  readonly headerLength: number;
  /** Total tensor bytes (what `model.safetensors.index.json` calls total_size). */
  readonly dataBytes: number;
}

export function writeSafetensors(
  path: string, tensors: readonly SafetensorsTensorInput[], metadata?: Readonly<Record<string, string>>,
): SafetensorsWriteResult {
  const names = new Set<string>();
  const sizes = new Map<SafetensorsTensorInput, number>();
  for (const t of tensors) {
    const where = `writeSafetensors: tensor '${t.name}'`;
    if (t.name === '__metadata__' || t.name.length === 0) throw new Error(`${where}: invalid name`);
    if (names.has(t.name)) throw new Error(`${where}: duplicate name`);
    names.add(t.name);
    const bits = SAFETENSORS_DTYPE_BITS[t.dtype];
    if (bits === undefined) throw new Error(`${where}: unknown dtype ${t.dtype}`);
    let elements = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: invalid dimension ${d}`);
      elements *= d;
    }
    if (!Number.isSafeInteger(elements * bits) || (elements * bits) % 8 !== 0) throw new Error(`${where}: ${elements} ${t.dtype} elements is not a whole number of bytes`);
    const size = (elements * bits) / 8;
    if (typeof t.data !== 'function' && t.data.byteLength !== size) {
      throw new Error(`${where}: ${t.dtype} [${t.shape.join(', ')}] needs ${size} bytes, got ${t.data.byteLength}`);
    }
    sizes.set(t, size);
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new Error(`writeSafetensors: metadata '${k}' is not a string`);
  }

  const ordered = [...tensors].sort((a, b) => SAFETENSORS_DTYPE_BITS[b.dtype] - SAFETENSORS_DTYPE_BITS[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const t of ordered) {
    const size = sizes.get(t)!;
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const lengthField = Buffer.alloc(8);
  lengthField.writeBigUInt64LE(BigInt(json.length));

  const fileSize = writeFileAtomic(path, (write) => {
    write(lengthField);
    write(json);
    for (const t of ordered) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.byteLength !== sizes.get(t)) throw new Error(`writeSafetensors: tensor '${t.name}' needs ${sizes.get(t)} bytes, got ${data.byteLength}`);
      write(data);
    }
  });
  return { fileSize, headerLength: json.length, dataBytes: offset };
}
