// Builds the native kernel addon with node-gyp during `npm install`. A failed build is not an
// install failure: the project then runs on the pure TypeScript `ref` backend and says so once.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
if (!existsSync(join(nativeDir, 'binding.gyp'))) {
  console.log('frugal: no native/binding.gyp; skipping the native addon');
  process.exit(0);
}
const npmNodeGyp = process.env.npm_config_node_gyp;
const [command, args] = npmNodeGyp ? [process.execPath, [npmNodeGyp]] : ['node-gyp', []];
const started = Date.now();
const result = spawnSync(command, [...args, 'rebuild', '--release', `--jobs=${Math.max(1, (await import('node:os')).availableParallelism())}`], {
  cwd: nativeDir,
  stdio: 'inherit',
});
if (result.status === 0) {
  console.log(`frugal: native addon built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} else {
  console.warn('frugal: the native addon did not build; frugal will run on the slower pure-TypeScript backend');
}
process.exit(0);
