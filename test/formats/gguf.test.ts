import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import {
  expertCount, ggufBool, ggufNumber, ggufString, openGguf, readExpertMatrix, readF32, readWeightMatrix, requireGgufNumber,
} from '../../src/formats/gguf.js';
import type { GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf, type GgufTensorInput } from '../../src/formats/gguf-write.js';
import { f16ToF32 } from '../../src/tensor/quant/index.js';
import { Bytes, prng, randomBytes, tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const TYPE_CODE: Record<string, number> = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 };

/** Independent encoder of a GGUF value payload (no type code), used to predict the writer's bytes. */
function encodeValue(b: Bytes, type: string, value: unknown): void {
  const buf = Buffer.alloc(8);
  switch (type) {
    case 'u8': case 'i8': b.u8(value as number); break;
    case 'u16': case 'i16': b.u16(value as number); break;
    case 'u32': case 'i32': b.u32((value as number) >>> 0); break;
    case 'f32': b.f32(value as number); break;
    case 'f64': buf.writeDoubleLE(value as number); b.raw(buf); break;
    case 'u64': case 'i64': b.u64(value as bigint); break;
    case 'bool': b.u8(value ? 1 : 0); break;
    case 'string': b.str(value as string); break;
    default: {
      const v = value as GgufValue & { type: 'array' };
      b.u32(TYPE_CODE[v.itemType]!).u64(v.value.length);
      for (const item of v.value) encodeValue(b, v.itemType, item);
    }
  }
}

function expectedFile(metadata: [string, GgufValue][], tensors: GgufTensorInput[], alignment: number): Uint8Array {
  const b = new Bytes().raw([0x47, 0x47, 0x55, 0x46]).u32(3).u64(tensors.length).u64(metadata.length);
  for (const [key, value] of metadata) {
    b.str(key).u32(TYPE_CODE[value.type]!);
    encodeValue(b, value.type, value.type === 'array' ? value : value.value);
  }
  let offset = 0;
  for (const t of tensors) {
    const data = t.data as Uint8Array;
    b.str(t.name).u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32({ f32: 0, f16: 1, q8_0: 8, q4_k: 12, bf16: 30, i32: 26 }[t.dtype as string]!).u64(offset);
    offset += Math.ceil(data.byteLength / alignment) * alignment;
  }
  b.pad(alignment);
  for (const t of tensors) b.raw(t.data as Uint8Array).pad(alignment);
  return b.bytes();
}

const everyType: [string, GgufValue][] = [
  ['general.architecture', { type: 'string', value: 'llama' }],
  ['test.u8', { type: 'u8', value: 255 }],
  ['test.i8', { type: 'i8', value: -128 }],
  ['test.u16', { type: 'u16', value: 65535 }],
  ['test.i16', { type: 'i16', value: -32768 }],
  ['test.u32', { type: 'u32', value: 4294967295 }],
  ['test.i32', { type: 'i32', value: -2147483648 }],
  ['test.f32', { type: 'f32', value: -1.25 }],
  ['test.f64', { type: 'f64', value: Math.PI }],
  ['test.u64', { type: 'u64', value: 18446744073709551615n }],
  ['test.i64', { type: 'i64', value: -9223372036854775808n }],
  ['test.bool_t', { type: 'bool', value: true }],
  ['test.bool_f', { type: 'bool', value: false }],
  ['test.string', { type: 'string', value: 'héllo <｜User｜> 🙂' }],
  ['test.empty_string', { type: 'string', value: '' }],
  ['test.strings', { type: 'array', itemType: 'string', value: ['a', '', 'Ġthe', '日本'] }],
  ['test.i32s', { type: 'array', itemType: 'i32', value: [1, -2, 3] }],
  ['test.u8s', { type: 'array', itemType: 'u8', value: [0, 7, 255] }],
  ['test.f32s', { type: 'array', itemType: 'f32', value: [0.5, -0.25] }],
  ['test.f64s', { type: 'array', itemType: 'f64', value: [1e300, -0] }],
  ['test.u64s', { type: 'array', itemType: 'u64', value: [0n, 1n << 63n] }],
  ['test.i64s', { type: 'array', itemType: 'i64', value: [-1n, 123456789012345n] }],
  ['test.bools', { type: 'array', itemType: 'bool', value: [true, false, true] }],
  ['test.empty', { type: 'array', itemType: 'u32', value: [] }],
  ['test.nested', {
    type: 'array', itemType: 'array', value: [
      { type: 'array', itemType: 'i16', value: [1, -1] },
      { type: 'array', itemType: 'string', value: ['x'] },
      { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'u64', value: [5n] }] },
    ],
  }],
];

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

function sampleTensors(seed: number): GgufTensorInput[] {
  const rand = prng(seed);
  return [
    { name: 'token_embd.weight', dims: [3, 2], dtype: 'f32', data: f32Bytes([1, 2, 3, 4, 5, 6]) },
    { name: 'blk.0.attn_norm.weight', dims: [5], dtype: 'f16', data: randomBytes(rand, 10) },
    { name: 'blk.0.ffn_up.weight', dims: [64, 3], dtype: 'q8_0', data: randomBytes(rand, 2 * 3 * 34) },
    { name: 'blk.0.ffn_gate_exps.weight', dims: [256, 2, 3], dtype: 'q4_k', data: randomBytes(rand, 6 * 144) },
    { name: 'blk.0.bf16', dims: [2, 1, 1, 3], dtype: 'bf16', data: randomBytes(rand, 12) },
    { name: 'empty', dims: [0, 4], dtype: 'i32', data: new Uint8Array(0) },
  ];
}

describe('GGUF round trip', () => {
  for (const alignment of [32, 64]) {
    it(`writes the exact bytes of the format and reads them back (alignment ${alignment})`, () => {
      const metadata: [string, GgufValue][] = alignment === 32 ? everyType : [...everyType, ['general.alignment', { type: 'u32', value: alignment }]];
      const tensors = sampleTensors(alignment);
      const path = tmp.path(`roundtrip-${alignment}.gguf`);
      const result = writeGguf(path, { metadata, tensors });
      const bytes = readFileSync(path);
      assert.deepEqual(new Uint8Array(bytes), expectedFile(metadata, tensors, alignment));
      assert.equal(result.fileSize, bytes.length);

      const file = openGguf(path);
      try {
        assert.equal(file.version, 3);
        assert.equal(file.alignment, alignment);
        assert.equal(file.dataOffset, result.dataOffset);
        assert.deepEqual([...file.metadata.entries()], metadata);
        assert.equal(file.tensors.length, tensors.length);
        tensors.forEach((t, i) => {
          const info = file.tensors[i]!;
          assert.equal(info.name, t.name);
          assert.deepEqual(info.dims, t.dims);
          assert.equal(info.dtype, t.dtype);
          assert.equal(info.offset, result.tensorOffsets[i]);
          assert.equal(info.offset % alignment, 0);
          const data = t.data as Uint8Array;
          assert.equal(info.byteLength, data.byteLength);
          assert.deepEqual(file.readTensorBytes(info), data);
          // the bytes at the reported range of the raw file are the tensor's bytes
          assert.deepEqual(new Uint8Array(bytes.subarray(info.offset, info.offset + info.byteLength)), data);
        });
        assert.equal(file.tensor('blk.0.ffn_up.weight')?.elements, 192);
        assert.equal(file.value('test.u64'), 18446744073709551615n);
        assert.deepEqual(file.value('test.nested'), [[1, -1], ['x'], [[5n]]]);
      } finally {
        file.close();
      }
    });
  }

  it('honours an explicit alignment option by writing general.alignment', () => {
    const path = tmp.path('align-option.gguf');
    writeGguf(path, { metadata: [['general.architecture', { type: 'string', value: 'x' }]], tensors: sampleTensors(1), alignment: 128 });
    const file = openGguf(path);
    try {
      assert.equal(file.alignment, 128);
      assert.deepEqual(file.metadata.get('general.alignment'), { type: 'u32', value: 128 });
      for (const t of file.tensors) assert.equal(t.offset % 128, 0);
    } finally {
      file.close();
    }
  });

  it('streams tensors given as functions and leaves no temporary file behind', () => {
    const { dir, path, cleanup } = tempDir();
    try {
      let calls = 0;
      const data = f32Bytes([7, 8]);
      writeGguf(path('lazy.gguf'), { metadata: new Map(), tensors: [{ name: 'a', dims: [2], dtype: 'f32', data: () => (calls++, data) }] });
      assert.equal(calls, 1);
      assert.deepEqual(readdirSync(dir), ['lazy.gguf']);
      assert.throws(
        () => writeGguf(path('bad.gguf'), { metadata: new Map(), tensors: [{ name: 'a', dims: [3], dtype: 'f32', data: () => data }] }),
        /tensor 'a' f32 \[3\] needs 12 bytes, got 8/,
      );
      assert.deepEqual(readdirSync(dir), ['lazy.gguf']);
    } finally {
      cleanup();
    }
  });

  it('rejects invalid writer input', () => {
    const p = tmp.path('never.gguf');
    const t = (over: Partial<GgufTensorInput>): GgufTensorInput => ({ name: 't', dims: [2], dtype: 'f32', data: new Uint8Array(8), ...over });
    assert.throws(() => writeGguf(p, { metadata: [['a', { type: 'u8', value: 256 }]], tensors: [] }), /'a'.*256 is not a valid u8/);
    assert.throws(() => writeGguf(p, { metadata: [['a', { type: 'u64', value: -1n }]], tensors: [] }), /not a valid u64/);
    assert.throws(() => writeGguf(p, { metadata: [['a', { type: 'u32', value: 1 }], ['a', { type: 'u32', value: 2 }]], tensors: [] }), /duplicate metadata key 'a'/);
    assert.throws(() => writeGguf(p, { metadata: [['s', { type: 'string', value: 'x\uD800' }]], tensors: [] }), /lone surrogate/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [t({}), t({})] }), /duplicate tensor name/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [t({ name: 'x'.repeat(64) })] }), /name must be 1..63 bytes/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [t({ dims: [1, 1, 1, 1, 2] })] }), /needs 1..4 dims/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [t({ dtype: 'q8_0', dims: [33] })] }), /not a multiple of the q8_0 block size 32/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [t({ dtype: 'fp8_e4m3', dims: [8] })] }), /fp8_e4m3 has no GGUF type/);
    assert.throws(() => writeGguf(p, { metadata: [], tensors: [], alignment: 48 }), /48 is not a power of two/);
    assert.throws(() => writeGguf(p, { metadata: [['general.alignment', { type: 'u32', value: 64 }]], tensors: [], alignment: 32 }), /disagrees/);
    assert.throws(() => statSync(p));
  });
});

describe('GGUF weights', () => {
  const path = tmp.path('weights.gguf');
  const rand = prng(7);
  const q8 = randomBytes(rand, 2 * 3 * 34);
  // keep the q8_0 scales finite and modest: f16 0x3800 = 0.5, 0xB400 = -0.25, ...
  for (let block = 0; block < 6; block++) {
    q8[block * 34] = 0x00;
    q8[block * 34 + 1] = [0x38, 0xb4, 0x3c, 0x30, 0x40, 0x2c][block]!;
  }
  const experts = randomBytes(rand, 3 * 2 * 34);
  writeGguf(path, {
    metadata: [
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['llama.block_count', { type: 'u32', value: 2 }],
      ['llama.context_length', { type: 'u64', value: 4096n }],
      ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
      ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
    ],
    tensors: [
      { name: 'w', dims: [64, 3], dtype: 'q8_0', data: q8 },
      { name: 'norm', dims: [3], dtype: 'f32', data: f32Bytes([0.5, 1, -2]) },
      { name: 'exps', dims: [32, 2, 3], dtype: 'q8_0', data: experts },
    ],
  });
  const file = openGguf(path);
  after(() => file.close());

  it('reads matrices in their storage dtype with rows = ne[1], cols = ne[0]', () => {
    const w = readWeightMatrix(file, 'w');
    assert.equal(w.dtype, 'q8_0');
    assert.equal(w.rows, 3);
    assert.equal(w.cols, 64);
    assert.deepEqual(w.data, q8);
    const norm = readWeightMatrix(file, 'norm');
    assert.deepEqual([norm.rows, norm.cols], [1, 3]);
    assert.throws(() => readWeightMatrix(file, 'exps'), /not a matrix/);
    assert.throws(() => readWeightMatrix(file, 'nope'), /weights\.gguf: tensor 'nope': no such tensor/);
  });

  it('reads one expert of a 3-D stack', () => {
    assert.equal(expertCount(file, 'exps'), 3);
    for (let e = 0; e < 3; e++) {
      const m = readExpertMatrix(file, 'exps', e);
      assert.deepEqual([m.rows, m.cols, m.dtype], [2, 32, 'q8_0']);
      assert.deepEqual(m.data, experts.subarray(e * 68, (e + 1) * 68));
    }
    assert.throws(() => readExpertMatrix(file, 'exps', 3), /has 3 experts/);
  });

  it('dequantizes to f32 (checked against an independent q8_0 decode)', () => {
    assert.deepEqual(readF32(file, 'norm'), Float32Array.from([0.5, 1, -2]));
    const got = readF32(file, 'w');
    const view = new DataView(q8.buffer);
    for (let i = 0; i < 192; i++) {
      const block = Math.floor(i / 32);
      const d = f16ToF32(view.getUint16(block * 34, true));
      assert.equal(got[i], Math.fround(d * view.getInt8(block * 34 + 2 + (i % 32))));
    }
  });

  it('gives typed metadata access', () => {
    assert.equal(requireGgufNumber(file, 'llama.block_count'), 2);
    assert.equal(ggufNumber(file, 'llama.context_length'), 4096);
    assert.equal(ggufNumber(file, 'llama.rope.freq_base'), 10000);
    assert.equal(ggufNumber(file, 'missing'), undefined);
    assert.equal(ggufString(file, 'general.architecture'), 'llama');
    assert.equal(ggufBool(file, 'tokenizer.ggml.add_bos_token'), true);
    assert.throws(() => ggufNumber(file, 'general.architecture'), /'general.architecture'.*expected a number, found string/);
    assert.throws(() => requireGgufNumber(file, 'llama.embedding_length'), /required key is missing/);
  });
});

// ---------------------------------------------------------------------------------------------
// Corrupt files: each must fail with a FormatError naming the file, field and byte offset.

function header(opts: { version?: number; tensors?: number | bigint; kvs?: number | bigint } = {}): Bytes {
  return new Bytes().raw([0x47, 0x47, 0x55, 0x46]).u32(opts.version ?? 3).u64(opts.tensors ?? 0).u64(opts.kvs ?? 0);
}

/** A header with one tensor info; `tweak` edits the fields. */
function oneTensor(tweak: { name?: string; nDims?: number; dims?: (number | bigint)[]; type?: number; offset?: number | bigint; dataBytes?: number; alignment?: number } = {}): Bytes {
  const b = header({ tensors: 1, kvs: tweak.alignment === undefined ? 0 : 1 });
  if (tweak.alignment !== undefined) b.str('general.alignment').u32(4).u32(tweak.alignment);
  const dims = tweak.dims ?? [4];
  b.str(tweak.name ?? 't').u32(tweak.nDims ?? dims.length);
  for (const d of dims) b.u64(d);
  b.u32(tweak.type ?? 0).u64(tweak.offset ?? 0).pad(tweak.alignment ?? 32);
  return b.raw(new Uint8Array(tweak.dataBytes ?? 16));
}

let caseNo = 0;
function expectError(bytes: Bytes | Uint8Array, pattern: RegExp, options?: { maxHeaderBytes?: number }): FormatError {
  const path = tmp.path(`corrupt-${caseNo++}.gguf`);
  if (bytes instanceof Bytes) bytes.writeTo(path);
  else new Bytes().raw(bytes).writeTo(path);
  let caught: unknown;
  try {
    openGguf(path, options).close();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FormatError, `expected a FormatError, got ${String(caught)}`);
  assert.ok(caught.message.startsWith(path + ': '), caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

describe('GGUF corrupt input', () => {
  it('bad magic, unsupported versions', () => {
    expectError(new Bytes().raw([0x47, 0x47, 0x4d, 0x4c]).u32(3).u64(0).u64(0), /magic at byte 0: not a GGUF file.*found 47 47 4d 4c/);
    expectError(header({ version: 1 }), /version at byte 4: GGUF version 1 is not supported/);
    expectError(header({ version: 4 }), /version at byte 4: unsupported GGUF version 4/);
    expectError(header({ version: 0x03000000 }), /version at byte 4: .*big-endian GGUF files are not supported/);
    const v2 = tmp.path('v2.gguf');
    header({ version: 2 }).writeTo(v2);
    const file = openGguf(v2);
    assert.equal(file.version, 2);
    file.close();
  });

  it('truncated header, string, array, tensor info and tensor data', () => {
    expectError(new Bytes().raw([0x47, 0x47, 0x55, 0x46]).u32(3).u32(0), /tensor_count at byte 8: truncated: needs 8 bytes but the file ends at byte 12/);
    expectError(new Bytes().raw([0x47, 0x47]), /magic at byte 0: truncated/);
    // kv_count 1 but the key claims 100 bytes: the length is beyond the file
    expectError(header({ kvs: 1 }).u64(100).raw(new Uint8Array(20)), /metadata\[0\] key length at byte 24: 100 is too large \(beyond the end of the file/);
    expectError(header({ kvs: 1 }).str('k').u32(8).u64(5).raw([0x61, 0x62]).raw(new Uint8Array(0)), /metadata 'k' length at byte 37: 5 is too large/);
    expectError(header({ kvs: 1 }).str('k').u32(9).u32(5).u64(3).u32(1).u32(2), /metadata 'k' array count at byte 41: 3 is too large/);
    expectError(header({ kvs: 1 }).str('k').u32(9).u32(8).u64(2).str('ab').u64(10).raw(new Uint8Array(6)), /metadata 'k'\[1\] length at byte 59: 10 is too large/);
    expectError(header({ tensors: 1 }).str('t').u32(2).u64(4).raw(new Uint8Array(4)), /tensor_infos\[0\] 't' ne\[1\] at byte 45: truncated/);
    expectError(oneTensor({ dataBytes: 15 }), /tensor_infos\[0\] 't' offset at byte 49: data \[64, 80\) lies beyond the end of the file \(79 bytes\)/);
  });

  it('counts and lengths larger than the file', () => {
    expectError(header({ kvs: 1n << 62n }), /kv_count at byte 16: 4611686018427387904 key-value pairs cannot fit/);
    expectError(header({ tensors: 1000 }).raw(new Uint8Array(1000)), /tensor_count at byte 8: 1000 tensor infos cannot fit/);
    expectError(header({ tensors: -1n }), /tensor_count at byte 8: 18446744073709551615 is negative as int64/);
    expectError(header({ kvs: 1 }).u64(1n << 61n).raw(new Uint8Array(8)), /metadata\[0\] key length at byte 24: 2305843009213693952 is too large/);
    expectError(header({ kvs: 1 }).str('k').u32(9).u32(10).u64(1n << 40n).u64(0), /metadata 'k' array count at byte 41: 1099511627776 is too large/);
  });

  it('header over the size limit', () => {
    expectError(header({ kvs: 1 }).str('k').u32(8).str('x'.repeat(200)), /metadata 'k' length at byte 37: 200 is too large/, { maxHeaderBytes: 100 });
    expectError(header({ kvs: 2 }).str('k').u32(4).u32(1).str('key2').u32(4).u32(2), /'key2' at byte 57: header exceeds the 60-byte limit \(maxHeaderBytes\)/, { maxHeaderBytes: 60 });
  });

  it('bad values: unknown types, bools, UTF-8, duplicate keys, nesting, alignment', () => {
    expectError(header({ kvs: 1 }).str('k').u32(13).u32(0), /metadata 'k' value type at byte 33: unknown GGUF value type 13/);
    expectError(header({ kvs: 1 }).str('k').u32(9).u32(42).u64(0), /metadata 'k' array item type at byte 37: unknown GGUF value type 42/);
    expectError(header({ kvs: 1 }).str('k').u32(7).u8(2), /metadata 'k' at byte 37: bool byte is 2/);
    expectError(header({ kvs: 1 }).str(Uint8Array.from([0x6b, 0xff])).u32(4).u32(0), /metadata\[0\] key at byte 32: string of 2 bytes is not valid UTF-8/);
    expectError(header({ kvs: 1 }).str('k').u32(8).str(Uint8Array.from([0xc3, 0x28])), /metadata 'k' at byte 45: string of 2 bytes is not valid UTF-8/);
    expectError(header({ kvs: 2 }).str('k').u32(4).u32(1).str('k').u32(4).u32(2), /metadata\[1\] key 'k' at byte 41: duplicate key/);
    const deep = header({ kvs: 1 }).str('k').u32(9);
    for (let i = 0; i < 4; i++) deep.u32(9).u64(1);
    deep.u32(0).u64(0);
    expectError(deep, /metadata 'k'\[0\]\[0\]\[0\] array item type at byte \d+: arrays nested deeper than 4 levels/);
    expectError(header({ kvs: 1 }).str('general.alignment').u32(5).u32(32), /'general.alignment': must be a u32, found i32/);
    expectError(header({ kvs: 1 }).str('general.alignment').u32(4).u32(48), /'general.alignment': 48 is not a power of two/);
    expectError(header({ kvs: 1 }).str('general.alignment').u32(4).u32(0), /'general.alignment': 0 is not a power of two/);
  });

  it('bad tensor infos', () => {
    expectError(oneTensor({ name: 'x'.repeat(64) }), /tensor_infos\[0\] name length at byte 24: 64 is too large \(string length limit, at most 63\)/);
    const dup = header({ tensors: 2 }).str('t').u32(1).u64(4).u32(0).u64(0).str('t').u32(1).u64(4).u32(0).u64(32).pad(32).raw(new Uint8Array(64));
    expectError(dup, /tensor_infos\[1\] name 't' at byte 57: duplicate tensor name/);
    expectError(oneTensor({ nDims: 5, dims: [1, 1, 1, 1, 4] }), /tensor_infos\[0\] 't' n_dims at byte 33: 5 dimensions \(at most 4\)/);
    expectError(oneTensor({ dims: [-4n] }), /'t' ne\[0\] at byte 37: dimension 18446744073709551612 is negative as int64/);
    expectError(oneTensor({ dims: [1n << 40n, 1n << 40n] }), /'t' ne at byte 37: f32 tensor of 1208925819614629174706176 elements needs .* bytes, more than the whole file/);
    expectError(oneTensor({ dims: [1n << 62n] }), /'t' ne\[0\] at byte 37: dimension 4611686018427387904 is too large/);
    expectError(oneTensor({ type: 99 }), /'t' type at byte 45: ggml type 99 \(unknown\) is not supported/);
    expectError(oneTensor({ type: 21 }), /'t' type at byte 45: ggml type 21 \(IQ3_S\) is not supported/);
    expectError(oneTensor({ type: 23, dims: [32] }), /'t' ne\[0\] at byte 37: 32 is not a multiple of the iq4_xs block size 256/);
    expectError(oneTensor({ type: 8, dims: [33] }), /'t' ne\[0\] at byte 37: 33 is not a multiple of the q8_0 block size 32/);
    expectError(oneTensor({ offset: 8 }), /'t' offset at byte 49: data offset 8 is not a multiple of the alignment 32/);
    expectError(oneTensor({ offset: 1n << 62n }), /'t' offset at byte 49: data \[4611686018427387968, .*\) lies beyond the end of the file/);
    const overlap = header({ tensors: 2 }).str('a').u32(1).u64(16).u32(0).u64(0).str('b').u32(1).u64(4).u32(0).u64(32).pad(32).raw(new Uint8Array(96));
    expectError(overlap, /tensor 'b' data at byte 128: bytes \[128, 144\) overlap tensor 'a' \[96, 160\)/);
    // alignment from metadata applies to offsets
    expectError(oneTensor({ alignment: 64, offset: 32 }), /data offset 32 is not a multiple of the alignment 64/);
  });

  it('zero-dimensional and empty tensors are legal', () => {
    const path = tmp.path('scalar.gguf');
    oneTensor({ nDims: 0, dims: [] }).writeTo(path);
    const file = openGguf(path);
    assert.deepEqual(file.tensors[0]!.dims, [1]);
    assert.equal(file.tensors[0]!.byteLength, 4);
    file.close();
  });
});
