import assert from 'node:assert/strict';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import { type GgufFile, openGguf, readExpertMatrix, readF32, readWeightMatrix } from '../../src/formats/gguf.js';
import { type GgufTensorInput, writeGguf } from '../../src/formats/gguf-write.js';
import type { DeepseekModel } from '../../src/models/deepseek-v3.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../../src/models/deepseek-v3-tiny.js';
import type { DenseModel } from '../../src/models/llama.js';
import { loadModel } from '../../src/models/load.js';
import { SeededRandom, type TinyDType, ggufTensor, writeTinyDenseGguf } from '../../src/models/tiny.js';
import { loadNativeAddon, type NativeAddon } from '../../src/tensor/native.js';
import { tempDir } from './helpers.js';

/**
 * Memory-mapped GGUF tensors (native/src/mmap.cc through src/formats/gguf.ts): the bytes equal
 * what the read path gives, loaded models compute the same logits, opening does not bring the
 * data into memory, and the errors stay what they were.
 */

const tmp = tempDir('frugal-mmap-');
after(() => tmp.cleanup());

let addon: NativeAddon | undefined;
try {
  addon = loadNativeAddon();
} catch {
  addon = undefined;
}
const skip = addon ? false : 'native addon not built';

const DTYPES: readonly TinyDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'];

/** One [rows, 256] matrix per dtype plus a 3-D expert stack and a vector. */
function sampleTensors(): GgufTensorInput[] {
  const rng = new SeededRandom(7);
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const tensors = DTYPES.map((dtype, i) => ggufTensor(`w.${dtype}`, [3 + i, 256], values((3 + i) * 256), dtype));
  const experts = ggufTensor('experts', [4, 5, 256], values(4 * 5 * 256), 'q8_0');
  return [...tensors, experts, ggufTensor('norm', [256], values(256), 'f32')];
}

function bothWays<T>(path: string, read: (file: GgufFile) => T, options: { mapSegmentBytes?: number } = {}): { mapped: T; copied: T; file: GgufFile } {
  const file = openGguf(path, { mmap: true, ...options });
  const other = openGguf(path, { mmap: false });
  try {
    assert.equal(file.mapped, true);
    assert.equal(other.mapped, false);
    return { mapped: read(file), copied: read(other), file };
  } finally {
    file.close();
    other.close();
  }
}

describe('mapFile (native)', { skip }, () => {
  it('throws an error naming a missing file and the OS error', () => {
    const missing = tmp.path('no-such-file.gguf');
    assert.throws(() => addon!.mapFile(missing), (e: Error) => e.message.includes(missing) && /no such file/i.test(e.message));
  });

  it('maps an empty file as zero bytes and refuses ranges beyond the end', () => {
    const empty = tmp.path('empty.bin');
    writeFileSync(empty, new Uint8Array(0));
    assert.equal(addon!.mapFile(empty).byteLength, 0);
    const small = tmp.path('small.bin');
    writeFileSync(small, Uint8Array.from({ length: 10000 }, (_, i) => i % 251));
    assert.throws(() => addon!.mapFile(small, 9000, 2000), RangeError);
    const view = addon!.mapFile(small, 4097, 100);
    assert.deepEqual([...view], [...readFileSync(small).subarray(4097, 4197)]);
  });

  it('keeps writes through a view in the process (copy-on-write)', () => {
    const path = tmp.path('cow.bin');
    writeFileSync(path, new Uint8Array(8192).fill(7));
    const view = addon!.mapFile(path);
    view[100] = 99;
    assert.equal(view[100], 99);
    assert.equal(readFileSync(path)[100], 7);
  });
});

describe('mapped GGUF tensors', { skip }, () => {
  const path = tmp.path('types.gguf');
  const input = sampleTensors();
  writeGguf(path, { metadata: [['general.architecture', { type: 'string', value: 'test' }]], tensors: input });

  it('are byte-identical to read tensors for every dtype the writer produces, and share one mapping', () => {
    const { mapped, copied } = bothWays(path, (f) => f.tensors.map((t) => f.readTensorBytes(t)));
    assert.deepEqual(new Set(input.map((t) => t.dtype)), new Set([...DTYPES]));
    mapped.forEach((bytes, i) => {
      assert.deepEqual(bytes, copied[i], `tensor ${input[i]!.name}`);
      assert.equal(bytes.byteOffset % 4, 0);
      assert.equal(bytes.buffer, mapped[0]!.buffer, 'views of one mapping, not copies');
    });
  });

  it('give the same weight matrices, expert matrices and f32 values', () => {
    const read = (f: GgufFile) => [
      ...DTYPES.map((d) => readWeightMatrix(f, `w.${d}`).data),
      ...[0, 1, 2, 3].map((e) => readExpertMatrix(f, 'experts', e).data),
      new Uint8Array(readF32(f, 'w.q4_k').buffer),
    ];
    const { mapped, copied } = bothWays(path, read);
    mapped.forEach((bytes, i) => assert.deepEqual(bytes, copied[i], `item ${i}`));
  });

  it('map in several segments when the data exceeds the segment limit', () => {
    const { mapped, copied } = bothWays(path, (f) => f.tensors.map((t) => f.readTensorBytes(t)), { mapSegmentBytes: 4096 });
    mapped.forEach((bytes, i) => assert.deepEqual(bytes, copied[i]));
    assert.ok(new Set(mapped.map((b) => b.buffer)).size > 1, 'more than one mapping');
  });

  it('stay readable after the file is closed', () => {
    const file = openGguf(path, { mmap: true });
    const expected = readFileSync(path);
    const t = file.tensor('w.q6_k')!;
    const bytes = file.readTensorBytes(t);
    file.close();
    assert.deepEqual(bytes, new Uint8Array(expected.subarray(t.offset, t.offset + t.byteLength)));
    assert.throws(() => file.readTensorBytes(t), /closed/);
  });

  it('are copied to aligned buffers when the file alignment leaves them unaligned', () => {
    const odd = tmp.path('align1.gguf');
    writeGguf(odd, { metadata: [['general.alignment', { type: 'u32', value: 1 }]], tensors: input.slice(3, 6) });
    const { mapped, copied } = bothWays(odd, (f) => f.tensors.map((t) => f.readTensorBytes(t)));
    mapped.forEach((bytes, i) => {
      assert.deepEqual(bytes, copied[i]);
      assert.equal(bytes.byteOffset % 4, 0);
    });
  });

  it('a truncated file still fails to open with the FormatError of the read path', () => {
    const cut = tmp.path('cut.gguf');
    writeFileSync(cut, readFileSync(path));
    truncateSync(cut, readFileSync(path).length - 100);
    assert.throws(() => openGguf(cut, { mmap: true }), (e: unknown) => e instanceof FormatError && /beyond the end of the file/.test(e.message));
  });
});

describe('models loaded from mapped files', { skip }, () => {
  /** Logits of a short prompt, with the weights mapped (default) or read (FRUGAL_MMAP=0). */
  function logits(path: string, mmap: boolean): Float32Array {
    const saved = process.env.FRUGAL_MMAP;
    process.env.FRUGAL_MMAP = mmap ? '1' : '0';
    try {
      const model = loadModel(path, { tokenizer: false }).model;
      return model.forward(Int32Array.from([1, 5, 9, 2, 7]), model.newCache(16), { allLogits: true });
    } finally {
      if (saved === undefined) delete process.env.FRUGAL_MMAP;
      else process.env.FRUGAL_MMAP = saved;
    }
  }

  function typedArraysIn(root: unknown): ArrayBufferView[] {
    const found: ArrayBufferView[] = [];
    const seen = new Set<unknown>();
    const walk = (o: unknown): void => {
      if (!o || typeof o !== 'object' || seen.has(o)) return;
      seen.add(o);
      if (ArrayBuffer.isView(o)) found.push(o);
      else for (const v of Object.values(o)) walk(v);
    };
    walk(root);
    return found;
  }

  it('give identical logits for a tiny llama (q8_0) and qwen2 (f32)', () => {
    for (const [architecture, dtype] of [['llama', 'q8_0'], ['qwen2', 'f32']] as const) {
      const path = tmp.path(`${architecture}.gguf`);
      writeTinyDenseGguf(path, { architecture, dtype, tokenizer: 'bytes', seed: 3 });
      assert.deepEqual(logits(path, true), logits(path, false), architecture);
      const views = typedArraysIn((loadModel(path, { tokenizer: false }).model as DenseModel).weights);
      assert.ok(views.length > 10);
      for (const view of views) assert.equal(view.buffer, views[0]!.buffer, `${architecture}: every weight, norms included, is a view of the mapping`);
    }
  });

  it('give identical logits for a tiny DeepSeek, whose experts are views of the mapping', () => {
    const path = tmp.path('deepseek.gguf');
    writeTinyDeepseekGguf(path, tinyDeepseekModel({ seed: 5 }), { dtype: 'q8_0' });
    assert.deepEqual(logits(path, true), logits(path, false));
    const model = loadModel(path, { tokenizer: false }).model as DeepseekModel;
    const moe = model.weights.layers[1]!.moe!;
    const mapping = moe.experts[0]!.gate.data.buffer;
    assert.ok(mapping.byteLength > moe.experts.length * moe.experts[0]!.gate.data.byteLength, 'expert data is a view of a larger mapping');
    for (const expert of moe.experts) {
      for (const w of [expert.gate, expert.up, expert.down]) assert.equal(w.data.buffer, mapping);
    }
  });
});

describe('opening a large mapped file', { skip }, () => {
  it('does not bring its data into memory until it is touched', () => {
    const path = tmp.path('large.gguf');
    const size = 200 * 1024 * 1024;
    const rows = size / (1024 * 4);
    writeGguf(path, { metadata: [], tensors: [{ name: 'big', dims: [1024, rows], dtype: 'f32', data: () => new Uint8Array(size) }] });
    try {
      const before = process.memoryUsage().rss;
      const file = openGguf(path, { mmap: true });
      const weight = readWeightMatrix(file, 'big');
      const opened = process.memoryUsage().rss - before;
      assert.ok(opened < size / 4, `opening and viewing grew the RSS by ${opened} bytes (file ${size})`);
      let sum = 0;
      for (let i = 0; i < weight.data.byteLength; i += 4096) sum += weight.data[i]!;
      const touched = process.memoryUsage().rss - before;
      assert.equal(sum, 0);
      assert.ok(touched > size / 2, `touching every page grew the RSS by only ${touched} bytes (file ${size})`);
      file.close();
    } finally {
      rmSync(path, { force: true });
    }
  });
});
