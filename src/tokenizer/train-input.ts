/**
 * Training text from files for `frugal tokenizer train`: plain text files in line-aligned pieces
 * of about 1 MiB, or JSONL files (one JSON object per line with a string field "text", or one
 * JSON string per line) one document per line. Invalid UTF-8 and malformed JSONL lines are errors
 * naming the file and line.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

const CHUNK_BYTES = 1 << 20;

/** Checks that every input exists and is a readable file; returns their sizes in bytes. */
export function checkInputFiles(paths: readonly string[]): number[] {
  if (paths.length === 0) throw new Error('no input files given');
  return paths.map((path) => {
    if (!existsSync(path)) throw new Error(`input file not found: ${path}`);
    const stat = statSync(path);
    if (!stat.isFile()) throw new Error(`input is not a file: ${path}`);
    return stat.size;
  });
}

/** Consecutive line-aligned pieces of a UTF-8 file; `onBytes` is told how many bytes were read. */
export function* textChunks(path: string, onBytes?: (bytes: number) => void): Generator<{ text: string; firstLine: number }> {
  const fd = openSync(path, 'r');
  try {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const buffer = new Uint8Array(CHUNK_BYTES);
    let carry = '';
    let line = 1;
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      onBytes?.(n);
      let text: string;
      try {
        text = carry + decoder.decode(buffer.subarray(0, n), { stream: n > 0 });
      } catch {
        throw new Error(`${path}: not valid UTF-8 (near line ${line})`);
      }
      if (n === 0) {
        if (text.length > 0) yield { text, firstLine: line };
        return;
      }
      const cut = text.lastIndexOf('\n') + 1;
      carry = text.slice(cut);
      if (cut > 0) {
        const piece = text.slice(0, cut);
        yield { text: piece, firstLine: line };
        for (let i = 0; i < piece.length; i++) if (piece.charCodeAt(i) === 10) line++;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function documentOf(value: unknown, path: string, line: number): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { text?: unknown }).text === 'string') {
    return (value as { text: string }).text;
  }
  throw new Error(`${path}:${line}: expected a JSON string or an object with a string field "text"`);
}

/** The training texts of a file: JSONL documents (by extension .jsonl) or plain text pieces. */
export function* fileTexts(path: string, onBytes?: (bytes: number) => void): Generator<string> {
  const jsonl = path.endsWith('.jsonl');
  for (const { text, firstLine } of textChunks(path, onBytes)) {
    if (!jsonl) {
      yield text;
      continue;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new Error(`${path}:${firstLine + i}: invalid JSON (${(error as Error).message})`);
      }
      yield documentOf(value, path, firstLine + i);
    }
  }
}

/** The texts of several files, in order. */
export function* filesTexts(paths: readonly string[], onBytes?: (bytes: number) => void): Generator<string> {
  for (const path of paths) yield* fileTexts(path, onBytes);
}
