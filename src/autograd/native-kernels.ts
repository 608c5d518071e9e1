/**
 * The native (C++) training kernels of native/src/train_impl.h, one per entry of the autograd
 * kernel tables, with the same signatures as the TypeScript kernels they replace. When the
 * process backend is native (getBackend().name !== 'ref', i.e. not FRUGAL_BACKEND=ref and the
 * addon is built), each op file merges `nativeKernelsFor(op)` into its table when it loads; with
 * the ref backend or FRUGAL_AUTOGRAD_KERNELS=ts (for comparisons) the tables stay TypeScript, and
 * with an addon built before some op's kernels existed, that op's table does.
 */
import type { Backend } from '../tensor/backend.js';
import { getBackend } from '../tensor/index.js';
import { loadNativeAddon } from '../tensor/native.js';
import type { AttentionShape } from './attention.js';
import type { RopeStyle } from './rope.js';

/** The training kernels the addon exports (native/src/train_addon.cc). */
export interface NativeTrainKernels {
  crossEntropy: {
    forward(lse: Float64Array, x: Float32Array, targets: Int32Array, rows: number, vocab: number, ignoreIndex: number): { total: number; valid: number };
    backward(dx: Float32Array, g: number, x: Float32Array, lse: Float64Array, targets: Int32Array, rows: number, vocab: number, ignoreIndex: number): void;
  };
  rmsNorm: {
    forward(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void;
    backward(dx: Float32Array | null, dw: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array | null,
      rstd: Float32Array, rows: number, dim: number): void;
  };
  swiglu: {
    forward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
    backward(dgate: Float32Array | null, dup: Float32Array | null, dy: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  };
  softmax: {
    forward(y: Float32Array, x: Float32Array, rows: number, cols: number): void;
    backward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number): void;
  };
  rope: {
    rotate(out: Float32Array, x: Float32Array, cos: Float32Array, sin: Float32Array, tokens: number, heads: number, dim: number,
      style: RopeStyle, sign: 1 | -1, accumulate?: boolean): void;
  };
  shape: {
    copyBlocks(dst: Float32Array, dstOffset: number, dstStride: number, src: Float32Array, srcOffset: number, srcStride: number,
      blocks: number, len: number, accumulate: boolean): void;
  };
  /** src/train/optimizer.ts. */
  optimizer: {
    adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number, beta2: number, eps: number,
      weightDecay: number, c1: number, c2: number): void;
    sumSquares(x: Float32Array): number;
    scaleValues(x: Float32Array, factor: number): void;
  };
  attention: {
    forward(out: Float32Array, probs: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): void;
    backward(dq: Float32Array | null, dk: Float32Array | null, dv: Float32Array | null, dout: Float32Array, probs: Float32Array,
      q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): void;
  };
}

type Fn = (...args: never[]) => unknown;

/** The addon's functions by export name, for the tables below. */
const EXPORTS: { [Op in keyof NativeTrainKernels]: { [Entry in keyof NativeTrainKernels[Op]]: string } } = {
  crossEntropy: { forward: 'crossEntropyForward', backward: 'crossEntropyBackward' },
  rmsNorm: { forward: 'rmsNormForward', backward: 'rmsNormBackward' },
  swiglu: { forward: 'swigluForward', backward: 'swigluBackward' },
  softmax: { forward: 'softmaxForward', backward: 'softmaxBackward' },
  rope: { rotate: 'ropeRotate' },
  attention: { forward: 'attentionForward', backward: 'attentionBackward' },
  shape: { copyBlocks: 'copyBlocks' },
  optimizer: { adamw: 'adamw', sumSquares: 'sumSquares', scaleValues: 'scaleValues' },
};

let loaded: Partial<NativeTrainKernels> | undefined;

/**
 * The tables of the ops whose kernels the addon exports, each complete (an addon built before some
 * op's kernels existed leaves only that op in TypeScript); {} without the addon.
 */
function loadTables(): Partial<NativeTrainKernels> {
  if (loaded !== undefined) return loaded;
  const kernels: Record<string, Record<string, Fn>> = {};
  loaded = kernels as Partial<NativeTrainKernels>;
  let addon: Record<string, unknown>;
  try {
    addon = loadNativeAddon() as unknown as Record<string, unknown>;
  } catch {
    return loaded;
  }
  for (const [op, entries] of Object.entries(EXPORTS)) {
    const table: Record<string, Fn> = {};
    for (const [entry, name] of Object.entries(entries as Record<string, string>)) {
      const fn = addon[name];
      if (typeof fn === 'function') table[entry] = fn as Fn;
    }
    if (Object.keys(table).length === Object.keys(entries).length) kernels[op] = table;
  }
  return loaded;
}

/** The addon's training kernels, or null when the addon is missing or lacks any of them. */
export function loadNativeTrainKernels(): NativeTrainKernels | null {
  const tables = loadTables();
  return Object.keys(EXPORTS).every((op) => op in tables) ? (tables as NativeTrainKernels) : null;
}

/**
 * The native kernels for one op's table when the process computes natively, else {} (so
 * `{ ...typescriptKernels, ...nativeKernelsFor(op) }` keeps the TypeScript ones).
 */
export function nativeKernelsFor<Op extends keyof NativeTrainKernels>(op: Op): Partial<NativeTrainKernels[Op]> {
  if (process.env.FRUGAL_AUTOGRAD_KERNELS === 'ts' || getBackend().name === 'ref') return {};
  return (loadTables()[op] as Partial<NativeTrainKernels[Op]> | undefined) ?? {};
}

/** The native backend's (checked) add and axpy for ./arith.ts's same-shape loops, else {}. */
export function nativeArithKernels(): Partial<{ add: Backend['add']; axpy: Backend['axpy'] }> {
  if (process.env.FRUGAL_AUTOGRAD_KERNELS === 'ts') return {};
  const backend = getBackend();
  if (backend.name === 'ref') return {};
  return { add: backend.add.bind(backend), axpy: backend.axpy.bind(backend) };
}
