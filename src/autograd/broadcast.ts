import { shapeString } from './var.js';

/**
 * NumPy-style broadcasting of two shapes (align from the right; a dimension of 1 repeats).
 * Returns the output shape and, for each input, its element strides over the output's axes
 * (0 where that input repeats).
 */
export interface Broadcast {
  shape: number[];
  size: number;
  aStrides: number[];
  bStrides: number[];
  /** True when a, b and the output all have the same shape (the fast path). */
  same: boolean;
}

export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): Broadcast {
  const rank = Math.max(a.length, b.length);
  const shape = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`${op}: shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    shape[i] = da === 1 ? db : da;
  }
  const size = shape.reduce((p, d) => p * d, 1);
  const same = a.length === b.length && a.every((d, i) => d === b[i]);
  return { shape, size, aStrides: stridesOver(a, shape), bStrides: stridesOver(b, shape), same };
}

function stridesOver(input: readonly number[], out: readonly number[]): number[] {
  const strides = new Array<number>(out.length).fill(0);
  let s = 1;
  for (let i = input.length - 1; i >= 0; i--) {
    const axis = out.length - input.length + i;
    strides[axis] = input[i] === 1 ? 0 : s;
    s *= input[i]!;
  }
  return strides;
}

/**
 * For each output element in row-major order, the index into a and into b. Written as one loop
 * with an odometer so that ops can share it; `visit(o, ia, ib)` is called `size` times.
 */
export function forEachBroadcast(bc: Broadcast, visit: (o: number, ia: number, ib: number) => void): void {
  const { shape, aStrides, bStrides, size } = bc;
  const rank = shape.length;
  if (bc.same) {
    for (let o = 0; o < size; o++) visit(o, o, o);
    return;
  }
  const index = new Array<number>(rank).fill(0);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < size; o++) {
    visit(o, ia, ib);
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      ia += aStrides[d]!;
      ib += bStrides[d]!;
      if (index[d]! < shape[d]!) break;
      ia -= aStrides[d]! * shape[d]!;
      ib -= bStrides[d]! * shape[d]!;
      index[d] = 0;
    }
  }
}
