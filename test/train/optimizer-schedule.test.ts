import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmupCosine, warmupStableDecay } from '../../src/train/schedule.js';

const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('warmup + cosine at its key steps', () => {
  const s = { maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  close(warmupCosine(0, s), 1e-4);
  close(warmupCosine(4, s), 5e-4);
  close(warmupCosine(9, s), 1e-3);
  close(warmupCosine(10, s), 1e-3);
  close(warmupCosine(60, s), 1e-4 + 0.5 * 9e-4);
  close(warmupCosine(110, s), 1e-4);
  close(warmupCosine(500, s), 1e-4);
  for (let i = 10; i < 110; i++) assert.ok(warmupCosine(i + 1, s) <= warmupCosine(i, s));
  close(warmupCosine(3, { maxLr: 1, minLr: 0, warmupSteps: 0, totalSteps: 4 }), 0.5 * (1 + Math.cos((Math.PI * 3) / 4)));
  assert.throws(() => warmupCosine(-1, s), /step -1/);
  assert.throws(() => warmupCosine(1, { ...s, minLr: 1 }), /minLr/);
  assert.throws(() => warmupCosine(1, { ...s, totalSteps: 5 }), /totalSteps/);
});

test('warmup-stable-decay at its key steps, for each decay shape', () => {
  const s = { maxLr: 2e-3, minLr: 2e-4, warmupSteps: 5, totalSteps: 100, decaySteps: 20 };
  close(warmupStableDecay(0, s), 4e-4);
  close(warmupStableDecay(4, s), 2e-3);
  close(warmupStableDecay(50, s), 2e-3);
  close(warmupStableDecay(79, s), 2e-3);
  close(warmupStableDecay(80, s), 2e-3);
  close(warmupStableDecay(90, s), 2e-4 + 0.5 * 1.8e-3);
  close(warmupStableDecay(90, { ...s, decayShape: 'cosine' }), 2e-4 + 0.5 * 1.8e-3);
  close(warmupStableDecay(85, { ...s, decayShape: 'cosine' }), 2e-4 + 1.8e-3 * 0.5 * (1 + Math.cos(Math.PI / 4)));
  close(warmupStableDecay(85, { ...s, decayShape: 'sqrt' }), 2e-4 + 1.8e-3 * (1 - Math.sqrt(0.25)));
  close(warmupStableDecay(100, s), 2e-4);
  close(warmupStableDecay(1000, s), 2e-4);
  assert.throws(() => warmupStableDecay(0, { ...s, decaySteps: 96 }), /decaySteps/);
});
