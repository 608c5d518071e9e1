import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { tinyTokenizerJson } from './tiny-tokenizer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'frugal.js');

function frugal(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, 'tokenize', ...args], { input, encoding: 'utf8', cwd: root });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('frugal tokenize', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const json = tinyTokenizerJson('hello world, hello tokens. 你好世界 <tag>\n'.repeat(5), {
    merges: 60,
    addedTokens: [{ content: '<｜begin▁of▁sentence｜>', special: true }, { content: '<｜User｜>', special: false }],
  });
  const config = { bos_token: '<｜begin▁of▁sentence｜>', add_bos_token: true };
  const path = join(dir, 'tokenizer.json');
  writeFileSync(path, JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  const tokenizer = Tokenizer.fromJson(json, config);

  it('--text prints the ids as one JSON array, without BOS unless --add-special', () => {
    const text = 'hello <｜User｜>你好 world';
    const plain = frugal(['--tokenizer', path, '--text', text]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, `${JSON.stringify(tokenizer.encode(text))}\n`);
    const special = frugal(['--tokenizer', path, '--text', text, '--add-special']);
    assert.deepEqual(JSON.parse(special.stdout), [tokenizer.bosId, ...tokenizer.encode(text)]);
    const fromDirectory = frugal(['--tokenizer', dir, '--text', text, '--add-special']);
    assert.equal(fromDirectory.stdout, special.stdout);
    const noParse = frugal(['--tokenizer', path, '--text', text, '--no-parse-special']);
    assert.deepEqual(JSON.parse(noParse.stdout), tokenizer.encode(text, { parseSpecial: false }));
  });

  it('--jsonl writes one array per input line, in order', () => {
    const texts = ['hello', '', 'line\nbreak and\ttab', '你好世界 👍🏽', ' '.repeat(10)];
    const result = frugal(['--tokenizer', path, '--jsonl'], texts.map((t) => JSON.stringify(t)).join('\n') + '\n');
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n').map((l) => JSON.parse(l)), texts.map((t) => tokenizer.encode(t)));
  });

  it('reports errors on stderr with a non-zero exit code', () => {
    const missing = frugal(['--tokenizer', join(dir, 'nope.json'), '--text', 'x']);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /not found/);
    assert.equal(missing.stdout, '');
    const bad = frugal(['--tokenizer', path, '--jsonl'], '"ok"\n{not json\n');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /stdin line 2: invalid JSON/);
    assert.equal(bad.stdout, `${JSON.stringify(tokenizer.encode('ok'))}\n`);
    const notString = frugal(['--tokenizer', path, '--jsonl'], '42\n');
    assert.match(notString.stderr, /stdin line 1: expected a JSON string/);
    const usage = frugal(['--text', 'x']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /missing --tokenizer/);
  });
});
