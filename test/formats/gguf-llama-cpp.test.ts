import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { openGguf } from '../../src/formats/gguf.js';
import { plainValue, type GgufPlainValue, type GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { prng, randomBytes, tempDir } from './helpers.js';

/**
 * Cross-check with an independent parser: node-llama-cpp's readGgufFileInfo (llama.cpp's GGUF
 * reading rules, without loading a model) must see the same metadata and tensor infos.
 */
const tmp = tempDir();
after(() => tmp.cleanup());

function lookup(root: unknown, key: string): unknown {
  let node = root;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

function normalize(v: GgufPlainValue | unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return v;
}

it('node-llama-cpp reads the metadata and tensor infos we write', async () => {
  const { readGgufFileInfo } = await import('node-llama-cpp');
  const rand = prng(3);
  const metadata: [string, GgufValue][] = [
    ['general.architecture', { type: 'string', value: 'qwen2' }],
    ['general.name', { type: 'string', value: 'tiny ünïcode' }],
    ['general.alignment', { type: 'u32', value: 64 }],
    ['qwen2.block_count', { type: 'u32', value: 2 }],
    ['qwen2.context_length', { type: 'u64', value: 4096n }],
    ['qwen2.attention.layer_norm_rms_epsilon', { type: 'f32', value: 9.999999974752427e-7 }],
    ['qwen2.rope.freq_base', { type: 'f64', value: 10000.5 }],
    ['test.i8', { type: 'i8', value: -5 }],
    ['test.i16', { type: 'i16', value: -300 }],
    ['test.u16', { type: 'u16', value: 60000 }],
    ['test.i64', { type: 'i64', value: -(1n << 40n) }],
    ['test.flag', { type: 'bool', value: true }],
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['a', 'b', 'Ġc', '<｜User｜>'] }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', value: [1, 1, 1, 3] }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: ['a b'] }],
  ];
  const path = tmp.path('crosscheck.gguf');
  writeGguf(path, {
    metadata,
    tensors: [
      { name: 'token_embd.weight', dims: [32, 4], dtype: 'q8_0', data: randomBytes(rand, 4 * 34) },
      { name: 'output_norm.weight', dims: [32], dtype: 'f32', data: randomBytes(rand, 128) },
      { name: 'blk.0.ffn_up.weight', dims: [256, 3], dtype: 'q6_k', data: randomBytes(rand, 3 * 210) },
      { name: 'blk.0.attn_q.weight', dims: [2, 3, 4], dtype: 'f16', data: randomBytes(rand, 48) },
    ],
  });
  const theirs = await readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false, spliceSplitFiles: false });
  const ours = openGguf(path);
  try {
    assert.equal(theirs.version, ours.version);
    assert.equal(Number(theirs.tensorCount), ours.tensors.length);
    for (const [key, value] of ours.metadata) {
      assert.deepEqual(normalize(lookup(theirs.metadata, key)), normalize(plainValue(value)), key);
    }
    assert.equal(theirs.infoEndOffset, ours.dataOffset);
    const infos = theirs.tensorInfo!;
    assert.equal(infos.length, ours.tensors.length);
    infos.forEach((t, i) => {
      const mine = ours.tensors[i]!;
      assert.equal(t.name, mine.name);
      assert.deepEqual(t.dimensions.map(Number), mine.dims);
      assert.equal(t.ggmlType as number, mine.ggmlType);
      assert.equal(Number(t.fileOffset), mine.offset);
    });
  } finally {
    ours.close();
  }
});
