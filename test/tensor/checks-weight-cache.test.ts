/**
 * checkWeight remembers the weights it has passed (model weights are checked on every matmul),
 * but only while the weight object still has the dtype, shape and buffers it was checked with:
 * a changed or new weight object is checked again.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { checkMatmul, checkWeight } from '../../src/tensor/ref/checks.js';
import type { WeightMatrix } from '../../src/tensor/tensor.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

test('checkWeight: a checked weight passes again; the same object changed afterwards is checked again', () => {
  const w: Mutable<WeightMatrix> = { dtype: 'f32', rows: 4, cols: 8, data: new Uint8Array(4 * 8 * 4) };
  checkWeight('matmul', w);
  checkWeight('matmul', w);
  checkMatmul(new Float32Array(4), new Float32Array(8), 1, w);

  w.data = new Uint8Array(4 * 8 * 4 - 1);
  assert.throws(() => checkWeight('matmul', w), /f32 weight \[4, 8\] needs 128 bytes, has 127/);
  w.data = new Uint8Array(128);
  checkWeight('matmul', w);
  w.rows = 5;
  assert.throws(() => checkMatmul(new Float32Array(5), new Float32Array(8), 1, w), /matmul: f32 weight \[5, 8\] needs 160 bytes, has 128/);
  w.rows = 4;
  w.dtype = 'q8_0';
  assert.throws(() => checkWeight('matmul', w), /q8_0 weight has 8 columns, not a multiple of the block size 32/);
  w.dtype = 'bogus' as WeightMatrix['dtype'];
  assert.throws(() => checkWeight('matmul', w), /weight dtype 'bogus' is not supported/);
});

test('checkWeight: a weight whose buffer is later detached (transferred) is checked again', () => {
  const buffer = new ArrayBuffer(64);
  const w: WeightMatrix = { dtype: 'f32', rows: 2, cols: 8, data: new Uint8Array(buffer) };
  checkWeight('matmul', w);
  structuredClone(buffer, { transfer: [buffer] });
  assert.equal(w.data.byteLength, 0);
  assert.throws(() => checkWeight('matmul', w), /needs 64 bytes, has 0/);
});

test('checkWeight: fp8 weights still need their block scales after an earlier pass', () => {
  const w: Mutable<WeightMatrix> = { dtype: 'fp8_e4m3', rows: 2, cols: 128, data: new Uint8Array(256), blockScales: new Float32Array(1) };
  checkWeight('matmul', w);
  w.blockScales = undefined;
  assert.throws(() => checkWeight('matmul', w), /fp8 weight \[2, 128\] needs 1 block scales, has 0/);
});
