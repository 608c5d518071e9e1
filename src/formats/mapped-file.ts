import { closeSync } from 'node:fs';
import { loadNativeAddon } from '../tensor/native.js';
import { readBytesAt } from './file-cursor.js';
import { FormatError } from './format-error.js';

/**
 * Byte ranges of an open weights file (GGUF or safetensors), served as views of a copy-on-write
 * memory mapping (native/src/mmap.cc) when the addon loads and FRUGAL_MMAP is not 0, else read into
 * fresh buffers. Mapping makes opening instant and lets the OS page cache hold the weights: pages
 * are read when first touched, so a model larger than RAM still runs.
 */

/** Largest single mapping (Node 20's 4 GiB ArrayBuffer limit less 64 KiB); larger files map in segments. */
export const DEFAULT_MAP_SEGMENT_BYTES = 2 ** 32 - 65536;

export interface MapOptions {
  /** Memory-map the data (default: when the native addon loads and FRUGAL_MMAP is not 0). */
  mmap?: boolean;
  /** Largest single mapping in bytes (default DEFAULT_MAP_SEGMENT_BYTES). */
  mapSegmentBytes?: number;
}

/** A byte range of the file that readers will ask for (a tensor). */
export interface FileRange {
  readonly offset: number;
  readonly byteLength: number;
}

type MapFile = (fd: number, offset: number, length: number) => Uint8Array;

let mapper: { map?: MapFile } | undefined;

/** The addon's mapFile, or undefined when the addon does not load (then files are read). */
function fileMapper(): MapFile | undefined {
  if (!mapper) {
    try {
      const addon = loadNativeAddon();
      mapper = typeof addon.mapFile === 'function' ? { map: (fd, offset, length) => addon.mapFile(fd, offset, length) } : {};
    } catch {
      mapper = {};
    }
  }
  return mapper.map;
}

/** File bytes [start, end), mapped (into `bytes`) when first read from. */
interface MapSegment {
  readonly start: number;
  readonly end: number;
  bytes?: Uint8Array;
}

/**
 * Splits the ranges into as few mappings as the segment limit allows, each covering whole ranges (a
 * range larger than the limit gets a segment of its own; where the addon refuses to map it, beyond
 * Node's limit, the file is read as it would be without the addon).
 */
function planSegments(ranges: readonly FileRange[], limit: number): MapSegment[] {
  const ordered = ranges.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  const segments: { start: number; end: number }[] = [];
  for (const t of ordered) {
    const last = segments[segments.length - 1];
    if (last && t.offset + t.byteLength - last.start <= limit) last.end = t.offset + t.byteLength;
    else segments.push({ start: t.offset, end: t.offset + t.byteLength });
  }
  return segments;
}

const warned = new Set<string>();
function warnOnce(line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  process.stderr.write(`${line}\n`);
}

export class MappedFile {
  /** Whether reads are views of a mapping (false: no addon, FRUGAL_MMAP=0, or a mapping failed). */
  mapped: boolean;
  private fd: number | undefined;
  private segments: readonly MapSegment[];
  private readonly mapFile: MapFile | undefined;

  /** Takes ownership of `fd` (close() closes it). `ranges`: what will be read (the tensors). */
  constructor(fd: number, readonly path: string, readonly fileSize: number, ranges: readonly FileRange[], options: MapOptions = {}) {
    const limit = options.mapSegmentBytes ?? DEFAULT_MAP_SEGMENT_BYTES;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new Error(`${path}: invalid mapSegmentBytes ${limit}`);
    this.fd = fd;
    this.mapFile = (options.mmap ?? process.env.FRUGAL_MMAP !== '0') ? fileMapper() : undefined;
    this.mapped = this.mapFile !== undefined;
    this.segments = this.mapFile ? planSegments(ranges, limit) : [];
  }

  /**
   * `length` bytes at `offset`: a view of the mapping when the range lies in a mapped segment and
   * starts 4-byte aligned (so f32 views work), otherwise a fresh zero-offset buffer read from the file.
   */
  read(offset: number, length: number, field: string): Uint8Array {
    if (this.fd === undefined) throw new Error(`${this.path}: file is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.fileSize) {
      throw new FormatError(this.path, field, offset, `range of ${length} bytes is outside the file (${this.fileSize} bytes)`);
    }
    const segment = this.segments.find((s) => offset >= s.start && offset + length <= s.end);
    const bytes = segment && this.mapSegment(segment);
    if (bytes) {
      const view = bytes.subarray(offset - segment.start, offset - segment.start + length);
      if (view.byteOffset % 4 === 0) return view;
    }
    return readBytesAt(this.fd, this.path, offset, length, field);
  }

  /** The segment's mapping, made on first use; undefined (and reads from then on) when mapping fails. */
  private mapSegment(segment: MapSegment): Uint8Array | undefined {
    if (segment.bytes) return segment.bytes;
    try {
      segment.bytes = this.mapFile!(this.fd!, segment.start, segment.end - segment.start);
      return segment.bytes;
    } catch (error) {
      warnOnce(`frugal: ${this.path}: reading weights into memory instead of mapping them (${(error as Error).message})`);
      this.segments = [];
      this.mapped = false;
      return undefined;
    }
  }

  get closed(): boolean {
    return this.fd === undefined;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.segments = []; // the mappings stay alive while views of them do
  }
}
