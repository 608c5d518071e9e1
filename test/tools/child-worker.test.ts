// The child-process protocol of the llama.cpp oracle and the decode bench: results, errors,
// crashes and hangs each end in a resolved value or a clear rejection, never a wait.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { callWorker } from './child-worker.js';

const dir = mkdtempSync(join(tmpdir(), 'frugal-child-worker-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const protocol = new URL('./child-worker.js', import.meta.url).href;

function worker(name: string, body: string): string {
  const path = join(dir, `${name}.mjs`);
  writeFileSync(path, `import { serveOneRequest } from '${protocol}';\n${body}\n`);
  return path;
}

test('callWorker: the result of the handler; stdout noise before it is ignored', async () => {
  const path = worker('double', "console.log('library log line'); await serveOneRequest(async (r) => ({ twice: r.n * 2 }));");
  assert.deepEqual(await callWorker(path, { n: 21 }, { what: 'double', timeoutMs: 20_000 }), { twice: 42 });
});

test('callWorker: a handler error, a crash without a result and a hang are rejections naming the work', async () => {
  const failing = worker('failing', "await serveOneRequest(async () => { throw new Error('bad model file'); });");
  await assert.rejects(callWorker(failing, {}, { what: 'model x', timeoutMs: 20_000 }), /^Error: model x: Error: bad model file/);
  const crashing = worker('crashing', "process.stderr.write('segfault-like\\n'); process.exit(3);");
  await assert.rejects(callWorker(crashing, {}, { what: 'model y', timeoutMs: 20_000 }), /model y: worker exited \(code 3, signal null\) without a result\nsegfault-like/);
  const hanging = worker('hanging', 'setInterval(() => {}, 1000);');
  await assert.rejects(callWorker(hanging, {}, { what: 'model z', timeoutMs: 300 }), /model z: worker timed out after 300 ms/);
});
