import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import { openGguf } from '../../src/formats/gguf.js';
import { plainValue, type GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { ScratchFile, randomBytes, tempDir } from './helpers.js';
import { mutate, prng } from './mutate.js';

/**
 * Mutated GGUF files either parse into a consistent structure (every tensor inside the file,
 * aligned, non-overlapping, readable) or fail with a FormatError; never another exception or a hang.
 */
const tmp = tempDir();
after(() => tmp.cleanup());

function baseFile(alignment: number): Uint8Array {
  const rand = prng(alignment);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.alignment', { type: 'u32', value: alignment }],
    ['llama.block_count', { type: 'u32', value: 1 }],
    ['llama.context_length', { type: 'u64', value: 2048n }],
    ['llama.rope.freq_base', { type: 'f32', value: 10000 }],
    ['llama.flag', { type: 'bool', value: false }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['a', 'b', 'ab'] }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: [1, 1, 3] }],
    ['test.nested', { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'u8', value: [1, 2] }] }],
    ['test.i64s', { type: 'array', itemType: 'i64', value: [-1n, 5n] }],
  ];
  const path = tmp.path(`base-${alignment}.gguf`);
  writeGguf(path, {
    metadata,
    tensors: [
      { name: 'a', dims: [4, 2], dtype: 'f32', data: randomBytes(rand, 32) },
      { name: 'b', dims: [32], dtype: 'q8_0', data: randomBytes(rand, 34) },
      { name: 'c', dims: [3], dtype: 'f16', data: randomBytes(rand, 6) },
    ],
  });
  return readFileSync(path);
}

it('survives thousands of mutated GGUF files', { timeout: 60_000 }, () => {
  const rand = prng(20240601);
  const bases = [baseFile(32), baseFile(16)];
  const path = tmp.path('fuzz.gguf');
  const scratch = new ScratchFile(path);
  let parsed = 0;
  let rejected = 0;
  const started = Date.now();
  for (let i = 0; i < 3000; i++) {
    const bytes = mutate(bases[i % bases.length]!, rand);
    scratch.write(bytes);
    let file;
    try {
      file = openGguf(path);
    } catch (error) {
      if (!(error instanceof FormatError)) {
        assert.fail(`case ${i}: expected a FormatError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      }
      assert.ok(error.message.startsWith(path), error.message);
      rejected++;
      continue;
    }
    try {
      assert.ok(file.alignment > 0 && (file.alignment & (file.alignment - 1)) === 0);
      for (const value of file.metadata.values()) plainValue(value);
      const ranges = file.tensors.filter((t) => t.byteLength > 0).map((t) => [t.offset, t.offset + t.byteLength] as const).sort((a, b) => a[0] - b[0]);
      for (const t of file.tensors) {
        assert.ok(t.offset >= file.dataOffset && t.offset + t.byteLength <= bytes.length, `case ${i}: tensor ${t.name} outside the file`);
        assert.equal((t.offset - file.dataOffset) % file.alignment, 0);
        assert.deepEqual(file.readTensorBytes(t), bytes.subarray(t.offset, t.offset + t.byteLength));
      }
      for (let r = 1; r < ranges.length; r++) assert.ok(ranges[r]![0] >= ranges[r - 1]![1], `case ${i}: overlapping tensors`);
      parsed++;
    } finally {
      file.close();
    }
  }
  scratch.close();
  // both outcomes must actually occur, or the fuzzer is not exercising anything
  assert.ok(parsed > 100 && rejected > 1000, `parsed ${parsed}, rejected ${rejected}`);
  console.log(`gguf fuzz: ${parsed} parsed, ${rejected} rejected in ${Date.now() - started} ms`);
});
