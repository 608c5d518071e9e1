/**
 * A seeded, programmatically generated tokenizer test corpus: natural-language snippets in many
 * scripts, code, emoji sequences, digit and whitespace runs, contractions, punctuation runs,
 * special-token text inside prose, mixed scripts and random Unicode. Deterministic for a seed.
 */

/** Small fast PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SNIPPETS = [
  // French, German, Spanish, Portuguese, Italian, Polish, Turkish, Vietnamese
  "L'été dernier, nous sommes allés à la plage ; c'était génial !",
  "Qu'est-ce que tu fais aujourd'hui ? « Rien », répondit-il.",
  'Größere Übungen für Schüler: Straße, Fußgängerübergänge, Maßstäbe.',
  'Die Katze schläft auf dem Sofa, während der Hund draußen bellt.',
  '¿Dónde está la biblioteca? ¡Está allí, señor!',
  'Não há mal que sempre dure, nem bem que nunca se acabe.',
  "Perché l'Italia è così bella? Perché sì.",
  'Zażółć gęślą jaźń — źdźbło.',
  'İstanbul’da ığdır ve şırnak; ÇĞİÖŞÜ çğıöşü.',
  'Tiếng Việt có dấu: Người, được, những, chữ quốc ngữ.',
  // Chinese, Japanese, Korean
  '我们今天去公园散步，天气非常好。你呢？',
  '深度求索（DeepSeek）发布了新的推理模型R1，性能很强。',
  '東京は日本の首都です。ひらがなとカタカナ、そして漢字。',
  'コンピューターのプログラミングは楽しいですね！',
  '안녕하세요, 저는 학생입니다. 한국어를 공부하고 있어요.',
  // Arabic, Hebrew, Hindi, Thai, Russian, Greek, Georgian, Armenian
  'مرحبا بكم في عالم البرمجة، هذا نص عربي للاختبار.',
  'שלום עולם, זהו טקסט בעברית.',
  'नमस्ते दुनिया, यह हिंदी में एक परीक्षण वाक्य है।',
  'สวัสดีครับ ภาษาไทยไม่มีช่องว่างระหว่างคำ',
  'Съешь же ещё этих мягких французских булок, да выпей чаю.',
  'Ελληνικά: Καλημέρα κόσμε, τι κάνεις;',
  'ქართული ენა ძალიან ლამაზია.',
  'Բարեւ աշխարհ, ինչպե՞ս ես։',
  // English with contractions
  "I'm sure they're right, but we'll see; it's what I'd've done. DON'T YOU'LL WE'VE SHE'S",
  "The cat's toy isn't here — it's Tom's. Y'all'd've liked it.",
  // code
  'function add(a, b) {\n  return a + b;\n}\nconsole.log(add(2, 3));',
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  '#include <stdio.h>\nint main(void) {\n\tprintf("%d\\n", 42);\n\treturn 0;\n}\n',
  'fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!("{:?}", v); }',
  'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\' ORDER BY id DESC;',
  '<div class="container"><p id=\'x\'>Hello &amp; welcome</p></div>',
  '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b"}}',
  '    if (x === undefined) { throw new Error(`bad ${x}`); }\r\n',
  'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
  '$ ls -la | grep "\\.ts$" && echo done >> /tmp/log.txt 2>&1',
  // math / LaTeX
  'Solve $x^2 + 3x - 4 = 0$. \\boxed{x = 1 \\text{ or } x = -4}',
  '∑_{i=1}^{n} i = n(n+1)/2 ≈ ∞ ≠ ≤ ≥ ∂ ∫ √ π',
  // emoji
  'Family: 👨‍👩‍👧‍👦, thumbs: 👍🏻👍🏼👍🏽👍🏾👍🏿, flags: 🇫🇷🇯🇵🇺🇸, heart: ❤️‍🔥',
  '🏳️‍🌈 🧑🏽‍💻 👩‍❤️‍💋‍👨 ✊🏿 🤷‍♀️ 😀😃😄😁',
  // URLs and identifiers
  'https://example.com/path?query=a%20b&x=1#frag user@example.org',
  'snake_case_name camelCaseName PascalCase SCREAMING_CASE kebab-case',
];

const WORDS = [
  'the', 'and', 'hello', 'world', 'tokenizer', 'reasoning', 'model', 'Über', 'naïve', 'café', 'résumé',
  '北京', '学习', 'ありがとう', '한국', 'слово', 'كلمة', 'शब्द', 'λόγος', 'x', 'I', 'A', 'DeepSeek', 'R1',
];

const SPECIALS = [
  '<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>', '<think>', '</think>',
  '<|EOT|>', '<｜tool▁calls▁begin｜>', '<｜tool▁sep｜>', '<|im_start|>', '<|im_end|>', '<|endoftext|>',
  '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|User|>', '<｜User', '<thi',
];

const WHITESPACE = [' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\r\n\r\n', '\u00a0', '\u3000', ' \n ', '\n \n', '\u2009', '\u2003', '\v', '\f'];
const PUNCT = ['.', ',', '!', '?', '...', '?!', '—', '–', '-', '--', '"', "'", '«', '»', '“', '”', '(', ')', '[', ']', '{', '}', ';', ':', '…', '。', '、', '！', '？', '@', '#', '$', '%', '^', '&', '*', '~', '`', '|', '\\', '/', '+', '=', '<', '>', '_'];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "’s"];

/** Unicode blocks to draw random code points from (all assigned-heavy ranges). */
const RANGES: [number, number][] = [
  [0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x530, 0x58f], [0x590, 0x5ff],
  [0x600, 0x6ff], [0x900, 0x97f], [0x980, 0x9ff], [0xe00, 0xe7f], [0x10a0, 0x10ff], [0x1100, 0x11ff],
  [0x1e00, 0x1eff], [0x2000, 0x206f], [0x20a0, 0x20cf], [0x2100, 0x214f], [0x2190, 0x21ff], [0x2200, 0x22ff],
  [0x2500, 0x257f], [0x2600, 0x26ff], [0x3000, 0x303f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
  [0xff00, 0xffef], [0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f900, 0x1f9ff], [0x1d400, 0x1d7ff], [0x20000, 0x2a6df],
];

export interface CorpusOptions {
  seed?: number;
  size?: number;
}

/** `size` strings (default 2400) built from the pools above with a seeded PRNG. */
export function buildCorpus(options: CorpusOptions = {}): string[] {
  const random = prng(options.seed ?? 20250120);
  const size = options.size ?? 2400;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));
  const randomChar = (): string => {
    const [lo, hi] = pick(RANGES);
    return String.fromCodePoint(int(lo, hi));
  };
  /** The first n code points (never half a surrogate pair). */
  const cut = (text: string, n: number): string => Array.from(text).slice(0, n).join('');
  const digits = (n: number): string => Array.from({ length: n }, () => String(int(0, 9))).join('');
  const generators: (() => string)[] = [
    () => pick(SNIPPETS),
    () => `${pick(SNIPPETS)}${pick(WHITESPACE)}${pick(SNIPPETS)}`,
    () => Array.from({ length: int(1, 12) }, () => pick(WORDS)).join(pick([' ', '', '  ', '\n'])),
    () => `${pick(WORDS)}${pick(CONTRACTIONS)} ${pick(WORDS)}${pick(CONTRACTIONS)}${pick(PUNCT)}`,
    () => `${digits(int(1, 40))}${pick(['', ' ', '.', ',', 'px', '%', '元'])}${digits(int(0, 7))}`,
    () => `Call ${digits(3)}-${digits(4)} or +${digits(2)} ${digits(9)}; total: ${int(0, 1e6).toLocaleString('en-US')}.${digits(2)} ٣٤٥ ௧௨ Ⅻ ½ ²³`,
    () => Array.from({ length: int(1, 10) }, () => pick(WHITESPACE)).join(pick(['', 'a', '.', '中'])),
    () => `${pick(WHITESPACE)}${pick(WORDS)}${pick(WHITESPACE)}${pick(WHITESPACE)}${pick(WORDS)}${pick(WHITESPACE)}`,
    () => Array.from({ length: int(1, 15) }, () => pick(PUNCT)).join(pick(['', '', ' '])) + pick(['', '\n', '\r\n', 'abc']),
    () => `${cut(pick(SNIPPETS), int(0, 30))}${pick(SPECIALS)}${pick(WORDS)}${pick(SPECIALS)}${pick(SPECIALS)}${cut(pick(SNIPPETS), int(0, 20))}`,
    () => Array.from({ length: int(2, 8) }, () => pick([pick(WORDS), cut(pick(SNIPPETS), 12)])).join(''),
    () => Array.from({ length: int(1, 30) }, randomChar).join(''),
    () => Array.from({ length: int(1, 12) }, () => (random() < 0.5 ? randomChar() : pick(WORDS))).join(pick(['', ' ', '\n'])),
    () => pick(['a', 'ab', 'z', '=', '-', ' ', '0', '中']).repeat(int(1, 120)),
    () => Array.from({ length: int(40, 200) }, () => pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'])).join('') + '==',
  ];
  const corpus: string[] = [];
  while (corpus.length < size) corpus.push(pick(generators)());
  return corpus;
}
