import { type Var, result } from './var.js';
import { broadcastShapes, forEachBroadcast } from './broadcast.js';

/**
 * Elementwise binary ops with NumPy broadcasting (a bias [d] over [n, d], per-row weights
 * [n, 1] over [n, d], a scalar [1] over anything). The gradient of a broadcast input is summed
 * over the axes it was repeated along.
 */
function binary(
  op: string, a: Var, b: Var,
  f: (x: number, y: number) => number,
  dfdx: (x: number, y: number, out: number) => number,
  dfdy: (x: number, y: number, out: number) => number,
): Var {
  const bc = broadcastShapes(op, a.shape, b.shape);
  const av = a.value;
  const bv = b.value;
  const value = new Float32Array(bc.size);
  forEachBroadcast(bc, (o, ia, ib) => {
    value[o] = f(av[ia]!, bv[ib]!);
  });
  return result(value, bc.shape, [a, b], (out) => () => {
    const g = out.grad!;
    const ga = a.requiresGrad ? a.gradBuffer() : null;
    const gb = b.requiresGrad ? b.gradBuffer() : null;
    forEachBroadcast(bc, (o, ia, ib) => {
      const go = g[o]!;
      if (ga !== null) ga[ia]! += go * dfdx(av[ia]!, bv[ib]!, value[o]!);
      if (gb !== null) gb[ib]! += go * dfdy(av[ia]!, bv[ib]!, value[o]!);
    });
  });
}

/** a + b (broadcasting). */
export function add(a: Var, b: Var): Var {
  return binary('add', a, b, (x, y) => x + y, () => 1, () => 1);
}

/** a − b (broadcasting). */
export function sub(a: Var, b: Var): Var {
  return binary('sub', a, b, (x, y) => x - y, () => 1, () => -1);
}

/** a · b elementwise (broadcasting). */
export function mul(a: Var, b: Var): Var {
  return binary('mul', a, b, (x, y) => x * y, (_x, y) => y, (x) => x);
}

/** a / b elementwise (broadcasting). */
export function div(a: Var, b: Var): Var {
  return binary('div', a, b, (x, y) => x / y, (_x, y) => 1 / y, (x, y) => -x / (y * y));
}

/** min(a, b) elementwise (broadcasting); on ties the gradient goes to a. */
export function minimum(a: Var, b: Var): Var {
  return binary('minimum', a, b, (x, y) => (x <= y ? x : y), (x, y) => (x <= y ? 1 : 0), (x, y) => (x <= y ? 0 : 1));
}

/** max(a, b) elementwise (broadcasting); on ties the gradient goes to a. */
export function maximum(a: Var, b: Var): Var {
  return binary('maximum', a, b, (x, y) => (x >= y ? x : y), (x, y) => (x >= y ? 1 : 0), (x, y) => (x >= y ? 0 : 1));
}

/** Sum of several Vars of one shape (residual streams, loss terms), one node. */
export function addN(terms: readonly Var[]): Var {
  if (terms.length === 0) throw new Error('addN: no terms');
  const first = terms[0]!;
  for (const t of terms) {
    if (t.size !== first.size || t.rank !== first.rank || t.shape.some((d, i) => d !== first.shape[i])) {
      throw new Error(`addN: shapes [${first.shape.join(', ')}] and [${t.shape.join(', ')}] differ`);
    }
  }
  const value = new Float32Array(first.size);
  for (const t of terms) for (let i = 0; i < value.length; i++) value[i]! += t.value[i]!;
  return result(value, first.shape, terms, (out) => () => {
    const g = out.grad!;
    for (const t of terms) {
      if (!t.requiresGrad) continue;
      const gt = t.gradBuffer();
      for (let i = 0; i < g.length; i++) gt[i]! += g[i]!;
    }
  });
}
