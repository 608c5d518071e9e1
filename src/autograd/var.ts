/**
 * Reverse-mode automatic differentiation on dense f32 arrays.
 *
 * A Var holds a value (a contiguous row-major Float32Array with a shape), a gradient of the same
 * size (allocated on first use), the Vars it was computed from, and a closure that, given this
 * Var's gradient, adds the chain-rule contribution into the parents' gradients. `backward(loss)`
 * runs those closures in reverse topological order. Ops live one per file beside this one; each
 * exposes its forward and backward math as plain functions over Float32Arrays, so a native kernel
 * can replace one op at a time.
 */
import { floats, recycle } from './pool.js';

export class Var {
  readonly value: Float32Array;
  readonly shape: readonly number[];
  /** Whether gradients flow into this Var (parameters, and everything computed from them). */
  readonly requiresGrad: boolean;
  /** Inputs of the op that produced this Var (empty for leaves). */
  readonly parents: readonly Var[];
  /** Adds this Var's gradient contribution into its parents' gradients; null for leaves. */
  backwardFn: (() => void) | null;
  /** Optional name (parameters), used in error messages and optimizer state. */
  name: string;
  private gradient: Float32Array | null = null;
  private spare: Float32Array | null = null;

  constructor(value: Float32Array, shape: readonly number[], options: { requiresGrad?: boolean; parents?: readonly Var[]; name?: string } = {}) {
    const size = sizeOfShape(shape);
    if (value.length !== size) {
      throw new Error(`Var${options.name ? ` '${options.name}'` : ''}: shape [${shape.join(', ')}] needs ${size} values, got ${value.length}`);
    }
    this.value = value;
    this.shape = [...shape];
    this.requiresGrad = options.requiresGrad ?? false;
    this.parents = options.parents ?? [];
    this.backwardFn = null;
    this.name = options.name ?? '';
  }

  get size(): number {
    return this.value.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The gradient if one was allocated (null before any backward reached this Var). */
  get grad(): Float32Array | null {
    return this.gradient;
  }

  /**
   * The gradient buffer, allocated (zeroed) on first use: the buffer resetGrad kept, else for an
   * op's output one from the active buffer pool (./pool.ts), else a new array.
   */
  gradBuffer(): Float32Array {
    if (this.gradient === null) {
      if (this.spare !== null) {
        this.gradient = this.spare;
        this.spare = null;
        this.gradient.fill(0);
      } else {
        this.gradient = this.backwardFn === null ? new Float32Array(this.value.length) : floats(this.value.length);
      }
    }
    return this.gradient;
  }

  /** Forget the gradient (the next backward starts from zero). */
  zeroGrad(): void {
    if (this.gradient !== null) this.gradient.fill(0);
  }

  /** Drop the gradient buffer entirely (back to the active pool if it came from there). */
  clearGrad(): void {
    if (this.gradient !== null) recycle(this.gradient);
    this.gradient = null;
    this.spare = null;
  }

  /**
   * Takes over `source`'s gradient buffer as this Var's gradient (no copy) when this is an op
   * output (not a leaf) of the same size whose gradient is not allocated yet; returns false,
   * changing nothing, otherwise. Backward of ops whose input gradient equals the output's (reshape,
   * one side of add): source's gradient is consumed once its backward has run.
   */
  adoptGrad(source: Var): boolean {
    if (this.gradient !== null || this.spare !== null || this.backwardFn === null || source.gradient === null) return false;
    if (source.gradient.length !== this.value.length) return false;
    this.gradient = source.gradient;
    source.gradient = null;
    return true;
  }

  /**
   * The gradient becomes null (not reached) as with clearGrad, but its buffer is kept for the next
   * gradBuffer(): the optimizer's zeroGrad between steps, so that every step does not allocate
   * (and fault in) the parameters' gradients afresh.
   */
  resetGrad(): void {
    if (this.gradient !== null) this.spare = this.gradient;
    this.gradient = null;
  }

  /** The single value of a one-element Var (a loss). */
  item(): number {
    if (this.value.length !== 1) throw new Error(`item() needs a one-element Var, got shape [${this.shape.join(', ')}]`);
    return this.value[0]!;
  }

  toString(): string {
    return `Var${this.name ? ` '${this.name}'` : ''}[${this.shape.join(', ')}]`;
  }
}

export function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** A trainable leaf (gradients are accumulated into it). */
export function parameter(value: Float32Array, shape: readonly number[], name = ''): Var {
  return new Var(value, shape, { requiresGrad: true, name });
}

/** A leaf that receives no gradient (inputs, masks, targets as floats). */
export function constant(value: Float32Array, shape: readonly number[], name = ''): Var {
  return new Var(value, shape, { requiresGrad: false, name });
}

/**
 * The same values cut from the graph (no gradient flows back through it): PyTorch's
 * x.detach(), e.g. GRPO's exp(logp − detach(logp)).
 */
export function detach(x: Var): Var {
  return new Var(x.value, x.shape, { requiresGrad: false, name: x.name });
}

let gradEnabled = true;

/** Runs fn without recording the graph (evaluation, generation): results carry no backward. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * The output Var of an op. When grad is enabled and some input requires a gradient, the output
 * records its inputs and the backward closure (built lazily by makeBackward so that no-grad
 * forwards allocate nothing for it).
 */
export function result(value: Float32Array, shape: readonly number[], inputs: readonly Var[], makeBackward: (out: Var) => () => void): Var {
  const track = gradEnabled && inputs.some((v) => v.requiresGrad);
  if (!track) return new Var(value, shape);
  const out = new Var(value, shape, { requiresGrad: true, parents: inputs });
  out.backwardFn = makeBackward(out);
  return out;
}

/** Parents in an order where every Var comes after all Vars it was computed from. */
export function topologicalOrder(root: Var): Var[] {
  const order: Var[] = [];
  const visited = new Set<Var>();
  // Iterative DFS (deep graphs would overflow the call stack with recursion).
  const stack: Array<{ v: Var; next: number }> = [{ v: root, next: 0 }];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.v.parents.length) {
      const p = top.v.parents[top.next++]!;
      if (!visited.has(p) && p.requiresGrad) {
        visited.add(p);
        stack.push({ v: p, next: 0 });
      }
    } else {
      order.push(top.v);
      stack.pop();
    }
  }
  return order;
}

/**
 * Backpropagates from `root`: seeds its gradient with `seed` (default 1 for a one-element root)
 * and accumulates gradients into every leaf Var that requires one. Leaf gradients accumulate
 * across calls (gradient accumulation); zero them with the optimizer between steps. Gradients of
 * intermediate Vars are freed once propagated.
 */
export function backward(root: Var, seed?: Float32Array): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root.toString()} does not require a gradient (no parameter reaches it, or it was computed under noGrad)`);
  const g = root.gradBuffer();
  if (seed) {
    if (seed.length !== root.size) throw new Error(`backward: seed has ${seed.length} values, ${root.toString()} has ${root.size}`);
    for (let i = 0; i < g.length; i++) g[i]! += seed[i]!;
  } else {
    if (root.size !== 1) throw new Error(`backward: ${root.toString()} is not a scalar; pass a seed gradient`);
    g[0]! += 1;
  }
  const order = topologicalOrder(root);
  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i]!;
    if (v.backwardFn === null) continue;
    if (v.grad !== null) v.backwardFn();
    // Intermediate gradients are consumed: free them, so that a second backward over a shared
    // subgraph starts clean and memory is returned early.
    v.clearGrad();
  }
}

/** Throws unless two shapes are equal. */
export function assertSameShape(op: string, a: Var, b: Var): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
