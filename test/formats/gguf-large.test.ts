import assert from 'node:assert/strict';
import { truncateSync } from 'node:fs';
import { after, it } from 'node:test';
import { openGguf, readExpertMatrix } from '../../src/formats/gguf.js';
import type { GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { Bytes, tempDir } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

it('opens a multi-GB file instantly and reads one expert by offset', () => {
  // a sparse file: header + one f32 expert stack ne = [1024, 1024, 1100] (4.3 GiB of holes)
  const path = tmp.path('big.gguf');
  const b = new Bytes().raw([0x47, 0x47, 0x55, 0x46]).u32(3).u64(1).u64(0);
  b.str('blk.3.ffn_down_exps.weight').u32(3).u64(1024).u64(1024).u64(1100).u32(0).u64(0).pad(32);
  const dataOffset = b.at();
  b.writeTo(path);
  const total = dataOffset + 1024 * 1024 * 1100 * 4;
  truncateSync(path, total);
  const started = performance.now();
  const file = openGguf(path);
  const openMs = performance.now() - started;
  try {
    assert.ok(openMs < 200, `open took ${openMs} ms`);
    const t = file.tensors[0]!;
    assert.equal(t.byteLength, 1024 * 1024 * 1100 * 4);
    assert.equal(t.offset, dataOffset);
    const last = readExpertMatrix(file, t.name, 1099);
    assert.deepEqual([last.rows, last.cols, last.data.byteLength], [1024, 1024, 4 * 1024 * 1024]);
    assert.ok(last.data.every((x) => x === 0));
  } finally {
    file.close();
  }
});

it('parses a tokenizer-sized header across many read chunks', () => {
  const tokens = Array.from({ length: 60_000 }, (_, i) => (i % 7 === 0 ? `Ġ日本${i}` : `tok${i}`));
  const merges = Array.from({ length: 50_000 }, (_, i) => `t${i} o${i}`);
  const types = Array.from({ length: 60_000 }, (_, i) => (i % 1000 === 0 ? 3 : 1));
  const metadata: [string, GgufValue][] = [
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: types }],
  ];
  const path = tmp.path('tokenizer.gguf');
  writeGguf(path, { metadata, tensors: [{ name: 'x', dims: [1], dtype: 'f32', data: new Uint8Array(4) }] });
  const started = performance.now();
  const file = openGguf(path);
  const ms = performance.now() - started;
  try {
    assert.deepEqual(file.value('tokenizer.ggml.tokens'), tokens);
    assert.deepEqual(file.value('tokenizer.ggml.merges'), merges);
    assert.deepEqual(file.value('tokenizer.ggml.token_type'), types);
    console.log(`tokenizer-sized header (${file.dataOffset} bytes) parsed in ${ms.toFixed(0)} ms`);
  } finally {
    file.close();
  }
  assert.throws(() => openGguf(path, { maxHeaderBytes: 1 << 20 }), /header exceeds the 1048576-byte limit|is too large/);
});
