/** The SwiGLU feed-forward block: down(silu(gate(x)) · up(x)). */
import type { Backend } from '../tensor/backend.js';
import { type Linear, linearForward, linearParameters } from './linear.js';

export interface SwiGlu {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
}

export function swiGlu(gate: Linear, up: Linear, down: Linear): SwiGlu {
  const hidden = gate.weight.cols;
  const ff = gate.weight.rows;
  if (up.weight.rows !== ff || up.weight.cols !== hidden) {
    throw new Error(`ffn up weight is [${up.weight.rows}, ${up.weight.cols}], gate is [${ff}, ${hidden}]`);
  }
  if (down.weight.rows !== hidden || down.weight.cols !== ff) {
    throw new Error(`ffn down weight is [${down.weight.rows}, ${down.weight.cols}], expected [${hidden}, ${ff}]`);
  }
  return { gate, up, down };
}

/** Scratch for `m` tokens: two [m, ff] buffers. */
export interface SwiGluScratch {
  gate: Float32Array;
  up: Float32Array;
}

export function swiGluScratch(ffn: SwiGlu, m: number): SwiGluScratch {
  const ff = ffn.gate.weight.rows;
  return { gate: new Float32Array(m * ff), up: new Float32Array(m * ff) };
}

/** out[m, hidden] = SwiGLU(x[m, hidden]). */
export function swiGluForward(backend: Backend, out: Float32Array, x: Float32Array, m: number, ffn: SwiGlu, scratch: SwiGluScratch): void {
  const n = m * ffn.gate.weight.rows;
  const gate = scratch.gate.subarray(0, n);
  const up = scratch.up.subarray(0, n);
  linearForward(backend, gate, x, m, ffn.gate);
  linearForward(backend, up, x, m, ffn.up);
  backend.siluMul(gate, gate, up, n);
  linearForward(backend, out, gate, m, ffn.down);
}

export function swiGluParameters(ffn: SwiGlu): number {
  return linearParameters(ffn.gate) + linearParameters(ffn.up) + linearParameters(ffn.down);
}
