import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { type SafetensorsTensorInput, writeSafetensors } from '../../src/formats/safetensors-write.js';
import { loadNativeAddon } from '../../src/tensor/native.js';
import { prng, randomBytes, tempDir } from './helpers.js';

/**
 * Memory-mapped safetensors (src/formats/mapped-file.ts, shared with GGUF): tensor bytes equal
 * what the read path gives, misaligned tensors fall back to reads, mappings split at the segment
 * limit, and a closed file refuses reads.
 */

const tmp = tempDir('frugal-st-mmap-');
after(() => tmp.cleanup());

let skip: string | false = false;
try {
  loadNativeAddon();
} catch {
  skip = 'native addon not built';
}

function sampleFile(): string {
  const rand = prng(5);
  const tensors: SafetensorsTensorInput[] = [
    { name: 'w.f32', dtype: 'F32', shape: [7, 33], data: randomBytes(rand, 7 * 33 * 4) },
    { name: 'w.bf16', dtype: 'BF16', shape: [5, 13], data: randomBytes(rand, 5 * 13 * 2) },
    { name: 'w.fp8', dtype: 'F8_E4M3', shape: [3, 129], data: randomBytes(rand, 3 * 129) },
    { name: 'w.f16', dtype: 'F16', shape: [9], data: randomBytes(rand, 18) },
  ];
  const path = tmp.path('sample.safetensors');
  writeSafetensors(path, tensors);
  return path;
}

describe('safetensors memory mapping', { skip }, () => {
  it('gives the same bytes mapped and read, as views where aligned', () => {
    const path = sampleFile();
    const whole = readFileSync(path);
    const mapped = openSafetensors(path, { mmap: true });
    const read = openSafetensors(path, { mmap: false });
    try {
      assert.equal(mapped.mapped, true);
      assert.equal(read.mapped, false);
      for (const t of mapped.tensors) {
        const a = mapped.readTensorBytes(t);
        const b = read.readTensorBytes(read.tensor(t.name)!);
        assert.deepEqual([...a], [...b], t.name);
        assert.deepEqual([...a], [...whole.subarray(t.offset, t.offset + t.byteLength)], t.name);
        assert.equal(a.byteOffset % 4, 0, `${t.name}: typed-array views need alignment`);
        assert.equal(b.byteOffset, 0);
      }
      // f32 tensors come back as views of the mapping, not copies
      const f32 = mapped.tensor('w.f32')!;
      assert.equal(mapped.readTensorBytes(f32).buffer, mapped.readTensorBytes(mapped.tensor('w.bf16')!).buffer);
    } finally {
      mapped.close();
      read.close();
    }
  });

  it('reads a tensor whose offset is not 4-byte aligned into a fresh buffer', () => {
    // header JSON padded to a length that leaves the data buffer 2 bytes past a 4-byte boundary
    const header = JSON.stringify({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, b: { dtype: 'F32', shape: [2], data_offsets: [6, 14] } });
    const json = Buffer.from(header + ' '.repeat((((2 - header.length) % 4) + 4) % 4));
    assert.equal((8 + json.length) % 4, 2);
    const data = Uint8Array.from({ length: 14 }, (_, i) => i * 17 + 3);
    const bytes = Buffer.alloc(8 + json.length + data.length);
    bytes.writeBigUInt64LE(BigInt(json.length));
    json.copy(bytes, 8);
    bytes.set(data, 8 + json.length);
    const path = tmp.path('misaligned.safetensors');
    writeFileSync(path, bytes);
    const file = openSafetensors(path, { mmap: true });
    try {
      for (const [name, from, to] of [['a', 0, 6], ['b', 6, 14]] as const) {
        const got = file.readTensorBytes(file.tensor(name)!);
        assert.deepEqual([...got], [...data.subarray(from, to)], name);
        assert.equal(got.byteOffset % 4, 0, name);
      }
    } finally {
      file.close();
    }
  });

  it('maps in several segments under a small segment limit and refuses reads once closed', () => {
    const path = sampleFile();
    const whole = readFileSync(path);
    const file = openSafetensors(path, { mmap: true, mapSegmentBytes: 300 });
    for (const t of file.tensors) assert.deepEqual([...file.readTensorBytes(t)], [...whole.subarray(t.offset, t.offset + t.byteLength)], t.name);
    file.close();
    assert.throws(() => file.readTensorBytes(file.tensors[0]!), /closed/);
  });
});
