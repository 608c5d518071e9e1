/**
 * llama.cpp's tokenizer as an oracle for GGUF tokenizer metadata: writes a vocab-only GGUF with
 * `tokenizerGgufMetadata` (plus the few llama hparams llama.cpp reads even for a vocab-only load)
 * and tokenizes texts with node-llama-cpp in a child process that is killed after a timeout.
 */
import { fileURLToPath } from 'node:url';
import { callWorker } from '../tools/child-worker.js';
import { gguf, type GgufValue } from '../../src/formats/gguf-value.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { type Tokenizer, tokenizerGgufMetadata } from '../../src/tokenizer/index.js';


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
  return callWorker<TokenizeResult>(workerPath, request, { what: `llama.cpp tokenize on ${request.modelPath}`, timeoutMs });
}
