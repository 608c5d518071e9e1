/**
 * `frugal info FILE --context N`: the KV cache and the weights + cache total sized for N tokens
 * (default: the model's context length), the plain-cache comparison for MLA models (deepseek2
 * GGUF and HF directory), and --context validation with a message that names the flag.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { describeModel, humanBytes, parseContext } from '../../src/cli/info.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf, writeTinyDeepseekHf } from '../../src/models/deepseek-v3-tiny.js';
import { openModelSource } from '../../src/models/load.js';
import { writeTinyDenseGguf } from '../../src/models/tiny.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-info-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const dense = join(dir, 'llama.gguf');
const deepseekGguf = join(dir, 'deepseek.gguf');
const deepseekHf = join(dir, 'deepseek-hf');
before(() => {
  writeTinyDenseGguf(dense, { architecture: 'llama', tokenizer: 'bytes', dtype: 'q8_0', seed: 3 });
  const model = tinyDeepseekModel({});
  writeTinyDeepseekGguf(deepseekGguf, model);
  writeTinyDeepseekHf(deepseekHf, model);
});

function frugal(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/frugal.js', ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function weightBytes(path: string): number {
  const source = openModelSource(path);
  try {
    return source.tensors().reduce((sum, t) => sum + t.byteLength, 0);
  } finally {
    source.close();
  }
}

test('--context sizes the KV cache and the weights + cache total; the default is the context length', () => {
  // 2 layers x (k + v) x 2 kv heads x 16 dims x 4 bytes = 512 bytes per token; context length 256
  const weights = weightBytes(dense);
  const byDefault = describeModel(dense);
  assert.ok(byDefault.includes('context length: 256'));
  assert.ok(byDefault.some((l) => l.endsWith('KV cache (f32) 512 B per token, 128.00 KiB at 256 tokens')), byDefault.join('\n'));
  assert.ok(byDefault.includes(`RAM at 256 tokens: weights ${humanBytes(weights)} + KV cache 128.00 KiB = ${humanBytes(weights + 256 * 512)}`), byDefault.join('\n'));
  const short = describeModel(dense, { context: 100 });
  assert.ok(short.some((l) => l.endsWith('KV cache (f32) 512 B per token, 50.00 KiB at 100 tokens')), short.join('\n'));
  assert.ok(short.includes(`RAM at 100 tokens: weights ${humanBytes(weights)} + KV cache 50.00 KiB = ${humanBytes(weights + 100 * 512)}`));
  const long = describeModel(dense, { context: 4096 }).join('\n');
  assert.match(long, /2\.00 MiB at 4096 tokens \(past the model's context length 256\)/);
  // no plain-cache line for a model whose cache already holds full K/V
  assert.doesNotMatch(long, /plain KV cache/);
});

test('MLA models also show the plain (full K/V per head) cache at that context', () => {
  // 3 layers; MLA caches latent 32 + rope key 16 = 48 values per layer (576 B per token in f32);
  // plain: 4 heads x (32 + 16) keys + 4 heads x 32 values = 320 per layer (3840 B per token)
  for (const path of [deepseekGguf, deepseekHf]) {
    const weights = weightBytes(path);
    const lines = describeModel(path, { context: 100 });
    const text = lines.join('\n');
    assert.match(text, /KV cache \(f32\) 576 B per token, 56\.25 KiB at 100 tokens/);
    assert.ok(lines.includes(`RAM at 100 tokens: weights ${humanBytes(weights)} + KV cache 56.25 KiB = ${humanBytes(weights + 57600)}`), text);
    assert.ok(
      lines.includes(`plain KV cache (full K/V per head, not absorbed; f32): 3.75 KiB per token, 375.00 KiB at 100 tokens (6.7x the MLA cache; weights + plain cache ${humanBytes(weights + 384000)})`),
      text,
    );
  }
});

test('deepseek2: layers with the MTP module, MLA against full MHA, experts, and the parameter counts the config implies', () => {
  const withMtp = join(dir, 'deepseek-mtp.gguf');
  const model = tinyDeepseekModel({ mtp: true });
  writeTinyDeepseekGguf(withMtp, model);
  for (const [path, mtp] of [[deepseekGguf, false], [withMtp, true]] as const) {
    const text = describeModel(path).join('\n');
    assert.match(text, mtp ? /layers: 3 \(1 dense, 2 MoE\) \+ 1 MTP, / : /layers: 3 \(1 dense, 2 MoE\), /, text);
    assert.match(text, /MLA cache: 48 values per token per layer \(latent 32 \+ rope key 16\) vs 320 for full MHA \(6\.7x smaller\)/);
    assert.match(text, /experts: \d+ routed, \d+ per token/);
    assert.match(text, mtp ? /parameters \(from the config\): .* total, .* active per token, MTP module / : /parameters \(from the config\): .* active per token$/m, text);
    assert.match(text, /^parameters: .* in the file \(\d+\)$/m);
  }
});

test('frugal info FILE --context N on the command line, and its validation', () => {
  const ok = frugal('info', deepseekGguf, '--context', '100');
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^backend: /);
  assert.match(ok.stdout, /RAM at 100 tokens: /);
  assert.match(ok.stdout, /plain KV cache .* 375\.00 KiB at 100 tokens/);
  const before = frugal('info', '--context=64', dense);
  assert.equal(before.code, 0, before.stderr);
  assert.match(before.stdout, /32\.00 KiB at 64 tokens/);
  for (const bad of ['0', '-5', '1.5', 'abc', '', '1e3']) {
    const r = frugal('info', dense, `--context=${bad}`);
    assert.equal(r.code, 2, `--context=${bad} is refused`);
    assert.match(r.stderr, new RegExp(`--context must be a positive integer \\(tokens\\), got '${bad.replace('.', '\\.')}'`));
  }
  const noFile = frugal('info', '--context', '10');
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /--context needs a model FILE/);
  const two = frugal('info', dense, dense);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /usage: frugal info/);
  assert.equal(parseContext('8192'), 8192);
  assert.throws(() => parseContext(String(2 ** 60)), /--context must be a positive integer/);
});
