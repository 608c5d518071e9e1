// kill -9 at random moments of a run that checkpoints every step: the `latest` checkpoint always
// loads completely, and the next `frugal train` resumes from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Random } from '../../src/autograd/random.js';
import { loadCheckpoint, stepDirName } from '../../src/train/checkpoint.js';
import { TrainModel } from '../../src/train/model.js';
import { runFixture } from './run-fixture.js';

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

function latestTarget(outDir: string): string | null {
  const p = join(outDir, 'latest');
  return existsSync(p) ? readFileSync(p, 'utf8') : null;
}

/** A temporary file of an atomic write in progress (in the run directory or its newest step directory). */
function writeInProgress(outDir: string): boolean {
  const parent = join(outDir, 'checkpoints');
  try {
    if (readdirSync(outDir).some((n) => n.endsWith('.tmp'))) return true;
    const newest = readdirSync(parent).sort().pop();
    return newest !== undefined && readdirSync(join(parent, newest)).some((n) => n.endsWith('.tmp'));
  } catch {
    return false;
  }
}

/**
 * Starts `frugal train`, waits for a new checkpoint, then SIGKILLs it: after `delayMs`, or (delayMs
 * = 'in-write') as soon as a checkpoint file is being written.
 */
function trainAndKill(configPath: string, outDir: string, delayMs: number | 'in-write'): Promise<{ signal: string | null; stderr: string; inWrite: boolean }> {
  return new Promise((resolve, reject) => {
    const before = latestTarget(outDir);
    const child = spawn(process.execPath, [bin, 'train', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no new checkpoint within 60 s\n${stderr.slice(-2000)}`));
    }, 60_000);
    let armed = false;
    let inWrite = false;
    const poll = setInterval(() => {
      if (!armed) {
        const now = latestTarget(outDir);
        if (now === null || now === before) return;
        armed = true;
        if (delayMs !== 'in-write') {
          clearInterval(poll);
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
        return;
      }
      if (writeInProgress(outDir)) {
        child.kill('SIGKILL');
        inWrite = true;
        clearInterval(poll);
      }
    }, 1);
    child.on('close', (_code, signal) => {
      clearInterval(poll);
      clearTimeout(deadline);
      resolve({ signal, stderr, inWrite });
    });
  });
}

test('kill -9 during training and checkpoint writes leaves the latest checkpoint loadable; training resumes', { timeout: 180_000 }, async () => {
  const f = runFixture({ schedule: { type: 'cosine', warmup: 2, steps: 400 }, batch_size: 2, seq_len: 16, checkpoint_every: 1, keep_checkpoints: 2, eval_every: 0 });
  const rng = new Random(Date.now() % 100000);
  let lastStep = 0;
  let midWrite = 0;
  // Odd rounds kill at a random moment, even rounds while a checkpoint file is being written.
  for (let round = 0; round < 6; round++) {
    const { signal, stderr, inWrite } = await trainAndKill(f.configPath, f.run.outDir, round % 2 === 0 ? 'in-write' : rng.int(120));
    if (inWrite) midWrite++;
    assert.equal(signal, 'SIGKILL', `the child was killed (stderr: ${stderr.slice(-500)})`);
    if (round > 0) assert.match(stderr, new RegExp(`resuming from .*step-\\d+ at step ${lastStep}`));
    const ckpt = loadCheckpoint(f.run.outDir);
    assert.ok(ckpt.state.step > lastStep, `round ${round}: checkpoint step ${ckpt.state.step} after ${lastStep}`);
    assert.ok(ckpt.dir.endsWith(stepDirName(ckpt.state.step)));
    assert.equal(ckpt.state.dataCursor, ckpt.state.step * 2);
    const model = TrainModel.fromTensors(ckpt.config, ckpt.tensors, ckpt.dir);
    assert.equal(ckpt.optimizer.params.length, model.params.size);
    for (const p of model.params.values()) assert.ok(p.value.every(Number.isFinite));
    lastStep = ckpt.state.step;
  }
  console.log(`# kills inside a checkpoint write: ${midWrite}`);
  assert.ok(midWrite >= 2, `only ${midWrite} kills landed inside a checkpoint write`);
});
