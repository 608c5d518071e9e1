/**
 * Picks the compute backend once per process: the native addon when it loads (unless
 * FRUGAL_BACKEND=ref), else the pure TypeScript ref backend, with one warning line on stderr.
 * FRUGAL_SIMD=avx2|scalar lowers the addon's SIMD level; FRUGAL_THREADS sets its thread count;
 * On the AVX-512 VNNI level, quantized matmuls round activations to int8 like llama.cpp (Q4_0, Q5_0,
 * Q8_0, Q4_K and Q6_K for m > 16 rows; Q4_0, Q8_0, Q4_K and Q6_K also for m <= 16, from decode to
 * small batches); FRUGAL_INT8=0 turns that off, FRUGAL_INT8=1 also takes Q4_0 with an odd block count.
 */
import type { Backend } from './backend.js';
import { loadNativeAddon, nativeBackend, type NativeBackend } from './native.js';
import { refBackend } from './ref.js';

export type { AttentionParams, Backend, RopeParams } from './backend.js';
export { refBackend } from './ref.js';

let cached: Backend | undefined;
let nativeCached: { backend: Backend | undefined; reason: string } | undefined;

function tryNative(): { backend: Backend | undefined; reason: string } {
  if (!nativeCached) {
    try {
      nativeCached = { backend: nativeBackend(loadNativeAddon()), reason: '' };
    } catch (error) {
      nativeCached = { backend: undefined, reason: error instanceof Error ? error.message : String(error) };
    }
  }
  return nativeCached;
}

/** The native backend, or undefined when the addon is not built or does not load. */
export function loadNativeBackend(): Backend | undefined {
  return tryNative().backend;
}

/** The backend to compute with (cached). */
export function getBackend(): Backend {
  if (cached) return cached;
  if (process.env.FRUGAL_BACKEND === 'ref') {
    cached = refBackend;
    return cached;
  }
  const native = tryNative();
  if (native.backend) {
    cached = native.backend;
  } else {
    process.stderr.write(`frugal: native addon not available (${native.reason}); using the ref backend\n`);
    cached = refBackend;
  }
  return cached;
}

/** withSerialKernels calls open on this thread: only the outermost one tells the addon. */
let serialDepth = 0;

/**
 * Runs `body` with the native kernels in serial mode (each on its calling thread, no pool): for
 * callers that already keep one thread per core busy, such as data-parallel training. A no-op
 * on the ref backend. Serial mode nests and is process-wide, so all threads see it; a nested call
 * on the same thread (a layer's attention inside a serial batched step) costs no addon call.
 */
export function withSerialKernels<T>(body: () => T): T {
  if (getBackend().name === 'ref' || !tryNative().backend) return body();
  if (serialDepth++ === 0) loadNativeAddon().setSerial(true);
  try {
    return body();
  } finally {
    if (--serialDepth === 0) loadNativeAddon().setSerial(false);
  }
}

/** Whether prefill-shaped quantized matmuls (m > 16) round activations to int8 like ggml on this backend. */
export function int8Prefill(backend: Backend = getBackend()): boolean {
  const mode = (backend as Partial<NativeBackend>).int8;
  return mode === 'prefill' || mode === 'all';
}

/** One line describing the backend in use, e.g. "native avx512-vnni, 2 threads" or "ref (TypeScript), 1 thread". */
export function describeBackend(backend: Backend = getBackend()): string {
  if (backend.name === 'ref') return 'ref (TypeScript), 1 thread';
  const mode = (backend as Partial<NativeBackend>).int8;
  const int8 = mode === 'all' ? ', int8 activations (all)' : mode === 'prefill' ? ', int8 activations' : '';
  return `native ${backend.simd}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}${int8}`;
}
