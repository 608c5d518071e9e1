// Builds the web chat UI into dist/web/: type-checks src/server/web (its own tsconfig, DOM lib),
// bundles app.ts -> assets/app-<hash>.js and app.css -> assets/app-<hash>.css with esbuild
// (minified, with source maps), writes index.html pointing at them (content-hashed names, so the
// assets can be cached while a new build is picked up at once). Type-checking and bundling run in
// parallel.
// Usage: node scripts/build-web.mjs [--no-typecheck]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
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

/** The built file's name under assets/ (from esbuild's metafile). */
function outputName(result, extension) {
  const name = Object.keys(result.metafile.outputs).find((path) => path.endsWith(extension) && !path.endsWith('.map'));
  if (!name) throw new Error(`esbuild produced no ${extension} file`);
  return basename(name);
}

const started = performance.now();
const assets = join(out, 'assets');
rmSync(assets, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
const common = { bundle: true, minify: true, sourcemap: true, logLevel: 'warning', legalComments: 'none', outdir: assets, entryNames: '[name]-[hash]', metafile: true };
try {
  const [, js, css] = await Promise.all([
    typecheck ? runTypecheck() : Promise.resolve(),
    build({ ...common, entryPoints: [join(source, 'app.ts')], format: 'esm', target: ['es2022'], platform: 'browser' }),
    build({ ...common, entryPoints: [join(source, 'app.css')] }),
  ]);
  const template = readFileSync(join(source, 'index.html'), 'utf8');
  for (const placeholder of ['/assets/app.js', '/assets/app.css']) {
    if (!template.includes(`"${placeholder}"`)) throw new Error(`src/server/web/index.html does not reference "${placeholder}"`);
  }
  const html = template
    .replace('"/assets/app.js"', `"/assets/${outputName(js, '.js')}"`)
    .replace('"/assets/app.css"', `"/assets/${outputName(css, '.css')}"`);
  writeFileSync(join(out, 'index.html'), html);
} catch (e) {
  console.error(`build-web: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
console.log(`build-web: dist/web built in ${((performance.now() - started) / 1000).toFixed(2)} s${typecheck ? ' (type-checked)' : ''}`);
