/** Corrupt, incomplete or mismatched GGUF model files fail with errors naming the problem and the file. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gguf, type GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { ModelFileError, architectures, loadModel, openModelSource } from '../../src/models/load.js';
import { denseGgufMetadata, denseGgufTensors, tinyDenseModel, tinyTokenizerMetadata } from '../../src/models/tiny.js';
import { dequantize } from '../../src/tensor/quant/index.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const model = tinyDenseModel({ architecture: 'qwen2', tokenizer: 'bytes', seed: 9, layers: 1 });
const goodMetadata = [...denseGgufMetadata(model), ...tinyTokenizerMetadata('bytes').entries];
const goodTensors = denseGgufTensors(model, 'q8_0');

function write(name: string, edit: { metadata?: (m: [string, GgufValue][]) => [string, GgufValue][]; tensors?: typeof goodTensors }): string {
  const path = join(dir, `${name}.gguf`);
  writeGguf(path, { metadata: edit.metadata ? edit.metadata(goodMetadata.map((e) => [...e] as [string, GgufValue])) : goodMetadata, tensors: edit.tensors ?? goodTensors });
  return path;
}

test('the unedited file loads (so the failures below come from the edits)', () => {
  const { model: m } = loadModel(write('good', {}));
  assert.equal(m.info.architecture, 'qwen2');
});

test('a missing tensor is named with the file', () => {
  const path = write('missing', { tensors: goodTensors.filter((t) => t.name !== 'blk.0.attn_k.bias') });
  assert.throws(() => loadModel(path), (e: Error) => e.message.includes(path) && /tensor 'blk\.0\.attn_k\.bias' is missing/.test(e.message));
});

test('a tensor of the wrong shape is named with both shapes', () => {
  const tensors = goodTensors.map((t) => (t.name === 'blk.0.ffn_up.weight' ? { ...t, dims: [64, 128], data: (t.data as Uint8Array).subarray(0, 128 * 68) } : t));
  const path = write('shape', { tensors });
  assert.throws(() => loadModel(path), /tensor 'blk\.0\.ffn_up\.weight' has shape \[64, 128\] \(ggml order\), expected \[64, 256\]/);
});

test('a weight in a dtype the kernels cannot multiply is refused at load time', () => {
  // f64 (ggml type 28): a GGUF storage type with no matmul kernel (q5_1, used here before, now has one).
  const f64 = (t: (typeof goodTensors)[number]) => ({
    ...t, dtype: 'f64' as const,
    data: new Uint8Array(Float64Array.from(dequantize(t.dtype, t.data as Uint8Array, t.dims[0]! * t.dims[1]!)).buffer),
  });
  const tensors = goodTensors.map((t) => (t.name === 'blk.0.attn_v.weight' ? f64(t) : t));
  assert.equal(tensors.find((t) => t.name === 'blk.0.attn_v.weight')!.dtype, 'f64');
  const path = write('dtype', { tensors });
  assert.throws(() => loadModel(path), /tensor 'blk\.0\.attn_v\.weight' is stored as f64, which the compute kernels do not support/);
});

test('an unknown architecture lists the supported ones', () => {
  const path = write('arch', { metadata: (m) => m.map(([k, v]) => [k, k === 'general.architecture' ? gguf.string('gpt2') : v]) });
  assert.throws(() => loadModel(path), /unsupported architecture 'gpt2' \(supported: llama, qwen2, qwen3, deepseek2\)/);
});

test('qwen3: a missing q/k norm is named; frugal info shows the head size and the norms', () => {
  const q3 = tinyDenseModel({ architecture: 'qwen3', tokenizer: 'bytes', seed: 9, layers: 1, headDim: 32 });
  const metadata = [...denseGgufMetadata(q3), ...tinyTokenizerMetadata('bytes').entries];
  const tensors = denseGgufTensors(q3, 'q8_0');
  const good = join(dir, 'qwen3.gguf');
  writeGguf(good, { metadata, tensors });
  assert.equal(loadModel(good).model.info.architecture, 'qwen3');
  const source = openModelSource(good);
  try {
    const lines = architectures.qwen3!.describe(source).lines.join('\n');
    assert.match(lines, /4 heads, 2 kv heads, head dim 32, q\/k norm/);
  } finally {
    source.close();
  }
  for (const name of ['blk.0.attn_q_norm.weight', 'blk.0.attn_k_norm.weight']) {
    const path = join(dir, `qwen3-no-${name}.gguf`);
    writeGguf(path, { metadata, tensors: tensors.filter((t) => t.name !== name) });
    assert.throws(() => loadModel(path), (e: Error) => e instanceof ModelFileError && e.message.includes(path) && e.message.includes(`tensor '${name}' is missing`));
  }
});

test('a missing required key is named', () => {
  const path = write('key', { metadata: (m) => m.filter(([k]) => k !== 'qwen2.block_count') });
  assert.throws(() => loadModel(path), (e: Error) => e.message.includes(path) && /qwen2\.block_count must be a positive integer/.test(e.message));
  const heads = write('heads', { metadata: (m) => m.map(([k, v]) => [k, k === 'qwen2.attention.head_count_kv' ? gguf.u32(3) : v]) });
  assert.throws(() => loadModel(heads), /head count 4 is not a multiple of kv head count 3|attn_k\.weight' has shape/);
});

test('a tokenizer larger than the model vocabulary is refused', () => {
  const path = write('vocab', {
    metadata: (m) => m.map(([k, v]) => [k, k === 'tokenizer.ggml.tokens' ? gguf.strings([...(v.value as string[]), 'extra']) : k === 'tokenizer.ggml.token_type' ? gguf.i32s([...(v.value as number[]), 1]) : v]),
  });
  assert.throws(() => loadModel(path), /tokenizer has 257 tokens but the model only 256 logits/);
});

test('a truncated file and a non-GGUF file fail with the file named', () => {
  const good = readFileSync(join(dir, 'good.gguf'));
  const truncated = join(dir, 'truncated.gguf');
  writeFileSync(truncated, good.subarray(0, good.length - 1000));
  assert.throws(() => loadModel(truncated), (e: Error) => e.message.includes(truncated));
  const text = join(dir, 'text.gguf');
  writeFileSync(text, 'not a model at all, just some text that is long enough');
  assert.throws(() => loadModel(text), (e: Error) => e.message.includes(text));
  assert.throws(() => loadModel(join(dir, 'absent.gguf')), /model not found: .*absent\.gguf/);
});
