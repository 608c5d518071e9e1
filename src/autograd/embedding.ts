import { type Var, result } from './var.js';
import { outputFloats } from './pool.js';

/**
 * Row lookup: out[..., :] = table[ids[...], :] for table [vocab, dim] and integer ids of any
 * shape (given with `idsShape`; default flat). Backward scatter-adds each output row's gradient
 * into the row it came from (repeated ids accumulate).
 */
export function embedding(table: Var, ids: Int32Array, idsShape: readonly number[] = [ids.length]): Var {
  if (table.rank !== 2) throw new Error(`embedding: table ${table.toString()} must be 2-D [vocab, dim]`);
  const [vocab, dim] = table.shape as [number, number];
  if (idsShape.reduce((p, d) => p * d, 1) !== ids.length) throw new Error(`embedding: ids shape [${idsShape.join(', ')}] does not hold ${ids.length} ids`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= vocab) throw new Error(`embedding: id ${id} at position ${i} is outside the table's ${vocab} rows`);
  }
  const value = outputFloats(ids.length * dim);
  embeddingKernels.forward(value, table.value, ids, dim);
  return result(value, [...idsShape, dim], [table], (out) => () => {
    embeddingKernels.backward(table.gradBuffer(), out.grad!, ids, dim);
  });
}

export function embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, dim: number): void {
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i]! * dim, (ids[i]! + 1) * dim), i * dim);
}

export function embeddingBackward(dtable: Float32Array, dy: Float32Array, ids: Int32Array, dim: number): void {
  for (let i = 0; i < ids.length; i++) {
    const dst = ids[i]! * dim;
    const src = i * dim;
    for (let j = 0; j < dim; j++) dtable[dst + j]! += dy[src + j]!;
  }
}

/**
 * The kernels this op runs (plain functions over Float32Arrays). A native implementation with
 * the same signature can replace an entry, op by op, without touching the op.
 */
export const embeddingKernels = { forward: embeddingForward, backward: embeddingBackward };
