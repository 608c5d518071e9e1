import { type Var, result } from './var.js';
import { floats, outputFloats } from './pool.js';
import { nativeKernelsFor } from './native-kernels.js';

/** Softmax over the last axis. Backward: dx = y · (dy − Σ dy·y). */
export function softmax(x: Var): Var {
  const cols = lastDim('softmax', x);
  const rows = x.size / cols;
  const value = outputFloats(x.size);
  softmaxKernels.forward(value, x.value, rows, cols);
  return result(value, x.shape, [x], (out) => () => {
    softmaxKernels.backward(x.gradBuffer(), out.grad!, value, rows, cols);
  });
}

/** log(softmax(x)) over the last axis. Backward: dx = dy − softmax · Σ dy. */
export function logSoftmax(x: Var): Var {
  const cols = lastDim('logSoftmax', x);
  const rows = x.size / cols;
  const value = floats(x.size);
  logSoftmaxForward(value, x.value, rows, cols);
  return result(value, x.shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let total = 0;
      for (let c = 0; c < cols; c++) total += g[base + c]!;
      for (let c = 0; c < cols; c++) gx[base + c]! += g[base + c]! - Math.exp(value[base + c]!) * total;
    }
  });
}

function lastDim(op: string, x: Var): number {
  const cols = x.shape[x.rank - 1];
  if (cols === undefined || cols === 0) throw new Error(`${op}: ${x.toString()} has no last axis`);
  return cols;
}

export function softmaxForward(y: Float32Array, x: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c]! > max) max = x[base + c]!;
    let total = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(x[base + c]! - max);
      y[base + c] = e;
      total += e;
    }
    const inv = 1 / total;
    for (let c = 0; c < cols; c++) y[base + c]! *= inv;
  }
}

export function softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[base + c]! * y[base + c]!;
    for (let c = 0; c < cols; c++) dx[base + c]! += y[base + c]! * (dy[base + c]! - dot);
  }
}

export function logSoftmaxForward(y: Float32Array, x: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c]! > max) max = x[base + c]!;
    let total = 0;
    for (let c = 0; c < cols; c++) total += Math.exp(x[base + c]! - max);
    const lse = max + Math.log(total);
    for (let c = 0; c < cols; c++) y[base + c] = x[base + c]! - lse;
  }
}

/**
 * The kernels this op runs (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const softmaxKernels: { forward: typeof softmaxForward; backward: typeof softmaxBackward } = {
  forward: softmaxForward, backward: softmaxBackward, ...nativeKernelsFor('softmax'),
};
