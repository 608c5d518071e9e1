/**
 * Model output (and user input, which comes back as conversation history) must not inject script
 * or active content into the chat page. Three checks over a table of known XSS vectors:
 *  - structural, in Node: the markdown tree and its HTML hold only allow-listed elements and
 *    attributes, and every href is an absolute http(s) URL;
 *  - denial of service, in Node: 100 KB of pathological markdown renders in well under 800 ms and
 *    never into more elements than it has characters;
 *  - in Chromium: the vectors rendered by the real DOM renderer (dom.ts) on a page without a CSP,
 *    and stored in a conversation opened in the real chat UI, run nothing (window.__xss stays
 *    unset, no dialog opens) and leave only allow-listed elements and attributes in the DOM.
 *
 * Needs /usr/bin/chromium, like web.test.ts. The UI is bundled into a temporary folder (not
 * dist/web, which web.test.ts rebuilds in parallel).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MD_TAGS, type MdElement, type MdNode, markdownToHtml, parseMarkdown } from '../../src/server/web/markdown.js';
import { startTestServer, type TestServer } from './helpers.js';

// Browser globals, used only inside page.evaluate callbacks (this file compiles without the DOM lib).
declare const document: any, window: any;

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = join(import.meta.dirname, '..', '..', '..');
const WEB_SOURCE = join(ROOT, 'src', 'server', 'web');

// ---------------------------------------------------------------------------------------------
// The vectors

const PAYLOAD = 'window.__xss=1';

/** Link targets that must never become an href (scheme tricks: case, whitespace, entities, escapes). */
const HOSTILE_URLS = [
  `javascript:${PAYLOAD}`,
  `JaVaScRiPt:${PAYLOAD}`,
  ` javascript:${PAYLOAD}`,
  `jav&#x09;ascript:${PAYLOAD}`,
  `jav\tascript:${PAYLOAD}`,
  `java\u0000script:${PAYLOAD}`,
  `\u0001javascript:${PAYLOAD}`,
  `javascript&colon;${PAYLOAD}`,
  `&#106;avascript:${PAYLOAD}`,
  `%6Aavascript:${PAYLOAD}`,
  `javascript://%0a${PAYLOAD}`,
  `\\u006Aavascript:${PAYLOAD}`,
  'vbscript:msgbox(1)',
  `data:text/html,<script>${PAYLOAD}</script>`,
  'data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==',
  'DATA:image/svg+xml,<svg onload=alert(1)>',
  '//evil.example/x',
  '\\\\evil.example\\x',
  'https:evil.example',
  'file:///etc/passwd',
];

function linkVectors(url: string): string[] {
  return [`[x](${url})`, `![x](${url})`, `<${url}>`, `[x](<${url}>)`, `[x](${url} "t")`, `[x][r]\n\n[r]: ${url}`, url];
}

const HTML_VECTORS = [
  `<script>${PAYLOAD}</script>`,
  `<img src=x onerror="${PAYLOAD}">`,
  `<svg onload="${PAYLOAD}"></svg>`,
  `<svg><animate onbegin="${PAYLOAD}" attributeName=x dur=1s>`,
  `<iframe srcdoc="<script>parent.${PAYLOAD}</script>"></iframe>`,
  `<a href="javascript:${PAYLOAD}">x</a>`,
  `<details open ontoggle="${PAYLOAD}">`,
  `<body onload="${PAYLOAD}">`,
  `<input autofocus onfocus="${PAYLOAD}">`,
  `<style>@import "https://evil.example/x.css"; *{background:url(javascript:${PAYLOAD})}</style>`,
  '<div style="background:url(https://evil.example/track)">x</div>',
  `<form action="javascript:${PAYLOAD}"><button>go</button></form>`,
  '<meta http-equiv="refresh" content="0;url=https://evil.example">',
  '<base href="https://evil.example/">',
  '<link rel="stylesheet" href="https://evil.example/x.css">',
  '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x">',
  `<math><mtext><table><mglyph><style><img src=x onerror="${PAYLOAD}">`,
  `<noscript><p title="</noscript><img src=x onerror=${PAYLOAD}>">`,
  `<template><img src=x onerror="${PAYLOAD}"></template>`,
  `<!--><img src=x onerror="${PAYLOAD}">-->`,
  `<scr\u0000ipt>${PAYLOAD}</script>`,
  `&lt;script&gt;${PAYLOAD}&lt;/script&gt;`,
  `&#60;img src=x onerror=${PAYLOAD}&#62;`,
  `&#x3C;svg onload=${PAYLOAD}&#x3E;`,
  `\\<script>${PAYLOAD}\\</script>`,
];

const MARKDOWN_VECTORS = [
  `[x](https://ok.example/ "\\" onmouseover=${PAYLOAD} x=\\"")`,
  `[x](https://ok.example/"onmouseover="${PAYLOAD})`,
  `[x](https://ok.example/'onmouseover='${PAYLOAD})`,
  `https://ok.example/"onmouseover="${PAYLOAD}`,
  `<https://ok.example/"onmouseover="${PAYLOAD}">`,
  `[<img src=x onerror=${PAYLOAD}>](https://ok.example/)`,
  `**<img src=x onerror=${PAYLOAD}>**`,
  `\`<script>${PAYLOAD}</script>\``,
  `\`\`\`html\n<script>${PAYLOAD}</script>\n\`\`\``,
  `\`\`\`js" onload="${PAYLOAD}\nx\n\`\`\``,
  `\`\`\`<img src=x onerror=${PAYLOAD}>\nx\n\`\`\``,
  `\`\`\`\`\n\`\`\`\n<script>${PAYLOAD}</script>\n\`\`\`\nstill code`,
  `\`\`\`\n<script>${PAYLOAD}</script>`,
  `\`\`unclosed <img src=x onerror=${PAYLOAD}> \``,
  `| a | <img src=x onerror=${PAYLOAD}> |\n|---|---|\n| [x](javascript:${PAYLOAD}) | <script>${PAYLOAD}</script> |`,
  `- <svg onload=${PAYLOAD}>\n  - [x](javascript:${PAYLOAD})\n    > <script>${PAYLOAD}</script>`,
  `# <h1 onclick="${PAYLOAD}">`,
  `> > > <iframe src="javascript:${PAYLOAD}">`,
  `1. <a href=javascript:${PAYLOAD}>x</a>\n2. ok`,
  `"'><svg/onload=${PAYLOAD}>`,
  `\u2028<script>${PAYLOAD}</script>\u2029`,
];

const VECTORS: readonly string[] = [...HTML_VECTORS, ...MARKDOWN_VECTORS, ...HOSTILE_URLS.flatMap(linkVectors)];

// ---------------------------------------------------------------------------------------------
// Structural checks in Node

const ALLOWED_ATTRIBUTES: Readonly<Record<string, (value: string) => boolean>> = {
  href: isWebUrl,
  rel: (value) => value === 'noopener noreferrer',
  target: (value) => value === '_blank',
  class: (value) => /^language-[A-Za-z0-9_+#.-]{1,32}$/.test(value),
  start: (value) => /^\d{1,10}$/.test(value),
  align: (value) => ['left', 'center', 'right'].includes(value),
};

/** Whether `href` parses as an absolute http(s) URL exactly as written (what the browser would follow). */
function isWebUrl(href: string): boolean {
  try {
    const url = new URL(href);
    return (url.protocol === 'http:' || url.protocol === 'https:') && /^https?:\/\/[^\s/?#]/i.test(href);
  } catch {
    return false;
  }
}

function treeViolations(nodes: readonly MdNode[], found: string[] = []): string[] {
  for (const node of nodes) {
    if (typeof node === 'string') continue;
    if (!MD_TAGS.has(node.tag)) found.push(`element <${node.tag}>`);
    for (const [name, value] of Object.entries(node.attrs ?? {})) {
      const allowed = ALLOWED_ATTRIBUTES[name];
      if (!allowed || typeof value !== 'string' || !allowed(value)) found.push(`<${node.tag} ${name}="${String(value)}">`);
    }
    treeViolations(node.children, found);
  }
  return found;
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };

function decodeAttribute(value: string): string {
  return value.replace(/&(?:amp|lt|gt|quot|#39);/g, (entity) => HTML_ENTITIES[entity]!);
}

/**
 * Parses the serialized HTML with a strict grammar (tags with double-quoted attributes, balanced,
 * and text without "<", ">" or a bare "&") and returns what breaks it or the allow-list.
 */
function htmlViolations(html: string): string[] {
  const found: string[] = [];
  const token = /<(\/?)([a-z0-9]+)((?: [a-z]+="[^"<>]*")*)>|[^<>&]+|&(?:amp|lt|gt|quot|#39);/y;
  const open: string[] = [];
  for (let at = 0; at < html.length; ) {
    token.lastIndex = at;
    const m = token.exec(html);
    if (!m) return [...found, `unparsable at ${at}: ${JSON.stringify(html.slice(at, at + 40))}`];
    at = token.lastIndex;
    const [, closing, tag, attributes] = m;
    if (tag === undefined) continue;
    if (!MD_TAGS.has(tag as never)) found.push(`element <${tag}>`);
    if (closing) {
      if (open.pop() !== tag) found.push(`unbalanced </${tag}>`);
      continue;
    }
    for (const [, name, value] of attributes!.matchAll(/ ([a-z]+)="([^"]*)"/g)) {
      const allowed = ALLOWED_ATTRIBUTES[name!];
      if (!allowed || !allowed(decodeAttribute(value!))) found.push(`<${tag} ${name}="${value}">`);
    }
    if (tag !== 'br' && tag !== 'hr') open.push(tag!);
  }
  if (open.length > 0) found.push(`unclosed ${open.join(', ')}`);
  return found;
}

function elementCount(nodes: readonly MdNode[]): number {
  let count = 0;
  for (const node of nodes) if (typeof node !== 'string') count += 1 + elementCount((node as MdElement).children);
  return count;
}

test('xss: every vector parses to allow-listed elements, attributes and http(s) hrefs only', () => {
  for (const vector of VECTORS) {
    const label = JSON.stringify(vector);
    assert.deepEqual(treeViolations(parseMarkdown(vector)), [], `tree of ${label}`);
    const html = markdownToHtml(vector);
    assert.deepEqual(htmlViolations(html), [], `HTML of ${label}: ${html}`);
    assert.doesNotMatch(html, /<(?:script|img|svg|iframe|style|form|meta|base|object|embed|math|template|input|details|body)\b/i, `${label} -> ${html}`);
  }
});

test('xss: the check itself rejects what it must (a hostile tree and hostile HTML)', () => {
  const hostileTree = [{ tag: 'a', attrs: { href: `javascript:${PAYLOAD}` }, children: [] }] as unknown as MdNode[];
  assert.equal(treeViolations(hostileTree).length, 1);
  assert.notDeepEqual(htmlViolations('<p><img src=x onerror=1></p>'), []);
  assert.notDeepEqual(htmlViolations('<a href="jav&#x09;ascript:1">x</a>'), []);
  assert.notDeepEqual(htmlViolations('<a href=" https://x.example/">x</a>'), []);
  assert.deepEqual(htmlViolations('<p><a href="https://x.example/?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">x</a></p>'), []);
});

test('xss: normal markdown still renders (bold, lists, code, https links, tables)', () => {
  assert.equal(markdownToHtml('**bold** and *em*'), '<p><strong>bold</strong> and <em>em</em></p>');
  assert.equal(markdownToHtml('- a\n- b'), '<ul><li>a</li><li>b</li></ul>');
  assert.equal(markdownToHtml('```ts\nlet a = 1 < 2;\n```'), '<pre><code class="language-ts">let a = 1 &lt; 2;</code></pre>');
  assert.equal(markdownToHtml('[docs](https://example.com/a?b=1)'), '<p><a href="https://example.com/a?b=1" rel="noopener noreferrer" target="_blank">docs</a></p>');
  assert.equal(markdownToHtml('see https://example.com/x...'), '<p>see <a href="https://example.com/x" rel="noopener noreferrer" target="_blank">https://example.com/x</a>...</p>');
  assert.equal(markdownToHtml('## Title ##'), '<h2>Title</h2>');
  assert.equal(markdownToHtml('# a #b'), '<h1>a #b</h1>');
  assert.equal(markdownToHtml('| a | b |\n| :-: | --- |\n| 1 |'), '<table><thead><tr><th align="center">a</th><th>b</th></tr></thead><tbody><tr><td align="center">1</td><td></td></tr></tbody></table>');
  assert.equal(
    markdownToHtml('[a](<https://x.example/a b> \'t\') and [c](https://x.example/(d))'),
    '<p>a and <a href="https://x.example/(d)" rel="noopener noreferrer" target="_blank">c</a></p>',
  );
});

// ---------------------------------------------------------------------------------------------
// Denial of service

const SIZE = 100_000;
/**
 * A bound far above a linear render (0-120 ms here) and far below what the backtracking took
 * (1-37 s per input): this guards against catastrophic complexity on a shared 2-core machine,
 * it is not a speed target.
 */
const LIMIT_MS = 800;

function repeatTo(unit: string, size = SIZE): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** 100 KB inputs that used to take seconds (regex backtracking, rescans) or explode into elements. */
const SLOW_INPUTS: Readonly<Record<string, string>> = {
  'heading then spaces': '# a' + ' '.repeat(SIZE) + 'x',
  'fence info of letters': '```' + 'a'.repeat(SIZE) + '`',
  'fence info of spaces': '```' + ' '.repeat(SIZE) + '`',
  'table delimiter then spaces': 'a|b\n| - ' + ' '.repeat(SIZE) + 'x',
  'list item then U+2028': '- ' + ' '.repeat(SIZE) + '\u2028',
  'quote then U+2028': '>' + ' '.repeat(SIZE) + '\u2028',
  'url then dots': 'https://a.example/' + '.'.repeat(SIZE) + 'x',
  'url then parens': 'https://a.example/' + ')'.repeat(SIZE) + 'x',
  'urls without host': repeatTo('(https:///'),
  'urls with backslashes': repeatTo('(https://\\'),
  'empty links': repeatTo('[]('),
  'open links': repeatTo('[a]('),
  'angle destinations': repeatTo('[a](<'),
  'titles': repeatTo('[a](b "'),
  'backtick runs of every length': Array.from({ length: 440 }, (_, k) => '*x' + '`'.repeat(k + 1)).join(' '),
  'padded table rows': '|a'.repeat(1000) + '\n' + '|-'.repeat(1000) + '\n' + '|\n'.repeat(46_000),
  'many tables': repeatTo('a|b\n-|-\n'),
  'nested brackets': '['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2) + '(x)',
  'nested quotes': repeatTo('> ') + 'x',
  'nested lists': Array.from({ length: 300 }, (_, k) => ' '.repeat(k * 2) + '- x').join('\n'),
  'unclosed emphasis': repeatTo('*a _b ~~c **d __e '),
  'emphasis pairs': repeatTo('**a*'),
  'mixed markers': repeatTo('*_~`[]()<>!h\\\n|'),
};

/** 100 KB of ordinary markdown: its render time scales the limit when the machine is busy. */
const ORDINARY = repeatTo('Some **bold** text, a [link](https://example.com/a) and `code`.\n- item one\n- item two\n\n');

function timeRender(input: string): number {
  const started = performance.now();
  parseMarkdown(input);
  return performance.now() - started;
}

/** Best of three runs (the machine is shared); a first run far over `limitMs` is not repeated. */
function renderMs(input: string, limitMs: number): number {
  let best = Infinity;
  for (let run = 0; run < 3 && best > limitMs / 2; run++) {
    best = Math.min(best, timeRender(input));
    if (best > 4 * limitMs) break;
  }
  return best;
}

test(`xss: 100 KB of pathological markdown renders in under ${LIMIT_MS} ms, into fewer elements than characters`, () => {
  for (const [name, input] of Object.entries(SLOW_INPUTS)) {
    // On an idle machine the limit is LIMIT_MS; under load, 30 times ordinary markdown's time
    // (the backtracking this guards against cost 1-40 s per input, not 2x).
    const limitMs = Math.max(LIMIT_MS, 30 * Math.min(timeRender(ORDINARY), timeRender(ORDINARY), timeRender(ORDINARY)));
    const ms = renderMs(input, limitMs);
    assert.ok(ms < limitMs, `${name} (${input.length} chars) took ${ms.toFixed(0)} ms (limit ${limitMs.toFixed(0)} ms)`);
    const elements = elementCount(parseMarkdown(input));
    assert.ok(elements <= input.length, `${name} (${input.length} chars) gave ${elements} elements`);
  }
});

// ---------------------------------------------------------------------------------------------
// In the browser

let browser: Browser | undefined;
let server: TestServer | undefined;
let webDir: string | undefined;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the XSS browser test needs Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  webDir = mkdtempSync(join(tmpdir(), 'frugal-xss-web-'));
  await bundleChatUi(webDir);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (webDir) rmSync(webDir, { recursive: true, force: true });
});

/** The chat UI as build-web.mjs lays it out, with the un-hashed names index.html already uses. */
async function bundleChatUi(dir: string): Promise<void> {
  const common = { bundle: true, write: true, logLevel: 'silent' as const, outdir: join(dir, 'assets'), entryNames: '[name]' };
  await build({ ...common, entryPoints: [join(WEB_SOURCE, 'app.ts')], format: 'esm', target: ['es2022'], platform: 'browser' });
  await build({ ...common, entryPoints: [join(WEB_SOURCE, 'app.css')] });
  copyFileSync(join(WEB_SOURCE, 'index.html'), join(dir, 'index.html'));
}

/** The markdown parser and DOM renderer as a script that defines window.renderMarkdownForTest. */
async function rendererScript(): Promise<string> {
  const entry = [
    "import { parseMarkdown } from './markdown.js';",
    "import { renderMarkdownTree } from './dom.js';",
    '(window as any).renderMarkdownForTest = (container: HTMLElement, text: string) => renderMarkdownTree(container, parseMarkdown(text));',
  ].join('\n');
  const result = await build({ stdin: { contents: entry, resolveDir: WEB_SOURCE, loader: 'ts' }, bundle: true, write: false, format: 'iife', logLevel: 'silent' });
  return result.outputFiles[0]!.text;
}

/** Collects dialogs (alert, confirm, print...) and page errors. */
function watch(page: Page): { dialogs: string[] } {
  const seen = { dialogs: [] as string[] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return seen;
}

/**
 * Runs in the page: every element under `root` and its attributes against the allow-list (the
 * chat's own chrome included), and the protocol of every link as the browser resolved it.
 */
function domViolations(page: Page, rootSelector: string, allowedTags: readonly string[]): Promise<string[]> {
  return page.evaluate(({ selector, tags, attributes }) => {
    const found: string[] = [];
    for (const root of document.querySelectorAll(selector)) {
      for (const element of root.querySelectorAll('*')) {
        const tag = element.tagName.toLowerCase();
        if (!tags.includes(tag)) found.push(`element <${tag}>`);
        for (const attribute of element.attributes) {
          if (!attributes.includes(attribute.name) || attribute.name.startsWith('on')) found.push(`<${tag} ${attribute.name}="${attribute.value}">`);
        }
        if (tag === 'a' && !['http:', 'https:'].includes(element.protocol)) found.push(`<a> to ${element.protocol}`);
      }
    }
    return found;
  }, { selector: rootSelector, tags: allowedTags, attributes: [...Object.keys(ALLOWED_ATTRIBUTES), 'type', 'title', 'hidden', 'open', 'aria-label', 'data-id'] });
}

/** What the renderer wraps around code blocks, plus the chat's own message chrome. */
const CHROME_TAGS = ['div', 'span', 'button', 'details', 'summary', 'li'];

test('xss (browser, no CSP): the DOM renderer turns every vector into inert, allow-listed DOM', async () => {
  const page = await browser!.newPage();
  const seen = watch(page);
  try {
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body><div id="out"></div></body></html>');
    await page.addScriptTag({ content: await rendererScript() });
    const planted = await page.evaluate((vectors: string[]) => {
      const out = document.getElementById('out');
      for (const vector of vectors) {
        const box = document.createElement('div');
        box.className = 'rendered';
        out.appendChild(box);
        window.renderMarkdownForTest(box, vector);
      }
      // Control: the same flag really is set when script does run on this page.
      const control = document.createElement('img');
      control.setAttribute('onerror', 'window.__control = 1');
      control.setAttribute('src', 'data:,not-an-image');
      document.body.appendChild(control);
      return out.querySelectorAll('.rendered').length;
    }, [...VECTORS]);
    assert.equal(planted, VECTORS.length);
    await page.waitForFunction(() => window.__control === 1, null, { timeout: 5000 });
    await page.waitForTimeout(300); // let any onerror/onload/animation handlers fire
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'a vector ran script');
    assert.deepEqual(seen.dialogs, []);
    assert.deepEqual(await domViolations(page, '#out .rendered', [...MD_TAGS, ...CHROME_TAGS]), []);
    assert.equal(page.url(), 'about:blank', 'nothing navigated the page');
  } finally {
    await page.close();
  }
});

test('xss (browser, real chat UI): hostile title, user message, thinking and answer stay inert', async () => {
  server = await startTestServer({ webDir, settings: { authRequired: true } });
  server.server.ctx.store.setSetting('registration', 'open');
  const page = await browser!.newPage();
  page.setDefaultTimeout(10_000);
  const seen = watch(page);
  try {
    await page.goto(server.url);
    await page.locator('#auth-form').waitFor();
    const status = await page.evaluate(async () => (await fetch('/auth/register', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'mallory', password: 'correct horse battery' }),
    })).status);
    assert.ok(status === 200 || status === 201, `register: ${status}`);
    const conversationId = storeHostileConversation(server);
    await page.goto(`${server.url}/#/c/${conversationId}`);
    await page.reload(); // only the hash changed: load the page again, now signed in
    await page.locator('#messages .message.assistant').first().waitFor();
    assert.equal(await page.locator('#messages .message').count(), 4);
    await page.locator('#messages details.thinking summary').first().click();
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'a vector ran script');
    assert.deepEqual(seen.dialogs, []);
    assert.deepEqual(await domViolations(page, '#messages, #conversation-list, #chat-title', [...MD_TAGS, ...CHROME_TAGS]), []);
    assert.equal(await page.locator('#chat-title').textContent(), HTML_VECTORS[1]);
    assert.equal(await page.locator('.message.user .bubble').first().textContent(), VECTORS.join('\n'));
    assert.ok(await page.locator('#messages .answer a[href="https://ok.example/"]').count() > 0, 'the safe link is still a link');
  } finally {
    await page.close();
  }
});

/** A conversation whose title, user message, thinking and answer are all hostile; returns its id. */
function storeHostileConversation(t: TestServer): string {
  const store = t.server.ctx.store;
  const user = store.userByName('mallory')!;
  const id = 'xss';
  store.createConversation(id, user.id, HTML_VECTORS[1]!, 'tiny');
  const all = VECTORS.join('\n');
  const base = { conversation_id: id, reasoning_ms: 1500, finish_reason: 'stop' };
  store.addMessage({ ...base, id: 'u1', role: 'user', content: all, reasoning_content: '', reasoning_ms: null, finish_reason: null });
  store.addMessage({ ...base, id: 'a1', role: 'assistant', content: all, reasoning_content: all });
  store.addMessage({ ...base, id: 'u2', role: 'user', content: VECTORS.join('\n\n'), reasoning_content: '', reasoning_ms: null, finish_reason: null });
  store.addMessage({ ...base, id: 'a2', role: 'assistant', content: VECTORS.join('\n\n'), reasoning_content: '', finish_reason: `<img src=x onerror=${PAYLOAD}>` });
  return id;
}
