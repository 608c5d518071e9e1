// Builds the addon with its AVX-512 and VNNI kernels running through SIMDe's portable intrinsics
// (native/emulated/immintrin.h) instead of the CPU's, then runs tests on that build, so that the
// AVX-512 code gets checked against ref on CPUs that cannot execute it (.ci/run does this after
// npm test). Needs an x86-64 CPU with AVX2 and FMA, g++, Node's headers and Debian's
// libsimde-dev. On a CPU with AVX-512 it does nothing: npm test has run the real kernels there.
// The llama.cpp oracle tests are not in the default set: llama.cpp runs at this CPU's real level,
// and an f32 sum rounded in another order can move an activation across an int8 rounding step.
// Usage: node scripts/emulated-avx512.mjs [test path substring...]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'src');
const out = join(root, 'native', 'build-emulated');
const addon = join(out, 'frugal_native.node');
const simde = '/usr/include/simde/x86/avx512.h';
const nodeHeaders = join(dirname(dirname(process.execPath)), 'include', 'node');

function fail(message) {
  console.error(`emulated-avx512: ${message}`);
  process.exit(1);
}

const cpu = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
if (/\bavx512f\b/.test(cpu)) {
  console.log('emulated-avx512: skipped, this CPU runs the AVX-512 kernels itself (npm test checked them)');
  process.exit(0);
}
if (!/\bavx2\b/.test(cpu) || !/\bfma\b/.test(cpu)) {
  console.log('emulated-avx512: skipped, the emulated build needs a CPU with AVX2 and FMA');
  process.exit(0);
}
if (!existsSync(simde)) fail(`${simde} is missing: apt-get install libsimde-dev`);
if (!existsSync(join(nodeHeaders, 'node_api.h'))) fail(`no node_api.h under ${nodeHeaders}`);

const common = ['-O2', '-std=c++17', '-fPIC', '-fno-strict-aliasing', '-Wno-unused-function', '-Wno-uninitialized', '-Wno-psabi', `-I${nodeHeaders}`];
const baseline = ['-mavx2', '-mfma', '-mf16c', '-mbmi2'];
// What the real AVX-512 target defines, without letting the compiler emit AVX-512 itself.
const emulated = [
  `-I${join(root, 'native', 'emulated')}`, '-DSIMDE_NO_NATIVE', '-DFRUGAL_EMULATED_AVX512',
  ...['F', 'BW', 'DQ', 'VL', 'VNNI'].map((f) => `-D__AVX512${f}__`), ...baseline,
];
// The sources of binding.gyp's targets, each compiled as the real build compiles it but for the
// AVX-512 one, which gets the emulation. The addon's own files are compiled for the baseline in
// the real build, where no multiply-add can be fused: so here too. The scalar table stays scalar.
const gyp = JSON.parse(readFileSync(join(root, 'native', 'binding.gyp'), 'utf8'));
const flagsOf = { frugal_kernels_avx512: () => emulated, frugal_kernels_avx2: () => baseline, frugal_native: (file) => (file === 'kernels_scalar.cc' ? [] : [...emulated, '-ffp-contract=off']) };
const units = gyp.targets.flatMap((target) => target.sources.map((path) => {
  const file = path.replace(/^src\//, '');
  if (!flagsOf[target.target_name]) fail(`binding.gyp target ${target.target_name} is unknown to this script`);
  return [file, flagsOf[target.target_name](file)];
}));

function compile(file, extra) {
  const object = join(out, file.replace(/\.cc$/, '.o'));
  return new Promise((resolve, reject) => {
    const child = spawn('g++', [...common, ...extra, '-c', join(source, file), '-o', object], { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve(object) : reject(new Error(`g++ failed on ${file}`))));
  });
}

mkdirSync(out, { recursive: true });
const started = Date.now();
// the AVX-512 unit takes most of the time: start it first
const queue = [...units].sort(([a], [b]) => Number(b === 'kernels_avx512.cc') - Number(a === 'kernels_avx512.cc'));
const objects = [];
const jobs = Array.from({ length: Math.max(1, availableParallelism()) }, async () => {
  for (let next = queue.shift(); next; next = queue.shift()) objects.push(await compile(...next));
});
await Promise.all(jobs).catch((error) => fail(error.message));
const link = spawnSync('g++', ['-shared', '-o', addon, ...objects, '-lpthread'], { stdio: 'inherit' });
if (link.status !== 0) fail('linking failed');
console.log(`emulated-avx512: built ${addon} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const filters = process.argv.slice(2);
const tests = spawnSync(process.execPath, [join(root, 'scripts', 'run-tests.mjs'), ...(filters.length ? filters : ['test/tensor', 'test/nn', 'test/models', 'test/generate', 'test/autograd', 'test/train'])], {
  stdio: 'inherit',
  env: { ...process.env, FRUGAL_NATIVE_ADDON: addon },
});
process.exit(tests.status ?? 1);
