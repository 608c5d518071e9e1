/**
 * The single-sequence path of a small f32 DeepSeek model (fused MLA weights, attention as two
 * matmuls and a softmax: mlaForwardFused in src/nn/mla.ts): on the ref backend each row's logits
 * do not depend on how many tokens share the forward (prefill chunks, one-token steps and
 * speculative verification agree bit for bit), long inputs split into query blocks give the same
 * result, and it agrees with the general MLA code (mlaForwardSegments) up to float rounding. The
 * stacked FFN weights (router + shared gate/up, each expert's gate/up in one matmul) give exactly
 * what the separate matmuls give on ref.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { MlaLayerCache, fuseMlaWeights, mlaForwardFused, mlaForwardSegments } from '../../src/nn/mla.js';
import { ffnForward, ffnForwardFused, fuseFfn, fuseMoe, moeForward, moeForwardFused } from '../../src/nn/moe.js';
import { ScratchBuffers } from '../../src/nn/scratch.js';
import { deepseekFromHfTensors } from '../../src/models/deepseek-v3-hf.js';
import { memoryHfSource, tinyDeepseekModel } from '../../src/models/deepseek-v3-tiny.js';
import { SeededRandom } from '../../src/models/tiny.js';
import { loadNativeBackend, refBackend } from '../../src/tensor/index.js';
import type { Backend } from '../../src/tensor/backend.js';

const native = loadNativeBackend();
const backends: [string, Backend][] = [['ref', refBackend], ...(native ? [['native', native] as [string, Backend]] : [])];
const TOKENS = Int32Array.from([5, 17, 200, 3, 99, 42, 7, 128, 64, 1, 9, 33, 250, 11, 8, 90, 14]);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

test('ref: the logits of a position are bit-identical whether it runs alone, in a short chunk or in a long one', () => {
  const m = tinyDeepseekModel({ seed: 31, mtp: true });
  const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend: refBackend });
  const V = model.info.vocabSize;
  const whole = model.forward(TOKENS, model.newCache(32), { allLogits: true });
  for (const chunks of [[1], [2], [3], [1, 4, 2, 7]]) {
    const cache = model.newCache(32);
    let at = 0;
    for (let i = 0; at < TOKENS.length; i++) {
      const n = Math.min(chunks[i % chunks.length]!, TOKENS.length - at);
      const logits = model.forward(TOKENS.subarray(at, at + n), cache, { allLogits: true });
      assert.deepEqual(logits, whole.subarray(at * V, (at + n) * V), `chunks ${chunks.join(',')}: rows ${at}..${at + n - 1}`);
      at += n;
    }
  }
});

for (const [name, backend] of backends) {
  test(`${name}: mlaForwardFused equals mlaForwardSegments up to rounding, and splitting the queries into blocks changes nothing`, () => {
    const m = tinyDeepseekModel({ seed: 37 });
    const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend });
    const cfg = model.mla;
    const w = model.weights.layers[1]!.attn;
    const fused = fuseMlaWeights(backend, cfg, w);
    const d = cfg.hiddenSize;
    const rng = new SeededRandom(41);
    const prefix = 9;
    const n = 7;
    const x = Float32Array.from(rng.normals((prefix + n) * d, 1));
    const run = (how: 'general' | 'fused' | 'blocks' | 'last2'): { out: Float32Array; cache: Float32Array } => {
      const cache = new MlaLayerCache(32, cfg);
      const scratch = new ScratchBuffers();
      // the same prefix in the cache first, by the general code
      mlaForwardSegments(backend, cfg, w, x.subarray(0, prefix * d), prefix, [{ row: 0, count: prefix, startPos: 0, cache }]);
      const xs = x.subarray(prefix * d);
      const out = how === 'general'
        ? mlaForwardSegments(backend, cfg, w, xs, n, [{ row: 0, count: n, startPos: prefix, cache }])
        : how === 'fused' ? mlaForwardFused(backend, cfg, w, fused, xs, n, prefix, cache, scratch)
          : how === 'blocks' ? mlaForwardFused(backend, cfg, w, fused, xs, n, prefix, cache, scratch, n, cfg.heads * (prefix + n) * 2)
            : mlaForwardFused(backend, cfg, w, fused, xs, n, prefix, cache, scratch, 2);
      return { out: out.slice(), cache: cache.rows.slice(0, (prefix + n) * cache.width) };
    };
    const general = run('general');
    const fusedOut = run('fused');
    assert.ok(maxAbsDiff(fusedOut.out, general.out) < 1e-5, `fused vs general: ${maxAbsDiff(fusedOut.out, general.out)}`);
    assert.deepEqual(fusedOut.cache, general.cache, 'the same cache rows');
    const blocks = run('blocks');
    const last2 = run('last2');
    if (name === 'ref') {
      assert.deepEqual(blocks.out, fusedOut.out, 'query blocks of 2');
      assert.deepEqual(last2.out, fusedOut.out.subarray((n - 2) * d), 'only the last 2 queries');
    } else {
      assert.ok(maxAbsDiff(blocks.out, fusedOut.out) < 1e-5);
      assert.ok(maxAbsDiff(last2.out, fusedOut.out.subarray((n - 2) * d)) < 1e-5);
    }
    assert.deepEqual(last2.cache, fusedOut.cache, 'every row enters the cache');
  });
}

for (const [name, backend] of backends) {
  test(`${name}: stacked FFN and MoE weights give what the separate matmuls give`, () => {
    const m = tinyDeepseekModel({ seed: 43 });
    const model = deepseekFromHfTensors(m.hfConfig, memoryHfSource(m.tensors), { backend });
    const d = model.config.hiddenSize;
    const dense = model.weights.layers[0]!.dense!;
    const moe = model.weights.layers[1]!.moe!;
    const stackedDense = fuseFfn(backend, dense);
    const stackedMoe = fuseMoe(backend, moe);
    const rng = new SeededRandom(47);
    const same = (a: Float32Array, b: Float32Array, what: string) => {
      if (name === 'ref') assert.deepEqual(a, b, what);
      else assert.ok(maxAbsDiff(a, b) < 1e-5, `${what}: ${maxAbsDiff(a, b)}`);
    };
    let experts = 0;
    for (const tokens of [1, 2, 3, 6]) {
      const x = Float32Array.from(rng.normals(tokens * d, 1));
      same(ffnForwardFused(backend, dense, stackedDense, x, tokens, new ScratchBuffers()).slice(), ffnForward(backend, dense, x, tokens), `dense FFN, ${tokens} tokens`);
      // its products go through matmul (ref), the k-major kernel and moeExperts (native)
      const counted: Backend = {
        ...backend,
        matmul: (...args: Parameters<Backend['matmul']>) => { experts++; backend.matmul(...args); },
        ...(backend.matmulKMajor ? { matmulKMajor: (...args: Parameters<NonNullable<Backend['matmulKMajor']>>) => { experts++; return backend.matmulKMajor!(...args); } } : {}),
        ...(backend.moeExperts ? { moeExperts: (...args: Parameters<NonNullable<Backend['moeExperts']>>) => { experts++; backend.moeExperts!(...args); } } : {}),
      };
      same(moeForwardFused(counted, model.config.router, moe, stackedMoe, x, tokens, new ScratchBuffers()).slice(), moeForward(backend, model.config.router, moe, x, tokens), `MoE, ${tokens} tokens`);
    }
    assert.ok(experts > 4, 'the stacked MoE ran its matmuls');
  });
}
