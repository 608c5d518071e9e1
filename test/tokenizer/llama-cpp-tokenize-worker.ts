/**
 * Child-process worker: tokenizes texts with llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU
 * library) from a vocab-only load of a GGUF file, with parse_special false and true. Reads one JSON request on stdin, writes one
 * JSON line prefixed with RESULT_MARKER. Run through ./llama-cpp-tokenize.ts (which times it out).
 */
import { RESULT_MARKER, type TokenizeRequest } from './llama-cpp-tokenize.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function reply(body: unknown, code: number): void {
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(body)}\n`, () => process.exit(code));
}

try {
  const request = JSON.parse(await readStdin()) as TokenizeRequest;
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (_level, message) => process.stderr.write(`${message}\n`) });
  const model = await llama.loadModel({ modelPath: request.modelPath, vocabOnly: true });
  const tokenize = (special: boolean) => request.texts.map((text) => Array.from(model.tokenize(text, special), Number));
  const result = { plain: tokenize(false), special: tokenize(true) };
  await model.dispose();
  await llama.dispose();
  reply({ ok: true, ...result }, 0);
} catch (error) {
  reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 1);
}
