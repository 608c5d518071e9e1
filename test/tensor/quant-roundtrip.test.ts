// quantize -> dequantize round trips: relative RMSE bounds per format (measured, with ~10-20%
// headroom), output sizes, zero and constant blocks, and the k-quant search beating plain min/max.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DType, dtypeInfo } from '../../src/tensor/dtype.js';
import { dequantize, quantize } from '../../src/tensor/quant/index.js';
import { IQ4_CODEBOOK, nearestCode } from '../../src/tensor/quant/iq4.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}
/** Student-t with 3 degrees of freedom: heavy tails, occasional large outliers. */
function heavy(rand: () => number): number {
  let chi = 0;
  for (let k = 0; k < 3; k++) chi += gauss(rand) ** 2;
  return gauss(rand) / Math.sqrt(chi / 3);
}

type Dist = 'normal' | 'heavy';
function sample(dist: Dist, seed: number, n: number, scale: number): Float32Array {
  const rand = seeded(seed * 17 + (dist === 'heavy' ? 5 : 0));
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (dist === 'normal' ? gauss(rand) : heavy(rand)) * scale;
  return x;
}

function relativeRmse(x: Float32Array, y: Float32Array): number {
  let err = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    err += (y[i]! - x[i]!) ** 2;
    sum += x[i]! ** 2;
  }
  return Math.sqrt(err / sum);
}

/** Upper bounds on RMSE / RMS (measured maxima over the seeds below: see the report). */
const bounds: Record<string, { normal: number; heavy: number }> = {
  f16: { normal: 0.00025, heavy: 0.00025 },
  bf16: { normal: 0.002, heavy: 0.002 },
  q8_0: { normal: 0.0062, heavy: 0.0095 },
  q4_0: { normal: 0.095, heavy: 0.145 },
  q4_1: { normal: 0.088, heavy: 0.11 },
  q5_0: { normal: 0.048, heavy: 0.074 },
  q5_1: { normal: 0.042, heavy: 0.056 },
  q2_k: { normal: 0.31, heavy: 0.38 },
  q3_k: { normal: 0.16, heavy: 0.21 },
  q4_k: { normal: 0.08, heavy: 0.104 },
  q5_k: { normal: 0.04, heavy: 0.053 },
  q6_k: { normal: 0.02, heavy: 0.028 },
  iq4_nl: { normal: 0.082, heavy: 0.112 },
  iq4_xs: { normal: 0.082, heavy: 0.112 },
};

const N = 4096;
const SCALES = [0.02, 1, 300]; // one magnitude per seed: typical weights, unit, large

function roundTrip(dtype: DType, x: Float32Array): Float32Array {
  const bytes = quantize(dtype, x);
  const info = dtypeInfo(dtype);
  assert.equal(bytes.length, (x.length / info.blockElements) * info.blockBytes, `${dtype} output size`);
  return dequantize(dtype, bytes, x.length);
}

for (const dtype of Object.keys(bounds) as DType[]) {
  test(`${dtype}: round-trip RMSE within bounds on normal and heavy-tailed data`, (t) => {
    const worst = { normal: 0, heavy: 0 };
    for (const dist of ['normal', 'heavy'] as const) {
      for (let seed = 1; seed <= 3; seed++) {
        const x = sample(dist, seed, N, SCALES[seed - 1]!);
        const y = roundTrip(dtype, x);
        const rel = relativeRmse(x, y);
        worst[dist] = Math.max(worst[dist], rel);
        assert.ok(rel <= bounds[dtype]![dist], `${dtype} ${dist} seed ${seed}: relative RMSE ${rel} > ${bounds[dtype]![dist]}`);
      }
    }
    t.diagnostic(`${dtype} worst relative RMSE: normal ${(worst.normal * 100).toFixed(3)}%, heavy ${(worst.heavy * 100).toFixed(3)}%`);
  });
}

test('fp8_e4m3 (raw, unscaled) round trip of unit-scale data: relative error per element <= 1/16', () => {
  const x = sample('normal', 9, 1024, 1);
  const y = roundTrip('fp8_e4m3', x);
  for (let i = 0; i < x.length; i++) {
    const tol = Math.max(Math.abs(x[i]!) / 16, 2 ** -10); // half an ulp (3 mantissa bits), or half the subnormal step
    assert.ok(Math.abs(y[i]! - x[i]!) <= tol, `element ${i}: ${x[i]} -> ${y[i]}`);
  }
  assert.ok(relativeRmse(x, y) < 0.03);
});

const allQuantizable: DType[] = ['f32', 'f16', 'bf16', 'fp8_e4m3', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'];

test('all-zero input decodes to exact zeros for every quantizer', () => {
  for (const dtype of allQuantizable) {
    const y = roundTrip(dtype, new Float32Array(512));
    assert.ok(y.every((v) => v === 0), `${dtype} zeros`);
  }
});

// (Tiny constants are left out: their k-quant super-scale d = c/(15*63) falls among the f16
// subnormals, an inherent precision limit of the format.)
test('constant blocks (positive and negative) come back within f16-scale rounding', () => {
  for (const dtype of allQuantizable) {
    const tol = dtype === 'fp8_e4m3' ? 1 / 16 : dtype === 'bf16' ? 2 ** -8 : 2 ** -10;
    for (const c of [0.7, -1.3, 0.25, -250]) {
      const y = roundTrip(dtype, new Float32Array(512).fill(c));
      for (let i = 0; i < y.length; i++) {
        const allowed = dtype === 'fp8_e4m3' ? Math.max(tol * Math.abs(c), 2 ** -10) : tol * Math.abs(c); // fp8 subnormal step
        assert.ok(Math.abs(y[i]! - c) <= allowed, `${dtype} constant ${c}: element ${i} = ${y[i]}`);
      }
    }
  }
});

test('zero sub-blocks next to large values stay exactly zero', () => {
  const x = sample('normal', 4, 512, 5);
  x.fill(0, 32, 64); // one 32-value (sub-)block of zeros in the first super-block
  for (const dtype of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'] as DType[]) {
    const y = roundTrip(dtype, x);
    for (let i = 32; i < 64; i++) assert.ok(y[i] === 0, `${dtype} element ${i} = ${y[i]}`); // -0 allowed
  }
});

test('k-quant scale search beats the plain min/max formats of the same bit width', () => {
  const x = sample('normal', 2, N, 1);
  const err = (d: DType) => relativeRmse(x, roundTrip(d, x));
  assert.ok(err('q4_k') < err('q4_1'), 'q4_k should beat q4_1');
  assert.ok(err('q5_k') < err('q5_1'), 'q5_k should beat q5_1');
  assert.ok(err('q6_k') < err('q5_k'), 'q6_k should beat q5_k');
  assert.ok(err('q3_k') < err('q2_k') && err('q4_k') < err('q3_k'), 'more bits, less error');
});

test('iq4: nearest codebook entry by table equals brute force (random values, midpoints and their neighbours, far out)', () => {
  const brute = (v: number): number => {
    let best = 0;
    for (let q = 1; q < 16; q++) if (Math.abs(v - IQ4_CODEBOOK[q]!) <= Math.abs(v - IQ4_CODEBOOK[best]!)) best = q; // ties: upper
    return best;
  };
  const probes = [-1e6, -300, -160.01, -160, 159.99, 160, 1e6, 0, -0];
  for (let q = 0; q < 15; q++) {
    const mid = (IQ4_CODEBOOK[q]! + IQ4_CODEBOOK[q + 1]!) / 2;
    probes.push(mid, mid - 1e-9, mid + 1e-9, mid - 0.25, mid + 0.49);
  }
  const x = sample('heavy', 11, 4000, 80);
  for (const v of [...probes, ...x]) assert.equal(nearestCode(v), brute(v), `value ${v}`);
});

test('iq4: the non-linear codebook beats q4_0 at the same size; iq4_xs (4.25 bits) is no worse than iq4_nl (4.5)', () => {
  for (const dist of ['normal', 'heavy'] as const) {
    const x = sample(dist, 5, N, 1);
    const err = (d: DType) => relativeRmse(x, roundTrip(d, x));
    assert.ok(err('iq4_nl') < err('q4_0'), `${dist}: iq4_nl ${err('iq4_nl')} should beat q4_0 ${err('q4_0')}`);
    assert.ok(err('iq4_xs') < err('q4_0'), `${dist}: iq4_xs ${err('iq4_xs')} should beat q4_0 ${err('q4_0')}`);
    assert.ok(err('iq4_xs') < err('iq4_nl') * 1.03, `${dist}: iq4_xs ${err('iq4_xs')} vs iq4_nl ${err('iq4_nl')}`);
  }
});

test('f32 quantize/dequantize is exact, including non-finite values', () => {
  const x = new Float32Array([1.5, -0, Infinity, -Infinity, NaN, 3.4e38, 1e-45]);
  const y = roundTrip('f32', x);
  assert.deepEqual(Array.from(y), Array.from(x));
});
