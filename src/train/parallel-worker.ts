/**
 * Entry of a data-parallel training worker thread (started by src/train/parallel.ts). Each task
 * message { seq, task } is answered on the init's port with { seq, result } or { seq, error }, and
 * then the signal is raised to seq, which is what the calling thread blocks on. The model code is
 * imported dynamically, so that a failure to load it is answered as an error instead of leaving the
 * calling thread waiting.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './parallel-layout.js';
import type { ShardTask } from './parallel-shard.js';

interface TaskMessage {
  seq: number;
  task: ShardTask;
}

const init = workerData as WorkerInit;
/** Signal value of a worker thread that has exited. */
const EXITED = -1;
const signal = new Int32Array(init.signal);

function answer(seq: number, message: object): void {
  init.port.postMessage({ seq, ...message });
  Atomics.store(signal, 0, seq);
  Atomics.notify(signal, 0);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.stack ?? error.message : String(error);
}

if (!parentPort) throw new Error('parallel-worker.js runs only as a worker thread');
const port = parentPort;
// A worker that ends while the calling thread waits (process.exit in some library) says so.
process.on('exit', () => {
  Atomics.store(signal, 0, EXITED);
  Atomics.notify(signal, 0);
});
try {
  const { ShardReplica } = await import('./parallel-replica.js');
  const replica = new ShardReplica(init);
  port.on('message', (m: TaskMessage) => {
    try {
      answer(m.seq, { result: replica.run(m.task) });
    } catch (error) {
      answer(m.seq, { error: describe(error) });
    }
  });
} catch (error) {
  const reason = `the worker could not start: ${describe(error)}`;
  port.on('message', (m: TaskMessage) => answer(m.seq, { error: reason }));
}
