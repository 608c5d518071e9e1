import { type Var, result, shapeString, sizeOfShape } from './var.js';
import { outputFloats } from './pool.js';
import { aroundAxis, axisIndex } from './reduce.js';
import { nativeKernelsFor } from './native-kernels.js';
import { arithKernels } from './arith.js';

/** Same values, new shape (one dimension may be -1). Shares the value buffer. */
export function reshape(x: Var, shape: readonly number[]): Var {
  const resolved = resolveShape(x, shape);
  return result(x.value, resolved, [x], (out) => () => {
    if (!x.adoptGrad(out)) arithKernels.axpy(x.gradBuffer(), 1, out.grad!, x.size);
  });
}

function resolveShape(x: Var, shape: readonly number[]): number[] {
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new Error(`reshape: more than one -1 in ${shapeString(shape)}`);
  const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const resolved = shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (!resolved.every((d) => Number.isInteger(d) && d >= 0) || sizeOfShape(resolved) !== x.size) {
    throw new Error(`reshape: cannot reshape ${x.toString()} to ${shapeString(shape)}`);
  }
  return resolved;
}

/** Swaps two axes (materialized in row-major order). */
export function transpose(x: Var, axisA: number, axisB: number): Var {
  const a = axisIndex('transpose', x.shape, axisA);
  const b = axisIndex('transpose', x.shape, axisB);
  const shape = [...x.shape];
  [shape[a], shape[b]] = [shape[b]!, shape[a]!];
  const rank = shape.length;
  // Strides of x's storage, permuted into the output's axis order.
  const xStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    xStrides[d] = s;
    s *= x.shape[d]!;
  }
  [xStrides[a], xStrides[b]] = [xStrides[b]!, xStrides[a]!];
  const map = new Int32Array(x.size);
  const index = new Array<number>(rank).fill(0);
  let at = 0;
  for (let o = 0; o < map.length; o++) {
    map[o] = at;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      at += xStrides[d]!;
      if (index[d]! < shape[d]!) break;
      at -= xStrides[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  const value = outputFloats(x.size);
  for (let o = 0; o < map.length; o++) value[o] = x.value[map[o]!]!;
  return result(value, shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let o = 0; o < map.length; o++) gx[map[o]!]! += g[o]!;
  });
}

/** The slice [start, start + length) along an axis. */
export function narrow(x: Var, axis: number, start: number, length: number): Var {
  const a = axisIndex('narrow', x.shape, axis);
  const { outer, size, inner } = aroundAxis(x.shape, a);
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > size) {
    throw new Error(`narrow: range [${start}, ${start + length}) out of bounds for axis ${axis} of ${x.toString()}`);
  }
  const shape = x.shape.map((d, i) => (i === a ? length : d));
  const value = outputFloats(outer * length * inner);
  const block = length * inner;
  shapeKernels.copyBlocks(value, 0, block, x.value, start * inner, size * inner, outer, block, false);
  return result(value, shape, [x], (out) => () => {
    shapeKernels.copyBlocks(x.gradBuffer(), start * inner, size * inner, out.grad!, 0, block, outer, block, true);
  });
}

/** Splits along an axis into pieces of the given sizes (which must add up to the axis). */
export function split(x: Var, sizes: readonly number[], axis: number): Var[] {
  const a = axisIndex('split', x.shape, axis);
  const total = sizes.reduce((p, d) => p + d, 0);
  if (total !== x.shape[a]) throw new Error(`split: sizes [${sizes.join(', ')}] add up to ${total}, axis ${axis} of ${x.toString()} is ${x.shape[a]}`);
  const pieces: Var[] = [];
  let start = 0;
  for (const n of sizes) {
    pieces.push(narrow(x, a, start, n));
    start += n;
  }
  return pieces;
}

/** Joins Vars along an axis; all other dimensions must match. */
export function concat(xs: readonly Var[], axis: number): Var {
  if (xs.length === 0) throw new Error('concat: no inputs');
  const first = xs[0]!;
  const a = axisIndex('concat', first.shape, axis);
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new Error(`concat: ${x.toString()} does not match ${first.toString()} outside axis ${axis}`);
    }
  }
  const total = xs.reduce((p, x) => p + x.shape[a]!, 0);
  const shape = first.shape.map((d, i) => (i === a ? total : d));
  const { outer, inner } = aroundAxis(first.shape, a);
  const value = outputFloats(outer * total * inner);
  let offset = 0;
  const offsets: number[] = [];
  for (const x of xs) {
    const block = x.shape[a]! * inner;
    shapeKernels.copyBlocks(value, offset * inner, total * inner, x.value, 0, block, outer, block, false);
    offsets.push(offset);
    offset += x.shape[a]!;
  }
  return result(value, shape, xs, (out) => () => {
    const g = out.grad!;
    xs.forEach((x, n) => {
      if (!x.requiresGrad) return;
      const block = x.shape[a]! * inner;
      shapeKernels.copyBlocks(x.gradBuffer(), 0, block, g, offsets[n]! * inner, total * inner, outer, block, true);
    });
  });
}

/** Repeats a size-1 axis `count` times (MLA's one rope key shared by all heads); backward sums. */
export function expand(x: Var, axis: number, count: number): Var {
  const a = axisIndex('expand', x.shape, axis);
  if (x.shape[a] !== 1) throw new Error(`expand: axis ${axis} of ${x.toString()} has size ${x.shape[a]}, not 1`);
  const { outer, inner } = aroundAxis(x.shape, a);
  const shape = x.shape.map((d, i) => (i === a ? count : d));
  const value = outputFloats(outer * count * inner);
  for (let o = 0; o < outer; o++) {
    const row = x.value.subarray(o * inner, (o + 1) * inner);
    for (let c = 0; c < count; c++) value.set(row, (o * count + c) * inner);
  }
  return result(value, shape, [x], (out) => () => {
    const g = out.grad!;
    const gx = x.gradBuffer();
    for (let o = 0; o < outer; o++) {
      for (let c = 0; c < count; c++) {
        const src = (o * count + c) * inner;
        for (let i = 0; i < inner; i++) gx[o * inner + i]! += g[src + i]!;
      }
    }
  });
}

/**
 * dst[dstOffset + b·dstStride + i] = src[srcOffset + b·srcStride + i] for b < blocks, i < len
 * (or += with accumulate): narrow's and concat's copies, forward and backward.
 */
export function copyBlocks(
  dst: Float32Array, dstOffset: number, dstStride: number, src: Float32Array, srcOffset: number, srcStride: number,
  blocks: number, len: number, accumulate: boolean,
): void {
  for (let b = 0; b < blocks; b++) {
    const d = dstOffset + b * dstStride;
    const s = srcOffset + b * srcStride;
    if (accumulate) {
      for (let i = 0; i < len; i++) dst[d + i]! += src[s + i]!;
    } else {
      for (let i = 0; i < len; i++) dst[d + i] = src[s + i]!;
    }
  }
}

/**
 * The kernels narrow and concat run (plain functions over Float32Arrays); the native ones of
 * ./native-kernels.ts replace them when the process computes natively.
 */
export const shapeKernels: { copyBlocks: typeof copyBlocks } = { copyBlocks, ...nativeKernelsFor('shape') };
