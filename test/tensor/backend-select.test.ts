// Backend selection (src/tensor/index.ts): FRUGAL_BACKEND=ref, FRUGAL_SIMD, FRUGAL_THREADS, in
// child processes because the choice is made once per process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNativeBackend } from '../../src/tensor/index.js';

const indexUrl = new URL('../../src/tensor/index.js', import.meta.url).href;

function describeIn(env: Record<string, string>): { stdout: string; stderr: string } {
  const script = `import('${indexUrl}').then((m) => console.log(m.describeBackend(m.getBackend())))`;
  const result = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
  assert.equal(result.status, 0, result.stderr);
  return { stdout: result.stdout.trim(), stderr: result.stderr };
}

test('FRUGAL_BACKEND=ref forces the ref backend without a warning', () => {
  const { stdout, stderr } = describeIn({ FRUGAL_BACKEND: 'ref' });
  assert.equal(stdout, 'ref (TypeScript), 1 thread');
  assert.equal(stderr, '');
});

test('getBackend picks native when the addon is built, honouring FRUGAL_SIMD and FRUGAL_THREADS', { skip: loadNativeBackend() ? false : 'native addon not built' }, () => {
  assert.match(describeIn({}).stdout, /^native (avx512-vnni|avx512|avx2|scalar), \d+ threads?$/);
  assert.equal(describeIn({ FRUGAL_SIMD: 'scalar', FRUGAL_THREADS: '1' }).stdout, 'native scalar, 1 thread');
  const avx2 = describeIn({ FRUGAL_SIMD: 'avx2', FRUGAL_THREADS: '3' }).stdout;
  assert.match(avx2, /^native (avx2|scalar), 3 threads$/);
  const int8 = describeIn({ FRUGAL_INT8: '1' }).stdout;
  if (int8.startsWith('native avx512-vnni')) assert.match(int8, /, int8 activations$/);
  else assert.doesNotMatch(int8, /int8/);
});
