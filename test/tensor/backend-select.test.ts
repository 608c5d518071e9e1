// Backend selection (src/tensor/index.ts): FRUGAL_BACKEND=ref, FRUGAL_SIMD, FRUGAL_THREADS, in
// child processes because the choice is made once per process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNativeBackend, withSerialKernels } from '../../src/tensor/index.js';

const indexUrl = new URL('../../src/tensor/index.js', import.meta.url).href;

function describeIn(env: Record<string, string>): { stdout: string; stderr: string } {
  const script = `import('${indexUrl}').then((m) => console.log(m.describeBackend(m.getBackend())))`;
  // the switches of the environment the tests run in (FRUGAL_INT8=0 npm test) do not leak into these cases
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !['FRUGAL_BACKEND', 'FRUGAL_SIMD', 'FRUGAL_THREADS', 'FRUGAL_INT8'].includes(name)));
  const result = spawnSync(process.execPath, ['-e', script], { env: { ...inherited, ...env }, encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
  assert.equal(result.status, 0, result.stderr);
  return { stdout: result.stdout.trim(), stderr: result.stderr };
}

test('FRUGAL_BACKEND=ref forces the ref backend without a warning', () => {
  const { stdout, stderr } = describeIn({ FRUGAL_BACKEND: 'ref' });
  assert.equal(stdout, 'ref (TypeScript), 1 thread');
  assert.equal(stderr, '');
});

test('FRUGAL_NATIVE_ADDON naming a missing or broken file: the ref backend, with one line saying why', () => {
  const missing = describeIn({ FRUGAL_NATIVE_ADDON: '/nonexistent/frugal_native.node' });
  assert.equal(missing.stdout, 'ref (TypeScript), 1 thread');
  assert.match(missing.stderr, /native addon not available \(FRUGAL_NATIVE_ADDON names \/nonexistent\/frugal_native\.node, which does not exist\); using the ref backend/);
  const garbage = join(mkdtempSync(join(tmpdir(), 'frugal-addon-')), 'frugal_native.node');
  writeFileSync(garbage, 'not a shared library');
  const broken = describeIn({ FRUGAL_NATIVE_ADDON: garbage });
  assert.equal(broken.stdout, 'ref (TypeScript), 1 thread');
  assert.match(broken.stderr, /native addon not available \(.*frugal-addon-.*frugal_native\.node.*\); using the ref backend/);
  const script = describeIn({ FRUGAL_NATIVE_ADDON: fileURLToPath(import.meta.url) });
  assert.equal(script.stdout, 'ref (TypeScript), 1 thread');
  assert.match(script.stderr, /FRUGAL_NATIVE_ADDON must name a \.node file \(a built addon\), got .*backend-select\.test\.js/);
  rmSync(dirname(garbage), { recursive: true, force: true });
});

test('getBackend picks native when the addon is built, honouring FRUGAL_SIMD and FRUGAL_THREADS', { skip: loadNativeBackend() ? false : 'native addon not built' }, () => {
  const plain = describeIn({}).stdout;
  if (/^native (avx512-vnni|avx2)/.test(plain)) assert.match(plain, /^native (avx512-vnni|avx2), \d+ threads?, int8 activations$/);
  else assert.match(plain, /^native (avx512|scalar), \d+ threads?$/);
  assert.match(describeIn({ FRUGAL_INT8: '0' }).stdout, /^native (avx512-vnni|avx512|avx2|scalar), \d+ threads?$/);
  assert.equal(describeIn({ FRUGAL_SIMD: 'scalar', FRUGAL_THREADS: '1' }).stdout, 'native scalar, 1 thread');
  const avx2 = describeIn({ FRUGAL_SIMD: 'avx2', FRUGAL_THREADS: '3' }).stdout;
  assert.match(avx2, /^native (avx2, 3 threads, int8 activations|scalar, 3 threads)$/);
  const int8 = describeIn({ FRUGAL_INT8: '1' }).stdout;
  if (int8.startsWith('native avx512-vnni')) assert.match(int8, /, int8 activations \(all\)$/);
  else if (int8.startsWith('native avx2')) assert.match(int8, /, int8 activations$/, "'all' is 'prefill' on avx2");
  else assert.doesNotMatch(int8, /int8/);
});

test('withSerialKernels: the same GEMM and attention results with the pool and on the calling thread only, and it nests', { skip: loadNativeBackend() ? false : 'native addon not built' }, () => {
  const backend = loadNativeBackend()!;
  const m = 67;
  const n = 301;
  const k = 129;
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.11));
  const gemm = () => {
    const c = new Float32Array(m * n);
    backend.gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n);
    return c;
  };
  const pooled = gemm();
  let inner: Float32Array | undefined;
  const serial = withSerialKernels(() => withSerialKernels(() => {
    inner = gemm();
    return gemm();
  }));
  for (let i = 0; i < pooled.length; i++) {
    assert.ok(Math.abs(pooled[i]! - serial[i]!) <= 1e-5 * (1 + Math.abs(pooled[i]!)), `serial gemm[${i}]: ${serial[i]} vs ${pooled[i]}`);
    assert.equal(inner![i], serial[i]);
  }
  // An exception inside leaves serial mode (the pool is used again afterwards: results stay right).
  assert.throws(() => withSerialKernels(() => { throw new Error('inside'); }), /inside/);
  assert.deepEqual(gemm(), pooled);
});
