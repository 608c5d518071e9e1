/**
 * HF checkpoint directories (config.json + safetensors, single or sharded, F32 or BF16) against
 * the same weights converted to GGUF the way llama.cpp's converter does (llama: Q/K rows permuted,
 * adjacent-pair rope; HF: half-split rope on the original rows).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { writeSafetensors } from '../../src/formats/safetensors-write.js';
import { loadModel } from '../../src/models/load.js';
import {
  type TinyDenseOptions, denseGgufMetadata, denseGgufTensors, tinyDenseModel, tinyTokenizerMetadata, writeTinyDenseHf,
} from '../../src/models/tiny.js';
import { dequantize, quantize } from '../../src/tensor/quant/index.js';
import { describeModel } from '../../src/cli/info.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-dense-hf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tokens = Int32Array.from([3, 141, 59, 26, 53, 58, 97, 93, 238, 46]);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const cases: [string, TinyDenseOptions, { dtype: 'F32' | 'BF16'; shards: number }][] = [
  ['qwen2, one F32 file', { architecture: 'qwen2', tokenizer: 'bytes', seed: 41 }, { dtype: 'F32', shards: 1 }],
  ['llama with llama3 scaling, 3 F32 shards', { architecture: 'llama', tokenizer: 'bytes', llama3RopeScaling: true, seed: 42 }, { dtype: 'F32', shards: 3 }],
  ['llama with tied embeddings, BF16', { architecture: 'llama', tokenizer: 'bytes', tiedEmbeddings: true, seed: 43 }, { dtype: 'BF16', shards: 1 }],
];

for (const [name, options, hf] of cases) {
  test(`${name}: the HF directory and its GGUF conversion give the same logits`, () => {
    const model = tinyDenseModel(options);
    if (hf.dtype === 'BF16') {
      // Both files then hold the same values (the GGUF keeps norms in f32, as llama.cpp does).
      for (const t of model.tensors.values()) t.values.set(dequantize('bf16', quantize('bf16', t.values), t.values.length));
    }
    const hfDir = join(dir, name.replace(/\W+/g, '-'));
    writeTinyDenseHf(hfDir, model, hf);
    const ggufPath = `${hfDir}.gguf`;
    const metadata = [...denseGgufMetadata(model), ...tinyTokenizerMetadata('bytes').entries];
    writeGguf(ggufPath, { metadata, tensors: denseGgufTensors(model, hf.dtype === 'F32' ? 'f32' : 'bf16') });
    const fromHf = loadModel(hfDir).model;
    const fromGguf = loadModel(ggufPath).model;
    assert.deepEqual(fromHf.info, fromGguf.info);
    const a = fromHf.forward(tokens, fromHf.newCache(), { allLogits: true });
    const b = fromGguf.forward(tokens, fromGguf.newCache(), { allLogits: true });
    const d = maxAbsDiff(a, b);
    assert.ok(d < 1e-4, `max |logit difference| ${d}`);
    assert.ok(Math.max(...a) - Math.min(...a) > 5, 'logits should not be flat');
  });
}

test('an HF directory with a real tokenizer loads it and its chat template; info describes the directory', () => {
  const model = tinyDenseModel({ architecture: 'qwen2', tokenizer: 'qwen2.5', seed: 44, hiddenSize: 32, heads: 2, kvHeads: 1, layers: 1 });
  const hfDir = join(dir, 'qwen-real-tokenizer');
  writeTinyDenseHf(hfDir, model, { dtype: 'BF16' });
  const loaded = loadModel(hfDir);
  assert.ok(loaded.tokenizer);
  assert.equal(loaded.model.info.vocabSize, loaded.tokenizer.vocabSize);
  assert.deepEqual(loaded.tokenizer.encode('Hello world'), [9707, 1879]);
  assert.equal(typeof loaded.chatTemplate, 'string');
  const text = describeModel(hfDir).join('\n');
  assert.match(text, /architecture: qwen2/);
  assert.match(text, /tensor types: bf16 /);
  assert.match(text, /tokenizer: byte-level BPE \(gpt2, pre 'qwen2'\), 151665 tokens/);
});

test('broken HF checkpoints fail with errors naming the tensor or field and the file', () => {
  const model = tinyDenseModel({ architecture: 'qwen2', tokenizer: 'bytes', seed: 45 });
  const make = (label: string): string => {
    const d = join(dir, `broken-${label}`);
    writeTinyDenseHf(d, model);
    return d;
  };
  const rewrite = (d: string, drop: string, replace?: { shape: number[] }) => {
    const tensors = [...model.tensors]
      .filter(([n]) => n !== drop || replace)
      .map(([n, t]) => {
        const shape = n === drop && replace ? replace.shape : t.shape;
        const count = shape.reduce((a, b) => a * b, 1);
        return { name: n, dtype: 'F32' as const, shape, data: quantize('f32', t.values.subarray(0, count)) };
      });
    unlinkSync(join(d, 'model.safetensors'));
    writeSafetensors(join(d, 'model.safetensors'), tensors);
  };
  const missing = make('missing');
  rewrite(missing, 'model.layers.1.mlp.up_proj.weight');
  assert.throws(() => loadModel(missing), (e: Error) => /model\.layers\.1\.mlp\.up_proj\.weight/.test(e.message) && /is missing/.test(e.message) && e.message.includes(missing));
  const shape = make('shape');
  rewrite(shape, 'model.layers.0.self_attn.k_proj.weight', { shape: [16, 64] });
  assert.throws(() => loadModel(shape), /model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[16, 64\], expected \[32, 64\]/);
  const head = make('head');
  rewrite(head, 'lm_head.weight');
  assert.throws(() => loadModel(head), /lm_head\.weight' is missing \(tie_word_embeddings is false\)/);
  const arch = make('arch');
  const config = JSON.parse(readFileSync(join(arch, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(arch, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }));
  assert.throws(() => loadModel(arch), /config\.json.*GPT2LMHeadModel/);
  assert.throws(() => loadModel(join(dir, 'no-such-dir')), /model not found/);
});
