// The native training kernels (native/src/train_impl.h via src/autograd/native-kernels.ts) against
// the TypeScript kernels they replace, on random data and awkward shapes, forward and backward.
// Gradient buffers start non-zero so that "adds into" is checked too.
// Stated bound: max |native − ts| <= TOL · max(1, max |ts|), TOL = 2e-6 for the row and
// element-wise kernels (float32 storage, float64 sums on both sides), 1e-5 for the log-sum-exps
// (float64), 5e-5 for attention (float32 GEMM accumulation against the float64 loop GEMM).
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeTrainKernels, type NativeTrainKernels } from '../../src/autograd/native-kernels.js';
import { crossEntropyBackward, crossEntropyForward, IGNORE_INDEX } from '../../src/autograd/loss.js';
import { rmsNormBackward, rmsNormForward } from '../../src/autograd/rmsnorm.js';
import { swigluBackward, swigluForward } from '../../src/autograd/unary.js';
import { softmaxBackward, softmaxForward } from '../../src/autograd/softmax.js';
import { ropeRotate, type RopeStyle } from '../../src/autograd/rope.js';
import { attentionBackward, attentionForward, type AttentionShape } from '../../src/autograd/attention.js';
import { copyBlocks } from '../../src/autograd/shape.js';
import { addSame, axpy, arithKernels } from '../../src/autograd/arith.js';
import { useBackend } from '../../src/autograd/compute.js';
import { adamwStep, scaleValues, sumSquares } from '../../src/train/optimizer.js';
import { Random } from '../../src/autograd/random.js';

const native: NativeTrainKernels | null = loadNativeTrainKernels();
const skip = native === null ? 'native addon not built (or built without the training kernels): node scripts/build-native.mjs' : false;
const kernels = (): NativeTrainKernels => native!;
const rng = new Random(23);
const TOL = 2e-6;

function assertClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tol * scale, `${what}: |native − ts| = ${worst} at ${at} (native ${actual[at]}, ts ${expected[at]}) > ${tol} · ${scale}`);
}

const randn = (n: number, std = 1): Float32Array => rng.normalArray(n, std);
const twin = (a: Float32Array): [Float32Array, Float32Array] => [a.slice(), a.slice()];

test('cross-entropy forward and backward, with ignored rows, vocab 5 and 1031', { skip }, () => {
  for (const rows of [1, 7, 33]) {
    for (const vocab of [1, 5, 1031]) {
      const x = randn(rows * vocab, 3);
      const targets = new Int32Array(rows);
      for (let r = 0; r < rows; r++) targets[r] = r % 4 === 2 ? IGNORE_INDEX : rng.int(vocab);
      const lseTs = new Float64Array(rows);
      const lseNative = new Float64Array(rows);
      const ts = crossEntropyForward(lseTs, x, targets, rows, vocab, IGNORE_INDEX);
      const nat = kernels().crossEntropy.forward(lseNative, x, targets, rows, vocab, IGNORE_INDEX);
      const shape = `rows ${rows} vocab ${vocab}`;
      assert.equal(nat.valid, ts.valid, `${shape}: valid rows`);
      assert.ok(Math.abs(nat.total - ts.total) <= 1e-5 * Math.max(1, Math.abs(ts.total)), `${shape}: total ${nat.total} vs ${ts.total}`);
      assertClose(`${shape}: lse`, lseNative, lseTs, 1e-5);
      const [dxTs, dxNative] = twin(randn(rows * vocab));
      crossEntropyBackward(dxTs, 0.37, x, lseTs, targets, rows, vocab, IGNORE_INDEX);
      kernels().crossEntropy.backward(dxNative, 0.37, x, lseTs, targets, rows, vocab, IGNORE_INDEX);
      assertClose(`${shape}: dx`, dxNative, dxTs, TOL);
    }
  }
});

test('cross-entropy: a target outside the vocabulary throws instead of reading out of bounds', { skip }, () => {
  assert.throws(() => kernels().crossEntropy.forward(new Float64Array(1), new Float32Array(5), Int32Array.of(5), 1, 5, IGNORE_INDEX), /vocabulary/);
  assert.throws(() => kernels().crossEntropy.forward(new Float64Array(1), new Float32Array(4), Int32Array.of(0), 1, 5, IGNORE_INDEX), /needs 5/);
});

test('rmsNorm forward and backward, with and without a weight and either gradient', { skip }, () => {
  for (const rows of [1, 7, 33]) {
    for (const dim of [1, 7, 33, 129]) {
      for (const withWeight of [true, false]) {
        const shape = `rows ${rows} dim ${dim} weight ${withWeight}`;
        const x = randn(rows * dim, 2);
        const w = withWeight ? randn(dim) : null;
        const yTs = new Float32Array(rows * dim);
        const yNative = new Float32Array(rows * dim);
        const rstdTs = new Float32Array(rows);
        const rstdNative = new Float32Array(rows);
        rmsNormForward(yTs, rstdTs, x, w, rows, dim, 1e-6);
        kernels().rmsNorm.forward(yNative, rstdNative, x, w, rows, dim, 1e-6);
        assertClose(`${shape}: y`, yNative, yTs, TOL);
        assertClose(`${shape}: rstd`, rstdNative, rstdTs, TOL);
        const dy = randn(rows * dim);
        for (const [wantDx, wantDw] of [[true, true], [true, false], [false, true]] as const) {
          const [dxTs, dxNative] = twin(randn(rows * dim));
          const [dwTs, dwNative] = twin(randn(dim));
          rmsNormBackward(wantDx ? dxTs : null, wantDw ? dwTs : null, dy, x, w, rstdTs, rows, dim);
          kernels().rmsNorm.backward(wantDx ? dxNative : null, wantDw ? dwNative : null, dy, x, w, rstdTs, rows, dim);
          assertClose(`${shape}: dx`, dxNative, dxTs, TOL);
          assertClose(`${shape}: dw`, dwNative, dwTs, TOL);
        }
      }
    }
  }
});

test('swiglu forward and backward over large |gate| and either gradient', { skip }, () => {
  for (const n of [1, 7, 33, 129, 40_000]) {
    const gate = randn(n, 6);
    gate[0] = -90;
    const up = randn(n);
    const outTs = new Float32Array(n);
    const outNative = new Float32Array(n);
    swigluForward(outTs, gate, up, n);
    kernels().swiglu.forward(outNative, gate, up, n);
    assertClose(`n ${n}: out`, outNative, outTs, TOL);
    const dy = randn(n);
    for (const [wantGate, wantUp] of [[true, true], [true, false], [false, true]] as const) {
      const [dgTs, dgNative] = twin(randn(n));
      const [duTs, duNative] = twin(randn(n));
      swigluBackward(wantGate ? dgTs : null, wantUp ? duTs : null, dy, gate, up, n);
      kernels().swiglu.backward(wantGate ? dgNative : null, wantUp ? duNative : null, dy, gate, up, n);
      assertClose(`n ${n}: dgate`, dgNative, dgTs, TOL);
      assertClose(`n ${n}: dup`, duNative, duTs, TOL);
    }
  }
});

test('softmax forward and backward', { skip }, () => {
  for (const rows of [1, 7, 33]) {
    for (const cols of [1, 7, 33, 129]) {
      const x = randn(rows * cols, 4);
      const yTs = new Float32Array(rows * cols);
      const yNative = new Float32Array(rows * cols);
      softmaxForward(yTs, x, rows, cols);
      kernels().softmax.forward(yNative, x, rows, cols);
      assertClose(`rows ${rows} cols ${cols}: y`, yNative, yTs, TOL);
      const dy = randn(rows * cols);
      const [dxTs, dxNative] = twin(randn(rows * cols));
      softmaxBackward(dxTs, dy, yTs, rows, cols);
      kernels().softmax.backward(dxNative, dy, yTs, rows, cols);
      assertClose(`rows ${rows} cols ${cols}: dx`, dxNative, dxTs, TOL);
    }
  }
});

test('rope rotate: both styles, forward (overwrite) and backward (sign −1, accumulate)', { skip }, () => {
  for (const style of ['interleaved', 'neox'] as RopeStyle[]) {
    for (const tokens of [1, 7, 33]) {
      for (const heads of [1, 3]) {
        for (const dim of [2, 8, 34]) {
          const shape = `${style} tokens ${tokens} heads ${heads} dim ${dim}`;
          const n = tokens * heads * dim;
          const x = randn(n);
          const cos = randn((tokens * dim) / 2);
          const sin = randn((tokens * dim) / 2);
          const outTs = new Float32Array(n);
          const outNative = new Float32Array(n);
          ropeRotate(outTs, x, cos, sin, tokens, heads, dim, style, 1);
          kernels().rope.rotate(outNative, x, cos, sin, tokens, heads, dim, style, 1);
          assertClose(`${shape}: forward`, outNative, outTs, TOL);
          const [gTs, gNative] = twin(randn(n));
          ropeRotate(gTs, x, cos, sin, tokens, heads, dim, style, -1, true);
          kernels().rope.rotate(gNative, x, cos, sin, tokens, heads, dim, style, -1, true);
          assertClose(`${shape}: backward`, gNative, gTs, TOL);
        }
      }
    }
  }
});

test('attention forward and backward: heads 1..4 with grouped kv heads, causal and full, T 1, 7, 65', { skip }, (t) => {
  useBackend(null); // the TypeScript side on the float64 loop GEMM: an independent reference
  t.after(() => useBackend(undefined));
  const cases: Array<[number, number, number, number, number]> = [
    // batch, heads, kvHeads, headDimK, headDimV
    [1, 1, 1, 1, 1], [2, 2, 2, 7, 5], [1, 4, 2, 33, 16], [2, 3, 1, 8, 8], [1, 4, 4, 16, 7],
  ];
  for (const [batch, heads, kvHeads, headDimK, headDimV] of cases) {
    for (const seq of [1, 7, 65]) {
      for (const causal of [true, false]) {
        const s: AttentionShape = { batch, seq, heads, kvHeads, headDimK, headDimV, scale: 1 / Math.sqrt(headDimK) * 1.3, causal };
        const shape = JSON.stringify(s);
        const q = randn(batch * seq * heads * headDimK);
        const k = randn(batch * seq * kvHeads * headDimK);
        const v = randn(batch * seq * kvHeads * headDimV);
        const outTs = new Float32Array(batch * seq * heads * headDimV);
        const outNative = new Float32Array(outTs.length);
        const pTs = new Float32Array(batch * heads * seq * seq);
        const pNative = new Float32Array(pTs.length);
        attentionForward(outTs, pTs, q, k, v, s);
        kernels().attention.forward(outNative, pNative, q, k, v, s);
        assertClose(`${shape}: probs`, pNative, pTs, 5e-5);
        assertClose(`${shape}: out`, outNative, outTs, 5e-5);
        const dout = randn(outTs.length);
        for (const want of [[true, true, true], [false, false, true], [true, false, false]]) {
          const [dqTs, dqNative] = twin(randn(q.length));
          const [dkTs, dkNative] = twin(randn(k.length));
          const [dvTs, dvNative] = twin(randn(v.length));
          const pick = (i: number, a: Float32Array): Float32Array | null => (want[i] ? a : null);
          attentionBackward(pick(0, dqTs), pick(1, dkTs), pick(2, dvTs), dout, pTs, q, k, v, s);
          kernels().attention.backward(pick(0, dqNative), pick(1, dkNative), pick(2, dvNative), dout, pTs, q, k, v, s);
          assertClose(`${shape} ${want}: dq`, dqNative, dqTs, 5e-5);
          assertClose(`${shape} ${want}: dk`, dkNative, dkTs, 5e-5);
          assertClose(`${shape} ${want}: dv`, dvNative, dvTs, 5e-5);
        }
      }
    }
  }
});

test('attention: a probability buffer too short for the shape throws', { skip }, () => {
  const s: AttentionShape = { batch: 1, seq: 4, heads: 1, kvHeads: 1, headDimK: 2, headDimV: 2, scale: 1, causal: true };
  const x = new Float32Array(8);
  assert.throws(() => kernels().attention.forward(new Float32Array(8), new Float32Array(15), x, x, x, s), /needs 16/);
});

test('copyBlocks (narrow and concat): strided copies and accumulation, and a short buffer throws', { skip }, () => {
  for (const [blocks, len, srcStride, dstStride, srcOffset, dstOffset] of [
    [1, 1, 1, 1, 0, 0], [7, 3, 5, 3, 2, 0], [33, 16, 48, 16, 32, 0], [4096, 32, 96, 64, 64, 32], [5, 0, 4, 4, 0, 0],
  ] as const) {
    const src = randn(srcOffset + blocks * srcStride);
    for (const accumulate of [false, true]) {
      const [dTs, dNative] = twin(randn(dstOffset + blocks * dstStride));
      copyBlocks(dTs, dstOffset, dstStride, src, srcOffset, srcStride, blocks, len, accumulate);
      kernels().shape.copyBlocks(dNative, dstOffset, dstStride, src, srcOffset, srcStride, blocks, len, accumulate);
      assertClose(`blocks ${blocks} len ${len} accumulate ${accumulate}`, dNative, dTs, 0);
    }
  }
  assert.throws(() => kernels().shape.copyBlocks(new Float32Array(10), 0, 4, new Float32Array(12), 0, 4, 3, 4, false), /needs 12/);
});

test('arith: the same-shape add and axpy in use are bit-identical to the TypeScript loops', () => {
  for (const n of [1, 7, 33, 40_000]) {
    const a = randn(n);
    const b = randn(n, 1e-3);
    const [outTs, outUsed] = twin(randn(n));
    addSame(outTs, a, b, n);
    arithKernels.add(outUsed, a, b, n);
    assertClose(`add n ${n}`, outUsed, outTs, 0);
    for (const alpha of [1, -1]) {
      const [gTs, gUsed] = twin(randn(n));
      axpy(gTs, alpha, b, n);
      arithKernels.axpy(gUsed, alpha, b, n);
      assertClose(`axpy ${alpha} n ${n}`, gUsed, gTs, 0);
    }
  }
});

/** Every |native − ts| <= 2 float32 ulps of ts (both compute in float64 and round once). */
function assertUlps(what: string, actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const bound = 2 * 2 ** -23 * Math.abs(expected[i]!);
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= bound, `${what}: native ${actual[i]} vs ts ${expected[i]} at ${i}`);
  }
}

test('AdamW: the native update equals the TypeScript loop to 2 float32 ulps, odd sizes, with and without decay', { skip }, () => {
  for (const n of [1, 17, 4099, 70001]) {
    for (const [lr, weightDecay, t] of [[1e-3, 0.1, 1], [3e-4, 0, 7], [1e-2, 0.5, 1000]] as const) {
      const g = randn(n, 0.01);
      g[0] = 0;
      const [pTs, pNative] = twin(randn(n));
      const [mTs, mNative] = twin(randn(n, 0.001));
      const [vTs, vNative] = twin(Float32Array.from(randn(n, 1e-4), (x) => x * x));
      const c1 = 1 - Math.pow(0.9, t);
      const c2 = 1 - Math.pow(0.95, t);
      adamwStep(pTs, g, mTs, vTs, lr, 0.9, 0.95, 1e-8, weightDecay, c1, c2);
      kernels().optimizer.adamw(pNative, g, mNative, vNative, lr, 0.9, 0.95, 1e-8, weightDecay, c1, c2);
      const shape = `n ${n} lr ${lr} wd ${weightDecay} t ${t}`;
      assertUlps(`${shape}: p`, pNative, pTs);
      assertUlps(`${shape}: m`, mNative, mTs);
      assertUlps(`${shape}: v`, vNative, vTs);
    }
  }
  assert.throws(() => kernels().optimizer.adamw(new Float32Array(8), new Float32Array(7), new Float32Array(8), new Float32Array(8), 1e-3, 0.9, 0.95, 1e-8, 0, 0.1, 0.05), /holds 7 elements/);
});

test('sumSquares and scaleValues (gradient clipping): native against the TypeScript loops', { skip }, () => {
  for (const n of [0, 1, 17, 4099, 70001]) {
    const x = randn(n, 3);
    const ts = sumSquares(x);
    const nat = kernels().optimizer.sumSquares(x);
    assert.ok(Math.abs(nat - ts) <= 1e-12 * Math.max(1, ts), `n ${n}: sumSquares ${nat} vs ${ts}`);
    const [xTs, xNative] = twin(x);
    scaleValues(xTs, 0.3);
    kernels().optimizer.scaleValues(xNative, 0.3);
    assertClose(`n ${n}: scale`, xNative, xTs, 0);
  }
});

/** Which kernel the rmsNorm, swiglu and attention tables hold in a fresh process with `env`. */
function tablesIn(env: Record<string, string>): string {
  const url = (file: string): string => new URL(`../../src/autograd/${file}`, import.meta.url).href;
  const script = [
    `const r = await import(${JSON.stringify(url('rmsnorm.js'))});`,
    `const u = await import(${JSON.stringify(url('unary.js'))});`,
    `const a = await import(${JSON.stringify(url('attention.js'))});`,
    'const kind = (fn, ts) => (fn === ts ? "ts" : "native");',
    'console.log([kind(r.rmsNormKernels.backward, r.rmsNormBackward), kind(u.swigluKernels.forward, u.swigluForward), kind(a.attentionKernels.backward, a.attentionBackward)].join(" "));',
  ].join('\n');
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim();
}

test('the kernel tables hold the native kernels on the native backend and stay TypeScript with FRUGAL_BACKEND=ref', { skip }, () => {
  assert.equal(tablesIn({ FRUGAL_BACKEND: 'native', FRUGAL_AUTOGRAD_KERNELS: '' }), 'native native native');
  assert.equal(tablesIn({ FRUGAL_BACKEND: 'ref' }), 'ts ts ts');
  assert.equal(tablesIn({ FRUGAL_BACKEND: 'native', FRUGAL_AUTOGRAD_KERNELS: 'ts' }), 'ts ts ts');
});
