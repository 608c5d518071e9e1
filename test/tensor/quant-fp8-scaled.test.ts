// FP8 E4M3 with 128x128 block scales (DeepSeek-V3 weights) and 1x128 tile scales (activations).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dequantizeFp8BlockScaled, dequantizeFp8Tiles, fp8E4M3ToF32, quantizeFp8BlockScaled, quantizeFp8Tiles,
} from '../../src/tensor/quant/index.js';

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

/** A [rows, cols] matrix whose 128x128 blocks have very different magnitudes. */
function matrix(rows: number, cols: number, seed: number): Float32Array {
  const rand = seeded(seed);
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const blockScale = 10 ** (((r >> 7) * 3 + (c >> 7)) % 5 - 3); // 1e-3 .. 10
      x[r * cols + c] = gauss(rand) * blockScale;
    }
  }
  return x;
}

test('block scales: shape ceil(rows/128) x ceil(cols/128), each amax/448 of its (partial) block', () => {
  const rows = 300;
  const cols = 200;
  const x = matrix(rows, cols, 1);
  const { data, blockScales } = quantizeFp8BlockScaled(x, rows, cols);
  assert.equal(data.length, rows * cols);
  assert.equal(blockScales.length, 3 * 2);
  for (let br = 0; br < 3; br++) {
    for (let bc = 0; bc < 2; bc++) {
      let amax = 0;
      let at = -1;
      for (let r = br * 128; r < Math.min(rows, br * 128 + 128); r++) {
        for (let c = bc * 128; c < Math.min(cols, bc * 128 + 128); c++) {
          if (Math.abs(x[r * cols + c]!) > amax) {
            amax = Math.abs(x[r * cols + c]!);
            at = r * cols + c;
          }
        }
      }
      const scale = blockScales[br * 2 + bc]!;
      assert.equal(scale, Math.fround(amax / 448), `block ${br},${bc}`);
      assert.equal(data[at]! & 0x7f, 0x7e, 'the block maximum encodes as ±448');
    }
  }
});

test('block-scaled round trip: every element within half an fp8 ulp of its block scale', () => {
  const rows = 260;
  const cols = 390;
  const x = matrix(rows, cols, 2);
  const { data, blockScales } = quantizeFp8BlockScaled(x, rows, cols);
  const y = dequantizeFp8BlockScaled(data, blockScales, rows, cols);
  let err = 0;
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const scale = blockScales[(r >> 7) * Math.ceil(cols / 128) + (c >> 7)]!;
      const tol = Math.max(Math.abs(x[i]!) / 16, scale * 2 ** -10) * (1 + 1e-6);
      assert.ok(Math.abs(y[i]! - x[i]!) <= tol, `(${r}, ${c}): ${x[i]} -> ${y[i]}`);
      err += (y[i]! - x[i]!) ** 2;
      sum += x[i]! ** 2;
    }
  }
  assert.ok(Math.sqrt(err / sum) < 0.03, `relative RMSE ${Math.sqrt(err / sum)}`);
});

test('block-scaled dequantize applies scale_inv[r/128, c/128] to the raw fp8 value', () => {
  const rows = 130;
  const cols = 257;
  const data = new Uint8Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256 === 0x7f || (i * 37) % 256 === 0xff ? 0x38 : (i * 37) % 256;
  const blockScales = Float32Array.from([0.5, 2, 3, -1, 0.25, 8]);
  const y = dequantizeFp8BlockScaled(data, blockScales, rows, cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const scale = blockScales[Math.floor(r / 128) * 3 + Math.floor(c / 128)]!;
      assert.equal(y[r * cols + c], Math.fround(fp8E4M3ToF32(data[r * cols + c]!) * scale), `(${r}, ${c})`);
    }
  }
});

test('an all-zero block gets scale 0 and decodes to zeros', () => {
  const x = new Float32Array(128 * 256);
  for (let r = 0; r < 128; r++) for (let c = 128; c < 256; c++) x[r * 256 + c] = (r - c) / 100;
  const { data, blockScales } = quantizeFp8BlockScaled(x, 128, 256);
  assert.equal(blockScales[0], 0);
  assert.ok(blockScales[1]! > 0);
  const y = dequantizeFp8BlockScaled(data, blockScales, 128, 256);
  for (let r = 0; r < 128; r++) for (let c = 0; c < 128; c++) assert.equal(y[r * 256 + c], 0);
});

test('tile quantizer: one scale per row per 128 columns, max(amax, 1e-4)/448', () => {
  const rows = 5;
  const cols = 300;
  const x = matrix(rows, cols, 3);
  x.fill(0, 2 * cols, 3 * cols); // an all-zero row
  const { data, tileScales } = quantizeFp8Tiles(x, rows, cols);
  assert.equal(data.length, rows * cols);
  assert.equal(tileScales.length, rows * 3);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < 3; t++) {
      let amax = 0;
      for (let c = t * 128; c < Math.min(cols, t * 128 + 128); c++) amax = Math.max(amax, Math.abs(x[r * cols + c]!));
      assert.equal(tileScales[r * 3 + t], Math.fround(Math.max(amax, 1e-4) / 448), `tile ${r},${t}`);
    }
  }
  const y = dequantizeFp8Tiles(data, tileScales, rows, cols);
  for (let i = 0; i < x.length; i++) {
    const scale = tileScales[Math.floor(i / cols) * 3 + Math.floor((i % cols) / 128)]!;
    assert.ok(Math.abs(y[i]! - x[i]!) <= Math.max(Math.abs(x[i]!) / 16, scale * 2 ** -10) * (1 + 1e-6), `element ${i}`);
  }
  for (let c = 0; c < cols; c++) assert.equal(y[2 * cols + c], 0);
});

test('power-of-two scales (ue8m0): 2^ceil(log2(amax/448)), and the round trip stays within tolerance', () => {
  const rows = 130;
  const cols = 260;
  const x = matrix(rows, cols, 4);
  x[5] = 448 * 2 ** -3; // a block whose amax/448 is exactly a power of two keeps it
  for (const [what, result, perRow] of [
    ['blocks', quantizeFp8BlockScaled(x, rows, cols, { pow2Scales: true }), false],
    ['tiles', quantizeFp8Tiles(x, rows, cols, { pow2Scales: true }), true],
  ] as const) {
    const scales = 'blockScales' in result ? result.blockScales : result.tileScales;
    const plain = perRow ? quantizeFp8Tiles(x, rows, cols).tileScales : quantizeFp8BlockScaled(x, rows, cols).blockScales;
    for (let i = 0; i < scales.length; i++) {
      const s = scales[i]!;
      assert.equal(Math.log2(s), Math.round(Math.log2(s)), `${what} scale ${i} = ${s} is a power of two`);
      assert.ok(s >= plain[i]! && s < 2 * plain[i]!, `${what} scale ${i}: ${s} vs ${plain[i]}`);
    }
    const y = perRow
      ? dequantizeFp8Tiles(result.data, scales, rows, cols)
      : dequantizeFp8BlockScaled(result.data, scales, rows, cols);
    for (let i = 0; i < x.length; i++) {
      const scale = perRow
        ? scales[Math.floor(i / cols) * 3 + Math.floor((i % cols) / 128)]!
        : scales[Math.floor(i / cols / 128) * 3 + Math.floor((i % cols) / 128)]!;
      assert.ok(Math.abs(y[i]! - x[i]!) <= Math.max(Math.abs(x[i]!) / 16, scale * 2 ** -10) * (1 + 1e-6), `${what} element ${i}`);
    }
  }
  assert.equal(quantizeFp8BlockScaled(x, rows, cols, { pow2Scales: true }).blockScales[0], 2 ** -3, 'exact power kept');
});

test('scaled fp8 rejects bad shapes and non-finite values with clear errors', () => {
  assert.throws(() => quantizeFp8BlockScaled(new Float32Array(10), 3, 3), /values has 10 elements, expected rows\*cols/);
  assert.throws(() => quantizeFp8BlockScaled(new Float32Array(0), -1, 0), /non-negative integers/);
  assert.throws(() => quantizeFp8BlockScaled(Float32Array.from([1, NaN]), 1, 2), /non-finite value NaN at row 0, col 1/);
  assert.throws(() => quantizeFp8Tiles(Float32Array.from([1, Infinity]), 2, 1), /infinite value/);
  assert.throws(() => dequantizeFp8BlockScaled(new Uint8Array(200 * 3), new Float32Array(1), 200, 3), /blockScales has 1 entries, expected .* = 2/);
  assert.throws(() => dequantizeFp8BlockScaled(new Uint8Array(5), new Float32Array(1), 2, 3), /data has 5 elements/);
  assert.throws(() => dequantizeFp8Tiles(new Uint8Array(6), new Float32Array(1), 2, 3), /tileScales has 1 entries/);
});
