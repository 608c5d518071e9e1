import { type Var, result } from './var.js';
import { nativeKernelsFor } from './native-kernels.js';

/** Targets equal to this are skipped by crossEntropy (PyTorch's default ignore_index). */
export const IGNORE_INDEX = -100;

function checkTargets(op: string, logits: Var, targets: Int32Array, ignoreIndex: number | null): { rows: number; vocab: number } {
  const vocab = logits.shape[logits.rank - 1];
  if (vocab === undefined || vocab === 0) throw new Error(`${op}: logits ${logits.toString()} have no vocabulary axis`);
  const rows = logits.size / vocab;
  if (targets.length !== rows) throw new Error(`${op}: ${targets.length} targets for ${rows} rows of logits ${logits.toString()}`);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    if (t < 0 || t >= vocab) throw new Error(`${op}: target ${t} at row ${r} is outside the vocabulary of ${vocab}`);
  }
  return { rows, vocab };
}

/** log Σ_c exp(scale · x[c]) of each row, in float64. */
export function rowLogSumExp(out: Float64Array, x: Float32Array, rows: number, cols: number, scale = 1): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[base + c]! > max) max = x[base + c]!;
    max *= scale;
    let total = 0;
    for (let c = 0; c < cols; c++) total += Math.exp(x[base + c]! * scale - max);
    out[r] = max + Math.log(total);
  }
}

/**
 * Mean next-token cross-entropy: logits [..., vocab], targets one per row; rows whose target is
 * `ignoreIndex` are skipped and the mean is over the remaining rows (0 when none remain).
 * Fused log-softmax: the forward keeps only each row's log-sum-exp; the backward is
 * dlogits = g / valid · (softmax − onehot(target)).
 */
export function crossEntropy(logits: Var, targets: Int32Array, ignoreIndex: number = IGNORE_INDEX): Var {
  const { rows, vocab } = checkTargets('crossEntropy', logits, targets, ignoreIndex);
  const lse = new Float64Array(rows);
  const { total, valid } = crossEntropyKernels.forward(lse, logits.value, targets, rows, vocab, ignoreIndex);
  const loss = valid === 0 ? 0 : total / valid;
  return result(Float32Array.of(loss), [], [logits], (out) => () => {
    if (valid === 0) return;
    crossEntropyKernels.backward(logits.gradBuffer(), out.grad![0]! / valid, logits.value, lse, targets, rows, vocab, ignoreIndex);
  });
}

/** Fills each row's log-sum-exp; returns the summed loss over valid rows and their count. */
export function crossEntropyForward(
  lse: Float64Array, x: Float32Array, targets: Int32Array, rows: number, vocab: number, ignoreIndex: number,
): { total: number; valid: number } {
  rowLogSumExp(lse, x, rows, vocab);
  let total = 0;
  let valid = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    total += lse[r]! - x[r * vocab + t]!;
    valid++;
  }
  return { total, valid };
}

/** dx[r] += g · (softmax(x[r]) − onehot(target[r])) for valid rows (g already divided by the count). */
export function crossEntropyBackward(
  dx: Float32Array, g: number, x: Float32Array, lse: Float64Array, targets: Int32Array, rows: number, vocab: number, ignoreIndex: number,
): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === ignoreIndex) continue;
    const base = r * vocab;
    const l = lse[r]!;
    for (let c = 0; c < vocab; c++) dx[base + c]! += g * Math.exp(x[base + c]! - l);
    dx[base + t]! -= g;
  }
}

/**
 * log softmax(logits / T)[target] per row: logits [..., vocab] → [...] (the policy log-probabilities
 * of GRPO, at the temperature T its rollouts were sampled with; 1 by default).
 * Backward: dlogits[r] = g[r] / T · (onehot(target) − softmax(logits / T)).
 */
export function tokenLogProbs(logits: Var, targets: Int32Array, temperature = 1): Var {
  const { rows, vocab } = checkTargets('tokenLogProbs', logits, targets, null);
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new Error(`tokenLogProbs: temperature ${temperature} must be a finite number > 0`);
  const inverse = 1 / temperature;
  const lse = new Float64Array(rows);
  rowLogSumExp(lse, logits.value, rows, vocab, inverse);
  const value = new Float32Array(rows);
  for (let r = 0; r < rows; r++) value[r] = logits.value[r * vocab + targets[r]!]! * inverse - lse[r]!;
  return result(value, logits.shape.slice(0, -1), [logits], (out) => () => {
    const g = out.grad!;
    const gx = logits.gradBuffer();
    const x = logits.value;
    for (let r = 0; r < rows; r++) {
      const gr = g[r]! * inverse;
      if (gr === 0) continue;
      const base = r * vocab;
      const l = lse[r]!;
      for (let c = 0; c < vocab; c++) gx[base + c]! -= gr * Math.exp(x[base + c]! * inverse - l);
      gx[base + targets[r]!]! += gr;
    }
  });
}

/** The kernels crossEntropy runs; replaceable by native ones with the same signatures. */
export const crossEntropyKernels: { forward: typeof crossEntropyForward; backward: typeof crossEntropyBackward } = {
  forward: crossEntropyForward, backward: crossEntropyBackward, ...nativeKernelsFor('crossEntropy'),
};
