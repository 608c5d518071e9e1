import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import { openCheckpoint, readTensorF32, readWeight, writeSafetensorsIndex } from '../../src/formats/hf-checkpoint.js';
import { dtypeOfSafetensors, openSafetensors, safetensorsDtypeOf } from '../../src/formats/safetensors.js';
import { type SafetensorsTensorInput, writeSafetensors } from '../../src/formats/safetensors-write.js';
import { f16ToF32, fp8E4M3ToF32 } from '../../src/tensor/quant/index.js';
import { prng, randomBytes, tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/** A safetensors file built by hand: header JSON text (padded to 8 with spaces) and data bytes. */
function rawFile(header: unknown, data: Uint8Array | number, pad = true): Uint8Array {
  let json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (pad && json.length % 8 !== 0) json = Buffer.concat([json, Buffer.alloc(8 - (json.length % 8), 0x20)]);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = Buffer.alloc(8 + json.length + body.length);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  out.set(body, 8 + json.length);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

describe('safetensors round trip', () => {
  it('writes the reference layout and reads every tensor back', () => {
    const rand = prng(11);
    const tensors: SafetensorsTensorInput[] = [
      { name: 'model.norm.weight', dtype: 'BF16', shape: [3], data: randomBytes(rand, 6) },
      { name: 'lm_head.weight', dtype: 'F32', shape: [2, 2], data: f32Bytes([1, 2, 3, 4]) },
      { name: 'a.f16', dtype: 'F16', shape: [1, 3], data: randomBytes(rand, 6) },
      { name: 'a.i64', dtype: 'I64', shape: [2], data: randomBytes(rand, 16) },
      { name: 'a.fp8', dtype: 'F8_E4M3', shape: [5], data: randomBytes(rand, 5) },
      { name: 'a.bool', dtype: 'BOOL', shape: [2], data: Uint8Array.from([0, 1]) },
      { name: 'a.scalar', dtype: 'F64', shape: [], data: randomBytes(rand, 8) },
      { name: 'a.empty', dtype: 'F32', shape: [0, 7], data: new Uint8Array(0) },
    ];
    const path = tmp.path('roundtrip.safetensors');
    const result = writeSafetensors(path, tensors, { format: 'pt' });
    const bytes = readFileSync(path);
    // independent expectation: descending width, then name; JSON padded with spaces to 8
    const order = ['a.i64', 'a.scalar', 'a.empty', 'lm_head.weight', 'a.f16', 'model.norm.weight', 'a.bool', 'a.fp8'];
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let at = 0;
    for (const name of order) {
      const t = tensors.find((x) => x.name === name)!;
      const n = (t.data as Uint8Array).length;
      header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
      at += n;
    }
    const data = Buffer.concat(order.map((name) => tensors.find((x) => x.name === name)!.data as Uint8Array));
    assert.deepEqual(new Uint8Array(bytes), rawFile(header, data));
    assert.equal(result.fileSize, bytes.length);
    assert.equal(result.dataBytes, data.length);
    assert.equal(result.headerLength % 8, 0);

    const file = openSafetensors(path);
    try {
      assert.deepEqual({ ...file.metadata }, { format: 'pt' });
      assert.deepEqual(file.tensors.map((t) => t.name), order);
      for (const t of tensors) {
        const info = file.tensor(t.name)!;
        assert.equal(info.dtype, t.dtype);
        assert.deepEqual(info.shape, t.shape);
        assert.equal(info.offset % Math.max(1, info.byteLength / Math.max(1, info.elements)), 0, `${t.name} naturally aligned`);
        assert.deepEqual(file.readTensorBytes(info), t.data);
        assert.deepEqual(new Uint8Array(bytes.subarray(info.offset, info.offset + info.byteLength)), t.data);
      }
      assert.equal(file.tensor('a.scalar')!.elements, 1);
      assert.equal(file.tensor('a.fp8')!.computeDtype, 'fp8_e4m3');
      assert.equal(file.tensor('a.bool')!.computeDtype, undefined);
    } finally {
      file.close();
    }
  });

  it('maps dtypes both ways', () => {
    assert.equal(dtypeOfSafetensors('BF16'), 'bf16');
    assert.equal(dtypeOfSafetensors('F8_E4M3'), 'fp8_e4m3');
    assert.equal(dtypeOfSafetensors('F8_E5M2'), undefined);
    assert.equal(safetensorsDtypeOf('f32'), 'F32');
    assert.equal(safetensorsDtypeOf('i32'), 'I32');
    assert.throws(() => safetensorsDtypeOf('q8_0'), /q8_0 cannot be stored in safetensors/);
  });

  it('rejects invalid writer input and leaves nothing behind', () => {
    const { dir, path, cleanup } = tempDir();
    try {
      const p = path('x.safetensors');
      assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(8) }]), /'a': F32 \[3\] needs 12 bytes, got 8/);
      assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) }, { name: 'a', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]), /duplicate/);
      assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: () => new Uint8Array(4) }]), /needs 8 bytes, got 4/);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      cleanup();
    }
  });
});

let caseNo = 0;
function expectError(bytes: Uint8Array, pattern: RegExp, options?: { maxHeaderBytes?: number }): void {
  const path = tmp.path(`corrupt-${caseNo++}.safetensors`);
  writeFileSync(path, bytes);
  let caught: unknown;
  try {
    openSafetensors(path, options).close();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FormatError, `expected a FormatError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith(path + ': '), caught.message);
  assert.match(caught.message, pattern);
}

describe('safetensors corrupt input', () => {
  const ok = (extra: Record<string, unknown> = {}) => ({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...extra });

  it('header bounds', () => {
    expectError(new Uint8Array(5), /header length at byte 0: truncated: the file has 5 bytes/);
    const huge = rawFile(ok(), 8);
    Buffer.from(huge.buffer).writeBigUInt64LE(1n << 60n, 0);
    expectError(huge, /header length at byte 0: 1152921504606846976 bytes exceeds the 100000000-byte header limit/);
    const past = rawFile(ok(), 8);
    Buffer.from(past.buffer).writeBigUInt64LE(4096n, 0);
    expectError(past, /header length at byte 0: header of 4096 bytes runs past the end of the file/);
    expectError(rawFile(ok(), 8), /exceeds the 16-byte header limit/, { maxHeaderBytes: 16 });
  });

  it('header content', () => {
    expectError(rawFile('{"a": ', 0), /header at byte 8: header is not valid JSON/);
    expectError(rawFile(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), 0), /header at byte 8: header is not valid (UTF-8|JSON)/);
    const badUtf8 = rawFile('{}', 0);
    badUtf8[9] = 0xff;
    expectError(badUtf8, /header at byte 8: header is not valid UTF-8/);
    expectError(rawFile('[1, 2]', 0), /header JSON is not an object/);
    expectError(rawFile(ok({ __metadata__: { format: 3 } }), 8), /'__metadata__' at byte 8: value of 'format' is not a string/);
    expectError(rawFile({ a: 5 }, 0), /header 'a' at byte 8: tensor entry is not an object/);
    expectError(rawFile({ a: { dtype: 'F17', shape: [2], data_offsets: [0, 8] } }, 8), /header 'a'.dtype at byte 8: unknown dtype "F17"/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), /header 'a'.shape .*not a list of non-negative integers/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8), /header 'a'.shape/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8), /header 'a'.data_offsets .*not a pair/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8), /end 0 is before begin 8/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /'a'.data_offsets .*holds 8 bytes, but F32 \[3\] needs 12/);
    expectError(rawFile({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), /needs 4835703278458516698824704/);
    expectError(rawFile({ a: { dtype: 'F4', shape: [3], data_offsets: [0, 1] } }, 1), /3 elements of F4 is not a whole number of bytes/);
  });

  it('data layout: gaps, overlaps, truncation, trailing bytes', () => {
    const two = (b: [number, number]) => ({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: b } });
    expectError(rawFile(two([12, 16]), 16), /header 'b'.data_offsets at byte \d+: \[12, 16\) leaves a gap after offset 8/);
    expectError(rawFile(two([4, 8]), 8), /header 'a'.data_offsets at byte \d+: \[0, 8\) overlaps the previous tensor \(which ends at 8\)|'b'.*overlaps/);
    expectError(rawFile({ b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /\[4, 8\) leaves a gap after offset 0/);
    expectError(rawFile(two([8, 12]), 10), /data at byte \d+: tensors need 12 data bytes, the file has 10 after the header: truncated/);
    expectError(rawFile(two([8, 12]), 13), /data at byte \d+: 1 bytes after the last tensor/);
  });
});

describe('HF checkpoints', () => {
  it('resolves tensors through model.safetensors.index.json', () => {
    const dir = tmp.path('sharded');
    mkdirSync(dir);
    const a = writeSafetensors(join(dir, 'model-00001-of-000002.safetensors'), [
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 2], data: f32Bytes([1, 2, 3, 4]) },
    ], { format: 'pt' });
    const b = writeSafetensors(join(dir, 'model-00002-of-000002.safetensors'), [
      { name: 'lm_head.weight', dtype: 'F32', shape: [2, 2], data: f32Bytes([5, 6, 7, 8]) },
      { name: 'model.norm.weight', dtype: 'BF16', shape: [2], data: Uint8Array.from([0x80, 0x3f, 0x00, 0xc0]) },
    ]);
    writeSafetensorsIndex(dir, {
      'model.embed_tokens.weight': 'model-00001-of-000002.safetensors',
      'lm_head.weight': 'model-00002-of-000002.safetensors',
      'model.norm.weight': 'model-00002-of-000002.safetensors',
    }, a.dataBytes + b.dataBytes);
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
    assert.equal(index.metadata.total_size, 16 + 16 + 4);

    for (const path of [dir, join(dir, 'model.safetensors.index.json')]) {
      const ckpt = openCheckpoint(path);
      try {
        assert.deepEqual([...ckpt.tensorNames()].sort(), ['lm_head.weight', 'model.embed_tokens.weight', 'model.norm.weight']);
        assert.equal(ckpt.files.length, 2);
        assert.deepEqual(readTensorF32(ckpt, 'lm_head.weight'), Float32Array.from([5, 6, 7, 8]));
        assert.deepEqual(readTensorF32(ckpt, 'model.norm.weight'), Float32Array.from([1, -2]));
        const w = readWeight(ckpt, 'model.embed_tokens.weight');
        assert.deepEqual([w.dtype, w.rows, w.cols], ['f32', 2, 2]);
        assert.deepEqual(w.data, f32Bytes([1, 2, 3, 4]));
        const norm = readWeight(ckpt, 'model.norm.weight');
        assert.deepEqual([norm.dtype, norm.rows, norm.cols], ['bf16', 1, 2]);
        assert.equal(ckpt.tensor('missing'), undefined);
        assert.throws(() => ckpt.readTensorBytes('missing'), /tensor 'missing': no such tensor/);
      } finally {
        ckpt.close();
      }
    }
  });

  it('reports bad indexes', () => {
    const dir = tmp.path('bad-index');
    mkdirSync(dir);
    const write = (body: unknown) => writeFileSync(join(dir, 'model.safetensors.index.json'), typeof body === 'string' ? body : JSON.stringify(body));
    write('{');
    assert.throws(() => openCheckpoint(dir), /model.safetensors.index.json: index: not valid JSON/);
    write({ metadata: {} });
    assert.throws(() => openCheckpoint(dir), /weight_map: missing or not an object/);
    write({ weight_map: { x: '../../etc/passwd' } });
    assert.throws(() => openCheckpoint(dir), /weight_map 'x': shard '..\/..\/etc\/passwd' is outside the checkpoint directory/);
    write({ weight_map: { x: 7 } });
    assert.throws(() => openCheckpoint(dir), /weight_map 'x': shard file name is not a non-empty string/);
    writeSafetensors(join(dir, 's.safetensors'), [{ name: 'y', dtype: 'F32', shape: [1], data: new Uint8Array(4) }]);
    write({ weight_map: { x: 's.safetensors' } });
    const ckpt = openCheckpoint(dir);
    assert.throws(() => ckpt.tensor('x'), /weight_map 'x': shard '.*s.safetensors' has no tensor of that name/);
    ckpt.close();
    assert.throws(() => openCheckpoint(tmp.path('')), /no model.safetensors.index.json or model.safetensors/);
  });

  it('pairs FP8 E4M3 weights with their _scale_inv block scales', () => {
    const rows = 130;
    const cols = 260; // partial edge blocks on both axes: scales [2, 3]
    const rand = prng(5);
    const data = randomBytes(rand, rows * cols).map((b) => ((b & 0x7f) === 0x7f ? 0 : b)); // no NaN codes
    const scales = Float32Array.from({ length: 6 }, (_, i) => 0.001 * (i + 1));
    const path = tmp.path('model.safetensors');
    writeSafetensors(path, [
      { name: 'q_a_proj.weight', dtype: 'F8_E4M3', shape: [rows, cols], data },
      { name: 'q_a_proj.weight_scale_inv', dtype: 'F32', shape: [2, 3], data: new Uint8Array(scales.buffer) },
      { name: 'no_scale.weight', dtype: 'F8_E4M3', shape: [2, 2], data: new Uint8Array(4) },
      { name: 'bad_scale.weight', dtype: 'F8_E4M3', shape: [2, 2], data: new Uint8Array(4) },
      { name: 'bad_scale.weight_scale_inv', dtype: 'F32', shape: [2, 1], data: new Uint8Array(8) },
      { name: 'ids', dtype: 'I64', shape: [2], data: new Uint8Array(16) },
      { name: 'cube', dtype: 'F32', shape: [1, 1, 1], data: new Uint8Array(4) },
    ]);
    const ckpt = openCheckpoint(path);
    try {
      const w = readWeight(ckpt, 'q_a_proj.weight');
      assert.deepEqual([w.dtype, w.rows, w.cols], ['fp8_e4m3', rows, cols]);
      assert.deepEqual(w.data, data);
      assert.deepEqual(w.blockScales, scales);
      const f32 = readTensorF32(ckpt, 'q_a_proj.weight');
      for (const [r, c] of [[0, 0], [127, 127], [128, 0], [129, 259], [5, 200], [64, 130]] as const) {
        const expected = Math.fround(fp8E4M3ToF32(data[r * cols + c]!) * scales[Math.floor(r / 128) * 3 + Math.floor(c / 128)]!);
        assert.equal(f32[r * cols + c], expected, `[${r}, ${c}]`);
      }
      assert.throws(() => readWeight(ckpt, 'no_scale.weight'), /F8_E4M3 weight has no 'no_scale.weight_scale_inv' tensor/);
      assert.throws(() => readWeight(ckpt, 'bad_scale.weight'), /'bad_scale.weight_scale_inv'.*shape \[2, 1\] should be \[1, 1\]/);
      assert.throws(() => readWeight(ckpt, 'ids'), /dtype I64 is not a weight dtype/);
      assert.throws(() => readWeight(ckpt, 'cube'), /has shape \[1, 1, 1\]: not a matrix/);
    } finally {
      ckpt.close();
    }
  });

  it('converts f16 and bf16 tensors to f32 exactly', () => {
    const rand = prng(9);
    const f16 = randomBytes(rand, 64);
    const bf16 = randomBytes(rand, 64);
    const path = tmp.path('halves.safetensors');
    writeSafetensors(path, [
      { name: 'h', dtype: 'F16', shape: [32], data: f16 },
      { name: 'b', dtype: 'BF16', shape: [4, 8], data: bf16 },
    ]);
    const ckpt = openCheckpoint(path);
    try {
      const h = readTensorF32(ckpt, 'h');
      const b = readTensorF32(ckpt, 'b');
      const hv = new DataView(f16.buffer);
      const bv = new DataView(bf16.buffer);
      for (let i = 0; i < 32; i++) {
        assert.ok(Object.is(h[i], f16ToF32(hv.getUint16(2 * i, true))) || (Number.isNaN(h[i]) && Number.isNaN(f16ToF32(hv.getUint16(2 * i, true)))));
        const bits = new DataView(new ArrayBuffer(4));
        bits.setUint32(0, bv.getUint16(2 * i, true) << 16, true);
        const expected = bits.getFloat32(0, true); // bf16 = the top half of an f32
        assert.ok(Object.is(b[i], expected) || (Number.isNaN(b[i]) && Number.isNaN(expected)));
      }
    } finally {
      ckpt.close();
    }
  });
});
