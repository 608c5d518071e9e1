import { type Var, result } from './var.js';
import { floats, outputFloats } from './pool.js';
import { broadcastShapes, forEachBroadcast } from './broadcast.js';
import { nativeArithKernels } from './native-kernels.js';

/**
 * Elementwise binary ops with NumPy broadcasting (a bias [d] over [n, d], per-row weights
 * [n, 1] over [n, d], a scalar [] over anything). The gradient of a broadcast input is summed
 * over the axes it was repeated along. When shapes differ, the element index of each input is
 * precomputed once per op (Int32Array maps) so that the loops stay tight.
 */
interface Operands {
  shape: number[];
  size: number;
  /** Index into a / b of each output element; null when that input has the output's shape. */
  ia: Int32Array | null;
  ib: Int32Array | null;
}

function operands(op: string, a: Var, b: Var): Operands {
  const bc = broadcastShapes(op, a.shape, b.shape);
  const aFull = a.size === bc.size;
  const bFull = b.size === bc.size;
  const ia = aFull ? null : new Int32Array(bc.size);
  const ib = bFull ? null : new Int32Array(bc.size);
  if (ia !== null || ib !== null) {
    forEachBroadcast(bc, (o, x, y) => {
      if (ia !== null) ia[o] = x;
      if (ib !== null) ib[o] = y;
    });
  }
  return { shape: bc.shape, size: bc.size, ia, ib };
}

type Kernel = (out: Float32Array, a: Float32Array, b: Float32Array, ia: Int32Array | null, ib: Int32Array | null) => void;
/** Accumulates the gradient of one input: da[ia[o]] += dy[o] · ∂f/∂a (or for b). */
type GradKernel = (grad: Float32Array, dy: Float32Array, a: Float32Array, b: Float32Array, out: Float32Array, ia: Int32Array | null, ib: Int32Array | null, index: Int32Array | null) => void;

function binary(op: string, a: Var, b: Var, forward: Kernel, gradA: GradKernel, gradB: GradKernel): Var {
  const { shape, size, ia, ib } = operands(op, a, b);
  const value = outputFloats(size);
  forward(value, a.value, b.value, ia, ib);
  return result(value, shape, [a, b], (out) => () => {
    const g = out.grad!;
    if (a.requiresGrad) gradA(a.gradBuffer(), g, a.value, b.value, value, ia, ib, ia);
    if (b.requiresGrad) gradB(b.gradBuffer(), g, a.value, b.value, value, ia, ib, ib);
  });
}

/** dx[index[o]] += dy[o] (the gradient of x in x ± y), summing over broadcast axes. */
function passGrad(sign: 1 | -1): GradKernel {
  return (grad, dy, _a, _b, _out, _ia, _ib, index) => {
    if (index === null) arithKernels.axpy(grad, sign, dy, dy.length);
    else for (let o = 0; o < dy.length; o++) grad[index[o]!]! += sign * dy[o]!;
  };
}

/** a + b (broadcasting). Backward: a (when full-shaped) takes over the output's gradient buffer. */
export function add(a: Var, b: Var): Var {
  const { shape, size, ia, ib } = operands('add', a, b);
  const value = outputFloats(size);
  if (ia === null && ib === null) arithKernels.add(value, a.value, b.value, size);
  else for (let o = 0; o < size; o++) value[o] = a.value[ia === null ? o : ia[o]!]! + b.value[ib === null ? o : ib[o]!]!;
  const pass = passGrad(1);
  return result(value, shape, [a, b], (out) => () => {
    const g = out.grad!;
    // b first: a may then take g itself (a === b still gets g twice: its gradient exists by then).
    if (b.requiresGrad) pass(b.gradBuffer(), g, a.value, b.value, value, ia, ib, ib);
    if (a.requiresGrad && !(ia === null && a.adoptGrad(out))) pass(a.gradBuffer(), g, a.value, b.value, value, ia, ib, ia);
  });
}

/** a − b (broadcasting). */
export function sub(a: Var, b: Var): Var {
  return binary('sub', a, b, (out, x, y, ia, ib) => {
    for (let o = 0; o < out.length; o++) out[o] = x[ia === null ? o : ia[o]!]! - y[ib === null ? o : ib[o]!]!;
  }, passGrad(1), passGrad(-1));
}

/** a · b elementwise (broadcasting). */
export function mul(a: Var, b: Var): Var {
  return binary('mul', a, b, (out, x, y, ia, ib) => {
    for (let o = 0; o < out.length; o++) out[o] = x[ia === null ? o : ia[o]!]! * y[ib === null ? o : ib[o]!]!;
  }, (ga, dy, _x, y, _out, _ia, ib, index) => {
    for (let o = 0; o < dy.length; o++) ga[index === null ? o : index[o]!]! += dy[o]! * y[ib === null ? o : ib[o]!]!;
  }, (gb, dy, x, _y, _out, ia, _ib, index) => {
    for (let o = 0; o < dy.length; o++) gb[index === null ? o : index[o]!]! += dy[o]! * x[ia === null ? o : ia[o]!]!;
  });
}

/** a / b elementwise (broadcasting). */
export function div(a: Var, b: Var): Var {
  return binary('div', a, b, (out, x, y, ia, ib) => {
    for (let o = 0; o < out.length; o++) out[o] = x[ia === null ? o : ia[o]!]! / y[ib === null ? o : ib[o]!]!;
  }, (ga, dy, _x, y, _out, _ia, ib, index) => {
    for (let o = 0; o < dy.length; o++) ga[index === null ? o : index[o]!]! += dy[o]! / y[ib === null ? o : ib[o]!]!;
  }, (gb, dy, _x, y, out, _ia, ib, index) => {
    // d(x/y)/dy = −(x/y)/y = −out/y.
    for (let o = 0; o < dy.length; o++) gb[index === null ? o : index[o]!]! -= (dy[o]! * out[o]!) / y[ib === null ? o : ib[o]!]!;
  });
}

/** Gradient of min/max: to a where pickA(x, y), else to b (ties go to a). */
function selectGrad(pickA: (x: number, y: number) => boolean, toA: boolean): GradKernel {
  return (grad, dy, x, y, _out, ia, ib, index) => {
    for (let o = 0; o < dy.length; o++) {
      if (pickA(x[ia === null ? o : ia[o]!]!, y[ib === null ? o : ib[o]!]!) === toA) grad[index === null ? o : index[o]!]! += dy[o]!;
    }
  };
}

/** min(a, b) elementwise (broadcasting); on ties the gradient goes to a. */
export function minimum(a: Var, b: Var): Var {
  const le = (x: number, y: number): boolean => x <= y;
  return binary('minimum', a, b, (out, x, y, ia, ib) => {
    for (let o = 0; o < out.length; o++) {
      const u = x[ia === null ? o : ia[o]!]!;
      const v = y[ib === null ? o : ib[o]!]!;
      out[o] = u <= v ? u : v;
    }
  }, selectGrad(le, true), selectGrad(le, false));
}

/** max(a, b) elementwise (broadcasting); on ties the gradient goes to a. */
export function maximum(a: Var, b: Var): Var {
  const ge = (x: number, y: number): boolean => x >= y;
  return binary('maximum', a, b, (out, x, y, ia, ib) => {
    for (let o = 0; o < out.length; o++) {
      const u = x[ia === null ? o : ia[o]!]!;
      const v = y[ib === null ? o : ib[o]!]!;
      out[o] = u >= v ? u : v;
    }
  }, selectGrad(ge, true), selectGrad(ge, false));
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
  const value = floats(first.size);
  for (const t of terms) arithKernels.axpy(value, 1, t.value, value.length);
  return result(value, first.shape, terms, (out) => () => {
    const g = out.grad!;
    for (const t of terms) {
      if (!t.requiresGrad) continue;
      arithKernels.axpy(t.gradBuffer(), 1, g, g.length);
    }
  });
}

/** out = a + b over n elements of equal shape. */
export function addSame(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

/** out += alpha · x over n elements (gradient accumulation; alpha ±1 is exact). */
export function axpy(out: Float32Array, alpha: number, x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i]! += alpha * x[i]!;
}

/**
 * The same-shape kernels add, sub's and add's backward, and addN run; the native backend's add
 * and axpy (bit-identical: one float32 rounding per element) replace them when the process
 * computes natively.
 */
export const arithKernels: { add: typeof addSame; axpy: typeof axpy } = { add: addSame, axpy, ...nativeArithKernels() };
