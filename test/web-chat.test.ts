// The web app's chat screen end to end in headless Chromium (Debian's chromium, driven by
// playwright-core) against a live server over random-weight models: a reply streams in with its
// measures and equals the API's for the same conversation (greedy), Stop ends a long one, the
// conversation survives a reload and is edited, regenerated and continued; reasoning folded; Markdown, code and
// sanitising are checked on a conversation imported from a JSON file (the tiny random models
// write gibberish, so a known assistant message comes in through the page's own Import); error
// states; the demo model and empty-folder notices; axe-core in light and dark; screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { fixturesSkip } from './helpers/fixtures.js';
import { browserSkip, launchBrowser, screenshot, seriousA11yViolations } from './helpers/browser.js';
import { CHAT_TEMPLATE, startServer, writeModels } from './helpers/server.js';
import type { MinervaServer } from '../src/server/server.js';

const skip = fixturesSkip || browserSkip;

let dir: string;
let server: MinervaServer;
let url: string;
let browser: Browser;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-web-chat-'));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await writeModels(models);
  // A model that lists (its weights' headers are fine) but fails to load: its tokenizer is not JSON.
  await cp(path.join(models, 'tiny'), path.join(models, 'broken'), { recursive: true });
  await writeFile(path.join(models, 'broken', 'tokenizer.json'), '{ not json');
  // A model that thinks: its template opens <think> in the generation prompt (as DeepSeek-R1's
  // does), so the random model's text, never closing it, is all reasoning.
  await cp(path.join(models, 'tiny'), path.join(models, 'thinker'), { recursive: true });
  const cfgPath = path.join(models, 'thinker', 'tokenizer_config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgPath, JSON.stringify({ ...cfg, chat_template: CHAT_TEMPLATE.replace("'<|assistant|>\n'", "'<|assistant|>\n<think>\n'") }));
  // A context long enough that a reply runs for seconds, for Stop to stop it.
  ({ server, url } = await startServer(models, { contextLength: 4096 }));
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A fresh context (its own IndexedDB and localStorage) and page on `at`. */
async function open(at: string, options: Parameters<Browser['newContext']>[0] = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  await page.goto(at);
  return { context, page };
}

async function apiReply(messages: { role: string; content: string }[], maxTokens: number): Promise<{ content: string; finish: string }> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages, max_tokens: maxTokens, temperature: 0, top_p: 0.95 }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { choices: { message: { content: string }; finish_reason: string }[] };
  return { content: body.choices[0]!.message.content, finish: body.choices[0]!.finish_reason };
}

/** The conversation as the page exports it (the sidebar's Export button, a real download). */
async function exported(page: Page, title: string): Promise<{ title: string; messages: { role: string; content: string; stats?: { finishReason: string } }[] }> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: `Export "${title}" as JSON` }).click()]);
  const file = JSON.parse(await readFile((await download.path())!, 'utf8')) as { format: string; conversation: never };
  assert.equal(file.format, 'minerva-conversation');
  return file.conversation;
}

const assistants = (page: Page) => page.locator('.messages li.assistant');

async function setSetting(page: Page, id: string, value: string): Promise<void> {
  if (!(await page.isVisible('#chat-settings'))) await page.getByRole('button', { name: 'Settings' }).click();
  await page.fill(`#${id}`, value);
}

test('a reply streams in with its measures and equals the API\'s; Stop ends a long one; the chat survives a reload, is edited, regenerated and continued', { skip }, async () => {
  const { context, page } = await open(url);
  try {
    await page.waitForFunction('document.querySelectorAll("#model option").length === 4');
    assert.deepEqual(await page.locator('#model option').allTextContents(), ['broken', 'thinker', 'tiny', 'tiny-gguf']);
    await page.selectOption('#model', 'tiny');
    await setSetting(page, 'max-tokens', '12');
    await setSetting(page, 'temperature', '0');
    await page.fill('#chat-input', 'Hello there');
    await page.keyboard.press('Enter');
    const stats = assistants(page).last().locator('.stats');
    await stats.waitFor({ timeout: 30_000 });
    assert.match((await stats.textContent())!, /^[\d.]+ s to first token · [\d.]+ tokens\/s · \d+ prompt \+ 12 completion tokens · length$/);
    assert.equal(await page.locator('.messages li.user .content').first().textContent(), 'Hello there');

    // What the page keeps (and rendered) is what the API gives for the same conversation.
    const first = await apiReply([{ role: 'user', content: 'Hello there' }], 12);
    const saved = await exported(page, 'Hello there');
    assert.equal(saved.messages.length, 2);
    assert.equal(saved.messages[1]!.content, first.content);
    assert.equal(saved.messages[1]!.stats?.finishReason, 'length');

    // A long reply, stopped: the page says so and the server frees the sequence.
    await setSetting(page, 'max-tokens', '5000');
    await page.fill('#chat-input', 'Go on');
    await page.keyboard.press('Enter');
    await page.locator('#stop').waitFor({ state: 'visible' });
    await page.waitForFunction('(document.querySelector(".messages li.assistant:last-child .content")?.textContent ?? "").length > 0');
    assert.match((await page.locator('.chat-status').textContent())!, /Generating: \d+ tokens/);
    await page.click('#stop');
    await assistants(page).nth(1).locator('.stats').waitFor();
    assert.match((await assistants(page).nth(1).locator('.stats').textContent())!, /stopped$/);
    const deadline = Date.now() + 10_000;
    while (!/minerva_active_sequences\{model="tiny"\} 0/.test(await (await fetch(`${url}/metrics`)).text())) {
      assert.ok(Date.now() < deadline, 'the stopped sequence is freed');
      await new Promise((r) => setTimeout(r, 50));
    }

    // A reload keeps the conversation (IndexedDB) and its settings.
    const before = await page.locator('.messages li .content').allTextContents();
    await page.reload();
    await page.locator('.messages li.assistant .stats').nth(1).waitFor();
    assert.deepEqual(await page.locator('.messages li .content').allTextContents(), before);
    assert.equal(await page.locator('.conversation[aria-current="true"] .conversation-title').textContent(), 'Hello there');
    assert.equal(await page.locator('#model').inputValue(), 'tiny');

    // Edit the first message (to the same words) and regenerate from there: the later turns go, and
    // the reply is the greedy one again.
    await setSetting(page, 'max-tokens', '12');
    await page.locator('.messages li.user').first().getByRole('button', { name: 'Edit' }).click();
    await page.getByRole('textbox', { name: 'Edit message' }).fill('Hello there');
    await page.getByRole('button', { name: 'Save and regenerate' }).click();
    await page.waitForFunction('document.querySelectorAll(".messages li").length === 2 && document.querySelector(".messages li.assistant .stats")');
    let now = await exported(page, 'Hello there');
    assert.equal(now.messages[1]!.content, first.content);

    // Regenerate the last reply: a new request is made (greedy, so the same text again).
    await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/v1/chat/completions') && r.method() === 'POST'),
      page.getByRole('button', { name: 'Regenerate' }).click(),
    ]);
    await page.locator('#stop').waitFor({ state: 'detached' });
    await page.locator('.messages li.assistant .stats').waitFor();
    now = await exported(page, 'Hello there');
    assert.equal(now.messages.length, 2);
    assert.equal(now.messages[1]!.content, first.content);

    // Continue a reply cut by its length: what came before stays, and more follows.
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#stop').waitFor({ state: 'detached' });
    now = await exported(page, 'Hello there');
    assert.equal(now.messages.length, 2);
    assert.ok(now.messages[1]!.content.startsWith(first.content) && now.messages[1]!.content.length > first.content.length, 'the reply went on');
    const went = await apiReply([
      { role: 'user', content: 'Hello there' }, { role: 'assistant', content: first.content },
      { role: 'user', content: 'Continue exactly where your last reply stopped, without repeating any of it.' },
    ], 12);
    assert.equal(now.messages[1]!.content, first.content + went.content);

    // Rename, then delete.
    await page.getByRole('button', { name: 'Rename "Hello there"' }).click();
    await page.getByRole('textbox', { name: 'New name' }).fill('Greetings');
    await page.keyboard.press('Enter');
    await page.locator('.conversation-title', { hasText: 'Greetings' }).waitFor();
    assert.equal(await page.locator('.chat-title').textContent(), 'Greetings');
    await page.getByRole('button', { name: 'Delete "Greetings"' }).click();
    await page.locator('.conversation-title', { hasText: 'Greetings' }).waitFor({ state: 'detached' });
    assert.equal(await page.locator('.messages li').count(), 0);
  } finally {
    await context.close();
  }
});

test('a model that thinks: its reasoning streams in folded, and equals the API\'s reasoning_content', { skip }, async () => {
  const { context, page } = await open(url);
  try {
    await page.waitForFunction('document.querySelectorAll("#model option").length === 4');
    await page.selectOption('#model', 'thinker');
    await setSetting(page, 'max-tokens', '10');
    await setSetting(page, 'temperature', '0');
    await page.fill('#chat-input', 'Why?');
    await page.keyboard.press('Enter');
    await page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    const details = page.locator('.messages li.assistant details.reasoning');
    assert.equal(await details.getAttribute('open'), null, 'folded');
    await details.locator('summary').click();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'thinker', messages: [{ role: 'user', content: 'Why?' }], max_tokens: 10, temperature: 0, top_p: 0.95 }),
    });
    const api = ((await res.json()) as { choices: { message: { content: string | null; reasoning_content?: string } }[] }).choices[0]!.message;
    assert.ok(api.reasoning_content, 'the API reports reasoning');
    assert.equal(await details.locator('.reasoning-text').textContent(), api.reasoning_content);
    assert.equal(await page.locator('.messages li.assistant .content').textContent(), api.content ?? '');
  } finally {
    await context.close();
  }
});

// A known assistant reply: heading, list, table, code, and what must never run.
const MARKDOWN = [
  '## Plan', '', '- one', '- two', '', '| a | b |', '|---|---|', '| 1 | 2 |', '',
  '```python', 'def f(x):', '    return x + 1', '```', '',
  'Text <img src=x onerror="window.__pwned = 1"> and <script>window.__pwned = 2</script>',
  '[a link](javascript:window.__pwned=3) <a href="#" onclick="window.__pwned=4">click</a>',
].join('\n');

const CONVERSATION = {
  format: 'minerva-conversation', version: 1,
  conversation: {
    title: 'Markdown sample',
    settings: { model: 'tiny', temperature: 0, maxTokens: 12 },
    messages: [
      { role: 'user', content: 'Show me <b>markdown</b>' },
      { role: 'assistant', content: MARKDOWN, reasoning: 'Thinking about lists.', stats: { ttftMs: 120, tokensPerSecond: 50, promptTokens: 9, completionTokens: 60, finishReason: 'stop' } },
    ],
  },
};

async function importSample(page: Page): Promise<void> {
  await page.getByLabel('Import a conversation (JSON)').setInputFiles({ name: 'sample.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(CONVERSATION)) });
  await page.locator('.messages li.assistant .code-block').waitFor();
}

test('an imported conversation renders its Markdown, highlights and copies code, and runs nothing it carries', { skip }, async () => {
  const { context, page } = await open(url);
  try {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
    // A file that is not a conversation is refused with the field named.
    await page.getByLabel('Import a conversation (JSON)').setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from('{"messages":[{"role":"robot","content":"x"}]}') });
    assert.match((await page.locator('.chat-sidebar [role="alert"]').textContent())!, /bad\.json: conversation\.messages\[0\]\.role must be "user" or "assistant"/);

    await importSample(page);
    const reply = page.locator('.messages li.assistant .content');
    assert.equal(await reply.locator('h2').textContent(), 'Plan');
    assert.deepEqual(await reply.locator('ul li').allTextContents(), ['one', 'two']);
    assert.deepEqual(await reply.locator('table td').allTextContents(), ['1', '2']);
    assert.equal(await reply.locator('code.language-python .hljs-keyword').first().textContent(), 'def');
    assert.equal(await reply.locator('.code-head span').textContent(), 'python');
    // The user's message is text, never HTML.
    assert.equal(await page.locator('.messages li.user .content').textContent(), 'Show me <b>markdown</b>');
    assert.equal(await page.locator('.messages li.user b').count(), 0);
    // Reasoning folded; measures under the reply.
    assert.equal(await page.locator('details.reasoning').getAttribute('open'), null);
    assert.equal(await page.locator('.messages li.assistant .stats').textContent(), '0.12 s to first token · 50.0 tokens/s · 9 prompt + 60 completion tokens · stop');

    await reply.getByRole('button', { name: 'Copy' }).click();
    await reply.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), 'def f(x):\n    return x + 1');

    // Sanitised: no script, no handlers, no javascript: URL; clicking what is left runs nothing.
    assert.equal(await reply.locator('script').count(), 0);
    assert.equal(await reply.locator('[onerror], [onclick]').count(), 0);
    assert.equal(await reply.locator('a[href^="javascript"]').count(), 0);
    await reply.getByText('click').click();
    await reply.getByText('a link').click();
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate('window.__pwned'), undefined);

    // The imported conversation was stored: it is there after a reload.
    await page.reload();
    await page.locator('.messages li.assistant .code-block').waitFor();
    assert.equal(await page.locator('.conversation[aria-current="true"] .conversation-title').textContent(), 'Markdown sample');
  } finally {
    await context.close();
  }
});

test('the page says what it is waiting for and what went wrong: loading, queued, busy, a model that fails to load, memory, a bad schema', { skip }, async () => {
  const { context, page } = await open(url);
  try {
    await page.waitForFunction('document.querySelectorAll("#model option").length === 4');
    // While the response has not started and the model is not loaded, the seconds are counted.
    await page.route('**/v1/chat/completions', async (route) => {
      await new Promise((r) => setTimeout(r, 2500));
      await route.continue();
    });
    await page.selectOption('#model', 'tiny-gguf');
    await setSetting(page, 'max-tokens', '4');
    await page.fill('#chat-input', 'Hi');
    await page.keyboard.press('Enter');
    await page.locator('.chat-status', { hasText: /^Loading model \(1 s\)…$/ }).waitFor({ timeout: 5000 });
    await page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('.chat-status').textContent(), '');
    await page.unroute('**/v1/chat/completions');

    // A model that fails to load: the server's reason, and a Retry.
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.selectOption('#model', 'broken');
    await page.fill('#chat-input', 'Hi');
    await page.keyboard.press('Enter');
    const alert = page.locator('.chat-error');
    await alert.waitFor({ timeout: 30_000 });
    assert.match((await alert.textContent())!, /The server could not answer: .*tokenizer/i);
    assert.equal(await page.locator('.messages li').count(), 1, 'the user message stays, to retry');
    await alert.getByRole('button', { name: 'Retry' }).waitFor();

    // A JSON schema that is not JSON is caught before sending.
    await page.selectOption('#model', 'tiny');
    await page.selectOption('#json-output', 'schema');
    await page.fill('#json-schema', '{ "type": ');
    assert.match((await page.locator('#json-schema-problem').textContent())!, /^Not valid: /);
    await page.fill('#chat-input', 'Hi again');
    await page.keyboard.press('Enter');
    assert.match((await alert.textContent())!, /JSON schema \(settings\): not valid JSON/);
  } finally {
    await context.close();
  }

  // Queued, then busy: with the one sequence slot taken by a long API request, a page's request
  // waits its turn (the page says so); with the one queue place taken too, another page's request
  // is refused (429) and the page says to retry, which works once the slot is free.
  const one = await startServer(path.join(dir, 'models'), { parallel: 1, maxQueue: 1, contextLength: 4096 });
  const busy = new AbortController();
  const first = await open(one.url);
  const second = await open(one.url);
  try {
    const res = await fetch(`${one.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: busy.signal,
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Go' }], max_tokens: 4000, stream: true }),
    });
    await res.body!.getReader().read();
    for (const { page: p } of [first, second]) {
      await p.waitForFunction('document.querySelectorAll("#model option").length === 4');
      await p.selectOption('#model', 'tiny');
      await setSetting(p, 'max-tokens', '4');
    }
    await first.page.fill('#chat-input', 'Hi');
    await first.page.keyboard.press('Enter');
    await first.page.locator('.chat-status', { hasText: /^Queued \(\d+ s\): 1 request waiting for the model…$/ }).waitFor({ timeout: 10_000 });
    await second.page.fill('#chat-input', 'Hi');
    await second.page.keyboard.press('Enter');
    const refused = second.page.locator('.chat-error');
    await refused.waitFor({ timeout: 10_000 });
    assert.match((await refused.textContent())!, /^The server is busy: .*Wait a moment and retry\.Retry$/);
    busy.abort();
    await first.page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    await refused.getByRole('button', { name: 'Retry' }).click();
    await second.page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    assert.equal(await refused.count(), 0);
  } finally {
    busy.abort();
    await first.context.close();
    await second.context.close();
    await one.server.close();
  }

  // Not enough memory for the model: the server's message and what to do.
  await mkdir(path.join(dir, 'small'), { recursive: true });
  await writeModels(path.join(dir, 'small'));
  const small = await startServer(path.join(dir, 'small'), { maxMemory: 4096 });
  const other = await open(small.url);
  try {
    await other.page.waitForFunction('document.querySelectorAll("#model option").length === 2');
    await other.page.fill('#chat-input', 'Hi');
    await other.page.keyboard.press('Enter');
    const alert = other.page.locator('.chat-error');
    await alert.waitFor({ timeout: 30_000 });
    assert.match((await alert.textContent())!, /^Not enough memory for "tiny": model "tiny" needs .* memory limit is .*Unload a model on the Models screen, or pick a smaller one\./);
  } finally {
    await other.context.close();
    await small.server.close();
  }
});

test('a server that wants an API key: the page says so, takes the key and chats', { skip }, async () => {
  const keyed = await startServer(path.join(dir, 'models'), { apiKey: 'sesame' });
  const { context, page } = await open(keyed.url);
  try {
    const alert = page.locator('.notice[role="alert"]');
    await alert.waitFor();
    assert.equal(await alert.textContent(), 'The models cannot be listed: the server wants an API key: enter it at the top right.');
    await page.getByLabel('API key').fill('sesame');
    await page.getByLabel('API key').press('Enter');
    await page.waitForFunction('document.querySelectorAll("#model option").length === 4');
    assert.equal(await alert.count(), 0);
    await page.selectOption('#model', 'tiny');
    await setSetting(page, 'max-tokens', '3');
    await page.fill('#chat-input', 'Hi');
    await page.keyboard.press('Enter');
    await page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    assert.match((await page.locator('.messages li.assistant .stats').textContent())!, /3 completion tokens · length$/);
  } finally {
    await context.close();
    await keyed.server.close();
  }
});

test('with an empty models folder the page offers the demo model, says it is one and how to pull a real model, and chats', { skip }, async () => {
  await mkdir(path.join(dir, 'demo'));
  const demo = await startServer(path.join(dir, 'demo'));
  const { context, page } = await open(demo.url);
  try {
    await page.locator('#demo-notice').waitFor({ state: 'visible' });
    assert.match((await page.locator('#demo-notice').textContent())!, /Demo model[\s\S]*npx minerva pull/);
    assert.equal(await page.locator('#model').inputValue(), 'stories260K-demo');
    assert.equal(await page.isVisible('#empty-notice'), false);
    await page.fill('#chat-input', 'Once upon a time');
    await page.keyboard.press('Enter');
    await page.locator('.messages li.assistant .stats').waitFor({ timeout: 30_000 });
    assert.ok(((await page.locator('.messages li.assistant .content').textContent()) ?? '').length > 0);
  } finally {
    await context.close();
    await demo.server.close();
  }
});

test('with no models the page says how to add one and points to the Models screen', { skip }, async () => {
  await mkdir(path.join(dir, 'none'));
  const empty = await startServer(path.join(dir, 'none'), { demoModel: false });
  const { context, page } = await open(empty.url);
  try {
    await page.locator('#empty-notice').waitFor({ state: 'visible' });
    assert.match((await page.locator('#empty-notice').textContent())!, /Put a model in the models folder/);
    assert.equal(await page.locator('#models-dir').textContent(), path.join(dir, 'none'));
    assert.equal(await page.locator('#empty-notice a').getAttribute('href'), '#/models');
    assert.equal(await page.isDisabled('#send'), true);
  } finally {
    await context.close();
    await empty.server.close();
  }
});

test('the chat screen has no serious accessibility violations in light and dark, on a desktop and a phone (screenshots saved)', { skip }, async () => {
  for (const colorScheme of ['light', 'dark'] as const) {
    for (const [device, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]] as const) {
      const { context, page } = await open(url, { colorScheme, viewport, isMobile: device === 'phone', hasTouch: device === 'phone' });
      try {
        await page.waitForFunction('document.querySelectorAll("#model option").length === 4');
        await importSample(page);
        if (device === 'desktop') {
          await page.getByRole('button', { name: 'Settings' }).click();
          await page.locator('details.reasoning summary').click();
        } else {
          // The sidebar folds behind its button on a phone.
          assert.equal(await page.isVisible('#chat-sidebar'), false);
          await page.getByRole('button', { name: '☰ Chats' }).click();
          assert.equal(await page.isVisible('#chat-sidebar'), true);
          await screenshot(page, `chat-${device}-${colorScheme}-sidebar`);
          await page.getByRole('button', { name: 'Close' }).click();
          assert.equal(await page.isVisible('#chat-sidebar'), false);
        }
        assert.deepEqual(await seriousA11yViolations(page), [], `${device}, ${colorScheme}`);
        if (device === 'desktop') {
          await screenshot(page, `chat-${device}-${colorScheme}-settings`);
          await page.getByRole('button', { name: 'Settings' }).click();
        }
        await screenshot(page, `chat-${device}-${colorScheme}`);
      } finally {
        await context.close();
      }
    }
  }
});
