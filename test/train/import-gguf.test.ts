// `frugal import`: a deepseek2 (or qwen2 / llama) GGUF back into a training model directory. The shipped model and a
// tiny random one (yarn rope scaling, grouped routing, the real 128K DeepSeek-V3 tokenizer) go
// GGUF -> directory -> GGUF with every tensor bit for bit; the training forward on the imported
// directory gives the engine's logits on the GGUF, MTP module included; the tokenizer written as
// tokenizer.json encodes as the GGUF's does; a stage can train from the directory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noGrad } from '../../src/autograd/var.js';
import { openGguf } from '../../src/formats/gguf.js';
import type { DeepseekModel } from '../../src/models/deepseek-v3.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../../src/models/deepseek-v3-tiny.js';
import { denseGgufMetadata, denseGgufTensors, tinyDenseModel, tinyTokenizerMetadata, writeTinyDenseGguf } from '../../src/models/tiny.js';
import { gguf as ggufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { loadModel } from '../../src/models/load.js';
import { exportCheckpoint } from '../../src/train/export-gguf.js';
import { importGguf, writeImportedModel } from '../../src/train/import-gguf.js';
import { TrainModel } from '../../src/train/model.js';
import { loadTrainModel } from '../../src/cli/sft.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { refBackend } from '../../src/tensor/index.js';
import { relDiff, tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'frugal.js');
const shipped = join(root, 'models', 'frugal-r1-tiny.gguf');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const dir = (name: string): string => {
  const d = tempDir(name);
  dirs.push(d);
  return d;
};

/** Every tensor of a equals b's, byte for byte; with `metadata`, the metadata too but for general.name. */
function sameGguf(a: string, b: string, metadata: boolean): void {
  const x = openGguf(a);
  const y = openGguf(b);
  assert.deepEqual(x.tensors.map((t) => t.name).sort(), y.tensors.map((t) => t.name).sort());
  for (const t of x.tensors) {
    const u = y.tensor(t.name)!;
    assert.equal(u.dtype, t.dtype, t.name);
    assert.deepEqual(u.dims, t.dims, t.name);
    assert.ok(Buffer.from(x.readTensorBytes(t)).equals(Buffer.from(y.readTensorBytes(u))), `${t.name} differs after import and export`);
  }
  if (!metadata) return;
  const show = (v: unknown): string => JSON.stringify(v, (_, w) => (typeof w === 'bigint' ? String(w) : w));
  for (const [key, value] of x.metadata) {
    if (key === 'general.name') continue;
    assert.equal(show(y.metadata.get(key)?.value), show(value.value), `metadata ${key}`);
  }
}

function checkForward(gguf: string, imported: string, text: string): void {
  const loaded = loadModel(gguf);
  const engine = loaded.model as DeepseekModel;
  const prompt = Int32Array.from(loaded.tokenizer!.encode(text));
  const T = prompt.length;
  const { model } = loadTrainModel(imported);
  const ours = engine.forward(prompt, engine.newCache(256), { allLogits: true });
  const train = noGrad(() => model.logits(prompt, 1, T)).value;
  assert.ok(relDiff(ours, train) < 2e-5, `imported training forward differs from the engine by ${relDiff(ours, train)}`);
  assert.ok(model.hasMtp, 'the MTP module is imported');
  const { hidden } = engine.forwardWithHidden(prompt, engine.newCache(256), { allLogits: true });
  const mtp = engine.mtpForward(hidden.subarray(0, (T - 1) * model.config.hidden_size), prompt.subarray(1), engine.newMtpCache(256));
  const mtpTrain = noGrad(() => model.mtpLogits(prompt, 1, T)).value;
  assert.ok(relDiff(mtp, mtpTrain) < 2e-5, `imported MTP logits differ by ${relDiff(mtp, mtpTrain)}`);
}

test('the shipped model: import, export again gives the same tensors; the training forward gives the engine\'s logits', () => {
  const out = dir('import-shipped');
  const cli = spawnSync(process.execPath, [bin, 'import', '--gguf', shipped, '--out', out], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stderr, /DeepseekV3ForCausalLM, 171 tensors/);
  const again = join(out, 'again.gguf');
  exportCheckpoint(out, again, 'f32');
  sameGguf(shipped, again, true);
  checkForward(shipped, out, '<｜User｜>What is 47 + 36?<｜Assistant｜><think>\n');
  const fromGguf = loadModel(shipped).tokenizer!;
  const fromJson = Tokenizer.fromFile(join(out, 'tokenizer.json'));
  for (const text of ['Sort these words: pear, apple, fig', 'Solve 2x + 7 = 15 <think>\n</think> <answer>4</answer>', ' \n\t 12345 héllo 世界 🙂', '<｜end▁of▁sentence｜>x']) {
    assert.deepEqual(fromJson.encode(text, { addSpecialTokens: true }), fromGguf.encode(text, { addSpecialTokens: true }), JSON.stringify(text));
  }
  assert.equal(fromJson.eosId, fromGguf.eosId);
  assert.equal(fromJson.bosId, fromGguf.bosId);
  assert.equal(fromJson.spec.chatTemplate, fromGguf.spec.chatTemplate);
});

test('a tiny model with yarn scaling, grouped routing and the real DeepSeek-V3 tokenizer; q8_0 weights are dequantized', () => {
  const model = tinyDeepseekModel({ tokenizer: 'deepseek-v3', mtp: true, seed: 3 });
  const d = dir('import-tiny');
  const gguf = join(d, 'tiny.gguf');
  writeTinyDeepseekGguf(gguf, model);
  const out = join(d, 'imported');
  writeImportedModel(gguf, out);
  const again = join(d, 'again.gguf');
  exportCheckpoint(out, again, 'f32');
  sameGguf(gguf, again, false); // the tiny writer's metadata keys differ from the exporter's
  checkForward(gguf, out, 'The capital of France is Paris. 1 + 1 = 2.');
  // quantized file: the import dequantizes; exporting that as f32 gives the dequantized values
  const q8 = join(d, 'q8.gguf');
  writeTinyDeepseekGguf(q8, model, { dtype: 'q8_0' });
  const imported = importGguf(q8);
  // the ref backend multiplies the dequantized weights by f32 activations, as training does
  const engineOnQ8 = loadModel(q8, { backend: refBackend }).model;
  const prompt = Int32Array.of(1, 2, 3, 4, 5, 6);
  const trainModel = TrainModel.fromTensors(imported.config as never, imported.tensors);
  const a = engineOnQ8.forward(prompt, engineOnQ8.newCache(32), { allLogits: true });
  const b = noGrad(() => trainModel.logits(prompt, 1, prompt.length)).value;
  assert.ok(relDiff(a, b) < 2e-5, `q8_0 import differs from the engine on the q8_0 file by ${relDiff(a, b)}`);
});

test('import refuses what it cannot take, naming the file and the problem', () => {
  const d = dir('import-bad');
  const missing = spawnSync(process.execPath, [bin, 'import', '--gguf', shipped], { encoding: 'utf8' });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--out is required/);
  const noMtp = join(d, 'no-mtp.gguf');
  writeTinyDeepseekGguf(noMtp, tinyDeepseekModel({ tokenizer: 'bytes', mtp: false, seed: 1 }));
  const withoutMtp = importGguf(noMtp); // a file without an MTP module imports as a model without one
  assert.equal(withoutMtp.config.architecture === 'DeepseekV3ForCausalLM' ? withoutMtp.config.num_nextn_predict_layers : -1, 0);
  assert.ok(![...withoutMtp.tensors.keys()].some((name) => name.includes('eh_proj')));
  const qwen3 = join(d, 'qwen3.gguf');
  writeTinyDenseGguf(qwen3, { architecture: 'qwen3', tokenizer: 'bytes', layers: 1, hiddenSize: 32, heads: 2, kvHeads: 1, ffSize: 64 });
  assert.throws(() => importGguf(qwen3), /qwen3\.gguf: metadata 'general\.architecture': import takes deepseek2, qwen2 and llama files, found "qwen3"/);
  const notGguf = join(d, 'not.gguf');
  writeFileSync(notGguf, 'hello');
  const r = spawnSync(process.execPath, [bin, 'import', '--gguf', notGguf, '--out', join(d, 'x')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /not\.gguf/);
});

test('qwen2 and llama files (llama q/k rows permuted back): export of the import gives the same tensors, the training forward the engine\'s logits', () => {
  for (const architecture of ['qwen2', 'llama'] as const) {
    const d = dir(`import-${architecture}`);
    const gguf = join(d, 'dense.gguf');
    writeTinyDenseGguf(gguf, { architecture, tokenizer: 'qwen2.5', layers: 2, hiddenSize: 64, heads: 4, kvHeads: 2, ffSize: 128, seed: 5, tiedEmbeddings: architecture === 'llama' });
    const out = join(d, 'imported');
    const imported = writeImportedModel(gguf, out);
    assert.equal(imported.config.architecture, architecture === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM');
    const again = join(d, 'again.gguf');
    exportCheckpoint(out, again, 'f32');
    sameGguf(gguf, again, false);
    const loaded = loadModel(gguf);
    const prompt = Int32Array.from(loaded.tokenizer!.encode('The capital of France is Paris.'));
    const ours = loaded.model.forward(prompt, loaded.model.newCache(64), { allLogits: true });
    const train = noGrad(() => loadTrainModel(out).model.logits(prompt, 1, prompt.length)).value;
    assert.ok(relDiff(ours, train) < 2e-5, `${architecture}: imported training forward differs by ${relDiff(ours, train)}`);
  }
  // linear rope scaling as llama.cpp reads it: a factor without a type key, or the legacy rope.scale_linear
  for (const [key, label] of [['llama.rope.scaling.factor', 'factor'], ['llama.rope.scale_linear', 'legacy']] as const) {
    const d = dir(`import-linear-${label}`);
    const gguf = join(d, 'linear.gguf');
    const model = tinyDenseModel({ architecture: 'llama', tokenizer: 'bytes', layers: 1, hiddenSize: 32, heads: 2, kvHeads: 1, ffSize: 64, seed: 9 });
    writeGguf(gguf, { metadata: [...denseGgufMetadata(model), [key, ggufValue.f32(4)], ...tinyTokenizerMetadata('bytes').entries], tensors: denseGgufTensors(model) });
    const out = join(d, 'imported');
    writeImportedModel(gguf, out);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).rope_scaling, { type: 'linear', rope_type: 'linear', factor: 4 }, label);
    const loaded = loadModel(gguf);
    const prompt = Int32Array.from([1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 32, 84, 104, 101]);
    const ours = loaded.model.forward(prompt, loaded.model.newCache(64), { allLogits: true });
    const train = noGrad(() => loadTrainModel(out).model.logits(prompt, 1, prompt.length)).value;
    assert.ok(relDiff(ours, train) < 2e-5, `${label}: imported training forward differs by ${relDiff(ours, train)}`);
  }
  const scaled = join(dir('import-llama3'), 'scaled.gguf');
  writeTinyDenseGguf(scaled, { architecture: 'llama', tokenizer: 'bytes', layers: 1, hiddenSize: 32, heads: 2, kvHeads: 1, ffSize: 64, llama3RopeScaling: true });
  assert.throws(() => importGguf(scaled), /scaled\.gguf: tensor 'rope_freqs\.weight': llama3 rope scaling/);
});
