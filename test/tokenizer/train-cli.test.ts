/**
 * `frugal tokenizer train` end to end: trains from a text file and a JSONL file, writes
 * tokenizer.json + tokenizer_config.json, and `frugal tokenize` then uses them; the files equal an
 * in-process trainBpe on the same documents. Bad input gives named errors and non-zero exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { R1_SPECIAL_TOKENS, trainBpe, trainedTokenizerConfig } from '../../src/tokenizer/train-bpe.js';
import { buildCorpus } from './corpus.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'bin', 'frugal.js');

function frugal(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('frugal tokenizer train', () => {
  const dir = mkdtempSync(join(tmpdir(), 'frugal-tok-train-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const corpus = buildCorpus({ seed: 11, size: 900 });
  const plainText = corpus.slice(0, 600).join('\n');
  const documents = corpus.slice(600);
  const textPath = join(dir, 'a.txt');
  const jsonlPath = join(dir, 'b.jsonl');
  writeFileSync(textPath, plainText);
  writeFileSync(jsonlPath, documents.map((text, i) => JSON.stringify(i % 2 === 0 ? { text } : text)).join('\n') + '\n');

  it('trains, writes tokenizer.json + tokenizer_config.json, and frugal tokenize uses them', async () => {
    const out = join(dir, 'out', 'tokenizer.json');
    const result = frugal(['tokenizer', 'train', '--input', textPath, jsonlPath, '--vocab-size', '700', '--out', out, '--special', '<my_special>']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /merging: vocab \d+\/700, \d+ merges, \d+ merges\/s, ETA/);
    assert.match(result.stderr, /vocabulary 700 = 256 bytes \+ 423 learned \+ 21 special/);
    assert.ok(existsSync(join(dir, 'out', 'tokenizer_config.json')));

    const expected = await trainBpe([plainText, ...documents], { vocabSize: 700, specialTokens: [...R1_SPECIAL_TOKENS, '<my_special>'], preTokenizer: 'deepseek-v3' });
    const written = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(written, JSON.parse(JSON.stringify(expected)));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'out', 'tokenizer_config.json'), 'utf8')), trainedTokenizerConfig(expected));

    const tokenizer = Tokenizer.fromFile(out);
    const text = 'Hello <｜User｜>wörld 12345 你好 🤖<my_special></think>';
    const tokenized = frugal(['tokenize', '--tokenizer', out, '--text', text, '--add-special']);
    assert.equal(tokenized.status, 0, tokenized.stderr);
    const ids = JSON.parse(tokenized.stdout) as number[];
    assert.deepEqual(ids, tokenizer.encode(text, { addSpecialTokens: true }));
    assert.equal(ids[0], tokenizer.tokenId('<｜begin▁of▁sentence｜>'));
    assert.ok(ids.includes(tokenizer.tokenId('<my_special>')!));
    assert.equal(tokenizer.decode(ids.slice(1)), text);
  });

  it('writes into a directory given as --out, without R1 specials on request', () => {
    const outDir = join(dir, 'plain');
    mkdirSync(outDir);
    const result = frugal(['tokenizer', 'train', '--input', textPath, '--vocab-size', '300', '--out', outDir, '--no-r1-specials', '--quiet', '--pre-tokenizer', 'qwen2']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const tokenizer = Tokenizer.fromFile(outDir);
    assert.equal(tokenizer.vocabSize, 300);
    assert.equal(tokenizer.bosId, undefined);
    assert.equal(tokenizer.spec.normalizer, 'NFC');
  });

  it('fails clearly on a missing file, a vocabulary too small, bad JSONL and bad arguments', () => {
    const missing = frugal(['tokenizer', 'train', '--input', join(dir, 'nope.txt'), '--vocab-size', '500', '--out', join(dir, 'x.json')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /input file not found: .*nope\.txt/);

    const small = frugal(['tokenizer', 'train', '--input', textPath, '--vocab-size', '270', '--out', join(dir, 'x.json')]);
    assert.equal(small.status, 1);
    assert.match(small.stderr, /--vocab-size 270 is too small: .*256 byte tokens and 20 special tokens \(at least 276\)/);

    const badPath = join(dir, 'bad.jsonl');
    writeFileSync(badPath, '{"text": "fine"}\n{"text": oops}\n');
    const bad = frugal(['tokenizer', 'train', '--input', badPath, '--vocab-size', '500', '--out', join(dir, 'x.json')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.jsonl:2: invalid JSON/);

    const noText = join(dir, 'notext.jsonl');
    writeFileSync(noText, '{"content": "x"}\n');
    assert.match(frugal(['tokenizer', 'train', '--input', noText, '--vocab-size', '500', '--out', join(dir, 'x.json')]).stderr, /notext\.jsonl:1: expected a JSON string or an object with a string field "text"/);

    const notUtf8 = join(dir, 'binary.txt');
    writeFileSync(notUtf8, Buffer.from([0x61, 0xff, 0xfe, 0x0a]));
    assert.match(frugal(['tokenizer', 'train', '--input', notUtf8, '--vocab-size', '500', '--out', join(dir, 'x.json')]).stderr, /binary\.txt: not valid UTF-8/);

    const noVocab = frugal(['tokenizer', 'train', '--input', textPath, '--out', join(dir, 'x.json')]);
    assert.equal(noVocab.status, 2);
    assert.match(noVocab.stderr, /--vocab-size is required/);
    assert.match(frugal(['tokenizer', 'train', '--input', textPath, '--vocab-size', '4k', '--out', 'x']).stderr, /--vocab-size: '4k' is not a positive integer/);
    assert.match(frugal(['tokenizer', 'train', '--input', textPath, '--vocab-size', '400', '--out', 'x', '--pre-tokenizer', 'bert']).stderr, /'bert' is not one of deepseek-v3, qwen2, llama3/);
    const bare = frugal(['tokenizer']);
    assert.equal(bare.status, 2);
    assert.match(bare.stderr, /usage: frugal tokenizer train/);
    const unknown = frugal(['tokenizer', 'shrink']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown subcommand 'shrink'/);
    assert.equal(existsSync(join(dir, 'x.json')), false);
  });
});
