import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, it } from 'node:test';
import { FormatError } from '../../src/formats/format-error.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors-write.js';
import { ScratchFile, randomBytes, tempDir } from './helpers.js';
import { mutate, prng } from './mutate.js';

/**
 * Mutated safetensors files either parse into a consistent structure (tensors tiling the data
 * buffer exactly, sizes matching shape x dtype) or fail with a FormatError.
 */
const tmp = tempDir();
after(() => tmp.cleanup());

const BITS: Record<string, number> = {
  BOOL: 8, U8: 8, I8: 8, F8_E4M3: 8, F8_E5M2: 8, F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32, I64: 64, U64: 64, F64: 64, C64: 64, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
};

it('survives thousands of mutated safetensors files', { timeout: 60_000 }, () => {
  const rand = prng(77);
  const path = tmp.path('base.safetensors');
  writeSafetensors(path, [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 3], data: randomBytes(rand, 24) },
    { name: 'model.norm.weight', dtype: 'F32', shape: [3], data: randomBytes(rand, 12) },
    { name: 'w', dtype: 'F8_E4M3', shape: [2, 2], data: randomBytes(rand, 4) },
    { name: 'w_scale_inv', dtype: 'F32', shape: [1, 1], data: randomBytes(rand, 4) },
    { name: 'ids', dtype: 'I64', shape: [2], data: randomBytes(rand, 16) },
  ], { format: 'pt' });
  const base = readFileSync(path);
  const scratch = new ScratchFile(tmp.path('fuzz.safetensors'));
  let parsed = 0;
  let rejected = 0;
  const started = Date.now();
  for (let i = 0; i < 3000; i++) {
    const bytes = mutate(base, rand);
    scratch.write(bytes);
    let file;
    try {
      file = openSafetensors(scratch.path);
    } catch (error) {
      if (!(error instanceof FormatError)) {
        assert.fail(`case ${i}: expected a FormatError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      }
      rejected++;
      continue;
    }
    try {
      let expected = file.dataOffset;
      for (const t of file.tensors) {
        assert.equal(t.offset, expected, `case ${i}: tensors must tile the data buffer`);
        const elements = t.shape.reduce((a, b) => a * b, 1);
        assert.equal(t.elements, elements);
        assert.equal(t.byteLength * 8, elements * BITS[t.dtype]!);
        assert.deepEqual(file.readTensorBytes(t), bytes.subarray(t.offset, t.offset + t.byteLength));
        expected += t.byteLength;
      }
      assert.equal(expected, bytes.length, `case ${i}: data must end at the end of the file`);
      parsed++;
    } finally {
      file.close();
    }
  }
  scratch.close();
  assert.ok(parsed > 50 && rejected > 1000, `parsed ${parsed}, rejected ${rejected}`);
  console.log(`safetensors fuzz: ${parsed} parsed, ${rejected} rejected in ${Date.now() - started} ms`);
});
