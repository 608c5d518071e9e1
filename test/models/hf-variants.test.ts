/**
 * Hugging Face checkpoint directories as real models ship them: config.json and file-layout
 * variants (rope_scaling spellings and kinds, dtypes, shards, extra tensors, tied heads, optional
 * fields, token id lists, transformers-v5 rope_parameters, chat_template.jinja) each load and give
 * the logits transformers would compute (a plain double-precision reference written here from the
 * HF modeling code, or the project's GGUF path for DeepSeek), or are refused naming file and field.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeSafetensorsIndex } from '../../src/formats/hf-checkpoint.js';
import { parseHfConfig } from '../../src/formats/hf-config.js';
import { type SafetensorsDtype } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors-write.js';
import { type DeepseekModel } from '../../src/models/deepseek-v3.js';
import { fp8Checkpoint, tinyDeepseekModel, writeTinyDeepseekGguf, writeTinyDeepseekHf } from '../../src/models/deepseek-v3-tiny.js';
import { loadModel } from '../../src/models/load.js';
import { type TinyDenseHeadOptions, type TinyDenseModel, tinyDenseModel, tinyTokenizerPath } from '../../src/models/tiny.js';
import { dequantize, dequantizeFp8BlockScaled, quantize, quantizeFp8BlockScaled } from '../../src/tensor/quant/index.js';
import { naiveDenseForward, ropeHalf } from './dense-naive.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-hf-variants-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TOKENS = [3, 141, 59, 26, 53, 58, 97, 93];

// ---------------------------------------------------------------------------------------------
// Reference: the HF modeling code (Llama / Qwen2) in double precision over f32 HF-layout tensors.

type Tensors = Map<string, { shape: number[]; values: Float32Array }>;

interface Reference {
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  /** inverse frequency of each rotated pair */
  freqs: number[];
  /** transformers' attention_scaling: multiplies cos and sin */
  attentionScaling: number;
  /** which tensor is the output head */
  head: string;
}

function plainFreqs(dim: number, base: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / dim));
}

/** transformers _compute_yarn_parameters (truncate = true). */
function yarnFreqs(dim: number, base: number, factor: number, original: number, betaFast = 32, betaSlow = 1): number[] {
  const corr = (rot: number) => (dim * Math.log(original / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(Math.floor(corr(betaFast)), 0);
  let high = Math.min(Math.ceil(corr(betaSlow)), dim - 1);
  if (low === high) high += 0.001;
  return plainFreqs(dim, base).map((f, i) => {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapolation = 1 - ramp;
    return (f / factor) * (1 - extrapolation) + f * extrapolation;
  });
}

function llama3Freqs(dim: number, base: number, s: { factor: number; low: number; high: number; original: number }): number[] {
  const lowWavelen = s.original / s.low;
  const highWavelen = s.original / s.high;
  return plainFreqs(dim, base).map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.original / wavelen - s.low) / (s.high - s.low);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

function referenceLogits(t: Tensors, r: Reference, tokens: number[]): Float64Array[] {
  return naiveDenseForward(t, {
    heads: r.heads, kvHeads: r.kvHeads, headDim: r.headDim, eps: r.eps, head: r.head,
    rope: (v, offset, pos) => ropeHalf(v, offset, r.headDim, pos, r.freqs, r.attentionScaling),
  }, tokens);
}

// ---------------------------------------------------------------------------------------------
// Writing directories

type StoredDtype = 'F32' | 'F16' | 'BF16' | 'F8_E4M3';

interface DirOptions {
  /** Edits config.json (as written by tinyDenseModel). */
  config?: (c: Record<string, unknown>) => void;
  /** Storage dtype per tensor (default F32); 1-D tensors stay F32 for F8_E4M3. */
  dtype?: (name: string) => StoredDtype;
  /** Shards with an index (default: one model.safetensors). */
  shards?: number;
  /** Extra tensors written but not part of the model. */
  extra?: Tensors;
  /** Other files to write (name -> text). */
  files?: Record<string, string>;
}

let dirCount = 0;

/**
 * Writes an HF directory and returns it with the tensors as the checkpoint holds them (values
 * rounded to their storage dtype, FP8 dequantized with its block scales): the reference's input.
 */
function writeDir(label: string, model: TinyDenseModel, options: DirOptions = {}): { path: string; stored: Tensors } {
  const path = join(dir, `${++dirCount}-${label.replace(/\W+/g, '-').slice(0, 40)}`);
  mkdirSync(path, { recursive: true });
  const config = structuredClone(model.hfConfig);
  options.config?.(config);
  writeFileSync(join(path, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const stored: Tensors = new Map();
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }[] = [];
  for (const [name, { shape, values }] of [...model.tensors, ...(options.extra ?? [])]) {
    let dtype = options.dtype?.(name) ?? 'F32';
    if (dtype === 'F8_E4M3' && shape.length !== 2) dtype = 'F32';
    if (dtype === 'F8_E4M3') {
      const [rows, cols] = shape as [number, number];
      const q = quantizeFp8BlockScaled(values, rows, cols);
      entries.push({ name, dtype, shape, data: q.data });
      entries.push({ name: `${name}_scale_inv`, dtype: 'F32', shape: [Math.ceil(rows / 128), Math.ceil(cols / 128)], data: quantize('f32', q.blockScales) });
      stored.set(name, { shape, values: dequantizeFp8BlockScaled(q.data, q.blockScales, rows, cols) });
      continue;
    }
    const ours = dtype === 'F32' ? 'f32' : dtype === 'F16' ? 'f16' : 'bf16';
    const data = quantize(ours, values);
    entries.push({ name, dtype, shape, data });
    stored.set(name, { shape, values: dequantize(ours, data, values.length) });
  }
  const shards = options.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(join(path, 'model.safetensors'), entries, { format: 'pt' });
  } else {
    const weightMap = new Map<string, string>();
    let total = 0;
    for (let s = 0; s < shards; s++) {
      // DeepSeek distill repos use a 6-digit total; the map, not the pattern, decides.
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(6, '0')}.safetensors`;
      const part = entries.filter((_, i) => i % shards === s);
      total += writeSafetensors(join(path, file), part, { format: 'pt' }).dataBytes;
      for (const e of part) weightMap.set(e.name, file);
    }
    writeSafetensorsIndex(path, weightMap, total);
  }
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(path, name), text);
  return { path, stored };
}

function maxDiff(model: { forward(t: Int32Array, c: never, o: { allLogits: boolean }): Float32Array; newCache(n?: number): unknown }, expected: Float64Array[]): number {
  const logits = model.forward(Int32Array.from(TOKENS), model.newCache(16) as never, { allLogits: true });
  const vocab = expected[0]!.length;
  assert.equal(logits.length, expected.length * vocab);
  let m = 0;
  expected.forEach((row, p) => row.forEach((v, i) => (m = Math.max(m, Math.abs(v - logits[p * vocab + i]!)))));
  return m;
}

// ---------------------------------------------------------------------------------------------
// Dense variants: each directory's logits against the reference.

interface DenseVariant {
  name: string;
  model: TinyDenseHeadOptions;
  dir?: DirOptions;
  /** The reference's rope (default: plain at the model's rope_theta). */
  rope?: (headDim: number, base: number) => { freqs: number[]; attentionScaling?: number };
  /** Output head tensor (default lm_head.weight unless the model is tied). */
  head?: string;
  eps?: number;
  /** Expected model.info.contextLength. */
  context?: number;
}

const llama = (o: Partial<TinyDenseHeadOptions> = {}): TinyDenseHeadOptions => ({ architecture: 'llama', tokenizer: 'bytes', hiddenSize: 64, heads: 4, kvHeads: 2, ffSize: 96, contextLength: 256, seed: 11, ...o });
const qwen2 = (o: Partial<TinyDenseHeadOptions> = {}): TinyDenseHeadOptions => ({ ...llama(o), architecture: 'qwen2', seed: o.seed ?? 12 });
const LLAMA3 = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 64 };
const llama3Ref = (hd: number, base: number) => ({ freqs: llama3Freqs(hd, base, { factor: 8, low: 1, high: 4, original: 64 }) });
const yarnScaling = (factor: number) => 0.1 * Math.log(factor) + 1;

const DENSE: DenseVariant[] = [
  { name: 'rope_scaling null', model: llama(), dir: { config: (c) => void (c.rope_scaling = null) } },
  { name: 'rope_scaling absent, rms_norm_eps absent (LlamaConfig default 1e-6)', model: llama({ rmsNormEps: 1e-6 }), dir: { config: (c) => void delete c.rms_norm_eps } },
  { name: 'rms_norm_eps 1e-5 and a large rope_theta', model: llama({ rmsNormEps: 1e-5, ropeTheta: 500000 }), eps: 1e-5 },
  { name: "rope_scaling {rope_type: 'default'}", model: llama(), dir: { config: (c) => void (c.rope_scaling = { rope_type: 'default' }) } },
  {
    name: "rope_scaling {type: 'linear', factor: 2} (integer factor)", model: llama(),
    dir: { config: (c) => void (c.rope_scaling = { type: 'linear', factor: 2 }) },
    rope: (hd, base) => ({ freqs: plainFreqs(hd, base).map((f) => f / 2) }),
  },
  { name: "llama3 under rope_type, BF16 weights, 2 shards", model: llama(), dir: { config: (c) => void (c.rope_scaling = LLAMA3), dtype: () => 'BF16', shards: 2 }, rope: llama3Ref },
  { name: "llama3 under 'type' (older transformers), integer factor", model: llama(), dir: { config: (c) => void (c.rope_scaling = { ...LLAMA3, rope_type: undefined, type: 'llama3', factor: 8 }) }, rope: llama3Ref },
  {
    // Dynamic NTK only changes the frequencies beyond max_position_embeddings: within it, plain RoPE.
    name: "rope_scaling {type: 'dynamic', factor: 2}", model: llama(), dir: { config: (c) => void (c.rope_scaling = { type: 'dynamic', factor: 2.0 }) }, context: 256,
  },
  {
    name: 'qwen2 yarn {factor 4, original_max_position_embeddings 64, type: yarn}', model: qwen2(),
    dir: { config: (c) => void (c.rope_scaling = { factor: 4.0, original_max_position_embeddings: 64, type: 'yarn' }) },
    rope: (hd, base) => ({ freqs: yarnFreqs(hd, base, 4, 64), attentionScaling: yarnScaling(4) }),
  },
  {
    name: 'qwen2 yarn without original_max_position_embeddings (= max_position_embeddings)', model: qwen2(),
    dir: { config: (c) => void (c.rope_scaling = { rope_type: 'yarn', factor: 4 }) },
    rope: (hd, base) => ({ freqs: yarnFreqs(hd, base, 4, 256), attentionScaling: yarnScaling(4) }),
  },
  {
    name: 'qwen2 yarn with attention_factor and beta_fast / beta_slow', model: qwen2(),
    dir: { config: (c) => void (c.rope_scaling = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, attention_factor: 1.5, beta_fast: 16, beta_slow: 2 }) },
    rope: (hd, base) => ({ freqs: yarnFreqs(hd, base, 4, 64, 16, 2), attentionScaling: 1.5 }),
  },
  {
    name: 'qwen2 yarn with mscale and mscale_all_dim', model: qwen2(),
    dir: { config: (c) => void (c.rope_scaling = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, mscale: 0.707, mscale_all_dim: 1 }) },
    rope: (hd, base) => ({ freqs: yarnFreqs(hd, base, 4, 64), attentionScaling: (0.1 * 0.707 * Math.log(4) + 1) / (0.1 * Math.log(4) + 1) }),
  },
  {
    name: 'transformers v5 rope_parameters (no rope_theta / rope_scaling)', model: llama({ ropeTheta: 50000 }),
    dir: { config: (c) => { delete c.rope_theta; c.rope_parameters = { ...LLAMA3, rope_theta: 50000 }; } }, rope: llama3Ref,
  },
  {
    name: 'tie_word_embeddings true WITH an lm_head.weight (transformers ties anyway)', model: llama(),
    dir: { config: (c) => void (c.tie_word_embeddings = true) }, head: 'model.embed_tokens.weight',
  },
  {
    name: 'qwen2 tie_word_embeddings true with lm_head.weight, F16', model: qwen2(),
    dir: { config: (c) => void (c.tie_word_embeddings = true), dtype: () => 'F16' }, head: 'model.embed_tokens.weight',
  },
  { name: 'tie_word_embeddings true, no lm_head.weight', model: llama({ tiedEmbeddings: true }), head: 'model.embed_tokens.weight' },
  {
    name: 'tie_word_embeddings absent (false) keeps lm_head', model: qwen2(), dir: { config: (c) => void delete c.tie_word_embeddings },
  },
  {
    name: 'qwen2 as R1-Distill ships it: use_sliding_window false, sliding_window 4096, max_window_layers 21, bos/eos, BF16', model: qwen2(),
    dir: {
      config: (c) => Object.assign(c, { use_sliding_window: false, sliding_window: 4096, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151643, torch_dtype: 'bfloat16', use_mrope: false, use_cache: true, transformers_version: '4.44.0', attention_dropout: 0.0, initializer_range: 0.02 }),
      dtype: () => 'BF16',
      files: { 'generation_config.json': JSON.stringify({ _from_model_config: true, bos_token_id: 151646, do_sample: true, eos_token_id: 151643, temperature: 0.6, top_p: 0.95 }) },
    },
    context: 256,
  },
  {
    // Every layer from max_window_layers on attends within the window: exact up to that many tokens.
    name: 'qwen2 use_sliding_window true (window 64, max_window_layers 1): context capped at the window', model: qwen2(),
    dir: { config: (c) => Object.assign(c, { use_sliding_window: true, sliding_window: 64, max_window_layers: 1 }) }, context: 64,
  },
  {
    name: 'qwen2 use_sliding_window true but max_window_layers >= layers: no layer slides', model: qwen2(),
    dir: { config: (c) => Object.assign(c, { use_sliding_window: true, sliding_window: 64, max_window_layers: 28 }) }, context: 256,
  },
  { name: 'head_dim given explicitly (hidden 64, 4 heads of 32)', model: llama({ headDim: 32 }) },
  { name: 'head_dim given and equal to hidden / heads', model: qwen2(), dir: { config: (c) => void (c.head_dim = 16) } },
  { name: 'num_key_value_heads absent (= num_attention_heads)', model: llama({ kvHeads: 4 }), dir: { config: (c) => void delete c.num_key_value_heads } },
  { name: 'num_key_value_heads null (= num_attention_heads)', model: qwen2({ kvHeads: 4 }), dir: { config: (c) => void (c.num_key_value_heads = null) } },
  {
    name: 'Llama 3.1 style: eos_token_id list, attention_bias / mlp_bias false, pretraining_tp, dtype key', model: llama(),
    dir: {
      config: (c) => Object.assign(c, { bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], attention_bias: false, mlp_bias: false, pretraining_tp: 1, dtype: 'bfloat16', rope_scaling: LLAMA3 }),
      files: { 'generation_config.json': JSON.stringify({ bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], do_sample: true, temperature: 0.6, top_p: 0.9 }) },
    },
    rope: llama3Ref,
  },
  {
    name: 'architectures absent, model_type only', model: qwen2(), dir: { config: (c) => void delete c.architectures },
  },
  {
    name: 'extra unused tensors (rotary_emb.inv_freq of older llama checkpoints), 3 shards', model: llama(),
    dir: {
      shards: 3,
      extra: new Map([0, 1].map((l) => [`model.layers.${l}.self_attn.rotary_emb.inv_freq`, { shape: [8], values: Float32Array.from(plainFreqs(16, 10000)) }])),
    },
  },
  {
    name: 'mixed storage: F16 attention, BF16 MLP, F32 norms and embeddings', model: qwen2(),
    dir: { dtype: (n) => (n.includes('self_attn') ? 'F16' : n.includes('mlp') ? 'BF16' : 'F32') },
  },
  {
    name: 'FP8 e4m3 block-scaled linear weights, rows/cols not multiples of 128 (hidden 136, ff 200)', model: llama({ hiddenSize: 136, heads: 4, kvHeads: 2, ffSize: 200, seed: 13 }),
    dir: { dtype: (n) => (/_proj\.weight$/.test(n) ? 'F8_E4M3' : 'F32'), config: (c) => void (c.torch_dtype = 'float16') },
  },
];

for (const v of DENSE) {
  test(`dense HF variant: ${v.name}`, () => {
    const model = tinyDenseModel(v.model);
    const { path, stored } = writeDir(v.name, model, v.dir);
    const loaded = loadModel(path);
    const base = model.options.ropeTheta;
    const rope = v.rope?.(model.headDim, base) ?? { freqs: plainFreqs(model.headDim, base) };
    const head = v.head ?? (model.options.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight');
    const expected = referenceLogits(stored, {
      heads: model.options.heads, kvHeads: model.options.kvHeads, headDim: model.headDim, eps: v.eps ?? model.options.rmsNormEps,
      freqs: rope.freqs, attentionScaling: rope.attentionScaling ?? 1, head,
    }, TOKENS);
    const d = maxDiff(loaded.model as never, expected);
    assert.ok(d < 2e-3, `max |logit - reference| = ${d}`);
    if (v.context !== undefined) assert.equal(loaded.model.info.contextLength, v.context);
  });
}

test('dense HF variant: chat_template.jinja beside tokenizer.json (transformers >= 4.43 saves it there)', () => {
  const model = tinyDenseModel(qwen2({ tokenizer: 'qwen2.5', hiddenSize: 32, heads: 2, kvHeads: 1, layers: 1, tiedEmbeddings: true }));
  const template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}";
  const tokenizerJson = JSON.parse(readText(tinyTokenizerPath('qwen2.5')));
  const { path } = writeDir('jinja', model, { files: { 'tokenizer.json': JSON.stringify(tokenizerJson), 'chat_template.jinja': template } });
  const loaded = loadModel(path);
  assert.equal(loaded.chatTemplate, template);
});

test('dense HF variant: tokenizer_config.json with chat_template as a list of named templates; added_tokens with special false', () => {
  const model = tinyDenseModel(qwen2({ tokenizer: 'qwen2.5', hiddenSize: 32, heads: 2, kvHeads: 1, layers: 1, tiedEmbeddings: true }));
  const tokenizerJson = JSON.parse(readText(tinyTokenizerPath('qwen2.5'))) as { added_tokens: { content: string; special: boolean }[] };
  assert.ok(tokenizerJson.added_tokens.some((t) => t.content === '<tool_call>' && !t.special));
  const templates = [{ name: 'tool_use', template: 'TOOLS' }, { name: 'default', template: 'DEFAULT' }];
  const { path } = writeDir('template-list', model, {
    files: {
      'tokenizer.json': JSON.stringify(tokenizerJson),
      'tokenizer_config.json': JSON.stringify({ bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', add_bos_token: false, chat_template: templates, model_max_length: 131072, legacy: false }),
    },
  });
  const loaded = loadModel(path);
  assert.equal(loaded.chatTemplate, 'DEFAULT');
  assert.deepEqual(loaded.tokenizer!.encode('<tool_call>'), [151657]);
});

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Refusals: clear, naming the file and the field.

test('dense refusals name the file and the field', () => {
  const model = tinyDenseModel(llama());
  const refuse = (label: string, options: DirOptions, pattern: RegExp) => {
    const { path } = writeDir(label, model, options);
    assert.throws(() => loadModel(path), (e: Error) => {
      assert.match(e.message, pattern);
      assert.ok(e.message.includes(path), `the message names the directory's file: ${e.message}`);
      return true;
    }, label);
  };
  refuse('attention_bias', { config: (c) => void (c.attention_bias = true) }, /config\.json.*attention_bias/);
  refuse('mlp_bias', { config: (c) => void (c.mlp_bias = true) }, /config\.json.*mlp_bias/);
  refuse('hidden_act gelu', { config: (c) => void (c.hidden_act = 'gelu') }, /config\.json.*hidden_act.*gelu/);
  refuse('unknown rope type', { config: (c) => void (c.rope_scaling = { rope_type: 'longrope', factor: 2 }) }, /config\.json.*rope_scaling\.rope_type.*longrope/);
  refuse('llama3 missing field', { config: (c) => void (c.rope_scaling = { rope_type: 'llama3', factor: 8 }) }, /config\.json.*rope_scaling\.low_freq_factor/);
  // An index that names a shard which is not there.
  const { path } = writeDir('missing shard', model, { shards: 2 });
  const index = JSON.parse(readText(join(path, 'model.safetensors.index.json'))) as { weight_map: Record<string, string> };
  index.weight_map['model.norm.weight'] = 'model-00003-of-000002.safetensors';
  writeFileSync(join(path, 'model.safetensors.index.json'), JSON.stringify(index));
  assert.throws(() => loadModel(path), (e: Error) => {
    assert.match(e.message, /model\.safetensors\.index\.json/);
    assert.match(e.message, /model-00003-of-000002\.safetensors/);
    assert.match(e.message, /does not exist|not found|missing/);
    return true;
  });
});

test('config parsing: rope_scaling spellings agree, optional fields take the transformers defaults', () => {
  const base = { architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 256 };
  const a = parseHfConfig({ ...base, rope_scaling: { type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
  const b = parseHfConfig({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192 } });
  assert.deepEqual(a.rope_scaling, b.rope_scaling);
  const c = parseHfConfig({ ...base, num_key_value_heads: null });
  assert.equal(c.num_key_value_heads, 4);
  assert.equal(c.rms_norm_eps, 1e-6);
  assert.equal(c.tie_word_embeddings, false);
  const v5 = parseHfConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
  assert.equal(v5.rope_theta, 1e6);
  assert.equal(v5.rope_scaling, null);
});

// ---------------------------------------------------------------------------------------------
// DeepSeek variants: HF directory against the GGUF path of the same (dequantized) weights.

function deepseekLogits(path: string): Float32Array {
  const model = loadModel(path).model as DeepseekModel;
  return model.forward(Int32Array.from(TOKENS), model.newCache(16), { allLogits: true });
}

function diff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('DeepSeek-V3 config as released (yarn factor 40, mscale 1/1), FP8 with partial blocks, MTP layer present but not loaded', () => {
  const m = tinyDeepseekModel({ hiddenSize: 136, intermediateSize: 200, seed: 31, mtp: true, yarnFactor: 40, yarnOriginalContext: 4, contextLength: 160 });
  const fp8 = fp8Checkpoint(m.tensors);
  const hfDir = join(dir, 'ds-v3-fp8');
  writeTinyDeepseekHf(hfDir, m, { fp8, shards: 2 });
  const gguf = join(dir, 'ds-v3-fp8.gguf');
  writeTinyDeepseekGguf(gguf, m, { mtp: false }, fp8.dequantized);
  const d = diff(deepseekLogits(hfDir), deepseekLogits(gguf));
  assert.ok(d < 1e-4, `HF FP8 vs GGUF: ${d}`);
});

test('DeepSeek-V3 config without the V3-default router fields (topk_method, scoring_func, norm_topk_prob, n_group, ...) loads as V3', () => {
  const m = tinyDeepseekModel({ seed: 32, nGroup: 8, topkGroup: 4, routedScalingFactor: 2.5, normTopkProb: true, routedExperts: 16, expertsPerToken: 4, firstKDenseReplace: 3, layers: 4 });
  const full = join(dir, 'ds-full');
  const trimmed = join(dir, 'ds-trimmed');
  writeTinyDeepseekHf(full, m);
  writeTinyDeepseekHf(trimmed, { ...m, hfConfig: Object.fromEntries(Object.entries(m.hfConfig).filter(([k]) => !['topk_method', 'scoring_func', 'norm_topk_prob', 'n_group', 'topk_group', 'routed_scaling_factor', 'first_k_dense_replace'].includes(k))) });
  assert.equal(diff(deepseekLogits(full), deepseekLogits(trimmed)), 0);
});

test("DeepSeek: rope_scaling under 'rope_type', tie_word_embeddings true with lm_head present, missing shard", () => {
  const m = tinyDeepseekModel({ seed: 33 });
  const a = join(dir, 'ds-type');
  const b = join(dir, 'ds-rope-type');
  writeTinyDeepseekHf(a, m);
  const rs = m.hfConfig.rope_scaling as Record<string, unknown>;
  const { type: _type, ...rest } = rs;
  writeTinyDeepseekHf(b, { ...m, hfConfig: { ...m.hfConfig, rope_scaling: { ...rest, rope_type: 'yarn' } } });
  assert.equal(diff(deepseekLogits(a), deepseekLogits(b)), 0);

  // Tied: the embedding is the head, whatever lm_head.weight holds.
  const tiedDir = join(dir, 'ds-tied');
  writeTinyDeepseekHf(tiedDir, { ...m, hfConfig: { ...m.hfConfig, tie_word_embeddings: true } });
  const tiedTensors = new Map(m.tensors);
  tiedTensors.set('lm_head.weight', m.tensors.get('model.embed_tokens.weight')!);
  const gguf = join(dir, 'ds-tied.gguf');
  writeTinyDeepseekGguf(gguf, m, {}, tiedTensors);
  assert.ok(diff(deepseekLogits(tiedDir), deepseekLogits(gguf)) < 1e-4);

  const sharded = join(dir, 'ds-missing-shard');
  writeTinyDeepseekHf(sharded, m, { shards: 2 });
  const indexPath = join(sharded, 'model.safetensors.index.json');
  const index = JSON.parse(readText(indexPath)) as { weight_map: Record<string, string> };
  index.weight_map['model.norm.weight'] = 'model-00007-of-00002.safetensors';
  writeFileSync(indexPath, JSON.stringify(index));
  assert.throws(() => loadModel(sharded), (e: Error) => /model\.safetensors\.index\.json/.test(e.message) && /model-00007-of-00002\.safetensors/.test(e.message) && /does not exist/.test(e.message));
});
