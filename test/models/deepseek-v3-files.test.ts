/**
 * DeepSeek-V3 from files: `deepseek2` GGUF (split attn_k_b/attn_v_b and legacy attn_kv_b layouts,
 * f32 and q8_0, MTP as blk.N.nextn.*) and HF checkpoints (config.json + safetensors, FP8 e4m3 with
 * weight_scale_inv) all give the logits of the same weights held in memory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { after } from 'node:test';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { openGguf } from '../../src/formats/gguf.js';
import { deepseekFromHfTensors, loadDeepseekFromHf } from '../../src/models/deepseek-v3-hf.js';
import { type DeepseekModel, loadDeepseekFromGguf } from '../../src/models/deepseek-v3.js';
import {
  type DeepseekGgufOptions, type TinyDeepseekModel, deepseekGgufMetadata, deepseekGgufTensors, fp8Checkpoint, memoryHfSource,
  tinyDeepseekModel, writeTinyDeepseekGguf, writeTinyDeepseekHf,
} from '../../src/models/deepseek-v3-tiny.js';
import { tinyTokenizerMetadata } from '../../src/models/tiny.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-deepseek-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const PROMPT = Int32Array.from([3, 141, 59, 26, 53, 58, 97, 93, 23, 84]);

function logitsOf(model: DeepseekModel, tokens = PROMPT): Float32Array {
  return model.forward(tokens, model.newCache(32), { allLogits: true });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function ggufModel(m: TinyDeepseekModel, name: string, options: DeepseekGgufOptions = {}): DeepseekModel {
  const path = join(dir, name);
  writeTinyDeepseekGguf(path, m, options);
  const file = openGguf(path);
  try {
    return loadDeepseekFromGguf(file);
  } finally {
    file.close();
  }
}

test('GGUF split (attn_k_b/attn_v_b) and legacy (attn_kv_b) layouts give the in-memory logits', () => {
  const m = tinyDeepseekModel({ mtp: true });
  const mem = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors));
  const expected = logitsOf(mem);
  for (const layout of ['split', 'kv_b'] as const) {
    const model = ggufModel(m, `tiny-${layout}.gguf`, { layout });
    assert.deepEqual(model.config.router, mem.config.router);
    assert.ok(Math.abs(model.config.softmaxScale - mem.config.softmaxScale) < 1e-7, `${layout}: softmax scale`);
    assert.equal(model.config.ropeAttentionFactor, 1);
    const diff = maxAbsDiff(logitsOf(model), expected);
    assert.ok(diff < 1e-4, `${layout}: max |logit diff| = ${diff}`);
    // MTP module from blk.3.nextn.* gives the same drafts.
    assert.equal(model.weights.mtp.length, 1);
    const h = mem.forwardWithHidden(PROMPT, mem.newCache(32), { allLogits: true }).hidden;
    const next = PROMPT.slice(1);
    const d = m.options.hiddenSize;
    const a = mem.mtpForward(h.slice(0, next.length * d), next, mem.newMtpCache(16));
    const b = model.mtpForward(h.slice(0, next.length * d), next, model.newMtpCache(16));
    assert.ok(maxAbsDiff(a, b) < 1e-4, `${layout}: MTP drafts differ`);
  }
});

test('GGUF q8_0: expert stacks and k_b/v_b stay quantized views; logits close to f32', () => {
  const m = tinyDeepseekModel({ seed: 9 });
  const f32 = logitsOf(ggufModel(m, 'tiny-f32.gguf'));
  const q = ggufModel(m, 'tiny-q8.gguf', { dtype: 'q8_0' });
  const moe = q.weights.layers[1]!.moe!;
  assert.equal(moe.experts[3]!.gate.dtype, 'q8_0');
  assert.equal(moe.experts[3]!.gate.data.buffer, moe.experts[4]!.gate.data.buffer, 'experts share the stacked buffer');
  assert.equal(q.weights.layers[0]!.attn.kUpT[0]!.dtype, 'q8_0');
  // Random tiny weights amplify rounding, and a flipped expert choice moves one position's
  // logits by several units: bound the typical error, not the worst position.
  const ql = logitsOf(q);
  const V = q.info.vocabSize;
  const perPosition = Array.from(PROMPT, (_, t) => maxAbsDiff(ql.subarray(t * V, (t + 1) * V), f32.subarray(t * V, (t + 1) * V))).sort((a, b) => a - b);
  const median = perPosition[perPosition.length >> 1]!;
  assert.ok(median < 0.8, `q8_0 vs f32 median per-position max |logit diff| = ${median}`);
  assert.ok(perPosition[0]! > 0, 'q8_0 differs from f32 at all');
});

test('V2-Lite-style GGUF (attn_q, softmax gating, no groups) loads and matches memory', () => {
  const m = tinyDeepseekModel({ qLoraRank: 0, scoring: 'softmax', nGroup: 1, topkGroup: 1, normTopkProb: false, routedScalingFactor: 1, sharedExperts: 2, mscaleAllDim: 0.707, seed: 4 });
  const mem = logitsOf(deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors)));
  const model = ggufModel(m, 'tiny-lite.gguf', { layout: 'kv_b' });
  assert.equal(model.config.qLoraRank, 0);
  assert.equal(model.config.router.scoring, 'softmax');
  const diff = maxAbsDiff(logitsOf(model), mem);
  assert.ok(diff < 1e-4, `max |logit diff| = ${diff}`);
});

test('HF checkpoint with FP8 block-scaled weights equals the GGUF of the dequantized values', () => {
  const m = tinyDeepseekModel({ hiddenSize: 160, intermediateSize: 288, seed: 21, mtp: true });
  const fp8 = fp8Checkpoint(m.tensors);
  assert.ok(fp8.fp8.size > 0);
  const hfDir = join(dir, 'hf-fp8');
  writeTinyDeepseekHf(hfDir, m, { fp8 });
  const kept = loadDeepseekFromHf(hfDir);
  const attn = kept.weights.layers[0]!.attn;
  assert.equal(attn.qA!.dtype, 'fp8_e4m3');
  assert.equal(attn.qA!.blockScales!.length, 1 * 2); // [32, 160] -> ceil(32/128) x ceil(160/128)
  assert.equal(kept.weights.embed.dtype, 'f32');

  const ggufPath = join(dir, 'fp8-dequantized.gguf');
  writeTinyDeepseekGguf(ggufPath, m, {}, fp8.dequantized);
  const file = openGguf(ggufPath);
  const fromGguf = loadDeepseekFromGguf(file);
  file.close();
  const expected = logitsOf(fromGguf);
  const diffKeep = maxAbsDiff(logitsOf(kept), expected);
  assert.ok(diffKeep < 1e-4, `fp8 kept vs dequantized GGUF: ${diffKeep}`);
  const asF32 = loadDeepseekFromHf(hfDir, { fp8: 'f32' });
  assert.equal(asF32.weights.layers[0]!.attn.qA!.dtype, 'f32');
  assert.ok(maxAbsDiff(logitsOf(asF32), expected) < 1e-4);
  const asBf16 = loadDeepseekFromHf(hfDir, { fp8: 'bf16' });
  assert.equal(asBf16.weights.layers[0]!.attn.qA!.dtype, 'bf16');
  const bf16Diff = maxAbsDiff(logitsOf(asBf16), expected);
  assert.ok(bf16Diff < 0.5 && bf16Diff > 0, `bf16 rounding of the dequantized values: ${bf16Diff}`);
  // FP8 rounding itself moves the logits (the test above would notice a skipped dequantization).
  const exact = logitsOf(deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors)));
  assert.ok(maxAbsDiff(exact, expected) > 1e-3);
  // MTP from model.layers.3.* (FP8 eh_proj) matches the GGUF's nextn tensors.
  const h = kept.forwardWithHidden(PROMPT, kept.newCache(32), { allLogits: true }).hidden;
  const n = 4;
  const drafts = [kept, fromGguf].map((md) => md.mtpForward(h.slice(0, n * 160), PROMPT.slice(1, 1 + n), md.newMtpCache(8)));
  assert.ok(maxAbsDiff(drafts[0]!, drafts[1]!) < 1e-4);
});

test('sharded HF checkpoint (model.safetensors.index.json, scales in other shards) loads like the single file', () => {
  const m = tinyDeepseekModel({ seed: 23 });
  const fp8 = fp8Checkpoint(m.tensors);
  const single = join(dir, 'hf-single');
  const sharded = join(dir, 'hf-sharded');
  writeTinyDeepseekHf(single, m, { fp8 });
  writeTinyDeepseekHf(sharded, m, { fp8, shards: 3 });
  const a = logitsOf(loadDeepseekFromHf(single));
  const b = logitsOf(loadDeepseekFromHf(sharded));
  assert.equal(maxAbsDiff(a, b), 0);
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': 'model-00009-of-00009.safetensors' } }));
  assert.throws(() => loadDeepseekFromHf(sharded), /model-00009-of-00009\.safetensors/);
});

test('corrupt inputs: errors name the missing tensor, the misshapen tensor or the missing key', () => {
  const m = tinyDeepseekModel({ seed: 2 });
  const metadata = [...deepseekGgufMetadata(m), ...tinyTokenizerMetadata('bytes').entries];
  const tensors = deepseekGgufTensors(m);
  const write = (name: string, md = metadata, ts = tensors) => {
    const path = join(dir, name);
    writeGguf(path, { metadata: md, tensors: ts });
    return openGguf(path);
  };
  const missing = write('missing.gguf', metadata, tensors.filter((t) => t.name !== 'blk.2.attn_v_b.weight'));
  assert.throws(() => loadDeepseekFromGguf(missing), /tensor 'blk\.2\.attn_v_b\.weight'.*missing/);
  missing.close();
  const reshaped = write('reshaped.gguf', metadata, tensors.map((t) => (t.name === 'blk.1.ffn_up_exps.weight' ? { ...t, dims: [t.dims[0]!, t.dims[1]! * 2, t.dims[2]! / 2] } : t)));
  assert.throws(() => loadDeepseekFromGguf(reshaped), /tensor 'blk\.1\.ffn_up_exps\.weight'.*has ne \[64, 64, 4\], expected \[64, 32, 8\]/);
  reshaped.close();
  const noKey = write('nokey.gguf', metadata.filter(([k]) => k !== 'deepseek2.attention.kv_lora_rank'));
  assert.throws(() => loadDeepseekFromGguf(noKey), /deepseek2\.attention\.kv_lora_rank.*missing/);
  noKey.close();
  const llama = write('arch.gguf', metadata.map(([k, v]) => (k === 'general.architecture' ? [k, { type: 'string', value: 'llama' }] as typeof metadata[number] : [k, v])));
  assert.throws(() => loadDeepseekFromGguf(llama), /expected 'deepseek2', found 'llama'/);
  llama.close();

  // HF: an FP8 weight whose scale_inv has the wrong size.
  const fp8 = fp8Checkpoint(m.tensors);
  const hfDir = join(dir, 'hf-badscale');
  const brokenFp8 = new Map(fp8.fp8);
  brokenFp8.set('model.layers.0.self_attn.o_proj.weight', { ...fp8.fp8.get('model.layers.0.self_attn.o_proj.weight')!, scaleInv: new Float32Array(3) });
  writeTinyDeepseekHf(hfDir, m, { fp8: { ...fp8, fp8: brokenFp8 } });
  assert.throws(() => loadDeepseekFromHf(hfDir), /o_proj\.weight_scale_inv/);
  writeFileSync(join(hfDir, 'config.json'), '{"model_type": "deepseek_v3",');
  assert.throws(() => loadDeepseekFromHf(hfDir), /config\.json: JSON/);
});
