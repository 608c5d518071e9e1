// Data pipeline (JSONL/text, separator, token cache, split, seeded order), the SVG chart writer,
// and the `frugal train` command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { PackedSequences, SequenceOrder, holdOut, loadTokens, tokenizeFiles } from '../../src/train/data.js';
import { niceTicks, renderLineChart } from '../../src/train/chart.js';
import { tempDir, writeTinyTokenizer } from './helpers.js';
import { runFixture } from './run-fixture.js';

const bin = fileURLToPath(new URL('../../../bin/frugal.js', import.meta.url));

test('JSONL and text files are tokenized document by document with a separator; bad lines are named', () => {
  const dir = tempDir('data');
  const tokPath = writeTinyTokenizer(dir);
  const tok = Tokenizer.fromFile(tokPath);
  writeFileSync(join(dir, 'a.jsonl'), `${JSON.stringify({ text: 'the cat sat.' })}\n\n${JSON.stringify({ text: 'a dog ran.', id: 2 })}\n`);
  writeFileSync(join(dir, 'b.txt'), 'the red box\nis hot.\n');
  const tokens = tokenizeFiles([join(dir, 'a.jsonl'), join(dir, 'b.txt')], tok, 7);
  const expected = [...tok.encode('the cat sat.'), 7, ...tok.encode('a dog ran.'), 7, ...tok.encode('the red box\nis hot.\n'), 7];
  assert.deepEqual([...tokens], expected);
  writeFileSync(join(dir, 'bad.jsonl'), `${JSON.stringify({ text: 'ok' })}\n{"txt": "no"}\n`);
  assert.throws(() => tokenizeFiles([join(dir, 'bad.jsonl')], tok, -1), /bad\.jsonl:2: expected an object with a string field "text"/);
  writeFileSync(join(dir, 'broken.jsonl'), '{"text": "a"\n');
  assert.throws(() => tokenizeFiles([join(dir, 'broken.jsonl')], tok, -1), /broken\.jsonl:1: not valid JSON/);
  writeFileSync(join(dir, 'latin1.txt'), Buffer.from([0x61, 0xe9, 0x0a]));
  assert.throws(() => tokenizeFiles([join(dir, 'latin1.txt')], tok, -1), /latin1\.txt: not valid UTF-8/);
});

test('the token cache is reused, and rebuilt when a data file changes', () => {
  const dir = tempDir('cache');
  const tokPath = writeTinyTokenizer(dir);
  const tok = Tokenizer.fromFile(tokPath);
  const file = join(dir, 'c.txt');
  writeFileSync(file, 'the cat sat on the mat.\n');
  const first = loadTokens([file], tok, tokPath, -1, join(dir, 'cache'));
  const second = loadTokens([file], tok, tokPath, -1, join(dir, 'cache'));
  assert.equal(first.cached, false);
  assert.equal(second.cached, true);
  assert.deepEqual(second.tokens, first.tokens);
  writeFileSync(file, 'a dog ran to the box.\n');
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const third = loadTokens([file], tok, tokPath, -1, join(dir, 'cache'));
  assert.equal(third.cached, false);
  assert.deepEqual([...third.tokens], tok.encode('a dog ran to the box.\n'));
});

test('packing, held-out split and the seeded per-epoch order', () => {
  const tokens = Int32Array.from({ length: 103 }, (_, i) => i);
  const { train, validation } = holdOut(tokens, 10, 0.2);
  assert.equal(train.count, 8);
  assert.equal(validation.count, 2);
  assert.deepEqual([...validation.sequence(0)], [80, 81, 82, 83, 84, 85, 86, 87, 88, 89]);
  assert.throws(() => holdOut(tokens.subarray(0, 15), 10, 0.5), /too few to hold out/);
  const order = new SequenceOrder(train.count, 3);
  const epoch0 = Array.from({ length: 8 }, (_, i) => order.at(i));
  const epoch1 = Array.from({ length: 8 }, (_, i) => order.at(8 + i));
  assert.deepEqual([...epoch0].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual([...epoch1].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.notDeepEqual(epoch0, epoch1);
  // A fresh order object (a resumed run) gives the same sequence at any cursor.
  const again = new SequenceOrder(train.count, 3);
  assert.equal(again.at(13), order.at(13));
  assert.notDeepEqual(Array.from({ length: 8 }, (_, i) => new SequenceOrder(8, 4).at(i)), epoch0);
  const batch = order.batch(new PackedSequences(tokens, 10, 0, 8), 2, 2);
  assert.deepEqual([...batch.subarray(0, 10)], [...train.sequence(order.at(2))]);
});

test('SVG chart: axes, one polyline per series, non-finite points skipped, text escaped', () => {
  const svg = renderLineChart([
    { name: 'train <loss>', color: '#000', points: [[1, 5], [2, Number.NaN], [3, 3]] },
    { name: 'val', color: '#f00', points: [[2, 4]] },
  ], { title: 'a & b' });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.includes('train &lt;loss&gt;') && svg.includes('a &amp; b'));
  const lines = svg.match(/<polyline[^>]*points="([^"]*)"/g)!;
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.split('points="')[1]!.trim().split(' ').length, 2);
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(2.3, 5.9), [3, 4, 5]);
});

test('frugal train: usage errors exit 2, config errors exit 1 naming the field', () => {
  const none = spawnSync(process.execPath, [bin, 'train'], { encoding: 'utf8' });
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--config is required/);
  const f = runFixture();
  const bad = structuredClone(f.json);
  (bad.schedule as Record<string, unknown>).steps = 'ten';
  const path = join(f.dir, 'bad.json');
  writeFileSync(path, JSON.stringify(bad));
  const r = spawnSync(process.execPath, [bin, 'train', '--config', path], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.json: field 'schedule\.steps': expected an integer, found "ten"/);
  writeFileSync(path, '{"model": ');
  const r2 = spawnSync(process.execPath, [bin, 'train', '--config', path], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /bad\.json: field '\(file\)': not valid JSON/);
});
