/**
 * Where each tensor of a TrainModel lives in the data-parallel shared buffers: the parameters back
 * to back in registration order, then the routing biases (e_score_correction_bias, values only: they
 * get no gradient). The calling thread writes the current values there before each step; each worker
 * copies them into its replica, and writes its parameter gradients at the same offsets of its own
 * gradient buffer.
 */
import type { MessagePort } from 'node:worker_threads';
import type { TrainModel } from './model.js';

export interface TensorSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** A routing bias (after all the parameters; not in the gradient buffers). */
  bias: boolean;
}

export interface TensorLayout {
  slots: TensorSlot[];
  /** Floats of the parameters (the size of a gradient buffer). */
  paramFloats: number;
  /** Number of parameters (the size of a "reached" flag buffer). */
  paramCount: number;
  /** Floats of the parameters and routing biases (the size of the values buffer). */
  totalFloats: number;
}

export function tensorLayout(model: TrainModel): TensorLayout {
  const slots: TensorSlot[] = [];
  let offset = 0;
  for (const [name, v] of model.params) {
    slots.push({ name, shape: [...v.shape], offset, size: v.size, bias: false });
    offset += v.size;
  }
  const paramFloats = offset;
  for (const [name, b] of model.routingBiases) {
    slots.push({ name, shape: [b.length], offset, size: b.length, bias: true });
    offset += b.length;
  }
  return { slots, paramFloats, paramCount: model.params.size, totalFloats: offset };
}

/** What a worker receives at start (workerData). */
export interface WorkerInit {
  /** hfConfigToObject of the model's config. */
  config: Record<string, unknown>;
  layout: TensorLayout;
  /** Float32 [totalFloats]: current parameters and routing biases (written by the calling thread). */
  values: SharedArrayBuffer;
  /** Float32 [paramFloats]: this worker's gradients. */
  grads: SharedArrayBuffer;
  /** Uint8 [paramCount]: 1 where this worker's backward reached the parameter (else its gradient is null). */
  reached: SharedArrayBuffer;
  /** Int32 [1]: the sequence number of the last task answered. */
  signal: SharedArrayBuffer;
  /** Where the worker posts each answer before raising the signal. */
  port: MessagePort;
}
