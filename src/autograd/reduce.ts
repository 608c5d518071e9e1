import { type Var, result, shapeString } from './var.js';
import { floats } from './pool.js';

/** Sum of all elements, a scalar (shape []). Accumulates in float64. */
export function sum(x: Var): Var {
  let s = 0;
  const xv = x.value;
  for (let i = 0; i < xv.length; i++) s += xv[i]!;
  return result(Float32Array.of(s), [], [x], (out) => () => {
    const g = out.grad![0]!;
    const gx = x.gradBuffer();
    for (let i = 0; i < gx.length; i++) gx[i]! += g;
  });
}

/** Mean of all elements, a scalar (shape []). */
export function mean(x: Var): Var {
  if (x.size === 0) throw new Error(`mean: ${x.toString()} is empty`);
  let s = 0;
  const xv = x.value;
  for (let i = 0; i < xv.length; i++) s += xv[i]!;
  const n = xv.length;
  return result(Float32Array.of(s / n), [], [x], (out) => () => {
    const g = out.grad![0]! / n;
    const gx = x.gradBuffer();
    for (let i = 0; i < gx.length; i++) gx[i]! += g;
  });
}

/** Normalizes a possibly negative axis. */
export function axisIndex(op: string, shape: readonly number[], axis: number): number {
  const a = axis < 0 ? axis + shape.length : axis;
  if (!Number.isInteger(a) || a < 0 || a >= shape.length) throw new Error(`${op}: axis ${axis} out of range for shape ${shapeString(shape)}`);
  return a;
}

/** The shape split around an axis: outer · size · inner = total. */
export function aroundAxis(shape: readonly number[], axis: number): { outer: number; size: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, size: shape[axis]!, inner };
}

/** Sum along one axis; keepDim keeps it as size 1 (for broadcasting back). */
export function sumAxis(x: Var, axis: number, keepDim = false): Var {
  return reduceAxis('sumAxis', x, axis, keepDim, 1);
}

/** Mean along one axis; keepDim keeps it as size 1. */
export function meanAxis(x: Var, axis: number, keepDim = false): Var {
  const a = axisIndex('meanAxis', x.shape, axis);
  if (x.shape[a] === 0) throw new Error(`meanAxis: axis ${axis} of ${x.toString()} is empty`);
  return reduceAxis('meanAxis', x, a, keepDim, 1 / x.shape[a]!);
}

function reduceAxis(op: string, x: Var, axis: number, keepDim: boolean, factor: number): Var {
  const a = axisIndex(op, x.shape, axis);
  const { outer, size, inner } = aroundAxis(x.shape, a);
  const shape = keepDim ? x.shape.map((d, i) => (i === a ? 1 : d)) : x.shape.filter((_d, i) => i !== a);
  const value = floats(outer * inner);
  const acc = new Float64Array(inner);
  const xv = x.value;
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let s = 0; s < size; s++) {
      const base = (o * size + s) * inner;
      for (let i = 0; i < inner; i++) acc[i]! += xv[base + i]!;
    }
    for (let i = 0; i < inner; i++) value[o * inner + i] = acc[i]! * factor;
  }
  return result(value, shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let o = 0; o < outer; o++) {
      for (let s = 0; s < size; s++) {
        const base = (o * size + s) * inner;
        for (let i = 0; i < inner; i++) gx[base + i]! += g[o * inner + i]! * factor;
      }
    }
  });
}
