/**
 * Per-sub-block scale searches for the k-quants (in the spirit of ggml's make_qkx / make_qx:
 * sweep a few candidate inverse scales, quantize, re-fit the scale by weighted least squares,
 * keep the candidate with the smallest weighted squared error). Not bit-exact with ggml.
 */

import { roundNearest } from './bits.js';

const SWEEP_LOW = -1;
const SWEEP_STEP = 0.1;
const SWEEP_COUNT = 20;
const POLISH_STEPS = 2;

const candidate = new Uint8Array(32);

/**
 * Fit x[at..at+n) ≈ scale * q + min with integers q in 0..nmax, scale >= 0 and min <= 0,
 * minimising Σ w (scale*q + min - x)². Writes q into `q`, and [scale, min] into `result`.
 */
export function fitAffine(
  x: Float32Array, at: number, n: number, nmax: number,
  w: Float64Array, q: Uint8Array, result: Float64Array,
): void {
  let xmin = Infinity;
  let xmax = -Infinity;
  let sumW = 0;
  let sumX = 0;
  let sumX2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i]!;
    if (v < xmin) xmin = v;
    if (v > xmax) xmax = v;
    sumW += w[i]!;
    sumX += w[i]! * v;
    sumX2 += w[i]! * v * v;
  }
  if (xmin > 0) xmin = 0;
  if (!(xmax > xmin)) {
    q.fill(0, 0, n);
    result[0] = 0;
    result[1] = xmin;
    return;
  }
  const range = xmax - xmin;
  // Start from the plain min/max fit, then sweep candidate inverse scales around nmax/range,
  // then polish twice (re-quantize against the best fit so far and re-fit).
  let bestScale = range / nmax;
  let bestMin = xmin;
  quantizeAffine(x, at, n, nmax, 1 / bestScale, xmin, q);
  let bestErr = fitError(x, at, n, w, q, bestScale, bestMin);
  const steps = SWEEP_COUNT + 1 + POLISH_STEPS;
  for (let k = 0; k < steps; k++) {
    const polish = k > SWEEP_COUNT;
    const iscale = polish ? 1 / bestScale : (SWEEP_LOW + SWEEP_STEP * k + nmax) / range;
    const offset = polish ? bestMin : xmin;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i]!;
      let l = roundNearest(iscale * (v - offset));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      candidate[i] = l;
      const wl = w[i]! * l;
      sumL += wl;
      sumL2 += wl * l;
      sumXL += wl * v;
    }
    // Weighted least squares for (scale, min) given the levels; min is capped at 0.
    const det = sumW * sumL2 - sumL * sumL;
    if (!(det > 0)) continue;
    let scale = (sumW * sumXL - sumX * sumL) / det;
    let min = (sumL2 * sumX - sumL * sumXL) / det;
    if (min > 0) {
      min = 0;
      scale = sumXL / sumL2;
    }
    if (!(scale > 0)) continue;
    // Σ w (scale*l + min - x)² expanded over the sums.
    const err = scale * scale * sumL2 + 2 * scale * min * sumL + min * min * sumW
      - 2 * scale * sumXL - 2 * min * sumX + sumX2;
    if (err < bestErr) {
      bestErr = err;
      bestScale = scale;
      bestMin = min;
      for (let i = 0; i < n; i++) q[i] = candidate[i]!;
    }
  }
  result[0] = bestScale;
  result[1] = bestMin;
}

function quantizeAffine(
  x: Float32Array, at: number, n: number, nmax: number, iscale: number, offset: number, q: Uint8Array,
): void {
  for (let i = 0; i < n; i++) {
    const l = roundNearest(iscale * (x[at + i]! - offset));
    q[i] = l < 0 ? 0 : l > nmax ? nmax : l;
  }
}

function fitError(
  x: Float32Array, at: number, n: number, w: Float64Array, q: Uint8Array, scale: number, min: number,
): number {
  let err = 0;
  for (let i = 0; i < n; i++) {
    const diff = scale * q[i]! + min - x[at + i]!;
    err += w[i]! * diff * diff;
  }
  return err;
}

/**
 * Fit x[at..at+n) ≈ scale * q with integers q in -nmax..nmax-1 (the value of largest magnitude
 * lands near -nmax, so the scale's sign follows it), maximising the weighted fit (Σwxq)²/Σwq².
 * Returns the scale (0 for an all-zero sub-block).
 */
export function fitSymmetric(x: Float32Array, at: number, n: number, nmax: number, w: Float64Array): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[at + i]!;
    const a = Math.abs(v);
    if (a > amax) {
      amax = a;
      max = v;
    }
  }
  if (amax === 0) return 0;
  let bestScale = 0;
  let bestFit = -1;
  for (let k = -9; k <= 9; k++) {
    const iscale = -(nmax + 0.1 * k) / max;
    let sumLX = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[at + i]!;
      let l = roundNearest(iscale * v);
      if (l < -nmax) l = -nmax;
      else if (l > nmax - 1) l = nmax - 1;
      sumLX += w[i]! * v * l;
      sumL2 += w[i]! * l * l;
    }
    if (sumL2 > 0 && sumLX * sumLX > bestFit * sumL2) {
      bestFit = (sumLX * sumLX) / sumL2;
      bestScale = sumLX / sumL2;
    }
  }
  return bestScale;
}
