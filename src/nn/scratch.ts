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

export class ScratchBuffers {
  private readonly f32s = new Map<string, Float32Array>();
  private readonly f64s = new Map<string, Float64Array>();
  private readonly i32s = new Map<string, Int32Array>();

  /** `length` f32 values (contents left over from earlier use). */
  f32(name: string, length: number): Float32Array {
    if (length * Float32Array.BYTES_PER_ELEMENT > KEEP_BYTES) return new Float32Array(length);
    let buffer = this.f32s.get(name);
    if (!buffer || buffer.length < length) this.f32s.set(name, (buffer = new Float32Array(grown(buffer?.length ?? 0, length))));
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  /** `length` f64 values (contents left over from earlier use). */
  f64(name: string, length: number): Float64Array {
    if (length * Float64Array.BYTES_PER_ELEMENT > KEEP_BYTES) return new Float64Array(length);
    let buffer = this.f64s.get(name);
    if (!buffer || buffer.length < length) this.f64s.set(name, (buffer = new Float64Array(grown(buffer?.length ?? 0, length))));
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  /** `length` int32 values (contents left over from earlier use). */
  i32(name: string, length: number): Int32Array {
    if (length * Int32Array.BYTES_PER_ELEMENT > KEEP_BYTES) return new Int32Array(length);
    let buffer = this.i32s.get(name);
    if (!buffer || buffer.length < length) this.i32s.set(name, (buffer = new Int32Array(grown(buffer?.length ?? 0, length))));
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  /** Bytes held by all buffers. */
  get bytes(): number {
    let sum = 0;
    for (const map of [this.f32s, this.f64s, this.i32s]) for (const b of map.values()) sum += b.byteLength;
    return sum;
  }
}

/** The new size of a buffer of `current` elements that must hold `needed`: exact at first, then at least doubling. */
function grown(current: number, needed: number): number {
  return Math.max(MIN_ELEMENTS, needed, current * 2);
}

/** A scratch f32 buffer when `scratch` is given, else a fresh zeroed one. */
export function f32Buffer(scratch: ScratchBuffers | undefined, name: string, length: number): Float32Array {
  return scratch ? scratch.f32(name, length) : new Float32Array(length);
}
