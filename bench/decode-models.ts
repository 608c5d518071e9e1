/**
 * Random-weight GGUF files of real model shapes for the decode benchmark (bench/decode.ts), built
 * once and cached (default ~/.cache/frugal-bench/): DeepSeek-R1-Distill-Qwen-1.5B's qwen2 shape
 * with the real Qwen2.5 tokenizer, and a small DeepSeek-V3-style MoE + MLA shape.
 *
 * Weights are streamed to disk one tensor at a time (writeGguf takes a function per tensor), so
 * memory stays bounded. To keep the build minutes rather than tens of minutes on 2 cores, each
 * matrix is filled from a pool of rows quantized by the project's own quantizer
 * (src/tensor/quant) and placed in a seeded random order: the bytes are valid blocks of the
 * requested type with sane scales, which is all a speed measurement needs (no kernel path
 * depends on the values).
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type GgufTensorInput, writeGguf } from '../src/formats/gguf-write.js';
import { openGguf } from '../src/formats/gguf.js';
import { byteSize, type DType } from '../src/tensor/dtype.js';
import { quantize } from '../src/tensor/quant/index.js';
import { deepseekGgufMetadata, type TinyDeepseekModel, type TinyDeepseekOptions } from '../src/models/deepseek-v3-tiny.js';
import { denseGgufMetadata, SeededRandom, storageDtype, tinyTokenizerMetadata, type TinyDenseModel, type TinyDenseOptions } from '../src/models/tiny.js';

export const DEFAULT_MODEL_DIR = join(homedir(), '.cache', 'frugal-bench');

/** Rows quantized per matrix; the rest of the matrix repeats them in a random order. */
const POOL_ROWS = 96;

/** A matrix of PyTorch shape `shape` (last dim contiguous) as a lazily generated GGUF tensor. */
function randomMatrix(name: string, shape: readonly number[], dtype: DType, std: number, rng: SeededRandom): GgufTensorInput {
  const dims = [...shape].reverse();
  const cols = dims[0]!;
  const rows = dims.slice(1).reduce((a, b) => a * b, 1);
  const d = storageDtype(dtype, cols);
  const seed = Math.floor(rng.next() * 2 ** 31);
  return {
    name, dims, dtype: d,
    data: () => {
      const r = new SeededRandom(seed);
      const poolRows = Math.min(rows, POOL_ROWS);
      const pool = quantize(d, r.uniforms(poolRows * cols, std));
      const rowBytes = byteSize(d, cols);
      const out = new Uint8Array(rows * rowBytes);
      for (let i = 0; i < rows; i++) {
        const p = i < poolRows ? i : Math.floor(r.next() * poolRows);
        out.set(pool.subarray(p * rowBytes, (p + 1) * rowBytes), i * rowBytes);
      }
      return out;
    },
  };
}

/** A 1-D f32 tensor (norm weight or bias). */
function vector(name: string, n: number, std: number, mean: number, rng: SeededRandom): GgufTensorInput {
  const values = rng.uniforms(n, std, mean);
  return { name, dims: [n], dtype: 'f32', data: quantize('f32', values) };
}

/** DeepSeek-R1-Distill-Qwen-1.5B (Qwen2.5-Math-1.5B) shape. */
export const QWEN_1_5B: Required<Omit<TinyDenseOptions, 'dtype' | 'llama3RopeScaling' | 'attentionGain' | 'seed'>> = {
  architecture: 'qwen2', tokenizer: 'qwen2.5', hiddenSize: 1536, layers: 28, heads: 12, kvHeads: 2, ffSize: 8960,
  contextLength: 4096, ropeTheta: 10000, tiedEmbeddings: false, rmsNormEps: 1e-6,
};

/** DeepSeek-V3-style MLA + MoE at DeepSeek-V2-Lite's widths, 4 layers (1 dense), with query compression. */
export const DEEPSEEK_SMALL: Required<Omit<TinyDeepseekOptions, 'seed'>> = {
  tokenizer: 'bytes', hiddenSize: 2048, intermediateSize: 10944, moeIntermediateSize: 1408, layers: 4, firstKDenseReplace: 1,
  heads: 16, qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128,
  routedExperts: 64, sharedExperts: 2, expertsPerToken: 6, nGroup: 1, topkGroup: 1, scoring: 'sigmoid',
  normTopkProb: true, routedScalingFactor: 1, scoreBias: true, contextLength: 4096, ropeTheta: 10000,
  yarnFactor: 1, yarnOriginalContext: 4096, mscaleAllDim: 1, mtp: false, rmsNormEps: 1e-6,
};

function qwenTensors(dtype: DType, rng: SeededRandom): GgufTensorInput[] {
  const o = QWEN_1_5B;
  const d = o.hiddenSize;
  const headDim = d / o.heads;
  const kv = o.kvHeads * headDim;
  const vocab = tinyTokenizerMetadata('qwen2.5').vocabSize;
  const out: GgufTensorInput[] = [randomMatrix('token_embd.weight', [vocab, d], dtype, 1, rng)];
  for (let i = 0; i < o.layers; i++) {
    const p = `blk.${i}.`;
    out.push(
      vector(`${p}attn_norm.weight`, d, 0.1, 1, rng),
      randomMatrix(`${p}attn_q.weight`, [d, d], dtype, 1 / Math.sqrt(d), rng), vector(`${p}attn_q.bias`, d, 0.5, 0, rng),
      randomMatrix(`${p}attn_k.weight`, [kv, d], dtype, 1 / Math.sqrt(d), rng), vector(`${p}attn_k.bias`, kv, 0.5, 0, rng),
      randomMatrix(`${p}attn_v.weight`, [kv, d], dtype, 1 / Math.sqrt(d), rng), vector(`${p}attn_v.bias`, kv, 0.5, 0, rng),
      randomMatrix(`${p}attn_output.weight`, [d, d], dtype, 1 / Math.sqrt(d), rng),
      vector(`${p}ffn_norm.weight`, d, 0.1, 1, rng),
      randomMatrix(`${p}ffn_gate.weight`, [o.ffSize, d], dtype, 1 / Math.sqrt(d), rng),
      randomMatrix(`${p}ffn_up.weight`, [o.ffSize, d], dtype, 1 / Math.sqrt(d), rng),
      randomMatrix(`${p}ffn_down.weight`, [d, o.ffSize], dtype, 1 / Math.sqrt(o.ffSize), rng),
    );
  }
  out.push(vector('output_norm.weight', d, 0.1, 1, rng), randomMatrix('output.weight', [vocab, d], dtype, 4 / Math.sqrt(d), rng));
  return out;
}

function qwenMetadata(dtype: DType) {
  const vocabSize = tinyTokenizerMetadata('qwen2.5').vocabSize;
  const model = { options: { ...QWEN_1_5B, dtype }, vocabSize, headDim: QWEN_1_5B.hiddenSize / QWEN_1_5B.heads } as unknown as TinyDenseModel;
  return [...denseGgufMetadata(model), ...tinyTokenizerMetadata('qwen2.5').entries];
}

function deepseekTensors(dtype: DType, rng: SeededRandom): GgufTensorInput[] {
  const o = DEEPSEEK_SMALL;
  const d = o.hiddenSize;
  const H = o.heads;
  const qk = o.qkNopeHeadDim + o.qkRopeHeadDim;
  const vocab = tinyTokenizerMetadata(o.tokenizer).vocabSize;
  const m = (name: string, shape: number[], keepF32 = false) => randomMatrix(name, shape, keepF32 ? 'f32' : dtype, 1 / Math.sqrt(shape[shape.length - 1]!), rng);
  const out: GgufTensorInput[] = [randomMatrix('token_embd.weight', [vocab, d], dtype, 1, rng)];
  for (let i = 0; i < o.layers; i++) {
    const p = `blk.${i}.`;
    out.push(
      vector(`${p}attn_norm.weight`, d, 0.1, 1, rng),
      m(`${p}attn_q_a.weight`, [o.qLoraRank, d]),
      vector(`${p}attn_q_a_norm.weight`, o.qLoraRank, 0.1, 1, rng),
      m(`${p}attn_q_b.weight`, [H * qk, o.qLoraRank]),
      m(`${p}attn_kv_a_mqa.weight`, [o.kvLoraRank + o.qkRopeHeadDim, d]),
      vector(`${p}attn_kv_a_norm.weight`, o.kvLoraRank, 0.1, 1, rng),
      m(`${p}attn_k_b.weight`, [H, o.kvLoraRank, o.qkNopeHeadDim]),
      m(`${p}attn_v_b.weight`, [H, o.vHeadDim, o.kvLoraRank]),
      m(`${p}attn_output.weight`, [d, H * o.vHeadDim]),
      vector(`${p}ffn_norm.weight`, d, 0.1, 1, rng),
    );
    if (i < o.firstKDenseReplace) {
      out.push(m(`${p}ffn_gate.weight`, [o.intermediateSize, d]), m(`${p}ffn_up.weight`, [o.intermediateSize, d]), m(`${p}ffn_down.weight`, [d, o.intermediateSize]));
      continue;
    }
    const E = o.routedExperts;
    const shared = o.moeIntermediateSize * o.sharedExperts;
    out.push(
      m(`${p}ffn_gate_inp.weight`, [E, d], true),
      vector(`${p}exp_probs_b.bias`, E, 0.1, 0, rng),
      m(`${p}ffn_gate_exps.weight`, [E, o.moeIntermediateSize, d]),
      m(`${p}ffn_up_exps.weight`, [E, o.moeIntermediateSize, d]),
      m(`${p}ffn_down_exps.weight`, [E, d, o.moeIntermediateSize]),
      m(`${p}ffn_gate_shexp.weight`, [shared, d]),
      m(`${p}ffn_up_shexp.weight`, [shared, d]),
      m(`${p}ffn_down_shexp.weight`, [d, shared]),
    );
  }
  out.push(vector('output_norm.weight', d, 0.1, 1, rng), m('output.weight', [vocab, d]));
  return out;
}

function deepseekMetadata(dtype: DType) {
  const o = { ...DEEPSEEK_SMALL, seed: 1 };
  const model = { options: o, vocabSize: tinyTokenizerMetadata(o.tokenizer).vocabSize } as unknown as TinyDeepseekModel;
  return [...deepseekGgufMetadata(model, { dtype, layout: 'split' }), ...tinyTokenizerMetadata(o.tokenizer).entries];
}

export type BenchShape = 'qwen2-1.5b' | 'deepseek-moe-4l';

/**
 * Path of the cached model file of `shape` in `dtype`, building it first when it is missing
 * (written to a temporary name and renamed, so an interrupted build leaves no half file).
 */
export function benchModel(shape: BenchShape, dtype: DType, dir: string, log: (line: string) => void): string {
  const path = join(dir, `${shape}-${dtype}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  const rng = new SeededRandom(shape === 'qwen2-1.5b' ? 15 : 27);
  const metadata = shape === 'qwen2-1.5b' ? qwenMetadata(dtype) : deepseekMetadata(dtype);
  const tensors = shape === 'qwen2-1.5b' ? qwenTensors(dtype, rng) : deepseekTensors(dtype, rng);
  const started = Date.now();
  let done = 0;
  const tracked = tensors.map((t) => ({
    ...t,
    data: () => {
      const bytes = typeof t.data === 'function' ? t.data() : t.data;
      done++;
      if (done % 20 === 0 || done === tensors.length) log(`  building ${shape} ${dtype}: ${done}/${tensors.length} tensors, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      return bytes;
    },
  }));
  const temporary = `${path}.partial`;
  writeGguf(temporary, { metadata, tensors: tracked });
  renameSync(temporary, path);
  return path;
}

/** Weight bytes one decoded token reads: every matrix but the embedding table; for MoE only the used experts. */
export function bytesPerToken(path: string): number {
  const file = openGguf(path);
  try {
    const used = Number(file.value(`${file.value('general.architecture')}.expert_used_count`) ?? 0);
    let total = 0;
    for (const t of file.tensors) {
      if (t.dims.length < 2 || t.name === 'token_embd.weight') continue;
      if (t.name.endsWith('_exps.weight')) total += (t.byteLength / t.dims[2]!) * used;
      else total += t.byteLength;
    }
    return total;
  } finally {
    file.close();
  }
}
