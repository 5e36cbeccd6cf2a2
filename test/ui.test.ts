// The web chat page end to end in headless Chromium (Debian's chromium, driven by
// playwright-core): pick a model, send a message, watch the reply stream in with its time to
// first token and tokens/s, stop a long reply. Skipped with a message where Chromium is absent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { fixturesSkip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import type { MinervaServer } from '../src/server/server.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = fixturesSkip || (existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

let dir: string;
let server: MinervaServer;
let url: string;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-ui-'));
  await mkdir(path.join(dir, 'models'));
  await writeModels(path.join(dir, 'models'));
  ({ server, url } = await startServer(path.join(dir, 'models')));
  // The flags a sandbox without a network needs (DESIGN: background networking is refused here).
  browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the chat page streams a reply with its speed, and Stop ends a long one', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction('document.getElementById("model").options.length === 2');
    assert.deepEqual(await page.locator('#model option').allTextContents(), ['tiny', 'tiny-gguf']);
    await page.selectOption('#model', 'tiny');
    await page.click('#settings summary');
    await page.fill('#max-tokens', '12');
    await page.fill('#temperature', '0');
    await page.fill('#input', 'Hello there');
    await page.keyboard.press('Enter');
    const reply = page.locator('#messages li.assistant').last();
    await reply.locator('.stats').waitFor({ timeout: 30_000 });
    const stats = await reply.locator('.stats').textContent();
    assert.match(stats!, /s to first token · [\d.]+ tokens\/s · 12 tokens · length/);
    const text = await reply.locator('.content').textContent();
    // What the page shows is what the API gives for the same conversation.
    const api = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 12, temperature: 0, top_p: 0.95 }),
    });
    assert.equal(text, ((await api.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content);
    assert.equal(await page.locator('#messages li.user').first().textContent(), 'Hello there');

    // A long reply, stopped: the page says so and the server frees the sequence.
    await page.fill('#max-tokens', '5000');
    await page.fill('#input', 'Go on');
    await page.keyboard.press('Enter');
    await page.locator('#stop').waitFor({ state: 'visible' });
    await page.waitForFunction('(document.querySelector("#messages li.assistant:last-child .content")?.textContent ?? "").length > 0');
    await page.click('#stop');
    await page.locator('#messages li.assistant').last().locator('.stats').waitFor();
    assert.match((await page.locator('#messages li.assistant').last().locator('.stats').textContent())!, /stopped/);
    const deadline = Date.now() + 10_000;
    while (!/minerva_active_sequences\{model="tiny"\} 0/.test(await (await fetch(`${url}/metrics`)).text())) {
      assert.ok(Date.now() < deadline, 'the stopped sequence is freed');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await page.close();
  }
});

test('with an empty models folder the page offers the demo model, says it is one and how to pull a real model, and chats', { skip }, async () => {
  await mkdir(path.join(dir, 'demo'));
  const demo = await startServer(path.join(dir, 'demo'));
  const page = await browser.newPage();
  try {
    await page.goto(demo.url);
    await page.locator('#demo').waitFor({ state: 'visible' });
    assert.match((await page.locator('#demo').textContent())!, /Demo model[\s\S]*npx minerva pull/);
    assert.equal(await page.locator('#model').inputValue(), 'stories260K-demo');
    assert.equal(await page.isVisible('#empty'), false);
    await page.fill('#input', 'Once upon a time');
    await page.keyboard.press('Enter');
    await page.locator('#messages li.assistant .stats').waitFor();
    assert.ok(((await page.locator('#messages li.assistant .content').textContent()) ?? '').length > 0);
  } finally {
    await page.close();
    await demo.server.close();
  }
});

test('with no models the page says how to add one', { skip }, async () => {
  await mkdir(path.join(dir, 'none'));
  const empty = await startServer(path.join(dir, 'none'), { demoModel: false });
  const page = await browser.newPage();
  try {
    await page.goto(empty.url);
    await page.locator('#empty').waitFor({ state: 'visible' });
    assert.match((await page.locator('#empty').textContent())!, /Put a model in the models folder/);
    assert.equal(await page.locator('#models-dir').textContent(), path.join(dir, 'none'));
    assert.equal(await page.isDisabled('#send'), true);
  } finally {
    await page.close();
    await empty.server.close();
  }
});
