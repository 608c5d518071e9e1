/** The dense model computes the same logits on the native backend as on the ref (TypeScript) backend. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModel } from '../../src/models/load.js';
import { type TinyDType, writeTinyDenseGguf } from '../../src/models/tiny.js';
import { int8Prefill, loadNativeBackend, refBackend } from '../../src/tensor/index.js';

const native = loadNativeBackend();
const skip = native ? false : 'native addon not built';
const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-backends-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tokens = Int32Array.from([3, 141, 59, 26, 53, 58, 97, 93, 238, 46, 17, 200, 5]);

/**
 * Bounds on |logit difference| (logits span about ±20 here). Most kernels differ from ref only in
 * summation order; with int8 activations on (the default at the avx512-vnni and avx2 levels) the
 * native Q4_0, Q8_0, Q4_K and Q6_K matmuls round activations to int8 as ggml does, worth about
 * 0.1-0.2 on these logits (measured 0.19 for Q4_K, 0.11 for Q4_0 on avx512-vnni; 0.16 for Q8_0 on
 * avx2); test/tensor/int8-matmul.test.ts checks that rounding exactly.
 */
const int8Bound = native && int8Prefill(native) ? 0.5 : 2e-3;
const cases: ['llama' | 'qwen2', TinyDType, number][] = [
  ['llama', 'f32', 2e-3], ['qwen2', 'f16', 2e-3], ['llama', 'bf16', 2e-3], ['qwen2', 'q8_0', int8Bound], ['llama', 'q4_0', int8Bound],
  ['qwen2', 'q4_k', int8Bound], ['llama', 'q6_k', int8Bound],
];

for (const [architecture, dtype, bound] of cases) {
  test(`${architecture} ${dtype}: native and ref logits agree (batched prefill and decode)`, { skip }, () => {
    const path = join(dir, `${architecture}-${dtype}.gguf`);
    writeTinyDenseGguf(path, { architecture, dtype, tokenizer: 'bytes', seed: 77 });
    const a = loadModel(path, { backend: refBackend, tokenizer: false }).model;
    const b = loadModel(path, { backend: native!, tokenizer: false }).model;
    const cacheA = a.newCache();
    const cacheB = b.newCache();
    const prefillA = a.forward(tokens, cacheA, { allLogits: true });
    const prefillB = b.forward(tokens, cacheB, { allLogits: true });
    const stepA = a.forward(Int32Array.from([9]), cacheA);
    const stepB = b.forward(Int32Array.from([9]), cacheB);
    let worst = 0;
    for (const [x, y] of [[prefillA, prefillB], [stepA, stepB]] as const) {
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    }
    assert.ok(worst < bound, `max |logit difference| ${worst} (bound ${bound})`);
  });
}
