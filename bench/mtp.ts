/**
 * Speculative decoding benchmark (`npm run bench:mtp [-- --model FILE --tokens N --k K --repeats R --deepen 8,12,16]`):
 * greedy tokens/s without and with MTP self-drafting (same run, same prompts), acceptance rate,
 * tokens per main-model forward and speedup: first on 8 test questions of the shipped model's task
 * families (arithmetic, linear equations, Countdown, sorting words; levels 1 and 2), asked through
 * the chat template and answered to the end, which is what the model is for; then on a raw
 * prompt outside its training ("The capital of France is"); then n-gram drafting on a repetitive
 * prompt. The variants run interleaved (plain, k=1, k=2, ..., plain, ...) R times after a
 * warm-up; tokens/s is the median of the R runs (best in parentheses), and the speedup is the
 * median over the rounds of (variant / plain of the same round), which a machine shared with
 * other work disturbs least. The process CPU time per generated token (prompt included; all
 * threads) is printed too: with FRUGAL_THREADS=1 it measures the work itself, whatever else the
 * machine runs. Default model: models/frugal-r1-tiny.gguf when it exists, else a tiny random-weight
 * deepseek2 with an MTP module, built in a temporary directory (its MTP acceptance is then
 * meaningless: an untrained module guesses).
 *
 * With --deepen L,...: the cycle cost again on copies of the model deepened to L layers (its
 * MoE layers repeated; see deepenGguf), at the tokens per cycle measured on the model itself.
 *
 * Last, the verify cost on a memory-bound model (`--large FILE`, default the bench:decode cache's
 * Qwen2-1.5B Q4_K file when it exists): the time of one forward over 1, 2, 3, 4 and 8 new tokens
 * (a 64-token context, rolled back after each) relative to 1 token, and the speedup that MTP
 * drafting would give there at the acceptance measured above (a draft costing one more decoder
 * block plus the shared output head, by their share of the weight bytes). Speculation pays when verifying k+1 tokens costs about what 1 does, which is the
 * case when weights stream from DRAM (big models), not when they sit in cache (the 2M shipped model).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collect, generate, type GenerationRequest } from '../src/generate/engine.js';
import type { GenerationTokenizer } from '../src/generate/events.js';
import { generateSpeculative, type SpeculativeDoneEvent, type SpeculativeOptions } from '../src/generate/speculative.js';
import { hasMtp } from '../src/generate/draft-mtp.js';
import type { CausalLM } from '../src/models/model.js';
import type { DeepseekModel } from '../src/models/deepseek-v3.js';
import { loadModel } from '../src/models/load.js';
import { openGguf } from '../src/formats/gguf.js';
import { type GgufTensorInput, writeGguf } from '../src/formats/gguf-write.js';
import { tinyDeepseekModel, writeTinyDeepseekGguf } from '../src/models/deepseek-v3-tiny.js';
import { describeBackend } from '../src/tensor/index.js';
import { getTask } from '../src/train/tasks/index.js';

const { values } = parseArgs({
  options: { model: { type: 'string' }, tokens: { type: 'string' }, k: { type: 'string' }, repeats: { type: 'string' }, large: { type: 'string' }, deepen: { type: 'string' } },
  strict: true,
});
const tokens = Number(values.tokens ?? 64);
const mtpK = values.k !== undefined ? [Number(values.k)] : [1, 2, 3];
const repeats = Number(values.repeats ?? 9);
/** Most tokens of an answer to a question (the shipped model's answers take 80-200). */
const ANSWER_TOKENS = 256;

/** A raw text (no template; `tokens` tokens, past any end of sequence) or a user question (chat template, to its end). */
type BenchPrompt = { text: string } | { question: string };
const questions: BenchPrompt[] = ['arithmetic', 'linear', 'countdown', 'sort'].flatMap((family) =>
  ([1, 2] as const).map((difficulty) => ({ question: getTask(family).generate(1, { seed: 2026, difficulty, split: 'test' })[0]!.prompt })));

let path = values.model ?? 'models/frugal-r1-tiny.gguf';
let tmp = '';
let random = false;
if (!existsSync(path)) {
  if (values.model) throw new Error(`model not found: ${path}`);
  tmp = mkdtempSync(join(tmpdir(), 'frugal-bench-mtp-'));
  path = join(tmp, 'random-deepseek2-mtp.gguf');
  writeTinyDeepseekGguf(path, tinyDeepseekModel({ mtp: true, hiddenSize: 256, intermediateSize: 512, moeIntermediateSize: 128, layers: 4, heads: 8, qLoraRank: 96, kvLoraRank: 64, qkNopeHeadDim: 32, qkRopeHeadDim: 16, vHeadDim: 32, routedExperts: 16, expertsPerToken: 4, nGroup: 4, topkGroup: 2, contextLength: 1024, seed: 7 }));
  random = true;
}

try {
  const loaded = loadModel(path);
  const model: CausalLM = loaded.model;
  const tokenizer: GenerationTokenizer = loaded.tokenizer!;
  console.log(`model: ${path} (${model.info.architecture}, ${(model.info.parameterCount / 1e6).toFixed(1)}M parameters${random ? ', RANDOM WEIGHTS: acceptance rates are meaningless' : ''})`);
  console.log(`backend: ${describeBackend()}; greedy; ${repeats} interleaved rounds after a warm-up: median decode tokens/s (best), median speedup per round\n`);

  /**
   * Greedy decoding of every prompt in turn: tokens/s over their decode time (prefill excluded),
   * process CPU per generated token, and the drafter's counts summed. A raw text runs without a
   * template for `tokens` tokens, past any end of sequence; a question runs through the model's
   * chat template and stops at its end of sequence (at most ANSWER_TOKENS), as a user's would.
   */
  const run = async (prompts: readonly BenchPrompt[], speculative?: SpeculativeOptions) => {
    const generated: number[] = [];
    let decodeMs = 0;
    const counts = { proposed: 0, accepted: 0, forwards: 0, tokens: 0 };
    const before = process.cpuUsage();
    for (const prompt of prompts) {
      const request: GenerationRequest = 'text' in prompt
        ? { text: prompt.text, sampling: { temperature: 0 }, maxTokens: tokens, stopTokenIds: [], thinking: 'off' }
        : { messages: [{ role: 'user', content: prompt.question }], sampling: { temperature: 0 }, maxTokens: ANSWER_TOKENS, thinking: 'auto' };
      const r = await collect(speculative ? generateSpeculative(model, tokenizer, { ...request, speculative }) : generate(model, tokenizer, request));
      generated.push(...r.tokens);
      decodeMs += r.done.timings.decodeMs;
      const stats = (r.done as Partial<SpeculativeDoneEvent>).speculative;
      if (stats) {
        counts.proposed += stats.proposed;
        counts.accepted += stats.accepted;
        counts.forwards += stats.forwards;
        counts.tokens += r.tokens.length;
      }
    }
    const cpu = process.cpuUsage(before);
    const cpuPerToken = (cpu.user + cpu.system) / Math.max(1, generated.length);
    const stats = speculative ? {
      proposed: counts.proposed, accepted: counts.accepted,
      acceptanceRate: counts.proposed > 0 ? counts.accepted / counts.proposed : 0,
      tokensPerForward: counts.forwards > 0 ? counts.tokens / counts.forwards : 1,
    } : undefined;
    return { tokens: generated, tps: generated.length / Math.max(decodeMs / 1000, 1e-9), cpuPerToken, stats };
  };
  type Result = Awaited<ReturnType<typeof run>>;
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const tps = (results: Result[]): string =>
    `${median(results.map((r) => r.tps)).toFixed(1).padStart(8)} tokens/s (${Math.max(...results.map((r) => r.tps)).toFixed(0).padStart(5)})  ` +
    `cpu ${median(results.map((r) => r.cpuPerToken)).toFixed(0).padStart(4)} us/token`;
  const acceptance = new Map<number, number>();
  const tokensPerCycle = new Map<number, number>();
  const compare = async (label: string, prompts: readonly BenchPrompt[], variants: SpeculativeOptions[]) => {
    const all: (SpeculativeOptions | undefined)[] = [undefined, ...variants];
    for (const v of all) await run(prompts, v); // warm-up
    const results: Result[][] = all.map(() => []);
    for (let i = 0; i < repeats; i++) for (const [j, v] of all.entries()) results[j]!.push(await run(prompts, v));
    const plain = results[0]!;
    console.log(`${label}\n  ${'plain'.padEnd(16)} ${tps(plain)}`);
    for (const [j, v] of variants.entries()) {
      const rs = results[j + 1]!;
      const s = rs[0]!.stats!;
      if (v.method === 'mtp' && !acceptance.has(v.draftTokens ?? 1)) {
        acceptance.set(v.draftTokens ?? 1, s.acceptanceRate);
        tokensPerCycle.set(v.draftTokens ?? 1, s.tokensPerForward);
      }
      const same = rs.every((r, i) => r.tokens.join() === plain[i]!.tokens.join()) ? 'same tokens' : 'TOKENS DIFFER';
      const speedup = median(rs.map((r, i) => r.tps / plain[i]!.tps));
      const cpuSpeedup = median(plain.map((r) => r.cpuPerToken)) / median(rs.map((r) => r.cpuPerToken));
      console.log(
        `  ${`${v.method} k=${v.draftTokens}`.padEnd(16)} ${tps(rs)}  speedup ${speedup.toFixed(2)}x (cpu ${cpuSpeedup.toFixed(2)}x)  ` +
          `acceptance ${(s.acceptanceRate * 100).toFixed(1)}% (${s.accepted}/${s.proposed})  ${s.tokensPerForward.toFixed(2)} tokens/forward  ${same}`,
      );
    }
  };

  if (hasMtp(model)) {
    const mtpVariants = mtpK.map((k) => ({ method: 'mtp' as const, draftTokens: k }));
    await compare(`MTP self-drafting, ${questions.length} test questions of the shipped model's task families (chat template, each to its end or ${ANSWER_TOKENS} tokens)`, questions, mtpVariants);
    await compare(`\nMTP self-drafting, raw prompt "The capital of France is" (${tokens} tokens, outside what the shipped model was trained on)`, [{ text: 'The capital of France is' }], mtpVariants);
    cycleCost(model as DeepseekModel, mtpK, tokensPerCycle, repeats);
    for (const layers of (values.deepen ?? '').split(',').filter(Boolean).map(Number)) {
      const copy = join(tmp || (tmp = mkdtempSync(join(tmpdir(), 'frugal-bench-mtp-'))), `deepened-${layers}.gguf`);
      deepenGguf(path, copy, layers);
      console.log(`\ndeepened to ${layers} layers (its MoE layers repeated, the MTP module last; tokens per cycle as measured above):`);
      cycleCost(loadModel(copy, { tokenizer: false }).model as DeepseekModel, mtpK, tokensPerCycle, repeats);
    }
  } else {
    console.log('(the model has no MTP module: MTP drafting skipped)');
  }
  const repetitive = 'one two three four five, one two three four five, one two three four five, one two three four five, one two three';
  await compare('\nn-gram drafting, repetitive prompt', [{ text: repetitive }], [2, 4, 8].map((k) => ({ method: 'ngram' as const, draftTokens: k })));
  verifyCost(values.large ?? join(homedir(), '.cache', 'frugal-bench', 'qwen2-1.5b-q4_k.gguf'), acceptance.get(1), repeats);
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

/**
 * A copy of the deepseek2 GGUF at `source` with `layers` decoder layers: layer 0 (dense) kept, the
 * MoE layers 1 .. n-1 repeated in turn to fill 1 .. layers-1, the MTP module (block n) moved to
 * block `layers`. Its weights are the shipped ones, so its cost is what a deeper model of the same
 * width would cost (its drafts mean nothing).
 */
function deepenGguf(source: string, out: string, layers: number): void {
  if (!Number.isInteger(layers) || layers < 2) throw new Error(`--deepen: ${layers} is not a layer count >= 2`);
  const file = openGguf(source);
  try {
    const blocks = Number(file.value('deepseek2.block_count')); // the main layers and the MTP module
    const moeLayers = blocks - 2;
    const metadata = new Map(file.metadata);
    metadata.set('deepseek2.block_count', { type: 'u32', value: layers + 1 });
    const tensors: GgufTensorInput[] = [];
    for (const t of file.tensors) {
      const data = (): Uint8Array => file.readTensorBytes(t);
      const m = /^blk\.(\d+)\.(.*)$/.exec(t.name);
      const block = m ? Number(m[1]) : -1;
      const names = !m || block === 0 ? [t.name] : block === blocks - 1 ? [`blk.${layers}.${m[2]}`]
        : Array.from({ length: layers - 1 }, (_, j) => j + 1).filter((j) => ((j - 1) % moeLayers) + 1 === block).map((j) => `blk.${j}.${m[2]}`);
      for (const name of names) tensors.push({ name, dims: t.dims, dtype: t.dtype, data });
    }
    writeGguf(out, { metadata, tensors });
  } finally {
    file.close();
  }
}

/**
 * What one MTP cycle costs on `model`, in process CPU time (all threads; run with FRUGAL_THREADS=1
 * for the work alone): the verify forward of k + 1 rows and the k drafts (the first draft enters
 * two positions, as after an accepted draft), against one plain decode forward, at a 32-token
 * context (interleaved rounds, median). With t tokens per cycle the forwards alone then allow at
 * most t / (cycle / plain) times plain decoding's tokens/s.
 */
function cycleCost(model: DeepseekModel, ks: number[], tokensPerCycle: Map<number, number>, repeats: number): void {
  const d = model.config.hiddenSize;
  const cache = model.newCache(64);
  const mtpCache = model.newMtpCache(64);
  const context = Int32Array.from({ length: 32 }, (_, i) => (i * 7919 + 3) % model.info.vocabSize);
  model.forward(context, cache);
  const hidden = Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(i));
  const ids = (n: number) => Int32Array.from({ length: n }, (_, i) => (i * 104729 + 11) % model.info.vocabSize);
  const verify = (rows: number) => () => {
    model.forwardWithHidden(ids(rows), cache, { allLogits: rows > 1 });
    cache.truncate(context.length);
  };
  const drafts = (k: number) => () => {
    let state = model.mtpForwardWithHidden(hidden, ids(2), mtpCache, { allLogits: false }).hidden;
    for (let j = 1; j < k; j++) state = model.mtpForwardWithHidden(state, ids(1), mtpCache, { allLogits: false }).hidden;
    mtpCache.truncate(0);
  };
  const cases = [verify(1), ...ks.flatMap((k) => [verify(k + 1), drafts(k)])];
  const calls = 200;
  const cpu = (body: () => void): number => {
    const before = process.cpuUsage();
    for (let i = 0; i < calls; i++) body();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / calls;
  };
  for (const c of cases) cpu(c); // warm-up
  const times = cases.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++) cases.forEach((c, j) => times[j]!.push(cpu(c)));
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
  const plain = median(times[0]!);
  console.log(`\nMTP cycle cost (process CPU time per call, median of ${repeats} rounds of ${calls}): plain decode forward ${plain.toFixed(0)} us`);
  ks.forEach((k, j) => {
    const v = median(times[1 + 2 * j]!) / plain;
    const m = median(times[2 + 2 * j]!) / plain;
    const t = tokensPerCycle.get(k);
    const perCycle = t === undefined ? '' : `; at the ${t.toFixed(2)} tokens per cycle measured above, the forwards allow <= ${(t / (v + m)).toFixed(2)}x`;
    console.log(`  k=${k}: verify of ${k + 1} rows ${v.toFixed(2)} + ${k} draft${k > 1 ? 's' : ''} ${m.toFixed(2)} = ${(v + m).toFixed(2)} plain forwards per cycle${perCycle}`);
  });
}

/**
 * Time of forward(k tokens) / forward(1 token) on `file` at a 64-token context (interleaved,
 * median of `repeats` rounds), and the k=1 speculative speedup it implies at acceptance `a`:
 * (1 + a) tokens per cycle of one 2-token verify plus a draft (one block + the output head).
 */
function verifyCost(file: string, measured: number | undefined, repeats: number): void {
  // without an MTP run above (no MTP module, or --k other than 1): DeepSeek's reported 85%
  const a = measured ?? 0.85;
  if (!existsSync(file)) {
    console.log(`\nverify cost on a memory-bound model: skipped (${file} not found; \`npm run bench:decode\` builds it, or pass --large FILE)`);
    return;
  }
  const loaded = loadModel(file, { tokenizer: false });
  const large = loaded.model;
  const layers = Number(loaded.metadata.get(`${large.info.architecture}.block_count`));
  const cache = large.newCache(256);
  const context = Int32Array.from({ length: 64 }, (_, i) => (i * 7919) % large.info.vocabSize);
  large.forward(context, cache);
  const sizes = [1, 2, 3, 4, 8];
  const time = (k: number): number => {
    const tokens = Int32Array.from({ length: k }, (_, i) => (i * 104729 + 11) % large.info.vocabSize);
    const start = process.hrtime.bigint();
    large.forward(tokens, cache);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    cache.truncate(context.length);
    return ms;
  };
  for (const k of sizes) time(k); // warm-up: pages in the weights
  const ratios = sizes.map(() => [] as number[]);
  const ones: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const one = time(1);
    ones.push(one);
    sizes.forEach((k, j) => ratios[j]!.push(time(k) / one));
  }
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
  console.log(`\nverify cost on a memory-bound model: ${file} (${(large.info.parameterCount / 1e9).toFixed(2)}B parameters, ${layers} layers), 64-token context`);
  console.log(`  forward of 1 token: median ${median(ones).toFixed(1)} ms`);
  console.log(`  forward of k tokens / 1 token: ${sizes.map((k, j) => `k=${k} ${median(ratios[j]!).toFixed(2)}x`).join(', ')}`);
  const verify2 = median(ratios[1]!);
  // A DeepSeek MTP module is one more decoder block that shares the output head: its draft reads
  // about (one block + head) / (all blocks + head) of the weights a forward reads.
  const gguf = openGguf(file);
  const bytes = (match: (name: string) => boolean) => gguf.tensors.filter((t) => match(t.name)).reduce((sum, t) => sum + t.byteLength, 0);
  const head = bytes((n) => n === 'output.weight') || bytes((n) => n === 'token_embd.weight');
  const block = bytes((n) => n.startsWith('blk.0.'));
  const all = bytes((n) => n.startsWith('blk.')) + head;
  gguf.close();
  const draft = (block + head) / all;
  console.log(`  a draft by an MTP block (one decoder block + the shared output head) reads ${(draft * 100).toFixed(1)}% of a forward's weights`);
  console.log(`  MTP k=1 at ${(a * 100).toFixed(1)}% acceptance${measured === undefined ? ' (DeepSeek\'s reported figure: none measured above)' : ''} would give (1 + a) / (verify(2) + draft) = ${((1 + a) / (verify2 + draft)).toFixed(2)}x here`);
}
