// Kernel benchmark (npm run bench:kernels): measures this machine's limits with small native
// probes (FMA peak, memory read bandwidth), then the native f32 GEMM and the quantized matvec
// kernels against those limits. Shared machines are noisy: each number is the best of a few reps.
import { randomFillSync } from 'node:crypto';
import { byteSize, type DType } from '../src/tensor/dtype.js';
import { describeBackend } from '../src/tensor/index.js';
import { loadNativeAddon, nativeBackend } from '../src/tensor/native.js';
import { weightMatrix, type WeightMatrix } from '../src/tensor/tensor.js';

const addon = loadNativeAddon();
const native = nativeBackend(addon);
const threads = native.threads;

/**
 * Best wall time of `reps` runs, and the best CPU time (user + system of this process, all
 * threads). On a busy shared machine wall time includes waiting for a core; CPU time / threads
 * estimates what an idle machine would give (it also counts the workers' brief spin-waits).
 */
function best(reps: number, run: () => void): { wall: number; cpu: number } {
  run(); // warm-up
  let wall = Infinity;
  let cpu = Infinity;
  for (let r = 0; r < reps; r++) {
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    run();
    wall = Math.min(wall, Number(process.hrtime.bigint() - start) / 1e9);
    const used = process.cpuUsage(cpu0);
    cpu = Math.min(cpu, (used.user + used.system) / 1e6);
  }
  return { wall, cpu: cpu / threads };
}

function randomFloats(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.random() - 0.5;
  return out;
}

/** Random quantized bytes with sane f16 scales (0.0625) at the scale offsets of each block. */
function randomWeight(dtype: DType, rows: number, cols: number): WeightMatrix {
  const data = new Uint8Array(rows * byteSize(dtype, cols));
  for (let i = 0; i < data.length; i += 65536) randomFillSync(data.subarray(i, i + 65536));
  const scaleOffsets: Partial<Record<DType, [number, number[]]>> = {
    q8_0: [34, [0]], q4_0: [18, [0]], q4_1: [20, [0, 2]], q5_0: [22, [0]], q5_1: [24, [0, 2]], q4_k: [144, [0, 2]], q5_k: [176, [0, 2]], q6_k: [210, [208]],
    q2_k: [84, [80, 82]], q3_k: [110, [108]], iq4_nl: [18, [0]], iq4_xs: [136, [0]],
  };
  const layout = scaleOffsets[dtype];
  if (layout) {
    const [blockBytes, offsets] = layout;
    for (let b = 0; b < data.length; b += blockBytes) for (const o of offsets) { data[b + o] = 0x00; data[b + o + 1] = 0x2c; }
  }
  if (dtype === 'fp8_e4m3') {
    for (let i = 0; i < data.length; i++) if ((data[i]! & 0x7f) === 0x7f) data[i] = 0x38;
    const scales = new Float32Array(Math.ceil(rows / 128) * Math.ceil(cols / 128)).fill(0.01);
    return weightMatrix(dtype, rows, cols, data, scales);
  }
  return weightMatrix(dtype, rows, cols, data);
}

const rows: string[][] = [];
const row = (...cells: string[]) => rows.push(cells);
const f1 = (v: number) => v.toFixed(1);

console.log(`frugal kernel benchmark: ${describeBackend(native)}`);
// Optional section filter: node dist/bench/kernels.js [probes] [gemm] [matvec] [prefill] [sampler]
const sections = process.argv.slice(2);
const want = (name: string) => sections.length === 0 || sections.includes(name);
let peakAll = NaN;
let bwAll = NaN;
let peakCpu = NaN;
/** The documented 2-thread read bandwidth of the project's machine (../shared/spec/machine-performance.md). */
const DOCUMENTED_BANDWIDTH = 55;

// Machine limits
if (want('probes')) {
/** Best of several short probes: on a shared machine a long single run mostly measures the neighbours. */
function bestFma(threadsUsed: number): number {
  let bestRate = 0;
  for (let r = 0; r < 8; r++) {
    const p = addon.probeFma(threadsUsed, 10_000_000);
    bestRate = Math.max(bestRate, p.flops / p.seconds / 1e9);
  }
  return bestRate;
}
/** FMA rate per CPU-second of one thread (what one idle core gives), times the thread count. */
function fmaPerCpu(): number {
  let bestRate = 0;
  for (let r = 0; r < 5; r++) {
    const cpu0 = process.cpuUsage();
    const p = addon.probeFma(1, 10_000_000);
    const used = process.cpuUsage(cpu0);
    bestRate = Math.max(bestRate, p.flops / ((used.user + used.system) / 1e6) / 1e9);
  }
  return bestRate * threads;
}
const peak1 = bestFma(1);
peakAll = bestFma(threads);
row('FMA peak, 1 thread', `${f1(peak1)} GFLOPS`, '', 'register-only FMA loop');
peakCpu = fmaPerCpu();
row(`FMA peak, ${threads} threads`, `${f1(peakAll)} GFLOPS`, '', 'register-only FMA loop', `${f1(peakCpu)} GFLOPS`);
const gib = 1024 ** 3;
const read1 = addon.probeRead(gib, 1, 6);
const readAll = addon.probeRead(gib, threads, 6);
const bw1 = read1.bytes / read1.seconds / 1e9;
bwAll = readAll.bytes / readAll.seconds / 1e9;
row('read bandwidth, 1 thread', `${f1(bw1)} GB/s`, '', 'sum over 1 GiB');
row(`read bandwidth, ${threads} threads`, `${f1(bwAll)} GB/s`, '', 'sum over 1 GiB');
}

// f32 GEMM
for (const size of want('gemm') ? [512, 2048] : []) {
  const a = randomFloats(size * size);
  const b = randomFloats(size * size);
  const c = new Float32Array(size * size);
  const t = best(size > 1000 ? 4 : 10, () => native.gemm(false, false, size, size, size, 1, a, size, b, size, 0, c, size));
  const gflops = (2 * size ** 3) / t.wall / 1e9;
  const cpuGflops = (2 * size ** 3) / t.cpu / 1e9;
  row(`sgemm ${size}^3`, `${f1(gflops)} GFLOPS`, `${f1((100 * gflops) / peakAll)}% of peak`, `${(t.wall * 1000).toFixed(1)} ms`, `${f1(cpuGflops)} GFLOPS, ${f1((100 * cpuGflops) / peakCpu)}% of ${f1(peakCpu)}`);
}

// Quantized matvec (m = 1) and a small batch (m = 8): bandwidth in bytes of weights read. "In
// cache": the same matrix again and again, which partly stays in the 32 MB L3 between calls.
// "Streaming" (m = 1): calls cycle through enough copies (>= 256 MB) that every byte comes from
// DRAM, as the matrices of a model larger than the cache do in decode; the honest bandwidth figure.
const n = 4096;
for (const dtype of (want('matvec') ? ['q8_0', 'q4_0', 'q4_k', 'q6_k', 'fp8_e4m3', 'f16', 'iq4_xs', 'iq4_nl', 'q3_k', 'q2_k', 'q5_1'] : []) as DType[]) {
  const w = randomWeight(dtype, n, n);
  const bytes = w.rows * byteSize(dtype, w.cols);
  for (const m of [1, 8]) {
    const x = randomFloats(m * n);
    const out = new Float32Array(m * n);
    const t = best(15, () => native.matmul(out, x, m, w));
    const gbs = bytes / t.wall / 1e9;
    const cpuGbs = bytes / t.cpu / 1e9;
    row(`matmul ${dtype} 4096x4096, m=${m}, in cache`, `${f1(gbs)} GB/s`, `${f1((100 * gbs) / bwAll)}% of bandwidth`, `${(t.wall * 1e6).toFixed(0)} us`, `${f1(cpuGbs)} GB/s, ${f1((100 * cpuGbs) / DOCUMENTED_BANDWIDTH)}% of ${DOCUMENTED_BANDWIDTH}`);
  }
  const copies = [w, ...Array.from({ length: Math.max(3, Math.ceil(256e6 / bytes)) - 1 }, () => randomWeight(dtype, n, n))];
  const x = randomFloats(n);
  const out = new Float32Array(n);
  const t = best(5, () => { for (const c of copies) native.matmul(out, x, 1, c); });
  const gbs = (bytes * copies.length) / t.wall / 1e9;
  const cpuGbs = (bytes * copies.length) / t.cpu / 1e9;
  row(`matmul ${dtype} 4096x4096, m=1, streaming`, `${f1(gbs)} GB/s`, `${f1((100 * gbs) / bwAll)}% of bandwidth`, `${((t.wall * 1e6) / copies.length).toFixed(0)} us`, `${f1(cpuGbs)} GB/s, ${f1((100 * cpuGbs) / DOCUMENTED_BANDWIDTH)}% of ${DOCUMENTED_BANDWIDTH}`);
}

/**
 * As best(), for several variants run in turn within each rep (so a noisy neighbour slows them
 * alike); each variant's setup runs before its timed call.
 */
function bestInterleaved(reps: number, variants: { setup: () => void; run: () => void }[]): { wall: number; cpu: number }[] {
  const times = variants.map(() => ({ wall: Infinity, cpu: Infinity }));
  for (let r = 0; r <= reps; r++) {
    variants.forEach((v, i) => {
      v.setup();
      const cpu0 = process.cpuUsage();
      const start = process.hrtime.bigint();
      v.run();
      if (r === 0) return; // warm-up
      const t = times[i]!;
      t.wall = Math.min(t.wall, Number(process.hrtime.bigint() - start) / 1e9);
      const used = process.cpuUsage(cpu0);
      t.cpu = Math.min(t.cpu, (used.user + used.system) / 1e6 / threads);
    });
  }
  return times;
}

// Prefill-shaped quantized matmul: f32 activations (dequantize panels + f32 GEMM) against int8
// activations (native/src/gemm_int8.h, the default on avx512-vnni), interleaved. GFLOPS counts
// 2·m·n·k operations either way; "% of peak" is against the f32 FMA peak.
if (want('prefill')) {
  const m = 128;
  const startMode = addon.info().int8;
  for (const dtype of ['q4_k', 'q4_0', 'q3_k', 'q2_k', 'iq4_xs', 'iq4_nl', 'q5_1'] as DType[]) {
    const w = randomWeight(dtype, n, n);
    const x = randomFloats(m * n);
    const out = new Float32Array(m * n);
    const modes = addon.setInt8('prefill') === 'prefill' ? (['off', 'prefill'] as const) : (['off'] as const);
    const times = bestInterleaved(4, modes.map((mode) => ({ setup: () => addon.setInt8(mode), run: () => native.matmul(out, x, m, w) })));
    modes.forEach((mode, i) => {
      const t = times[i]!;
      const gflops = (2 * m * n * n) / t.wall / 1e9;
      const cpuGflops = (2 * m * n * n) / t.cpu / 1e9;
      const label = `matmul ${dtype} 4096x4096, m=${m}, ${mode === 'off' ? 'f32' : 'int8'} activations`;
      row(label, `${f1(gflops)} GFLOPS`, `${f1((100 * gflops) / peakAll)}% of peak`, `${(t.wall * 1000).toFixed(1)} ms`, `${f1(cpuGflops)} GFLOPS, ${f1((100 * cpuGflops) / peakCpu)}% of ${f1(peakCpu)}`);
    });
  }
  addon.setInt8(startMode);
}

// The sampler's native passes against their JavaScript fallbacks (src/generate/sampling.ts, which
// define their bits), interleaved, and Sampler.sample end to end, on peaked logits (a few tokens far
// above Gaussian noise, as a trained model gives) at the shipped model's 1,024-token vocabulary and
// Qwen2's 152,064. "vs limit" is the JavaScript loop's time over the native one.
if (want('sampler')) {
  const { argmaxLogits, BUCKETS, Sampler, softmaxBuckets } = await import('../src/generate/sampling.js');
  const gauss = (): number => Math.sqrt(-2 * Math.log(Math.random() + 1e-12)) * Math.cos(2 * Math.PI * Math.random());
  for (const vocab of [1024, 152_064]) {
    const z = Float32Array.from({ length: vocab }, () => 2 * gauss());
    for (let j = 0; j < 5; j++) z[(j * 7919) % vocab] += 10 + j;
    const max = z[argmaxLogits(z, vocab)]!;
    const full = new Float64Array(vocab);
    const bucket = new Uint16Array(vocab);
    const mass = new Float64Array(BUCKETS + 1);
    const reps = Math.max(3, Math.round(2e6 / vocab));
    const pairs: [string, () => void, () => void][] = [
      ['argmax and NaN check', () => native.argmaxLogits!(z, vocab), () => argmaxLogits(z, vocab)],
      ['top-p weights and buckets (T 0.6)', () => native.softmaxBuckets!(full, z, vocab, max, 1 / 0.6, BUCKETS, bucket, mass), () => softmaxBuckets(full, z, vocab, max, 1 / 0.6, bucket, mass)],
    ];
    for (const [name, nativeRun, jsRun] of pairs) {
      const [nat, js] = bestInterleaved(5, [{ setup: () => {}, run: () => { for (let i = 0; i < reps; i++) nativeRun(); } }, { setup: () => {}, run: () => { for (let i = 0; i < reps; i++) jsRun(); } }]);
      row(`sampler: ${name}, vocabulary ${vocab}`, `${((nat!.wall / reps) * 1e6).toFixed(1)} µs`, `${(js!.wall / nat!.wall).toFixed(2)}x the JS loop`, `JS ${((js!.wall / reps) * 1e6).toFixed(1)} µs`);
    }
    for (const [name, options] of [['greedy', { temperature: 0 }], ['temperature 1', { temperature: 1 }], ['top-p 0.95, T 0.6', { temperature: 0.6, topP: 0.95 }]] as const) {
      const sampler = new Sampler({ ...options, seed: 1 }, vocab);
      const t = best(5, () => { for (let i = 0; i < reps; i++) sampler.sample(z); });
      row(`sampler: Sampler.sample ${name}, vocabulary ${vocab}`, `${((t.wall / reps) * 1e6).toFixed(1)} µs per token`);
    }
  }
}

rows.unshift(['kernel', 'wall', 'vs limit', 'time', 'per CPU-second (x threads)']);
for (const r of rows) while (r.length < 5) r.push('');
const widths = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
console.log('(best of several reps. On a shared machine wall numbers vary by 10-25% or more between runs; the last');
console.log(' column divides by CPU time / threads instead, an estimate for an idle machine: compute against the FMA peak');
console.log(' per CPU-second, matvec against the documented 55 GB/s of machine-performance.md. Sleeping workers do not count,');
console.log(' spinning ones do, so it is an estimate, not a measurement.)');
