/**
 * llama.cpp's tokenizer as an oracle for GGUF tokenizer metadata: writes a vocab-only GGUF with
 * `tokenizerGgufMetadata` (plus the few llama hparams llama.cpp reads even for a vocab-only load)
 * and tokenizes texts with node-llama-cpp in a child process that is killed after a timeout.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gguf, type GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { type Tokenizer, tokenizerGgufMetadata } from '../../src/tokenizer/index.js';

export const RESULT_MARKER = 'LLAMA_TOKENIZE_RESULT ';

export interface TokenizeRequest {
  modelPath: string;
  texts: string[];
}

/** Ids per text with llama.cpp parse_special = false (plain) and true (special); no BOS. */
export interface TokenizeResult {
  plain: number[][];
  special: number[][];
}

const workerPath = fileURLToPath(new URL('./llama-cpp-tokenize-worker.js', import.meta.url));

/** Writes `tokenizer` into a vocab-only llama GGUF at `path`. */
export function writeVocabGguf(path: string, tokenizer: Tokenizer): void {
  const arch = 'llama';
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(arch)],
    [`${arch}.block_count`, gguf.u32(1)],
    [`${arch}.context_length`, gguf.u32(256)],
    [`${arch}.embedding_length`, gguf.u32(16)],
    [`${arch}.feed_forward_length`, gguf.u32(32)],
    [`${arch}.attention.head_count`, gguf.u32(2)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(1e-6)],
    ...tokenizerGgufMetadata(tokenizer),
  ];
  writeGguf(path, { metadata, tensors: [] });
}

/** Token ids llama.cpp gives each text. */
export function llamaCppTokenize(request: TokenizeRequest, timeoutMs = 120_000): Promise<TokenizeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [workerPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`llama.cpp tokenize worker timed out after ${timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (!line) return reject(new Error(`llama.cpp tokenize worker exited (code ${code}) without a result\n${stderr.slice(-2000)}`));
      const reply = JSON.parse(line.slice(RESULT_MARKER.length)) as ({ ok: true } & TokenizeResult) | { ok: false; error: string };
      if (reply.ok) resolve({ plain: reply.plain, special: reply.special });
      else reject(new Error(`llama.cpp tokenize worker failed: ${reply.error}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}
