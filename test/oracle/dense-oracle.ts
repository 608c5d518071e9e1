/**
 * The dense-model oracle check shared by ./dense-llama.test.ts and ./dense-qwen2.test.ts: tiny
 * random-weight GGUF files with a real tokenizer, run by this project and by llama.cpp.
 *
 *  - F32: log-probabilities at every prompt position within 1e-3, same greedy 32-token continuation.
 *  - Quantized dtype D: (a) our D file on the ref backend against llama.cpp on the f32 file
 *    holding exactly our dequantized D values: within 1e-3 and the same greedy continuation (this
 *    checks the quantized weights and the model math tightly); (b) our D file on the default
 *    backend against llama.cpp's own D path. llama.cpp rounds the activations to 8 bits for
 *    quantized matmuls (q8_0 / q8_K blocks); where the native backend does the same for prefill
 *    (int8Prefill: AVX-512 VNNI or AVX2), (b) is held to INT8_PREFILL_BOUND, elsewhere (f32 activations)
 *    to a measured, dtype-specific bound.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { quantizedType } from '../../src/cli/quantize.js';
import { type GgufTensorInput, writeGguf } from '../../src/formats/gguf-write.js';
import { loadModel } from '../../src/models/load.js';
import {
  type TinyDType, type TinyDenseModel, type TinyDenseHeadOptions, denseGgufMetadata, denseGgufTensors, tinyDenseModel, tinyTokenizerMetadata,
} from '../../src/models/tiny.js';
import { dequantize, quantize } from '../../src/tensor/quant/index.js';
import type { Backend } from '../../src/tensor/backend.js';
import { int8Prefill, refBackend } from '../../src/tensor/index.js';
import { type LlamaOracleRequest, compareLogProbs, runLlamaCppModels } from './llama-cpp.js';

export const PROMPT = [9707, 11, 1879, 0, 1096, 374, 264, 1273, 315, 279, 1614, 13, 358, 1744, 220, 16, 17, 18];
export const GREEDY_TOKENS = 32;
/** |log p ours - log p llama.cpp| on quantized files when both round prefill activations like ggml (measured 2.5e-5 - 4.8e-5). */
export const INT8_PREFILL_BOUND = 1e-3;
/** The dtypes whose prefill matmuls the int8 kernels take (native/src/gemm_int8.h on avx512-vnni, matvec_int8_avx2.h on avx2). */
const INT8_DTYPES: ReadonlySet<OracleDType> = new Set(['q8_0', 'q4_0', 'q4_k', 'q6_k', 'q5_0', 'iq4_nl', 'iq4_xs', 'q2_k-q3_k-q5_1']);
/**
 * File dtypes whose default-backend log-probabilities must also follow llama.cpp's f32 run of the
 * dequantized weights tightly (1e-3) where prefill keeps f32 activations (int8Prefill() false: no
 * AVX-512 VNNI or AVX2, or FRUGAL_INT8=0). With int8 prefill (the default on both) their prefill
 * matmuls round x to int8 like llama.cpp's own path and are held to INT8_PREFILL_BOUND against it
 * instead (INT8_DTYPES). (Their decode matvecs, m <= 16, round x to int8 on avx512-vnni in
 * either case, so the greedy continuation checked with them may differ at a near tie; it has not so far.)
 */
const F32_ACTIVATION_DTYPES: ReadonlySet<OracleDType> = new Set(['iq4_nl', 'iq4_xs', 'q2_k-q3_k-q5_1']);

/**
 * A file dtype: one the tiny builders write; an IQ4 type, whose files are made as `frugal
 * quantize` makes them (quantizedType: IQ4_XS matrices with rows that are not a multiple of 256
 * become IQ4_NL, as llama-quantize does); or LOW_BITS, one file for the three low-bit types:
 * layer 0's ffn_down as Q2_K, layer 1's as Q3_K (the matrices with rows of 256 here), every other
 * matrix (and the tied output) as Q5_1.
 */
export const LOW_BITS = 'q2_k-q3_k-q5_1';
export type OracleDType = TinyDType | 'iq4_nl' | 'iq4_xs' | typeof LOW_BITS;

function oracleTensors(model: TinyDenseModel, dtype: OracleDType): GgufTensorInput[] {
  if (dtype !== 'iq4_nl' && dtype !== 'iq4_xs' && dtype !== LOW_BITS) return denseGgufTensors(model, dtype);
  return denseGgufTensors(model, 'f32').map((t) => {
    const wanted = dtype !== LOW_BITS ? dtype : t.name === 'blk.0.ffn_down.weight' ? 'q2_k' : t.name === 'blk.1.ffn_down.weight' ? 'q3_k' : 'q5_1';
    const type = quantizedType({ name: t.name, dims: t.dims, dtype: 'f32' }, wanted);
    return type === 'f32' ? t : { ...t, dtype: type, data: quantize(type, dequantize('f32', t.data as Uint8Array, t.dims.reduce((a, b) => a * b, 1))) };
  });
}
/** Prompt positions whose next-token distributions are compared (each costs llama.cpp a 150k-entry Map). */
export const CHECKED_POSITIONS = [0, 3, 7, 11, 14, 17];

interface OurRun {
  logits: Float32Array;
  greedy: number[];
  vocab: number;
}

/** Our logits at every prompt position and our greedy continuation (on `backend`, default getBackend()). */
export function runOurs(path: string, backend?: Backend, prompt = PROMPT, count = GREEDY_TOKENS): OurRun {
  const { model } = loadModel(path, { tokenizer: false, backend });
  const vocab = model.info.vocabSize;
  const logits = model.forward(Int32Array.from(prompt), model.newCache(), { allLogits: true });
  const cache = model.newCache(prompt.length + count);
  let next = model.forward(Int32Array.from(prompt), cache);
  const greedy: number[] = [];
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let j = 1; j < vocab; j++) if (next[j]! > next[best]!) best = j;
    greedy.push(best);
    if (i + 1 < count) next = model.forward(Int32Array.from([best]), cache);
  }
  return { logits, greedy, vocab };
}

/** Largest log-probability error over llama.cpp's top tokens at the checked positions, and how many tops agree. */
export function logProbError(ours: OurRun, positions: [number, number][][], checked = CHECKED_POSITIONS): { maxError: number; sameTop: number } {
  assert.equal(positions.length, checked.length);
  let maxError = 0;
  let sameTop = 0;
  positions.forEach((top, k) => {
    const p = checked[k]!;
    const c = compareLogProbs(ours.logits.subarray(p * ours.vocab, (p + 1) * ours.vocab), top);
    maxError = Math.max(maxError, c.maxError);
    if (c.sameTop) sameTop++;
  });
  return { maxError, sameTop };
}

function firstDifference(a: number[], b: number[]): number {
  const i = a.findIndex((t, k) => t !== b[k]);
  return i === -1 && a.length === b.length ? -1 : i === -1 ? Math.min(a.length, b.length) : i;
}

export interface DenseOracleCase {
  base: Omit<TinyDenseHeadOptions, 'dtype'>;
  dtypes: OracleDType[];
  /** Bound on |log p ours - log p llama.cpp| for our D file vs llama.cpp's D path (measured, with margin). */
  nativeBounds: Partial<Record<OracleDType, number>>;
}

/** Writes the files, runs both engines, and asserts; returns the measurements for the report. */
export async function checkDenseAgainstLlamaCpp(t: TestContext, c: DenseOracleCase): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `frugal-oracle-${c.base.architecture}-`));
  const started = Date.now();
  try {
    const files: { label: string; path: string; greedy: boolean }[] = [];
    const f32Path = join(dir, 'f32.gguf');
    const f32Model = tinyDenseModel({ ...c.base, dtype: 'f32', tiedEmbeddings: true });
    const metadata = [...denseGgufMetadata(f32Model), ...tinyTokenizerMetadata(f32Model.options.tokenizer).entries];
    writeGguf(f32Path, { metadata, tensors: denseGgufTensors(f32Model) });
    files.push({ label: 'f32', path: f32Path, greedy: true });
    // Tied embeddings halve the bytes. The quantized files share one model; each has an f32 twin with the dequantized values.
    const qModel = tinyDenseModel({ ...c.base, tiedEmbeddings: true, seed: (c.base.seed ?? 1) + 100 });
    for (const dtype of c.dtypes) {
      const tensors = oracleTensors(qModel, dtype);
      const path = join(dir, `${dtype}.gguf`);
      writeGguf(path, { metadata, tensors });
      const twin = tensors.map((x) => {
        if (x.dtype === 'f32') return x;
        const bytes = x.data as Uint8Array;
        return { ...x, dtype: 'f32' as const, data: quantize('f32', dequantize(x.dtype, bytes, x.dims.reduce((a, b) => a * b, 1))) };
      });
      const twinPath = join(dir, `${dtype}-dequantized.gguf`);
      writeGguf(twinPath, { metadata, tensors: twin });
      files.push({ label: dtype, path, greedy: true }, { label: `${dtype}-dequantized`, path: twinPath, greedy: true });
    }
    const requests: LlamaOracleRequest[] = files.map((f) => ({
      modelPath: f.path,
      jobs: [{ kind: 'logprobs', tokens: PROMPT, positions: CHECKED_POSITIONS, top: 64 }, ...(f.greedy ? [{ kind: 'greedy' as const, tokens: PROMPT, count: GREEDY_TOKENS }] : [])],
    }));
    const written = Date.now();
    const theirs = await runLlamaCppModels(requests, 600_000);
    const llamaDone = Date.now();
    const results = new Map(files.map((f, i) => [f.label, theirs[i]!]));
    const lp = (label: string) => {
      const r = results.get(label)![0]!;
      assert.equal(r.kind, 'logprobs');
      return r.positions;
    };
    const greedy = (label: string) => {
      const r = results.get(label)![1]!;
      assert.equal(r.kind, 'greedy');
      return r.tokens;
    };
    const ours = runOurs(f32Path);
    const f32 = logProbError(ours, lp('f32'));
    const f32Diff = firstDifference(ours.greedy, greedy('f32'));
    t.diagnostic(`f32: max |Δ log p| ${f32.maxError.toExponential(2)}, same top ${f32.sameTop}/${CHECKED_POSITIONS.length}, greedy first difference ${f32Diff}`);
    assert.ok(f32.maxError < 1e-3, `f32: max log-prob error ${f32.maxError}`);
    assert.equal(f32.sameTop, CHECKED_POSITIONS.length);
    assert.deepEqual(ours.greedy, greedy('f32'), 'f32 greedy continuation');
    for (const dtype of c.dtypes) {
      const q = runOurs(join(dir, `${dtype}.gguf`));
      const qRef = runOurs(join(dir, `${dtype}.gguf`), refBackend);
      const exact = logProbError(qRef, lp(`${dtype}-dequantized`));
      const exactDiff = firstDifference(qRef.greedy, greedy(`${dtype}-dequantized`));
      const native = logProbError(q, lp(dtype));
      const nativeDiff = firstDifference(q.greedy, greedy(dtype));
      const nativeExact = logProbError(q, lp(`${dtype}-dequantized`));
      t.diagnostic(`${dtype}: ref backend vs llama.cpp on dequantized f32 ${exact.maxError.toExponential(2)} (greedy first difference ${exactDiff}), ` +
        `default backend ${nativeExact.maxError.toExponential(2)}; ` +
        `vs llama.cpp ${dtype} ${native.maxError.toExponential(2)}, same top ${native.sameTop}/${CHECKED_POSITIONS.length}, greedy first difference ${nativeDiff}`);
      assert.ok(exact.maxError < 1e-3, `${dtype} vs llama.cpp on the dequantized weights: max log-prob error ${exact.maxError}`);
      if (F32_ACTIVATION_DTYPES.has(dtype) && !int8Prefill()) {
        assert.ok(nativeExact.maxError < 1e-3, `${dtype}, default backend vs llama.cpp on the dequantized weights: max log-prob error ${nativeExact.maxError}`);
        assert.deepEqual(q.greedy, greedy(`${dtype}-dequantized`), `${dtype}, default backend: greedy continuation vs llama.cpp on the dequantized weights`);
      }
      assert.deepEqual(qRef.greedy, greedy(`${dtype}-dequantized`), `${dtype} greedy continuation vs llama.cpp on the dequantized weights`);
      const bound = INT8_DTYPES.has(dtype) && int8Prefill() ? INT8_PREFILL_BOUND : c.nativeBounds[dtype];
      assert.ok(bound !== undefined, `no bound stated for ${dtype}`);
      assert.ok(native.maxError < bound, `${dtype} vs llama.cpp ${dtype}: max log-prob error ${native.maxError} (bound ${bound})`);
    }
    t.diagnostic(`time: writing ${written - started} ms, llama.cpp ${llamaDone - written} ms, ours and checks ${Date.now() - llamaDone} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
