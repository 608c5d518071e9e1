/**
 * A worker thread's copy of the model for data-parallel training: built once from the config and
 * the shared values buffer, refreshed from that buffer before each task, and after the task's
 * backward it writes its parameter gradients (and which parameters the backward reached) into its
 * shared buffers, then drops them so that the next task starts from null gradients as the optimizer's
 * zeroGrad leaves the calling thread's.
 */
import type { Var } from '../autograd/var.js';
import { BufferPool } from '../autograd/pool.js';
import { parseHfConfig } from '../formats/hf-config.js';
import { type NamedTensor, TrainModel } from './model.js';
import type { WorkerInit } from './parallel-layout.js';
import { type ShardResult, type ShardTask, runShard } from './parallel-shard.js';

export class ShardReplica {
  private readonly model: TrainModel;
  private readonly values: Float32Array;
  private readonly grads: Float32Array;
  private readonly reached: Uint8Array;
  /** The replica's arrays in layout order (parameter values, then routing biases). */
  private readonly targets: Float32Array[];
  /** The replica's parameters in layout order. */
  private readonly params: Var[];
  private readonly pool = new BufferPool();

  constructor(private readonly init: WorkerInit) {
    this.values = new Float32Array(init.values);
    this.grads = new Float32Array(init.grads);
    this.reached = new Uint8Array(init.reached);
    const tensors = new Map<string, NamedTensor>();
    for (const s of init.layout.slots) tensors.set(s.name, { shape: s.shape, values: this.values.subarray(s.offset, s.offset + s.size) });
    this.model = TrainModel.fromTensors(parseHfConfig(init.config), tensors, 'data-parallel worker');
    if (this.model.params.size !== init.layout.paramCount) {
      throw new Error(`data-parallel worker: the replica has ${this.model.params.size} parameters, the layout ${init.layout.paramCount}`);
    }
    this.params = [];
    this.targets = [];
    for (const s of init.layout.slots) {
      if (s.bias) {
        const b = this.model.routingBiases.get(s.name);
        if (!b) throw new Error(`data-parallel worker: the replica has no routing bias '${s.name}'`);
        this.targets.push(b);
      } else {
        const p = this.model.params.get(s.name);
        if (!p) throw new Error(`data-parallel worker: the replica has no parameter '${s.name}'`);
        this.params.push(p);
        this.targets.push(p.value);
      }
    }
  }

  run(task: ShardTask): ShardResult {
    const slots = this.init.layout.slots;
    for (let j = 0; j < slots.length; j++) this.targets[j]!.set(this.values.subarray(slots[j]!.offset, slots[j]!.offset + slots[j]!.size));
    try {
      const result = runShard(this.model, task, this.pool);
      for (let j = 0; j < this.params.length; j++) {
        const g = this.params[j]!.grad;
        this.reached[j] = g === null ? 0 : 1;
        if (g !== null) this.grads.set(g, slots[j]!.offset);
      }
      return result;
    } finally {
      for (const p of this.params) p.resetGrad();
    }
  }
}
