/**
 * Child-process worker: tokenizes texts with llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU
 * library) from a vocab-only load of a GGUF file, with parse_special false and true. Reads one JSON request on stdin, writes one
 * JSON line (../tools/child-worker.ts). Run through ./llama-cpp-tokenize.ts (which times it out).
 */
import { serveOneRequest } from '../tools/child-worker.js';
import type { TokenizeRequest, TokenizeResult } from './llama-cpp-tokenize.js';

await serveOneRequest<TokenizeRequest, TokenizeResult>(async (request) => {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_level, message) => process.stderr.write(`${message}\n`) });
  const model = await llama.loadModel({ modelPath: request.modelPath, vocabOnly: true });
  const tokenize = (special: boolean) => request.texts.map((text) => Array.from(model.tokenize(text, special), Number));
  const result = { plain: tokenize(false), special: tokenize(true) };
  await model.dispose();
  await llama.dispose();
  return result;
});
