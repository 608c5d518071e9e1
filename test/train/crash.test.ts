// kill -9 at random moments of a run that checkpoints every step: the `latest` checkpoint always
// loads completely, and the next `frugal train` resumes from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

/** Starts `frugal train`, waits for a new checkpoint, then SIGKILLs it after `delayMs`. */
function trainAndKill(configPath: string, outDir: string, delayMs: number): Promise<{ signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const before = latestTarget(outDir);
    const child = spawn(process.execPath, [bin, 'train', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no new checkpoint within 60 s\n${stderr.slice(-2000)}`));
    }, 60_000);
    const poll = setInterval(() => {
      const now = latestTarget(outDir);
      if (now !== null && now !== before) {
        clearInterval(poll);
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    }, 5);
    child.on('close', (_code, signal) => {
      clearInterval(poll);
      clearTimeout(deadline);
      resolve({ signal, stderr });
    });
  });
}

test('kill -9 during training and checkpoint writes leaves the latest checkpoint loadable; training resumes', { timeout: 180_000 }, async () => {
  const f = runFixture({ schedule: { type: 'cosine', warmup: 2, steps: 400 }, batch_size: 2, seq_len: 16, checkpoint_every: 1, keep_checkpoints: 2, eval_every: 0 });
  const rng = new Random(Date.now() % 100000);
  let lastStep = 0;
  for (let round = 0; round < 4; round++) {
    const { signal, stderr } = await trainAndKill(f.configPath, f.run.outDir, rng.int(120));
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
});
