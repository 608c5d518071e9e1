/** `frugal logits` (its exact JSON contract) and `frugal info` on tiny dense models. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../../src/models/load.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';
import { describeModel } from '../../src/cli/info.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'llama.gguf');
before(() => {
  writeTinyDenseGguf(path, { architecture: 'llama', tokenizer: 'bytes', dtype: 'q8_0', seed: 3 });
});

function frugal(...args: string[]) {
  const result = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('frugal logits prints the last position as {"logits": [[...]]}, exactly the model\'s float32 values', () => {
  const { code, stdout, stderr } = frugal('logits', '--model', path, '--tokens', '5,17,99');
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^\{"logits":\[\[/);
  const parsed = JSON.parse(stdout) as { logits: number[][] };
  assert.deepEqual(Object.keys(parsed), ['logits']);
  assert.equal(parsed.logits.length, 1);
  const { model } = loadModel(path);
  const expected = model.forward(Int32Array.from([5, 17, 99]), model.newCache());
  assert.equal(parsed.logits[0]!.length, expected.length);
  // Every value must read back to the identical float32.
  assert.deepEqual(Float32Array.from(parsed.logits[0]!), expected);
});

test('frugal logits --all prints one row per token', () => {
  const { code, stdout, stderr } = frugal('logits', '--model', path, '--tokens', '5, 17,99,3', '--all');
  assert.equal(code, 0, stderr);
  const parsed = JSON.parse(stdout) as { logits: number[][] };
  assert.equal(parsed.logits.length, 4);
  const { model } = loadModel(path);
  const expected = model.forward(Int32Array.from([5, 17, 99, 3]), model.newCache(), { allLogits: true });
  assert.deepEqual(Float32Array.from(parsed.logits.flat()), expected);
});

test('frugal logits rejects bad arguments with exit code 2 or a clear error', () => {
  for (const args of [['--tokens', '1,2'], ['--model', path], ['--model', path, '--tokens', '1,x'], ['--model', path, '--tokens', '1,,2'], ['--model', path, '--tokens', '1', '--bogus']]) {
    const r = frugal('logits', ...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: frugal logits/);
    assert.equal(r.stdout, '');
  }
  const outside = frugal('logits', '--model', path, '--tokens', '256');
  assert.equal(outside.code, 1);
  assert.match(outside.stderr, /token id 256 .*outside the vocabulary/);
  const missing = frugal('logits', '--model', join(dir, 'nope.gguf'), '--tokens', '1');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.gguf/);
});

test('frugal info describes the file from its metadata', () => {
  const lines = describeModel(path);
  const text = lines.join('\n');
  assert.match(text, /architecture: llama/);
  // 256 x 64 embedding + output, 2 layers of (2 norms, q 64x64, k/v 32x64, o 64x64, 3 x 256x64 ffn), final norm.
  const perLayer = 2 * 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 256 * 64;
  const expected = 2 * 256 * 64 + 2 * perLayer + 64;
  assert.match(text, new RegExp(`parameters: .*\\(${expected}\\)`));
  // Matrices with 64 columns are q8_0; norms f32 (2 per layer + output norm).
  assert.match(text, /tensor types: q8_0 16, f32 5 \(21 tensors\)/);
  assert.match(text, /context length: 256/);
  assert.match(text, /tokenizer: byte-level BPE \(gpt2, pre 'qwen2'\), 256 tokens/);
  // KV cache: 2 layers x (k + v) x 2 kv heads x 16 dims x 4 bytes = 512 bytes per token.
  assert.match(text, /KV cache \(f32\) 512 B per token, 128\.00 KiB at 256 tokens/);
  const { model } = loadModel(path);
  assert.equal(model.info.parameterCount, expected);
  assert.equal(model.info.cacheValuesPerToken * 4, 512);
  const r = frugal('info', path);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backend: (native|ref)/);
  assert.match(r.stdout, /architecture: llama/);
});

test('frugal info reaches other architectures through the registry (deepseek2 GGUF and HF directory)', async () => {
  const { tinyDeepseekModel, writeTinyDeepseekGguf, writeTinyDeepseekHf } = await import('../../src/models/deepseek-v3-tiny.js');
  const model = tinyDeepseekModel({});
  const ggufPath = join(dir, 'deepseek.gguf');
  const hfDir = join(dir, 'deepseek-hf');
  writeTinyDeepseekGguf(ggufPath, model);
  writeTinyDeepseekHf(hfDir, model);
  for (const path of [ggufPath, hfDir]) {
    const text = describeModel(path).join('\n');
    assert.match(text, /architecture: deepseek2/);
    assert.match(text, /MLA cache: \d+ values per token per layer/);
    const loaded = loadModel(path).model;
    assert.match(text, new RegExp(`parameters: .*\\(${loaded.info.parameterCount}\\)`));
    assert.match(text, new RegExp(`KV cache \\(f32\\) ${loaded.info.cacheValuesPerToken * 4} B per token`));
  }
});

test('logitsJson writes float32 values exactly and refuses non-finite ones', async () => {
  const { logitsJson } = await import('../../src/cli/logits.js');
  const values = Float32Array.from([0.1, -3.25, 1e-30, 123456.789]);
  const parsed = JSON.parse(logitsJson(values, 2)) as { logits: number[][] };
  assert.deepEqual(parsed.logits.length, 2);
  assert.deepEqual(Float32Array.from(parsed.logits.flat()), values);
  assert.throws(() => logitsJson(Float32Array.from([1, Number.NaN]), 2), /non-finite logit \(NaN\) at position 0, token 1/);
});
