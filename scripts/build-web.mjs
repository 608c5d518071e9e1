// Builds the web chat UI into dist/web/: type-checks src/server/web (its own tsconfig, DOM lib),
// bundles app.ts -> assets/app.js and app.css -> assets/app.css with esbuild (minified, with
// source maps), copies index.html. Type-checking and bundling run in parallel.
// Usage: node scripts/build-web.mjs [--no-typecheck]
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'server', 'web');
const out = join(root, 'dist', 'web');
const typecheck = !process.argv.includes('--no-typecheck');

function runTypecheck() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', join(source, 'tsconfig.json')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`type errors in src/server/web:\n${output}`))));
  });
}

const started = performance.now();
mkdirSync(join(out, 'assets'), { recursive: true });
const common = { bundle: true, minify: true, sourcemap: true, logLevel: 'warning', legalComments: 'none' };
try {
  await Promise.all([
    typecheck ? runTypecheck() : Promise.resolve(),
    build({ ...common, entryPoints: [join(source, 'app.ts')], outfile: join(out, 'assets', 'app.js'), format: 'esm', target: ['es2022'], platform: 'browser' }),
    build({ ...common, entryPoints: [join(source, 'app.css')], outfile: join(out, 'assets', 'app.css') }),
  ]);
  copyFileSync(join(source, 'index.html'), join(out, 'index.html'));
} catch (e) {
  console.error(`build-web: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
console.log(`build-web: dist/web built in ${((performance.now() - started) / 1000).toFixed(2)} s${typecheck ? ' (type-checked)' : ''}`);
