/** RoPE frequency tables: YaRN (DeepSeek-V3 / V2-Lite numbers from the spec), llama3, linear, GGUF factors. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type YarnScaling, llama3FreqFactors, ropeTables, yarnAttentionFactor, yarnCorrectionRange, yarnGetMscale, yarnInvFreq, yarnSoftmaxScale,
} from '../../src/nn/rope.js';

const V3: YarnScaling = { type: 'yarn', factor: 40, originalContext: 4096, betaFast: 32, betaSlow: 1, mscale: 1, mscaleAllDim: 1 };
const V2_LITE: YarnScaling = { ...V3, mscale: 0.707, mscaleAllDim: 0.707 };

test('YaRN correction range for DeepSeek-V3 is [10, 23] (spec §2.4)', () => {
  assert.deepEqual(yarnCorrectionRange(64, 10000, V3), [10, 23]);
});

test('YaRN frequencies: pairs up to 10 unchanged, from 23 divided by 40, a linear blend between', () => {
  const f = yarnInvFreq(64, 10000, V3);
  assert.equal(f.length, 32);
  for (let i = 0; i < 32; i++) {
    const theta = Math.pow(10000, (-2 * i) / 64);
    const ramp = Math.min(1, Math.max(0, (i - 10) / 13));
    const expected = theta * (1 - ramp) + (theta / 40) * ramp;
    assert.ok(Math.abs(f[i]! - expected) <= 1e-7 * theta, `pair ${i}: ${f[i]} vs ${expected}`);
    if (i <= 10) assert.ok(Math.abs(f[i]! - theta) <= 1e-7 * theta);
    if (i >= 23) assert.ok(Math.abs(f[i]! - theta / 40) <= 1e-7 * theta);
  }
});

test('YaRN softmax scale and cos/sin factor match the spec table (§2.3)', () => {
  assert.ok(Math.abs(yarnGetMscale(40, 1) - 1.368888) < 1e-6);
  assert.ok(Math.abs(yarnSoftmaxScale(192, V3) - 0.135234) < 1e-6);
  assert.ok(Math.abs(yarnSoftmaxScale(192, V2_LITE) - 0.114721) < 1e-6);
  assert.ok(Math.abs(yarnSoftmaxScale(192, undefined) - 0.0721688) < 1e-6);
  assert.equal(yarnAttentionFactor(V3), 1);
  assert.equal(yarnAttentionFactor(V2_LITE), 1);
  // Without mscale/mscale_all_dim (HF default): mscale(s) = 0.1 ln s + 1.
  assert.ok(Math.abs(yarnAttentionFactor({ type: 'yarn', factor: 4, originalContext: 32768 }) - (0.1 * Math.log(4) + 1)) < 1e-12);
  assert.equal(yarnGetMscale(1, 5), 1);
});

test('llama3 factors: 1 for short wavelengths, the factor for long ones, monotone between', () => {
  const s = { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 };
  const f = llama3FreqFactors(128, 500000, s);
  assert.equal(f.length, 64);
  assert.equal(f[0], 1);
  assert.equal(f[63], 8);
  for (let i = 1; i < 64; i++) assert.ok(f[i]! >= f[i - 1]!);
  // A blended pair: wavelength between 2048 and 8192.
  const i = f.findIndex((v) => v > 1 && v < 8);
  assert.ok(i > 0);
  const wavelen = 2 * Math.PI * Math.pow(500000, (2 * i) / 128);
  assert.ok(wavelen > 2048 && wavelen < 8192);
  const smooth = (8192 / wavelen - 1) / 3;
  assert.ok(Math.abs(f[i]! - 1 / ((1 - smooth) / 8 + smooth)) < 1e-5);
  // ropeTables divides the base frequencies by these factors, as ggml does with rope_freqs.
  const t = ropeTables(128, 500000, s);
  const g = ropeTables(128, 500000, { type: 'freq_factors', factors: f });
  assert.deepEqual(t.invFreq, g.invFreq);
});

test('plain and linear tables; bad parameters are refused', () => {
  const plain = ropeTables(16, 10000);
  for (let i = 0; i < 8; i++) assert.equal(plain.invFreq[i], Math.fround(Math.pow(10000, -i / 8)));
  assert.equal(plain.attentionFactor, 1);
  const linear = ropeTables(16, 10000, { type: 'linear', factor: 4 });
  for (let i = 0; i < 8; i++) assert.equal(linear.invFreq[i], Math.fround(Math.pow(10000, -i / 8) / 4));
  assert.throws(() => ropeTables(15, 10000), /positive even integer/);
  assert.throws(() => ropeTables(16, 0), /must be positive/);
  assert.throws(() => ropeTables(16, 10000, { type: 'freq_factors', factors: new Float32Array(3) }), /3 values, expected 8/);
});
