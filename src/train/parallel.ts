/**
 * Data-parallel forward/backward over worker threads, for pre-training and SFT: a batch's rows are
 * cut into N contiguous shards; shard 0 runs on the calling thread, on the model itself, and shards
 * 1..N-1 each on a worker thread holding a replica of the model (src/train/parallel-replica.ts).
 *
 * Per step: the calling thread writes the current parameters and routing biases into one shared
 * buffer (SharedArrayBuffer, no copy per worker), posts each worker its rows, runs shard 0, then
 * blocks (Atomics.wait) until every worker has answered; the step stays synchronous. Each worker's
 * gradients arrive in its own shared buffer and are added into the model's in worker order
 * (shard 0 + shard 1 + ...), so a step is deterministic for a given number of shards. A parameter
 * keeps a null gradient only when no shard's backward reached it, as in a single-process step.
 *
 * Workers are unref'd (a forgotten pool never keeps the process alive); close() ends them.
 * The native addon's thread pool is one per process, shared by every thread that calls it.
 */
import { withSerialKernels } from '../tensor/index.js';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { Var } from '../autograd/var.js';
import { BufferPool } from '../autograd/pool.js';
import { arithKernels } from '../autograd/arith.js';
import { hfConfigToObject } from '../formats/hf-config.js';
import type { Fp8Stats } from './fp8-linear.js';
import type { TrainModel } from './model.js';
import { type TensorLayout, type WorkerInit, tensorLayout } from './parallel-layout.js';
import { type ShardResult, type ShardTask, addFp8Stats, runShard } from './parallel-shard.js';

/**
 * Shards to train with: FRUGAL_TRAIN_WORKERS when set (1 turns data parallelism off), else 2 when
 * the machine offers at least 2 CPUs, else 1.
 */
export function defaultTrainWorkers(): number {
  const env = process.env.FRUGAL_TRAIN_WORKERS;
  if (env !== undefined && env.trim() !== '') return checkedWorkers(Number(env), 'FRUGAL_TRAIN_WORKERS');
  return availableParallelism() >= 2 ? 2 : 1;
}

export function checkedWorkers(n: number, what = 'workers'): number {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`${what} = ${n} must be an integer from 1 to 64`);
  return n;
}

/** [from, to) row ranges of up to `shards` contiguous, near-equal, non-empty shards of `rows` rows. */
export function rowRanges(rows: number, shards: number): Array<[number, number]> {
  const n = Math.max(1, Math.min(shards, rows));
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) out.push([Math.floor((rows * i) / n), Math.floor((rows * (i + 1)) / n)]);
  return out;
}

/** Signal value a worker thread raises when it exits (parallel-worker.ts). */
const WORKER_EXITED = -1;

interface WorkerSlot {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  grads: Float32Array;
  reached: Uint8Array;
}

interface Answer {
  seq: number;
  result?: ShardResult;
  error?: string;
}

export class DataParallel {
  private readonly layout: TensorLayout;
  private readonly values: Float32Array;
  /** The model's parameters in layout order. */
  private readonly params: Var[];
  private workers: WorkerSlot[] = [];
  private seq = 0;
  private closed = false;
  private running = 0;
  private readonly pool = new BufferPool();

  /** `shards` ≥ 2: the calling thread plus shards − 1 worker threads (started at the first run). */
  constructor(readonly model: TrainModel, readonly shards: number) {
    if (!Number.isInteger(shards) || shards < 2) throw new Error(`DataParallel: ${shards} shards (need an integer >= 2)`);
    this.layout = tensorLayout(model);
    this.values = new Float32Array(new SharedArrayBuffer(4 * this.layout.totalFloats));
    this.params = [...model.params.values()];
  }

  /**
   * Runs tasks[0] here and tasks[i] on worker i at the same time, then adds the workers' gradients
   * into the model's (in worker order) and their FP8 counts into `fp8Stats`. Results in task order.
   */
  run(tasks: readonly ShardTask[], fp8Stats?: Fp8Stats): ShardResult[] {
    // One thread per shard is already one per core: the native kernels run serially on each
    // (no shared pool to queue on), which measured 1.4x faster than sharing the pool.
    return withSerialKernels(() => this.runShards(tasks, fp8Stats));
  }

  private runShards(tasks: readonly ShardTask[], fp8Stats?: Fp8Stats): ShardResult[] {
    if (this.closed) throw new Error('DataParallel: run after close');
    if (tasks.length < 1 || tasks.length > this.shards) throw new Error(`DataParallel: ${tasks.length} tasks for ${this.shards} shards`);
    if (this.workers.length === 0 && tasks.length > 1) this.start();
    this.publishValues();
    const seq = ++this.seq;
    for (let i = 1; i < tasks.length; i++) this.workers[i - 1]!.worker.postMessage({ seq, task: tasks[i] });
    let first: ShardResult | null = null;
    let failure: unknown = null;
    try {
      first = runShard(this.model, tasks[0]!, this.pool, fp8Stats);
    } catch (error) {
      failure = error;
    }
    // Every worker is waited for, even after a failure here, so that none still reads the values buffer.
    const results: ShardResult[] = [];
    for (let i = 1; i < tasks.length; i++) {
      const answer = this.receive(this.workers[i - 1]!, seq);
      if (answer.error !== undefined) failure ??= new Error(`data-parallel worker ${i}: ${answer.error}`);
      else results.push(answer.result!);
    }
    if (failure !== null) throw failure;
    for (let i = 1; i < tasks.length; i++) this.addGradients(this.workers[i - 1]!);
    if (fp8Stats) for (const r of results) addFp8Stats(fp8Stats, r.fp8);
    return [first!, ...results];
  }

  /** Worker threads started and not yet exited. */
  get runningWorkers(): number {
    return this.running;
  }

  /** Ends the worker threads (idempotent); resolves once they have exited. */
  close(): Promise<void> {
    this.closed = true;
    const ending = this.workers.map((w) => {
      w.port.close();
      return w.worker.terminate();
    });
    this.workers = [];
    return Promise.all(ending).then(() => undefined);
  }

  private start(): void {
    const url = new URL('./parallel-worker.js', import.meta.url);
    if (!existsSync(fileURLToPath(url))) throw new Error(`DataParallel: ${fileURLToPath(url)} is missing (build with tsc)`);
    const config = hfConfigToObject(this.model.config);
    for (let i = 1; i < this.shards; i++) {
      const channel = new MessageChannel();
      const init: WorkerInit = {
        config, layout: this.layout, values: this.values.buffer as SharedArrayBuffer,
        grads: new SharedArrayBuffer(4 * this.layout.paramFloats), reached: new SharedArrayBuffer(this.layout.paramCount),
        signal: new SharedArrayBuffer(4), port: channel.port2,
      };
      const worker = new Worker(url, { workerData: init, transferList: [channel.port2] });
      worker.unref();
      this.running++;
      worker.once('exit', () => this.running--);
      channel.port1.unref();
      this.workers.push({
        worker, port: channel.port1, signal: new Int32Array(init.signal), grads: new Float32Array(init.grads), reached: new Uint8Array(init.reached),
      });
    }
  }

  private publishValues(): void {
    const slots = this.layout.slots;
    for (let j = 0; j < this.params.length; j++) this.values.set(this.params[j]!.value, slots[j]!.offset);
    for (let j = this.params.length; j < slots.length; j++) this.values.set(this.model.routingBiases.get(slots[j]!.name)!, slots[j]!.offset);
  }

  /** Blocks until the worker answers task `seq`. */
  private receive(slot: WorkerSlot, seq: number): Answer {
    for (;;) {
      const seen = Atomics.load(slot.signal, 0);
      if (seen === seq) break;
      if (seen === WORKER_EXITED) throw new Error('DataParallel: a worker thread exited');
      Atomics.wait(slot.signal, 0, seen);
    }
    const received = receiveMessageOnPort(slot.port);
    const answer = received?.message as Answer | undefined;
    if (!answer || answer.seq !== seq) throw new Error(`DataParallel: worker answer for task ${seq} missing (got ${answer ? `task ${answer.seq}` : 'nothing'})`);
    return answer;
  }

  private addGradients(slot: WorkerSlot): void {
    const slots = this.layout.slots;
    for (let j = 0; j < this.params.length; j++) {
      if (slot.reached[j] === 0) continue;
      const { offset, size } = slots[j]!;
      arithKernels.axpy(this.params[j]!.gradBuffer(), 1, slot.grads.subarray(offset, offset + size), size);
    }
  }
}
