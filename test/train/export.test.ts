// Train tiny models a few steps, export them to GGUF, and check that our engine on the GGUF and
// llama.cpp (node-llama-cpp, child process) give the training forward's next-token distribution.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { noGrad } from '../../src/autograd/var.js';
import { runPretraining } from '../../src/train/pretrain.js';
import { exportCheckpoint } from '../../src/train/export-gguf.js';
import { TrainModel } from '../../src/train/model.js';
import { loadModel } from '../../src/models/load.js';
import type { DeepseekModel } from '../../src/models/deepseek-v3.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { resolveCheckpointDir } from '../../src/formats/hf-checkpoint.js';
import { openGguf, readF32 } from '../../src/formats/gguf.js';
import { llama3FreqFactors } from '../../src/nn/rope.js';
import { readF32Tensors } from '../../src/train/checkpoint.js';
import { type TinyDeepseekModel, fp8Checkpoint, writeTinyDeepseekHf } from '../../src/models/deepseek-v3-tiny.js';
import { compareLogProbs, runLlamaCppModels } from '../oracle/llama-cpp.js';
import { runFixture } from './run-fixture.js';
import { relDiff, tempDir } from './helpers.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

function trained(model?: Record<string, unknown>): { run: ReturnType<typeof runFixture>; model: TrainModel } {
  const overrides: Record<string, unknown> = { schedule: { type: 'cosine', warmup: 1, steps: 4 }, eval_every: 0, checkpoint_every: 0 };
  if (model) Object.assign(overrides, { model, mtp: { enabled: false, lambda: 0 }, moe: { gamma: 0, alpha: 0 } });
  const run = runFixture(overrides);
  dirs.push(run.dir);
  return { run, model: runPretraining(run.run, { progress: () => {} }).model };
}

const v3 = trained();
const qwen = trained({
  architectures: ['Qwen2ForCausalLM'], vocab_size: 300, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-6, initializer_range: 0.05,
});
const llama = trained({
  architectures: ['LlamaForCausalLM'], vocab_size: 300, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, initializer_range: 0.05, rope_theta: 500000,
});
const PROMPT = Int32Array.from(Tokenizer.fromFile(join(v3.run.dir, 'tokenizer.json')).encode('the cat sat on the mat. a dog ran to the box.'));

test('export to GGUF (deepseek2 with MTP, qwen2, llama): our engine on the GGUF == the training forward', () => {
  const T = PROMPT.length;
  for (const { run, model } of [v3, qwen, llama]) {
    const out = join(run.dir, 'model.gguf');
    exportCheckpoint(run.run.outDir, out, 'f32');
    const loaded = loadModel(out);
    assert.ok(loaded.tokenizer, 'the tokenizer is embedded');
    assert.deepEqual(loaded.tokenizer!.encode('the cat sat on the mat.'), Tokenizer.fromFile(join(run.dir, 'tokenizer.json')).encode('the cat sat on the mat.'));
    const engine = loaded.model;
    const ours = engine.forward(PROMPT, engine.newCache(64), { allLogits: true });
    const train = noGrad(() => model.logits(PROMPT, 1, T)).value;
    assert.ok(relDiff(ours, train) < 2e-5, `${run.run.model.architecture}: GGUF logits differ by ${relDiff(ours, train)}`);
    if (model.hasMtp) {
      const ds = engine as DeepseekModel;
      assert.equal(ds.weights.mtp.length, 1, 'the MTP module is exported (blk.N.nextn.*)');
      const { hidden } = ds.forwardWithHidden(PROMPT, ds.newCache(64), { allLogits: true });
      const mtp = ds.mtpForward(hidden.subarray(0, (T - 1) * model.config.hidden_size), PROMPT.subarray(1), ds.newMtpCache(64));
      const mtpTrain = noGrad(() => model.mtpLogits(PROMPT, 1, T)).value;
      assert.ok(relDiff(mtp, mtpTrain) < 2e-5, `MTP logits differ by ${relDiff(mtp, mtpTrain)}`);
    }
    // q8_0 export: close to f32 (the quantization error of 8-bit blocks), through the CLI.
    const q8 = join(run.dir, 'model-q8.gguf');
    execFileSync(process.execPath, [bin, 'export', '--checkpoint', run.run.outDir, '--to', 'gguf', '--out', q8, '--type', 'q8_0'], { stdio: 'pipe' });
    const q = loadModel(q8).model;
    const qLogits = q.forward(PROMPT, q.newCache(64), { allLogits: true });
    const e = relDiff(qLogits, train);
    assert.ok(e < 0.05 && e > 0, `q8_0 logits differ by ${e}`);
  }
  const bad = spawnSync(process.execPath, [bin, 'export', '--checkpoint', v3.run.run.outDir, '--out', 'x.gguf', '--type', 'q3'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--type: 'q3' is not one of f32, f16, q8_0/);
  const missing = spawnSync(process.execPath, [bin, 'export', '--checkpoint', tempDir('empty'), '--out', 'x.gguf'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no model\.safetensors, no model\.safetensors\.index\.json and no 'latest' pointer/);
});

test('llama.cpp loads the exported GGUFs and gives the training forward\'s next-token log-probs', { timeout: 300_000 }, async () => {
  const models = [v3, qwen, llama];
  const paths = models.map(({ run }) => {
    const out = join(run.dir, 'oracle.gguf');
    exportCheckpoint(run.run.outDir, out, 'f32');
    return out;
  });
  const results = await runLlamaCppModels(paths.map((modelPath) => ({ modelPath, jobs: [{ kind: 'logprobs' as const, tokens: [...PROMPT], allPositions: true, top: 32 }] })), 240_000);
  models.forEach(({ model, run }, m) => {
    const lp = results[m]![0]!;
    assert.equal(lp.kind, 'logprobs');
    if (lp.kind !== 'logprobs') return;
    assert.equal(lp.positions.length, PROMPT.length, 'log-probs after every prompt token');
    const logits = noGrad(() => model.logits(PROMPT, 1, PROMPT.length)).value;
    const V = model.config.vocab_size;
    const first = PROMPT.length - lp.positions.length;
    let worst = 0;
    lp.positions.forEach((theirs, i) => {
      const t = first + i;
      const c = compareLogProbs(logits.subarray(t * V, (t + 1) * V), theirs);
      worst = Math.max(worst, c.maxError);
      assert.ok(c.sameTop, `${run.run.model.architecture}: different top token at position ${t}`);
    });
    assert.ok(worst < 1e-3, `${run.run.model.architecture}: max |log p diff| vs llama.cpp = ${worst}`);
  });
});

test('export from a Hugging Face directory (2 shards, FP8 weights with block scales): the GGUF computes what the directory does', () => {
  const source = resolveCheckpointDir(v3.run.run.outDir);
  const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
  const tensors = readF32Tensors(join(source, 'model.safetensors'));
  const hf = tempDir('export-hf');
  dirs.push(hf);
  const model = { hfConfig: config, tensors } as unknown as TinyDeepseekModel;
  const fp8 = fp8Checkpoint(tensors);
  assert.ok(fp8.fp8.size > 0, 'some weights are stored as FP8');
  writeTinyDeepseekHf(hf, model, { fp8, shards: 2 });
  copyFileSync(join(source, 'tokenizer.json'), join(hf, 'tokenizer.json'));
  const out = join(hf, 'model.gguf');
  const cli = spawnSync(process.execPath, [bin, 'export', '--checkpoint', hf, '--to', 'gguf', '--out', out], { encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  const fromGguf = loadModel(out).model;
  const fromDir = loadModel(hf).model;
  const a = fromGguf.forward(PROMPT, fromGguf.newCache(64), { allLogits: true });
  const b = fromDir.forward(PROMPT, fromDir.newCache(64), { allLogits: true });
  assert.ok(relDiff(a, b) < 1e-5, `GGUF vs HF directory: ${relDiff(a, b)}`);
  assert.ok((fromGguf as DeepseekModel).weights.mtp.length === 1, 'the MTP module came along');
});

test('export of a Llama 3.1-style directory: rope_scaling llama3 becomes rope_freqs.weight, and the GGUF computes what the directory does', () => {
  const source = resolveCheckpointDir(llama.run.run.outDir);
  const hf = tempDir('export-llama3');
  dirs.push(hf);
  for (const file of ['model.safetensors', 'tokenizer.json']) copyFileSync(join(source, file), join(hf, file));
  const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
  const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  writeFileSync(join(hf, 'config.json'), JSON.stringify({ ...config, rope_scaling: scaling }));
  const out = join(hf, 'model.gguf');
  exportCheckpoint(hf, out, 'f32');
  const file = openGguf(out);
  const freqs = readF32(file, 'rope_freqs.weight');
  file.close();
  const headDim = (config.hidden_size as number) / (config.num_attention_heads as number);
  const expected = llama3FreqFactors(headDim, config.rope_theta as number, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 64 });
  assert.deepEqual(Array.from(freqs), Array.from(expected));
  assert.ok(expected.some((f) => f !== 1), 'the scaling changes some frequencies');
  const long = Int32Array.from({ length: 200 }, (_, i) => PROMPT[i % PROMPT.length]!);
  const fromGguf = loadModel(out).model;
  const fromDir = loadModel(hf).model;
  const a = fromGguf.forward(long, fromGguf.newCache(256), { allLogits: true });
  const b = fromDir.forward(long, fromDir.newCache(256), { allLogits: true });
  assert.ok(relDiff(a, b) < 1e-5, `GGUF vs HF directory: ${relDiff(a, b)}`);
  writeFileSync(join(hf, 'config.json'), JSON.stringify({ ...config, rope_scaling: { rope_type: 'dynamic', factor: 2 } }));
  assert.throws(() => exportCheckpoint(hf, join(hf, 'x.gguf'), 'f32'), /rope_scaling 'dynamic' is not supported for llama export/);
});
