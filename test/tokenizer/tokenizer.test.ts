import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenizerLoader } from '@lenml/tokenizers';
import { BYTE_TO_CHAR, fromByteLevel, toByteLevel } from '../../src/tokenizer/byte-level.js';
import { BpeModel } from '../../src/tokenizer/bpe.js';
import { compileOnigurumaPattern, translateOnigurumaPattern } from '../../src/tokenizer/onig-regex.js';
import { KNOWN_PATTERNS, PreTokenizer, ggufPreNameOf } from '../../src/tokenizer/pre-tokenizer.js';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { buildCorpus, prng } from './corpus.js';
import { tinyTokenizerJson } from './tiny-tokenizer.js';

const TRAINING = [
  "The quick brown fox jumps over the lazy dog. It's the dog's day, isn't it? We'll see; they're here.",
  'Les élèves étudient la grammaire française. Die Schüler lernen Deutsch. 我们学习中文。日本語も。',
  'function tokenize(text) { return text.split(/\\s+/); } // 12345 67890 3.14159',
  '    indented\n\tline\r\nwindows line\n\n\nparagraph  spaced   out',
].join('\n').repeat(3);

function splitWith(patterns: readonly string[], text: string): string[] {
  const out: string[] = [];
  new PreTokenizer(patterns.map((pattern) => ({ kind: 'split' as const, pattern }))).split(text, out);
  return out;
}

describe('byte-level map (GPT-2 bytes_to_unicode)', () => {
  it('matches the spec examples and is a bijection', () => {
    const expected: [number, number][] = [[0x00, 0x100], [0x09, 0x109], [0x0a, 0x10a], [0x20, 0x120], [0x7f, 0x121], [0xa0, 0x142], [0xad, 0x143], [0x41, 0x41], [0xff, 0xff]];
    for (const [byte, code] of expected) assert.equal(BYTE_TO_CHAR[byte]!.codePointAt(0), code, `byte ${byte}`);
    assert.equal(new Set(BYTE_TO_CHAR).size, 256);
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(fromByteLevel(BYTE_TO_CHAR.join('')), all);
    assert.equal(toByteLevel(' é'), 'ĠÃ©');
  });
});

describe('Oniguruma -> JavaScript regex translation', () => {
  it('compiles every known family pattern', () => {
    for (const patterns of Object.values(KNOWN_PATTERNS)) for (const p of patterns) assert.ok(compileOnigurumaPattern(p) instanceof RegExp);
  });

  it('uses Unicode White_Space for \\s: U+0085 is space, U+FEFF is not', () => {
    const ws = compileOnigurumaPattern('\\s+');
    assert.deepEqual('a\u0085\u2028 b\ufeff'.match(ws), ['\u0085\u2028 ']);
  });

  it('expands (?i:...) with the simple case folds (long s, Kelvin sign)', () => {
    const re = compileOnigurumaPattern("(?i:'s|'ll|k)");
    assert.deepEqual("'S 'ſ 'Ll 'lL K \u212a 'x".match(re), ["'S", "'ſ", "'Ll", "'lL", 'K', '\u212a']);
    // Qwen2: the contraction alternative wins before the letters alternative.
    assert.deepEqual(splitWith(KNOWN_PATTERNS.qwen2, "'ſa it's"), ["'ſ", 'a', ' it', "'s"]);
  });

  it('splits the spec examples the way the Rust regexes do', () => {
    assert.deepEqual(splitWith(KNOWN_PATTERNS['deepseek-v3'], 'abc 1234567 中文x'), ['abc', ' ', '123', '456', '7', ' ', '中文', 'x']);
    assert.deepEqual(splitWith(KNOWN_PATTERNS['llama-bpe'], 'x   y\n\n  z 12345'), ['x', '  ', ' y', '\n\n', ' ', ' z', ' ', '123', '45']);
    assert.deepEqual(splitWith(KNOWN_PATTERNS.qwen2, '12345'), ['1', '2', '3', '4', '5']);
  });

  it('rejects constructs it cannot translate, naming the pattern', () => {
    for (const bad of ['(?i)x', '[[:alpha:]]', '\\h', '[a&&b]', '(a', '[abc']) {
      assert.throws(() => translateOnigurumaPattern(bad), (e: Error) => e.message.includes(JSON.stringify(bad)), bad);
    }
  });

  it('names the llama.cpp pre-tokenizer of each pattern set', () => {
    assert.equal(ggufPreNameOf(KNOWN_PATTERNS['deepseek-v3'].map((pattern) => ({ kind: 'split', pattern: pattern.replace('\\r\\n', '\r\n') }))), 'deepseek-v3');
    assert.equal(ggufPreNameOf(KNOWN_PATTERNS.qwen2.map((pattern) => ({ kind: 'split', pattern }))), 'qwen2');
    assert.equal(ggufPreNameOf([{ kind: 'split', pattern: 'x+' }]), undefined);
  });
});

describe('BPE merge', () => {
  const json = tinyTokenizerJson(TRAINING, { merges: 300 });
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const bpe = new BpeModel({ vocab: new Map(Object.entries(model.vocab)), merges: model.merges.map((m) => m.split(' ') as [string, string]) });

  it('heap-based and linear merges agree on random byte sequences', () => {
    const random = prng(7);
    const alphabet = [...'aeiou thrsnl.\n', ...'é中'];
    for (let trial = 0; trial < 300; trial++) {
      const text = Array.from({ length: 1 + Math.floor(random() * 120) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const symbols = Int32Array.from(Buffer.from(text, 'utf8'), (byte) => model.vocab[BYTE_TO_CHAR[byte]!]!);
      assert.deepEqual(bpe.mergeWithHeap(symbols.slice(), symbols.length), bpe.mergeLinear(symbols.slice(), symbols.length), JSON.stringify(text));
    }
  });

  it('merges lowest rank first, leftmost among equals', () => {
    const vocab = new Map([['a', 0], ['b', 1], ['aa', 2], ['ab', 3], ['aab', 4]]);
    const tiny = new BpeModel({ vocab, merges: [['a', 'b'], ['a', 'a'], ['aa', 'b']] });
    const out: number[] = [];
    tiny.encodePiece('aab', out); // 'a b' (rank 0) beats 'a a': a + ab, no further merge
    tiny.encodePiece('aaa', out); // 'a a' at 0 before 'a a' at 1
    assert.deepEqual(out, [0, 3, 2, 0]);
  });

  it('rejects merges whose tokens are not in the vocabulary', () => {
    assert.throws(() => new BpeModel({ vocab: new Map([['a', 0]]), merges: [['a', 'b']] }), /merge #0 'a b'.*'b'/);
  });
});

describe('Llama-3 style tokenizer (Llama-3 regex, ignore_merges) vs @lenml/tokenizers', () => {
  const extraVocab = [toByteLevel(' tokenization'), toByteLevel('Supercalifragilistic'), toByteLevel(' 中文字')];
  const json = tinyTokenizerJson(TRAINING, { ignoreMerges: true, extraVocab, merges: 250, mergesAsPairs: true });
  const ours = Tokenizer.fromJson(json);
  const reference = TokenizerLoader.fromPreTrained({ tokenizerJSON: json as never, tokenizerConfig: { tokenizer_class: 'PreTrainedTokenizer' } as never }) as unknown as {
    encode(text: string, options: { add_special_tokens: boolean }): number[];
  };

  it('ignore_merges emits whole-vocabulary pieces directly', () => {
    const text = 'Supercalifragilistic tokenization 中文字';
    const ids = ours.encode(text);
    assert.deepEqual(ids, [extraVocab[1], extraVocab[0], extraVocab[2]].map((t) => ours.tokenId(t!)));
    const withMerges = Tokenizer.fromJson({ ...json, model: { ...(json.model as object), ignore_merges: false } });
    assert.notDeepEqual(withMerges.encode(text), ids);
    assert.equal(withMerges.decode(withMerges.encode(text)), text);
  });

  it('encodes a generated corpus like the reference', () => {
    const corpus = [...buildCorpus({ seed: 99, size: 600 }), 'Supercalifragilistic tokenization 中文字 x'];
    for (const text of corpus) {
      assert.deepEqual(ours.encode(text), reference.encode(text, { add_special_tokens: false }), JSON.stringify(text));
      assert.equal(ours.decode(ours.encode(text)), text);
    }
  });
});

describe('added tokens and special-token options', () => {
  const json = tinyTokenizerJson(TRAINING, {
    merges: 100,
    addedTokens: [
      { content: '<｜begin▁of▁sentence｜>', special: true },
      { content: '<｜end▁of▁sentence｜>', special: true },
      { content: '<think>', special: false },
      { content: '<thinking>', special: false },
      { content: '<｜User｜>', special: false },
    ],
  });
  const tok = Tokenizer.fromJson(json, { bos_token: '<｜begin▁of▁sentence｜>', eos_token: '<｜end▁of▁sentence｜>', add_bos_token: true, add_eos_token: false });
  const id = (t: string): number => tok.tokenId(t)!;

  it('matches the longest added token and leaves the rest to BPE', () => {
    const ids = tok.encode('a<thinking>b<think>c<thin');
    assert.deepEqual(ids.filter((x) => x >= id('<｜begin▁of▁sentence｜>')), [id('<thinking>'), id('<think>')]);
    assert.equal(tok.decode(ids), 'a<thinking>b<think>c<thin');
  });

  it('adds BOS only when asked, and parseSpecial=false tokenizes control-token text as plain text', () => {
    assert.deepEqual(tok.encode('hi', { addSpecialTokens: true }), [id('<｜begin▁of▁sentence｜>'), ...tok.encode('hi')]);
    const text = '<｜User｜>hi<｜end▁of▁sentence｜><think>';
    const plain = tok.encode(text, { parseSpecial: false });
    assert.ok(!plain.includes(id('<｜User｜>')), 'looks special: control');
    assert.ok(!plain.includes(id('<｜end▁of▁sentence｜>')), 'special: control');
    assert.equal(plain.at(-1), id('<think>'), 'user-defined tokens stay parsed, as in llama.cpp');
    assert.equal(tok.decode(plain), text);
    assert.equal(tok.encode(text)[0], id('<｜User｜>'));
  });

  it('skips special tokens on request but keeps non-special added tokens', () => {
    const ids = tok.encode('<｜begin▁of▁sentence｜>x<think>y<｜end▁of▁sentence｜>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'x<think>y');
    assert.equal(tok.decode(ids), '<｜begin▁of▁sentence｜>x<think>y<｜end▁of▁sentence｜>');
  });

  it('encodes lone surrogates as U+FFFD', () => {
    assert.deepEqual(tok.encode('a\ud800b'), tok.encode('a\ufffdb'));
  });
});

describe('streaming decoder', () => {
  // Few merges: CJK characters and emoji come out as several byte tokens each.
  const tok = Tokenizer.fromJson(tinyTokenizerJson(TRAINING, { merges: 40 }));

  it('never emits half a character and ends equal to decode()', () => {
    for (const text of ['中文字符串テスト', '👨‍👩‍👧‍👦 👍🏽 🇯🇵', 'mixed 中 and é and 🧑🏽‍💻!', ...buildCorpus({ seed: 3, size: 200 })]) {
      const ids = tok.encode(text);
      const stream = tok.streamDecoder();
      let out = '';
      for (const id of ids) {
        const piece = stream.push(id);
        assert.ok(!piece.includes('\ufffd'), `replacement char mid-stream for ${JSON.stringify(text)}`);
        out += piece;
      }
      out += stream.flush();
      assert.equal(out, tok.decode(ids));
      assert.equal(out, text);
    }
    const multiByte = tok.encode('中');
    assert.ok(multiByte.length > 1, 'the test needs a character split over several tokens');
  });

  it('flushes truly invalid or truncated bytes as U+FFFD', () => {
    const byteId = (byte: number): number => tok.tokenId(BYTE_TO_CHAR[byte]!)!;
    const stream = tok.streamDecoder();
    assert.equal(stream.push(byteId(0x80)), '\ufffd'); // a lone continuation byte is invalid at once
    assert.equal(stream.push(byteId(0x61)), 'a');
    assert.equal(stream.push(byteId(0xe4)), ''); // first byte of a 3-byte character: wait
    assert.equal(stream.push(byteId(0xb8)), '');
    assert.equal(stream.flush(), '\ufffd');
    assert.equal(tok.decode([byteId(0x80), byteId(0x61), byteId(0xe4), byteId(0xb8)]), '\ufffda\ufffd');
  });

  it('rejects ids outside the vocabulary', () => {
    assert.throws(() => tok.decode([tok.vocabSize]), /outside the vocabulary/);
    assert.throws(() => tok.streamDecoder().push(-1), /outside the vocabulary/);
  });
});

describe('loading errors name the problem', () => {
  const good = tinyTokenizerJson('abc abc', { merges: 2 });
  const withModel = (patch: Record<string, unknown>) => ({ ...good, model: { ...(good.model as object), ...patch } });
  it('tokenizer.json', () => {
    assert.throws(() => Tokenizer.fromJson(withModel({ type: 'WordPiece' })), /model.type 'WordPiece' is not supported/);
    assert.throws(() => Tokenizer.fromJson(withModel({ merges: ['a b c'] })), /model.merges\[0\]/);
    assert.throws(() => Tokenizer.fromJson({ ...good, pre_tokenizer: { type: 'Whitespace' } }), /pre-tokenizer type 'Whitespace'/);
    assert.throws(() => Tokenizer.fromJson({ ...good, normalizer: { type: 'Lowercase' } }), /normalizer type 'Lowercase'/);
    assert.throws(() => Tokenizer.fromJson(good, { bos_token: '<nope>' }), /bos_token "<nope>"/);
    assert.throws(() => Tokenizer.fromJson(42), /expected a JSON object/);
    assert.throws(() => Tokenizer.fromFile('/nonexistent/tokenizer.json'), /not found/);
  });
  it('GGUF metadata', () => {
    const meta = new Map<string, unknown>([['tokenizer.ggml.model', 'llama']]);
    assert.throws(() => Tokenizer.fromGgufMetadata((k) => meta.get(k)), /tokenizer.ggml.model "llama"/);
    meta.set('tokenizer.ggml.model', 'gpt2');
    assert.throws(() => Tokenizer.fromGgufMetadata((k) => meta.get(k)), /missing GGUF metadata key tokenizer.ggml.tokens/);
    meta.set('tokenizer.ggml.tokens', ['a', 'b']);
    meta.set('tokenizer.ggml.merges', []);
    meta.set('tokenizer.ggml.pre', 'mystery');
    assert.throws(() => Tokenizer.fromGgufMetadata((k) => meta.get(k)), /unsupported tokenizer.ggml.pre 'mystery'/);
  });
});
