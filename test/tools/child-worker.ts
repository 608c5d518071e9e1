/**
 * One JSON request, one JSON reply: the protocol of the child processes that run llama.cpp
 * (node-llama-cpp can hang or crash on a bad file, so it never runs in the test or bench process
 * itself). The parent writes the request to the child's stdin and kills the child after a
 * timeout; the child answers with one stdout line, RESULT_MARKER + {"ok": true, "result": ...}
 * or {"ok": false, "error": ...}, so that library logs on stdout cannot be mistaken for it.
 */
import { spawn } from 'node:child_process';

const RESULT_MARKER = 'FRUGAL_WORKER_RESULT ';

type Reply<T> = { ok: true; result: T } | { ok: false; error: string };

export interface CallOptions {
  /** Names the work in errors (a model path, an engine). */
  what: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs `script` (a compiled worker that calls serveOneRequest) on `request`; rejects on failure, crash or timeout. */
export function callWorker<T>(script: string, request: unknown, o: CallOptions): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'], ...(o.env ? { env: o.env } : {}) });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const finish = (error: Error | undefined, value?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value!);
    };
    const tail = (): string => `\n${stderr.slice(-2000)}`;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${o.what}: worker timed out after ${o.timeoutMs} ms${tail()}`));
    }, o.timeoutMs);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.on('error', (e) => finish(e));
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (!line) {
        finish(new Error(`${o.what}: worker exited (code ${code}, signal ${signal}) without a result${tail()}`));
        return;
      }
      let reply: Reply<T>;
      try {
        reply = JSON.parse(line.slice(RESULT_MARKER.length)) as Reply<T>;
      } catch (error) {
        finish(new Error(`${o.what}: worker sent an unreadable result (${(error as Error).message})`));
        return;
      }
      if (reply.ok) finish(undefined, reply.result);
      else finish(new Error(`${o.what}: ${reply.error}${tail()}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/** The child's side: reads the request from stdin, answers with `handle`'s result or its error, and exits. */
export async function serveOneRequest<Q, T>(handle: (request: Q) => Promise<T>): Promise<void> {
  let body: Reply<T>;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    body = { ok: true, result: await handle(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Q) };
  } catch (error) {
    body = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
  // exit once stdout (a pipe, written asynchronously) has taken the whole reply
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(body)}\n`, () => process.exit(body.ok ? 0 : 1));
}
