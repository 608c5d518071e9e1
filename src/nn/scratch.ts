/**
 * Named, grow-only work buffers that one model reuses from call to call, so that decoding a
 * token allocates (almost) nothing: a typed array costs about a microsecond to create, and the
 * small ones that native kernels receive are moved off the JS heap on their first call.
 *
 * A buffer handed out under a name stays valid until the next request for that name; its old
 * contents are NOT cleared. Use one ScratchBuffers per model (JavaScript runs a model's
 * forward synchronously, so no two calls share a buffer at the same time), and never return a
 * scratch buffer to a caller outside the model.
 */

/** Smallest buffer allocated: more than 64 bytes, so V8 keeps it off the JS heap from the start. */
const MIN_ELEMENTS = 32;

/**
 * Larger requests get a fresh buffer that is not kept (a long prefill should not pin its
 * buffers for the model's lifetime; at that size the allocation is noise beside the math).
 */
const KEEP_BYTES = 8 << 20;

type Numbers = Float32Array | Float64Array | Int32Array;

/** A kept buffer and the last view of it handed out (reused while the same length is asked for). */
interface Kept<T extends Numbers> {
  buffer: T;
  view: T;
}

export class ScratchBuffers {
  private readonly f32s = new Map<string, Kept<Float32Array>>();
  private readonly f64s = new Map<string, Kept<Float64Array>>();
  private readonly i32s = new Map<string, Kept<Int32Array>>();

  /** `length` f32 values (contents left over from earlier use). */
  f32(name: string, length: number): Float32Array {
    return take(this.f32s, Float32Array, name, length);
  }

  /** `length` f64 values (contents left over from earlier use). */
  f64(name: string, length: number): Float64Array {
    return take(this.f64s, Float64Array, name, length);
  }

  /** `length` int32 values (contents left over from earlier use). */
  i32(name: string, length: number): Int32Array {
    return take(this.i32s, Int32Array, name, length);
  }

  /** Bytes held by all buffers. */
  get bytes(): number {
    let sum = 0;
    for (const map of [this.f32s, this.f64s, this.i32s]) for (const kept of map.values()) sum += kept.buffer.byteLength;
    return sum;
  }
}

/**
 * The buffer kept under `name`, grown to at least `length`, as a view of exactly `length` values:
 * the last view when it has that length (a decode step asks for the same lengths every time, and a
 * fresh subarray would cost an allocation per call).
 */
function take<T extends Numbers>(kept: Map<string, Kept<T>>, type: { new (n: number): T; readonly BYTES_PER_ELEMENT: number }, name: string, length: number): T {
  let entry = kept.get(name);
  if (!entry || entry.buffer.length < length) {
    if (length * type.BYTES_PER_ELEMENT > KEEP_BYTES) return new type(length);
    const buffer = new type(grown(entry?.buffer.length ?? 0, length));
    entry = { buffer, view: buffer };
    kept.set(name, entry);
  }
  if (entry.view.length !== length) entry.view = (length === entry.buffer.length ? entry.buffer : entry.buffer.subarray(0, length)) as T;
  return entry.view;
}

/** The new size of a buffer of `current` elements that must hold `needed`: exact at first, then at least doubling. */
function grown(current: number, needed: number): number {
  return Math.max(MIN_ELEMENTS, needed, current * 2);
}

/** A scratch f32 buffer when `scratch` is given, else a fresh zeroed one. */
export function f32Buffer(scratch: ScratchBuffers | undefined, name: string, length: number): Float32Array {
  return scratch ? scratch.f32(name, length) : new Float32Array(length);
}
