import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MD_TAGS, type MdNode, markdownToHtml, parseMarkdown, safeHref } from '../../src/server/web/markdown.js';

/**
 * An independent check of rendered HTML: scans every tag and attribute and fails on anything
 * outside the whitelist, on unsafe hrefs, and on "<" that is not part of a whitelisted tag.
 */
function assertSafeHtml(html: string, input: string): void {
  const tag = /<(\/?)([a-z0-9]+)((?:\s+[a-z]+="[^"<>]*")*)\s*>/gy;
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf('<', i);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(html);
    assert.ok(m, `unexpected "<" at ${lt} in ${JSON.stringify(html.slice(lt, lt + 40))} (input ${JSON.stringify(input)})`);
    assert.ok(MD_TAGS.has(m[2] as never), `tag <${m[2]}> outside the whitelist for input ${JSON.stringify(input)}`);
    for (const attr of m[3]!.matchAll(/([a-z]+)="([^"]*)"/g)) {
      const [, name, value] = attr;
      assert.ok(['href', 'rel', 'target', 'class', 'start', 'align'].includes(name!), `attribute ${name} for input ${JSON.stringify(input)}`);
      if (name === 'href') assert.match(value!, /^https?:\/\/[^\s]+$/i, `href ${value} for input ${JSON.stringify(input)}`);
      if (name === 'class') assert.match(value!, /^language-[A-Za-z0-9_+#.-]+$/);
      if (name === 'rel') assert.equal(value, 'noopener noreferrer');
    }
    i = tag.lastIndex;
  }
  assert.doesNotMatch(html, /href="(?:javascript|data|vbscript):/i);
}

function textOf(nodes: readonly MdNode[]): string {
  return nodes.map((n) => (typeof n === 'string' ? n : textOf(n.children))).join('');
}

const PAYLOADS = [
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '<a href="javascript:alert(1)">x</a>',
  '[click](javascript:alert(1))',
  '[click](JAVASCRIPT:alert(1))',
  '[click]( javascript:alert(1) )',
  '[click](&#106;avascript:alert(1))',
  '[click](data:text/html;base64,PHNjcmlwdD4=)',
  '[click](//evil.example/x)',
  '[click](/relative)',
  '[click](http://ok.example/a"onmouseover="alert(1))',
  '![img](https://evil.example/track.png)',
  '<https://ok.example/"><script>>',
  '<javascript:alert(1)>',
  'https://ok.example/<script>',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  '&#x3C;img src=x onerror=alert(1)&#x3E;',
  '`<script>`',
  '``code with ` backtick``',
  '```\n<script>alert(1)</script>\n```',
  '```js" onload="alert(1)\nx\n```',
  '```<img>\nx\n```',
  '**<b>bold</b>**',
  '> <iframe src="https://evil.example"></iframe>',
  '| a | <b>b</b> |\n|---|---|\n| <script> | [x](javascript:1) |',
  '- <style>body{}</style>\n- item',
  '# <h1 onclick=1>',
  '<!-- comment --><svg onload=alert(1)>',
  '"\'><svg/onload=alert(1)>',
];

test('markdown: injection payloads render as text, only whitelisted tags and safe hrefs', () => {
  for (const payload of PAYLOADS) {
    const html = markdownToHtml(payload);
    assertSafeHtml(html, payload);
    assert.doesNotMatch(html, /<(script|img|iframe|svg|style|b|a href="javascript)[\s>/]/i, `${payload} -> ${html}`);
  }
});

test('markdown: raw HTML stays visible as text and entities are not decoded', () => {
  assert.equal(markdownToHtml('<script>alert(1)</script>'), '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  assert.equal(markdownToHtml('<img src=x onerror=alert(1)>'), '<p>&lt;img src=x onerror=alert(1)&gt;</p>');
  assert.equal(markdownToHtml('&lt;b&gt; &amp;'), '<p>&amp;lt;b&amp;gt; &amp;amp;</p>');
  assert.equal(textOf(parseMarkdown('&#106;avascript')), '&#106;avascript');
});

test('markdown: links keep only absolute http(s) hrefs, with rel and target', () => {
  assert.equal(
    markdownToHtml('[docs](https://example.com/a_(b)?q=1#x "title")'),
    '<p><a href="https://example.com/a_(b)?q=1#x" rel="noopener noreferrer" target="_blank">docs</a></p>',
  );
  assert.equal(markdownToHtml('[x](javascript:alert(1))'), '<p>x</p>');
  assert.equal(markdownToHtml('[x](/relative)'), '<p>x</p>');
  assert.equal(
    markdownToHtml('see https://example.com/page.'),
    '<p>see <a href="https://example.com/page" rel="noopener noreferrer" target="_blank">https://example.com/page</a>.</p>',
  );
  assert.equal(markdownToHtml('<http://a.example/>'), '<p><a href="http://a.example/" rel="noopener noreferrer" target="_blank">http://a.example/</a></p>');
  for (const bad of ['javascript:alert(1)', ' data:text/html,x', '//evil.example', 'http:/x', 'https://a b', 'https://a"b', 'https://a\u0000b', 'vbscript:x', 'file:///etc/passwd']) {
    assert.equal(safeHref(bad), undefined, bad);
  }
  assert.equal(safeHref('HTTPS://Example.com/x'), 'HTTPS://Example.com/x');
});

test('markdown: code spans and fenced blocks keep their text verbatim', () => {
  assert.equal(markdownToHtml('use `a < b && c`'), '<p>use <code>a &lt; b &amp;&amp; c</code></p>');
  assert.equal(markdownToHtml('``a ` b``'), '<p><code>a ` b</code></p>');
  assert.equal(markdownToHtml('`` `x` ``'), '<p><code>`x`</code></p>');
  assert.equal(markdownToHtml('unclosed `tick and *em*'), '<p>unclosed `tick and <em>em</em></p>');
  assert.equal(markdownToHtml('`**not bold**`'), '<p><code>**not bold**</code></p>');
  assert.equal(
    markdownToHtml('```ts\nconst a = "<b>";\n  indented\n```\nafter'),
    '<pre><code class="language-ts">const a = &quot;&lt;b&gt;&quot;;\n  indented</code></pre><p>after</p>',
  );
  assert.equal(markdownToHtml('````\n```\ninner\n```\n````'), '<pre><code>```\ninner\n```</code></pre>');
  assert.equal(markdownToHtml('~~~\nx\n~~~'), '<pre><code>x</code></pre>');
  // A fence that never closes (mid-stream) runs to the end.
  assert.equal(markdownToHtml('```python\nprint(1)\n'), '<pre><code class="language-python">print(1)\n</code></pre>');
  // An info string that is not a plain language name gets no class.
  assert.equal(markdownToHtml('```js"onload=x\ny\n```'), '<pre><code>y</code></pre>');
});

test('markdown: emphasis, headings, lists, quotes, rules, tables, breaks', () => {
  assert.equal(markdownToHtml('*a* **b** _c_ __d__ ~~e~~ ***f***'), '<p><em>a</em> <strong>b</strong> <em>c</em> <strong>d</strong> <del>e</del> <strong><em>f</em></strong></p>');
  assert.equal(markdownToHtml('snake_case_name and 2 * 3 * 4'), '<p>snake_case_name and 2 * 3 * 4</p>');
  assert.equal(markdownToHtml('*a **b** c*'), '<p><em>a <strong>b</strong> c</em></p>');
  assert.equal(markdownToHtml('# Title\n### Sub ###'), '<h1>Title</h1><h3>Sub</h3>');
  assert.equal(markdownToHtml('#hashtag'), '<p>#hashtag</p>');
  assert.equal(markdownToHtml('- a\n- b\n  - c\n- d'), '<ul><li>a</li><li>b<ul><li>c</li></ul></li><li>d</li></ul>');
  assert.equal(markdownToHtml('3. x\n4. y'), '<ol start="3"><li>x</li><li>y</li></ol>');
  assert.equal(markdownToHtml('1. x\n\n2. y'), '<ol><li><p>x</p></li><li><p>y</p></li></ol>');
  assert.equal(markdownToHtml('> quote\n> **b**\n\ntext'), '<blockquote><p>quote\n<strong>b</strong></p></blockquote><p>text</p>');
  assert.equal(markdownToHtml('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
  assert.equal(
    markdownToHtml('| a | b |\n|:--|--:|\n| 1 | `\\|` |\n| 2 \\| 3 | x |'),
    '<table><thead><tr><th align="left">a</th><th align="right">b</th></tr></thead>' +
      '<tbody><tr><td align="left">1</td><td align="right"><code>|</code></td></tr>' +
      '<tr><td align="left">2 | 3</td><td align="right">x</td></tr></tbody></table>',
  );
  assert.equal(markdownToHtml('line one  \nline two\\\nthree\nfour'), '<p>line one<br>line two<br>three\nfour</p>');
  assert.equal(markdownToHtml('\\*not em\\* \\<b>'), '<p>*not em* &lt;b&gt;</p>');
});

test('markdown: random mixes of dangerous fragments always give safe HTML', () => {
  const fragments = ['<', '>', '"', "'", '`', '```', '*', '**', '_', '~~', '[', ']', '(', ')', '\n', '\n\n', ' ', '|', '---', '> ', '- ', '1. ', '# ',
    'javascript:', 'https://x.example/', 'onerror=', '<script>', '&#60;', '\\', 'text', 'a_b', '![', '<http://y.example>'];
  let seed = 12345;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  for (let round = 0; round < 400; round++) {
    let input = '';
    const n = 1 + Math.floor(next() * 30);
    for (let k = 0; k < n; k++) input += fragments[Math.floor(next() * fragments.length)];
    assertSafeHtml(markdownToHtml(input), input);
  }
});

test('markdown: pathological input stays fast', () => {
  const inputs = ['*a '.repeat(20000), '`'.repeat(3) + 'x`'.repeat(20000), '['.repeat(30000), '_x '.repeat(20000), '> '.repeat(5000) + 'deep', '- '.repeat(3000) + 'x'];
  for (const input of inputs) {
    const started = performance.now();
    const html = markdownToHtml(input);
    const ms = performance.now() - started;
    assert.ok(ms < 3000, `${JSON.stringify(input.slice(0, 12))}… (${input.length} chars) took ${ms.toFixed(0)} ms`);
    assert.ok(html.length > 0);
  }
});
