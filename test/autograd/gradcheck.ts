// Finite-difference gradient checking for autograd tests (llm.c style).
import { type Var, backward, noGrad } from '../../src/autograd/var.js';
import { Random } from '../../src/autograd/random.js';

export interface CheckResult {
  /**
   * Per input: max |analytic − numeric| over the checked elements, divided by the input's
   * gradient scale (the largest of max |analytic| over all its elements and max |numeric| over the
   * checked ones), so that a random subset of small entries is judged against the tensor's scale.
   */
  errors: number[];
  /** Per input: max |analytic − numeric| over the checked elements. */
  absErrors: number[];
  worst: number;
}

export interface CheckOptions {
  /** Central-difference step. */
  h?: number;
  /** Check at most this many elements per input (a seeded random subset); default all. */
  maxElements?: number;
  seed?: number;
}

/**
 * Compares backward's gradients with central differences. The scalar under test is
 * L = Σ_i out_i · c_i for a fixed random projection c, computed in float64 from the f32
 * forward output, and seeded into backward as dL/dout = c. Each input element x is perturbed to
 * f32(x ± h) and the difference divided by the actual f32 step.
 */
export function gradCheck(inputs: readonly Var[], forward: () => Var, options: CheckOptions = {}): CheckResult {
  const h = options.h ?? 1e-3;
  const rng = new Random(options.seed ?? 1234);
  for (const x of inputs) x.clearGrad();
  const out = forward();
  const c = new Float64Array(out.size);
  for (let i = 0; i < c.length; i++) c[i] = rng.normal();
  backward(out, Float32Array.from(c));
  const analytic = inputs.map((x) => Float32Array.from(x.grad ?? new Float32Array(x.size)));
  const project = (v: Var): number => {
    let s = 0;
    for (let i = 0; i < c.length; i++) s += v.value[i]! * c[i]!;
    return s;
  };
  const errors: number[] = [];
  const absErrors: number[] = [];
  inputs.forEach((x, n) => {
    let elements = Array.from(x.value.keys());
    if (options.maxElements !== undefined && elements.length > options.maxElements) {
      for (let i = elements.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [elements[i], elements[j]] = [elements[j]!, elements[i]!];
      }
      elements = elements.slice(0, options.maxElements);
    }
    let maxDiff = 0;
    let maxNumeric = 0;
    for (const a of analytic[n]!) maxNumeric = Math.max(maxNumeric, Math.abs(a));
    for (const i of elements) {
      const original = x.value[i]!;
      x.value[i] = original + h;
      const up = x.value[i]!;
      const lossUp = noGrad(() => project(forward()));
      x.value[i] = original - h;
      const down = x.value[i]!;
      const lossDown = noGrad(() => project(forward()));
      x.value[i] = original;
      const numeric = (lossUp - lossDown) / (up - down);
      maxDiff = Math.max(maxDiff, Math.abs(numeric - analytic[n]![i]!));
      maxNumeric = Math.max(maxNumeric, Math.abs(numeric));
    }
    errors.push(maxNumeric === 0 ? maxDiff : maxDiff / maxNumeric);
    absErrors.push(maxDiff);
  });
  return { errors, absErrors, worst: Math.max(0, ...errors) };
}

/** Random f32 values, normal with the given std. */
export function randn(rng: Random, n: number, std = 1): Float32Array {
  return rng.normalArray(n, std);
}

/**
 * Asserts every input's relative error is below tol — or, when absFloor is given, that its
 * absolute error is below that floor (the f32 rounding noise of the loss divided by 2h, for
 * tensors whose whole gradient is that small) — and reports the errors as a test diagnostic.
 */
export function expectGradOk(t: { diagnostic(message: string): void }, name: string, result: CheckResult, tol: number, absFloor = 0): void {
  t.diagnostic(`gradcheck ${name}: max rel err ${result.errors.map((e) => e.toExponential(2)).join(', ')} (tol ${tol}${absFloor ? `, abs floor ${absFloor}` : ''})`);
  for (const [i, e] of result.errors.entries()) {
    if (!(e < tol) && !(result.absErrors[i]! < absFloor)) {
      throw new Error(`gradcheck ${name}: input ${i} relative error ${e} (absolute ${result.absErrors[i]}) is not below ${tol}`);
    }
  }
}
