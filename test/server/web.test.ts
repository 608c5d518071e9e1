/**
 * The web chat UI in a real browser (Debian's chromium driven by playwright-core) against the real
 * server in-process with the tiny random-weight model: sign-up, a streamed answer (thinking, then
 * the answer), the stop button, reload, delete, sanitized markdown in the DOM, narrow and dark
 * layouts. The model's forward pass is slowed down (a synchronous sleep per call, like a real
 * model's compute) so that streaming and stopping are observable.
 *
 * Needs /usr/bin/chromium (apt-get install -y chromium): without it the test fails, it never skips.
 * FRUGAL_WEB_SCREENSHOT=/tmp/some.png saves a screenshot of the chat for a look by hand.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { LoadedForServing } from '../../src/server/models.js';
import { parseMarkdown, type MdNode } from '../../src/server/web/markdown.js';
import { loadForServing, startTestServer, type TestServer } from './helpers.js';
import { forwardEach } from '../../src/models/model.js';

// Browser globals, used only inside page.evaluate callbacks (they run in the page; this file
// compiles without the DOM lib).
declare const document: any, window: any, location: any, navigator: any, MutationObserver: any, getComputedStyle: any;

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Milliseconds every forward pass sleeps (changed per test). */
let forwardDelayMs = 0;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function slowed(loaded: LoadedForServing): LoadedForServing {
  const model = loaded.model;
  return {
    ...loaded,
    model: {
      info: model.info,
      newCache: (capacity) => model.newCache(capacity),
      forward: (tokens, cache, options) => {
        if (forwardDelayMs > 0) Atomics.wait(sleeper, 0, 0, forwardDelayMs);
        return model.forward(tokens, cache, options);
      },
      forwardBatch(items) {
        return forwardEach(this, items);
      },
    },
  };
}

let t: TestServer;
let userDataDir: string;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the web UI test needs Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium"`);
  }
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs'), '--no-typecheck'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, `build-web failed:\n${build.stdout}${build.stderr}`);
  t = await startTestServer({ settings: { authRequired: true }, registry: { load: (path) => slowed(loadForServing(path)) } });
  t.server.ctx.store.setSetting('registration', 'open');
  userDataDir = mkdtempSync(join(tmpdir(), 'frugal-chromium-'));
  try {
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1100, height: 760 } });
  } catch (error) {
    throw new Error(`could not launch Chromium (${CHROMIUM}): ${(error as Error).message}`);
  }
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
  });
});

after(async () => {
  await context?.close();
  await t?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

function textOf(nodes: readonly MdNode[]): string {
  return nodes.map((n) => (typeof n === 'string' ? n : textOf(n.children))).join('');
}

interface StoredMessage {
  role: string;
  content: string;
  reasoning_content: string;
  reasoning_ms: number | null;
  finish_reason: string | null;
}

/** The open conversation as the server stores it (fetched by the page, with its session cookie). */
async function storedConversation(): Promise<{ id: string; title: string; messages: StoredMessage[] }> {
  return page.evaluate(async () => {
    const id = decodeURIComponent(location.hash.replace(/^#\/c\//, ''));
    const response = await fetch(`/ui/conversations/${encodeURIComponent(id)}`);
    if (!response.ok) throw new Error(`GET conversation ${id}: ${response.status}`);
    const body = (await response.json()) as { conversation: { title: string }; messages: StoredMessage[] };
    return { id, title: body.conversation.title, messages: body.messages };
  });
}

test('sign-in is required: a bad login shows the error, registering opens the chat', async () => {
  await page.goto(t.url);
  await page.locator('#auth-form').waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);
  await page.fill('#auth-username', 'alice');
  await page.fill('#auth-password', 'correct horse battery');
  await page.click('#auth-submit');
  await page.locator('#auth-error').waitFor();
  assert.match(await page.locator('#auth-error').innerText(), /\S/);

  await page.click('#auth-switch');
  assert.equal(await page.locator('#auth-submit').innerText(), 'Create account');
  await page.click('#auth-submit');
  await page.locator('#app').waitFor();
  assert.equal(await page.locator('#account-name').innerText(), 'alice');
  assert.equal(await page.locator('#conversation-list li').count(), 0);
});

test('a question streams the thinking (open, timed), then the answer as markdown', async () => {
  forwardDelayMs = 15;
  await page.click('#settings summary');
  await page.fill('#temperature', '0');
  await page.fill('#reasoning-budget', '8');
  await page.fill('#max-tokens', '24');
  await page.click('#settings summary');
  // Record what the last assistant message shows after every DOM change.
  await page.evaluate(() => {
    const log: { reasoning: number; answer: number; open: boolean }[] = [];
    (window as unknown as { uiLog: typeof log }).uiLog = log;
    new MutationObserver(() => {
      const message = document.querySelector('#messages .message.assistant:last-child');
      if (!message) return;
      log.push({
        reasoning: message.querySelector('.reasoning-text')?.textContent?.length ?? 0,
        answer: message.querySelector('.answer')?.textContent?.length ?? 0,
        open: message.querySelector('details.thinking').open as boolean,
      });
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#prompt', 'Why is the sky blue?');
  await page.press('#prompt', 'Enter');
  await page.locator('#stop').waitFor();
  await page.locator('#messages .message.assistant:not(.streaming)').waitFor();
  await page.locator('#send').waitFor();

  const stored = await storedConversation();
  assert.equal(stored.title, 'Why is the sky blue?');
  assert.deepEqual(stored.messages.map((m) => m.role), ['user', 'assistant']);
  const reply = stored.messages[1]!;
  assert.ok(reply.reasoning_content.length > 0 && reply.content.length > 0, 'the tiny model with a reasoning budget gives both channels');
  assert.equal(await page.locator('.message.user .bubble').innerText(), 'Why is the sky blue?');
  assert.equal(await page.locator('.reasoning-text').textContent(), reply.reasoning_content);
  assert.equal(await page.locator('.answer').textContent(), textOf(parseMarkdown(reply.content)));
  assert.match(await page.locator('details.thinking summary').innerText(), /^Thought for \d+\.\d s$/);
  assert.equal(await page.locator('details.thinking').getAttribute('open'), null, 'collapsed once done');
  assert.equal(await page.locator('.message.assistant .meta').isVisible(), reply.finish_reason !== 'stop');
  assert.equal(await page.locator('#conversation-list li.current .open').innerText(), 'Why is the sky blue?');

  const log = await page.evaluate(() => (window as unknown as { uiLog: { reasoning: number; answer: number; open: boolean }[] }).uiLog);
  const final = log[log.length - 1]!;
  assert.ok(log.some((e) => e.reasoning > 0 && e.reasoning < final.reasoning && e.answer === 0 && e.open), 'thinking streamed in pieces, open, before any answer');
  assert.ok(log.some((e) => e.answer > 0 && e.answer < final.answer), 'the answer streamed in pieces');
  for (let i = 1; i < log.length; i++) assert.ok(log[i]!.reasoning >= log[i - 1]!.reasoning, 'thinking only grows');
  const firstAnswer = log.findIndex((e) => e.answer > 0);
  assert.ok(log.slice(firstAnswer).every((e) => e.reasoning === final.reasoning), 'the answer comes after the thinking');

  if (process.env.FRUGAL_WEB_SCREENSHOT) await page.screenshot({ path: process.env.FRUGAL_WEB_SCREENSHOT });
});

test('the stop button cancels a generation: the message is marked stopped, the server stops', async () => {
  forwardDelayMs = 30;
  await page.click('#settings summary');
  await page.fill('#reasoning-budget', '');
  await page.fill('#max-tokens', '600');
  await page.click('#settings summary');
  await page.fill('#prompt', 'Count to a thousand');
  await page.press('#prompt', 'Enter');
  const reasoning = page.locator('#messages .message.assistant:last-child .reasoning-text');
  await page.waitForFunction(() => (document.querySelector('#messages .message.assistant:last-child .reasoning-text')?.textContent?.length ?? 0) > 3);
  assert.equal(await page.locator('#send').isVisible(), false);
  await page.click('#stop');
  await page.locator('#messages .message.assistant.stopped:last-child').waitFor();
  assert.equal(await page.locator('#messages .message.assistant:last-child .meta').innerText(), 'Stopped');
  await page.locator('#send').waitFor();
  const shown = (await reasoning.textContent()) ?? '';

  // The server cancels at once and stores the partial message with finish_reason "abort".
  let reply: StoredMessage | undefined;
  for (let i = 0; i < 100 && reply?.finish_reason !== 'abort'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    reply = (await storedConversation()).messages[3];
  }
  assert.equal(reply?.finish_reason, 'abort');
  assert.ok(reply!.reasoning_content.startsWith(shown), 'what was shown is what the server stored, plus what was in flight');
  assert.ok(reply!.reasoning_content.length < shown.length + 20, `generation stopped (${reply!.reasoning_content.length} chars stored, ${shown.length} shown)`);
  assert.equal(t.server.ctx.scheduler.activeCount, 0);
});

test('after a reload the conversation and its messages come back; new chat, reopen, delete', async () => {
  forwardDelayMs = 0;
  const before = await storedConversation();
  await page.reload();
  await page.locator('#messages .message.assistant.stopped').waitFor();
  assert.equal(await page.locator('#conversation-list li').count(), 1);
  assert.equal(await page.locator('#chat-title').innerText(), 'Why is the sky blue?');
  assert.deepEqual(await page.locator('#messages .message').evaluateAll((nodes) => nodes.map((n) => n.className)), [
    'message user', 'message assistant', 'message user', 'message assistant stopped',
  ]);
  const first = before.messages[1]!;
  assert.equal(await page.locator('#messages .message.assistant').first().locator('.reasoning-text').textContent(), first.reasoning_content);
  assert.equal(await page.locator('#messages .message.assistant').first().locator('summary').innerText(), `Thought for ${(first.reasoning_ms! / 1000).toFixed(1)} s`);
  assert.equal(await page.locator('#messages .message.assistant').first().locator('details').getAttribute('open'), null);

  await page.click('#new-chat');
  assert.equal(await page.locator('#messages .message').count(), 0);
  assert.equal(await page.locator('#chat-title').innerText(), 'New chat');
  await page.click('#conversation-list li .open');
  await page.locator('#messages .message.assistant.stopped').waitFor();
  assert.equal(await page.locator('#messages .message').count(), 4);

  await page.click('#conversation-list li .delete');
  await page.waitForFunction(() => document.querySelectorAll('#conversation-list li').length === 0);
  assert.equal(await page.locator('#messages .message').count(), 0);
  const status = await page.evaluate(async (id) => (await fetch(`/ui/conversations/${encodeURIComponent(id)}`)).status, before.id);
  assert.equal(status, 404);
});

test('signing out shows the sign-in form and ends the session; signing in again works', async () => {
  await page.click('#logout');
  await page.locator('#auth-form').waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);
  assert.equal(await page.evaluate(async () => (await fetch('/ui/conversations')).status), 401);
  assert.equal(await page.locator('#auth-submit').innerText(), 'Sign in');
  await page.fill('#auth-username', 'alice');
  await page.fill('#auth-password', 'correct horse battery');
  await page.click('#auth-submit');
  await page.locator('#app').waitFor();
  assert.equal(await page.locator('#account-name').innerText(), 'alice');
  assert.equal(await page.evaluate(async () => (await fetch('/ui/conversations')).status), 200);
});

test('hostile markdown in a stored answer renders inert; code blocks get a copy button', async () => {
  const store = t.server.ctx.store;
  const user = store.userByName('alice')!;
  const conversation = store.createConversation('hostile', user.id, 'Hostile', 'tiny');
  const content = [
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>',
    '[click](javascript:window.pwned=3) and [ok](https://example.com/a?b=1) and <https://example.org>',
    '**bold** `a<b>` &lt;i&gt;',
    '```js" onmouseover="window.pwned=4',
    'const x = "<script>";',
    '```',
    '| a | b |',
    '|---|---|',
    '| <b>1</b> | 2 |',
  ].join('\n');
  store.addMessage({ id: 'u1', conversation_id: conversation.id, role: 'user', content: '<b>hi</b>', reasoning_content: '', reasoning_ms: null, finish_reason: null });
  store.addMessage({ id: 'a1', conversation_id: conversation.id, role: 'assistant', content, reasoning_content: '<img src=y onerror="window.pwned=5">', reasoning_ms: 1234, finish_reason: 'stop' });
  await page.goto(`${t.url}/#/c/hostile`);
  await page.locator('#messages .message.assistant').waitFor();
  const answer = page.locator('#messages .answer');
  assert.equal(await page.locator('#messages img, #messages script, #messages b, #messages [onerror], #messages [onmouseover]').count(), 0);
  assert.deepEqual(await answer.locator('a').evaluateAll((links) => links.map((a) => [a.getAttribute('href'), a.getAttribute('rel')])), [
    ['https://example.com/a?b=1', 'noopener noreferrer'],
    ['https://example.org', 'noopener noreferrer'],
  ]);
  assert.match((await answer.textContent())!, /<img src=x onerror="window.pwned=1"><script>window.pwned=2<\/script>/);
  assert.equal(await answer.locator('strong').innerText(), 'bold');
  assert.equal(await answer.locator('p code').innerText(), 'a<b>');
  assert.equal(await answer.locator('pre code').textContent(), 'const x = "<script>";');
  assert.equal(await answer.locator('pre code').getAttribute('class'), null);
  assert.equal(await answer.locator('.code-block button.copy').count(), 1);
  assert.equal(await answer.locator('table td').first().textContent(), '<b>1</b>');
  assert.equal(await page.locator('.message.user .bubble').innerText(), '<b>hi</b>');
  assert.equal(await page.locator('details.thinking summary').innerText(), 'Thought for 1.2 s');
  await page.locator('details.thinking summary').click();
  await page.locator('.code-block pre').hover();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
  await answer.locator('.code-block button.copy').click();
  await page.waitForFunction(() => document.querySelector('.code-block button.copy').textContent === 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'const x = "<script>";');
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  // a malformed escape in the hash (#/c/%E0) threw in decodeURIComponent: an unhandled rejection
  await page.goto(`${t.url}/#/c/%E0`);
  await page.waitForFunction(() => document.getElementById('messages')!.childElementCount === 0 || document.body.innerText.length > 0);
  await page.waitForTimeout(200);
  assert.deepEqual(pageErrors, [], 'no page error from a malformed hash');
});

test('narrow screens hide the sidebar behind a button; dark mode follows the system', async () => {
  await page.setViewportSize({ width: 400, height: 760 });
  // The sidebar slides out with a 0.2 s transition after the resize: wait for it to be off-screen
  // (a timeout here fails the test).
  await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x < 0, null, { timeout: 5000 });
  await page.click('#toggle-sidebar');
  await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().x >= 0);
  await page.mouse.click(380, 400); // outside the sidebar: closes it
  await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
  await page.setViewportSize({ width: 1100, height: 760 });

  const background = (): Promise<string> => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await background();
  const luminance = (rgb: string): number => rgb.match(/\d+/g)!.slice(0, 3).map(Number).reduce((a, b) => a + b, 0);
  assert.ok(luminance(light) > 600 && luminance(dark) < 150, `light ${light}, dark ${dark}`);
  assert.deepEqual(pageErrors, []);
});

test('without auth (the loopback default) the chat opens at once as the local user', async () => {
  forwardDelayMs = 0;
  const open = await startTestServer({ registry: { load: (path) => slowed(loadForServing(path)) } });
  const local = await context.newPage();
  try {
    await local.goto(open.url);
    await local.locator('#app').waitFor();
    assert.equal(await local.locator('#auth').isVisible(), false);
    assert.equal(await local.locator('#account').isVisible(), false);
    await local.click('#settings summary');
    await local.fill('#temperature', '0');
    await local.fill('#max-tokens', '6');
    await local.click('#settings summary');
    await local.fill('#prompt', 'Hi');
    await local.press('#prompt', 'Enter');
    await local.locator('#messages .message.assistant:not(.streaming)').waitFor();
    assert.equal(await local.locator('#messages .message.assistant .meta').innerText(), 'Cut off at the token limit');
    await local.reload();
    await local.locator('#messages .message.assistant').waitFor();
    assert.equal(await local.locator('#conversation-list li').count(), 1);
  } finally {
    await local.close();
    await open.close();
  }
  assert.deepEqual(pageErrors, []);
});
