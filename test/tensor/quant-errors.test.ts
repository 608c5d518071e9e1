// The dispatcher's contract: which dtypes it handles, and clear errors for bad requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DType, DTYPES, dtypeInfo } from '../../src/tensor/dtype.js';
import { canDequantize, canQuantize, dequantize, quantize } from '../../src/tensor/quant/index.js';

const decodable: DType[] = ['f32', 'f16', 'bf16', 'fp8_e4m3', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q8_k', 'iq4_nl', 'iq4_xs'];
const encodable: DType[] = ['f32', 'f16', 'bf16', 'fp8_e4m3', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs'];

test('canDequantize / canQuantize list exactly the implemented formats', () => {
  for (const dtype of DTYPES.keys()) {
    assert.equal(canDequantize(dtype), decodable.includes(dtype), `canDequantize(${dtype})`);
    assert.equal(canQuantize(dtype), encodable.includes(dtype), `canQuantize(${dtype})`);
  }
  assert.equal(canDequantize('toString' as DType), false, 'no prototype keys');
});

test('unknown and unsupported dtypes are rejected by name', () => {
  assert.throws(() => dequantize('q9_9' as DType, new Uint8Array(64), 32), /unknown dtype 'q9_9'/);
  assert.throws(() => quantize('q9_9' as DType, new Float32Array(32)), /unknown dtype 'q9_9'/);
  assert.throws(() => dequantize('i32', new Uint8Array(64), 4), /'i32' has no decoder/);
  assert.throws(() => quantize('q8_k', new Float32Array(256)), /'q8_k' has no quantizer/);
  assert.throws(() => quantize('i16', new Float32Array(4)), /'i16' has no quantizer/);
});

test('element counts that are not whole blocks are rejected', () => {
  assert.throws(() => dequantize('q4_0', new Uint8Array(100), 33), /33 elements is not a multiple of the block size 32/);
  assert.throws(() => dequantize('q6_k', new Uint8Array(1000), 255), /block size 256/);
  assert.throws(() => quantize('q8_0', new Float32Array(31)), /31 values is not a multiple of the block size 32/);
  assert.throws(() => quantize('q4_k', new Float32Array(512 + 32)), /block size 256/);
  assert.throws(() => dequantize('f16', new Uint8Array(8), -1), /non-negative integer/);
  assert.throws(() => dequantize('f16', new Uint8Array(8), 1.5), /non-negative integer/);
});

test('src shorter than the requested elements is rejected; longer src is fine', () => {
  for (const dtype of decodable) {
    const info = dtypeInfo(dtype);
    const elements = 2 * info.blockElements;
    const need = 2 * info.blockBytes;
    assert.throws(() => dequantize(dtype, new Uint8Array(need - 1), elements), new RegExp(`need ${need} bytes, src has only ${need - 1}`), dtype);
    assert.equal(dequantize(dtype, new Uint8Array(need + 7), elements).length, elements, dtype);
  }
});

test('dequantize into a caller buffer, and a buffer too small is rejected', () => {
  const values = Float32Array.from({ length: 64 }, (_, i) => i / 8);
  const bytes = quantize('q8_0', values);
  const out = new Float32Array(100).fill(-7);
  const same = dequantize('q8_0', bytes, 64, out);
  assert.equal(same, out);
  assert.deepEqual(Array.from(out.subarray(0, 64)), Array.from(dequantize('q8_0', bytes, 64)));
  assert.equal(out[64], -7, 'values past the requested elements are untouched');
  assert.throws(() => dequantize('q8_0', bytes, 64, new Float32Array(63)), /out holds 63 values, 64 needed/);
  assert.equal(dequantize('q4_k', new Uint8Array(0), 0).length, 0, 'zero elements is fine');
});

test('block quantizers reject non-finite values and values beyond the f16 scale range', () => {
  const x = new Float32Array(256);
  x[77] = NaN;
  assert.throws(() => quantize('q4_k', x), /value NaN at index 77 is not finite/);
  x[77] = -Infinity;
  assert.throws(() => quantize('q8_0', x), /value -Infinity at index 77 is not finite/);
  const big = new Float32Array(32).fill(1e9);
  assert.throws(() => quantize('q8_0', big), /q8_0 quantize: block 0 needs scale .* beyond the f16 range/);
  assert.throws(() => quantize('q4_1', big), /q4_1 quantize: block 0/);
  assert.throws(() => quantize('iq4_nl', Float32Array.from({ length: 64 }, (_, i) => (i < 32 ? 1 : 1e9))), /iq4_nl quantize: block 1 needs scale/);
  x[77] = NaN;
  assert.throws(() => quantize('iq4_xs', x), /iq4_xs: value NaN at index 77 is not finite/);
  // Scalar float formats represent non-finite values instead.
  assert.ok(Number.isNaN(dequantize('f16', quantize('f16', Float32Array.from([NaN])), 1)[0]!));
  assert.equal(dequantize('bf16', quantize('bf16', Float32Array.from([-Infinity])), 1)[0], -Infinity);
});
