/**
 * Reuse of the large Float32Arrays of training steps (op outputs and intermediate gradients).
 *
 * A fresh large Float32Array is a fresh mmap: every page faults on first touch and is unmapped
 * again when the array is collected, which cost more than the GEMMs themselves in training steps
 * (the bench:train dense model: ~1 s of system time per 4,096-token step on one core). Inside
 * `withPool(pool, fn)`, ops take their buffers from the pool instead; intermediate gradients go
 * back to it as soon as backward has consumed them, and every other buffer taken in the scope goes
 * back when the scope ends, so the next step (the same shapes) allocates nothing. Nothing computed
 * inside the scope may be used after it: the trainer runs one forward + backward per scope and
 * keeps only numbers. Outside any scope, `floats` is `new Float32Array`.
 */

/** Arrays smaller than this are left to the garbage collector (they come from V8's heap, not mmap). */
const MIN_POOLED = 4096;

/**
 * The capacity of the array that serves n floats: n rounded up to one of 8 steps per power of two
 * (at most 12.5% unused), so that sizes that vary from step to step (the tokens routed to a MoE
 * expert) still find a free array.
 */
export function capacityFor(n: number): number {
  if (n <= 8) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

export class BufferPool {
  /** Free arrays by capacity. */
  private readonly free = new Map<number, Float32Array[]>();
  /** Each array lent out (a view of its first n floats when n is below the capacity) → the whole array. */
  private readonly lent = new Map<Float32Array, Float32Array>();

  /**
   * An array of n floats, from the pool when one of its capacity is free: zero-filled when
   * `zeroed`, else holding whatever its last user left.
   */
  take(n: number, zeroed: boolean): Float32Array {
    const capacity = capacityFor(n);
    const reused = this.free.get(capacity)?.pop();
    const whole = reused ?? new Float32Array(capacity);
    const buffer = capacity === n ? whole : whole.subarray(0, n);
    if (reused && zeroed) buffer.fill(0);
    this.lent.set(buffer, whole);
    return buffer;
  }

  /** Returns one array taken from this pool (no-op for any other array). */
  give(buffer: Float32Array): void {
    const whole = this.lent.get(buffer);
    if (whole === undefined) return;
    this.lent.delete(buffer);
    const list = this.free.get(whole.length);
    if (list) list.push(whole);
    else this.free.set(whole.length, [whole]);
  }

  /** Returns every array still lent out. */
  giveAll(): void {
    for (const buffer of [...this.lent.keys()]) this.give(buffer);
  }

  /** Floats held (lent and free), for tests and diagnostics. */
  get heldFloats(): number {
    let n = 0;
    for (const whole of this.lent.values()) n += whole.length;
    for (const list of this.free.values()) for (const b of list) n += b.length;
    return n;
  }

  /** Drops every free array (lent ones stay lent). */
  clear(): void {
    this.free.clear();
  }
}

let current: BufferPool | null = null;

/** n zero-filled floats: from the active pool for large n inside withPool, else a new array. */
export function floats(n: number): Float32Array {
  return current !== null && n >= MIN_POOLED ? current.take(n, true) : new Float32Array(n);
}

/**
 * n floats for an op output that its kernel overwrites entirely: like floats, but a pooled array
 * is not zero-filled first (the forward outputs are half of a training step's buffers).
 */
export function outputFloats(n: number): Float32Array {
  return current !== null && n >= MIN_POOLED ? current.take(n, false) : new Float32Array(n);
}

/** Hands an array obtained from `floats` back early (intermediate gradients once consumed). */
export function recycle(buffer: Float32Array): void {
  if (current !== null && buffer.length >= MIN_POOLED) current.give(buffer);
}

/**
 * Runs fn with `pool` active; every array taken from it during fn is returned when fn ends (by the
 * outermost scope of that pool, when scopes of one pool nest).
 */
export function withPool<T>(pool: BufferPool, fn: () => T): T {
  const previous = current;
  current = pool;
  try {
    return fn();
  } finally {
    current = previous;
    if (previous !== pool) pool.giveAll();
  }
}
