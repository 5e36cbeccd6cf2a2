// The web app's models screen in headless Chromium, against a live server over a folder of
// random-weight models and a local Hub on loopback (test/helpers/local-hub.ts): the list with what
// each model is (checked against the files written), details from /api/show, load then unload,
// delete after a confirmation, a pull with per-file progress and one cancelled, a pull that fails
// said plainly, the status panel moving after a generation; no serious axe violations in light
// and dark; screenshots at desktop and phone sizes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { browserSkip, launchBrowser, screenshot, seriousA11yViolations } from './helpers/browser.js';
import { fixturesSkip } from './helpers/fixtures.js';
import { LocalHub } from './helpers/local-hub.js';
import { CHAT_TEMPLATE, SPEC, startServer, writeModels } from './helpers/server.js';
import { randomSpec, randomWeights, writeGGUFModel } from '../src/model/random-model.js';
import { syntheticSpmVocab, syntheticVocabGGUF } from '../src/tokenizer/synthetic-vocab.js';
import type { MinervaServer } from '../src/server/server.js';

/** Where the server mounts the web app. */
const APP_PATH = '/';

const skip = fixturesSkip || browserSkip;
/** The model the local Hub serves: tiny enough that its parameters count in thousands. */
const HUB_SPEC = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: true, vocabSize: 300 });
const weightCount = (w: ReturnType<typeof randomWeights>) => [...w.values()].reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
let root: string, models: string, hub: LocalHub, server: MinervaServer, url: string, browser: Browser;

before(async () => {
  if (skip) return;
  root = await mkdtemp(path.join(os.tmpdir(), 'minerva-web-models-'));
  models = path.join(root, 'models');
  await mkdir(models);
  await writeModels(models);
  hub = await LocalHub.start();
  const gguf = path.join(root, 'q8.gguf');
  await writeGGUFModel(gguf, HUB_SPEC, randomWeights(HUB_SPEC, 11), { dtype: 'Q8_0', vocab: syntheticVocabGGUF(syntheticSpmVocab(300)) });
  const bytes = await readFile(gguf);
  hub.addRepo({ id: 'acme/Tiny-GGUF', files: { 'tiny-Q8_0.gguf': bytes, 'README.md': '# tiny' } });
  hub.addRepo({ id: 'acme/Stalled-GGUF', files: { 'stalled-Q8_0.gguf': bytes } });
  // Slow enough for the page to show the bar part way (the server sends progress every 100 ms).
  hub.fault('acme/Tiny-GGUF', 'tiny-Q8_0.gguf', { kind: 'slow', chunkBytes: Math.ceil(bytes.length / 20), delayMs: 60 });
  hub.fault('acme/Stalled-GGUF', 'stalled-Q8_0.gguf', { kind: 'stall', afterBytes: 1000, ms: 8_000 });
  // The server pulls with this process's environment.
  Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: path.join(root, 'cache'), HF_HOME: path.join(root, 'hf-home') });
  ({ server, url } = await startServer(models, { backend: 'cpu' }));
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
  await hub?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function openModels(page: Page): Promise<void> {
  await page.goto(`${url}${APP_PATH}#/models`);
  await page.locator('tbody.model-row').first().waitFor();
}

const row = (page: Page, name: string) => page.locator(`tbody.model-row[data-model="${name}"]`);

test('the list shows every model with what its files say, and its details', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await openModels(page);
    assert.deepEqual(await page.locator('tbody.model-row .model-name').allTextContents(), ['tiny', 'tiny-gguf']);
    // The oracle is the files written: parameters counted from the weights, sizes from the disk.
    const count = weightCount(randomWeights(SPEC, 4));
    const cells = async (name: string) => Object.fromEntries(await row(page, name).locator('tr').first().locator('[data-label]').evaluateAll(
      (els) => els.map((e) => [e.getAttribute('data-label'), e.textContent?.trim()])));
    const gguf = await cells('tiny-gguf');
    assert.equal(gguf.Architecture, 'llama');
    assert.equal(gguf.Parameters, `${(count / 1e6).toFixed(1)}M`);
    assert.equal(gguf.Weights, 'Q8_0 (gguf)');
    const bytes = (await stat(path.join(models, 'tiny-gguf.gguf'))).size;
    const shown = /^([\d.]+) (kB|MB|GB)$/.exec(gguf.Size!);
    assert.ok(shown, gguf.Size);
    const shownBytes = Number(shown[1]) * { kB: 1e3, MB: 1e6, GB: 1e9 }[shown[2] as 'kB' | 'MB' | 'GB'];
    assert.ok(Math.abs(shownBytes - bytes) / bytes < 0.01, `${gguf.Size} for ${bytes} bytes`);
    assert.equal(gguf.Context, (SPEC.contextLength).toLocaleString('en-US'));
    assert.equal(gguf.State, 'not loaded');
    const hf = await cells('tiny');
    assert.match(hf.Weights!, /\(safetensors\)$/);

    await row(page, 'tiny').getByRole('button', { name: 'Details of tiny' }).click();
    const details = row(page, 'tiny').locator('.model-details');
    await details.waitFor();
    assert.equal(await details.locator('pre.template').textContent(), CHAT_TEMPLATE);
    assert.match((await details.locator('.model-info').textContent())!, /general\.architecturellama/);
    assert.match((await details.locator('.model-info').textContent())!, new RegExp(`llama\\.context_length${SPEC.contextLength.toLocaleString('en-US')}`));
    assert.equal(await row(page, 'tiny').getByRole('button', { name: 'Details of tiny' }).getAttribute('aria-expanded'), 'true');
  } finally {
    await page.close();
  }
});

test('load then unload: the state, the memory it holds and the status panel follow', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await openModels(page);
    await page.getByRole('button', { name: 'Load tiny-gguf' }).click();
    const state = row(page, 'tiny-gguf').locator('.model-state');
    await state.getByText(/^loaded · /).waitFor({ timeout: 30_000 });
    const ps = (await (await fetch(`${url}/api/ps`)).json()) as { models: { name: string; size: number }[] };
    assert.deepEqual(ps.models.map((m) => m.name), ['tiny-gguf:latest']);
    assert.ok(ps.models[0]!.size > 0);
    assert.match((await state.textContent())!, /^loaded · [\d.]+ (kB|MB|GB)$/);
    await page.locator('[data-stat="loaded"]').getByText('1').waitFor();
    const memory = await page.locator('[data-stat="memory"]').textContent();
    assert.equal(memory, (await state.textContent())!.replace('loaded · ', ''));
    // Against the budget the server was started with (startServer: 1 GiB).
    assert.match((await page.locator('#memory-label').textContent())!, /of 1\.1 GB budget/);
    assert.equal(await page.getByRole('meter').getAttribute('aria-valuenow'), String(ps.models[0]!.size));

    await page.getByRole('button', { name: 'Unload tiny-gguf' }).click();
    await state.getByText('not loaded').waitFor({ timeout: 30_000 });
    assert.deepEqual(((await (await fetch(`${url}/api/ps`)).json()) as { models: unknown[] }).models, []);
    await page.locator('[data-stat="loaded"]').getByText('0').waitFor();
  } finally {
    await page.close();
  }
});

test('delete asks first; keeping it changes nothing, confirming removes the model', { skip }, async () => {
  const copied = await fetch(`${url}/api/copy`, { method: 'POST', body: JSON.stringify({ source: 'tiny-gguf', destination: 'spare' }), headers: { 'content-type': 'application/json' } });
  assert.equal(copied.status, 200);
  const page = await browser.newPage();
  try {
    await openModels(page);
    await page.getByRole('button', { name: 'Delete spare' }).click();
    const confirm = page.getByRole('group', { name: 'Confirm deleting spare' });
    assert.match((await confirm.textContent())!, /Delete spare and its files\?/);
    await confirm.getByRole('button', { name: 'Keep it' }).click();
    assert.equal(await row(page, 'spare').count(), 1);
    const names = async () => ((await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] }).models.map((m) => m.name).sort();
    assert.ok((await names()).includes('spare:latest'));

    await page.getByRole('button', { name: 'Delete spare' }).click();
    await page.getByRole('button', { name: 'Yes, delete spare' }).click();
    await row(page, 'spare').waitFor({ state: 'detached' });
    assert.deepEqual(await names(), ['tiny-gguf:latest', 'tiny:latest']);
  } finally {
    await page.close();
  }
});

test('a pull shows a progress bar per file and the model joins the list; cancel stops one', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await openModels(page);
    // Every value the bar takes, sampled each frame.
    // (Strings run in the page: this project's tsc knows no DOM.)
    await page.evaluate(`{
      const seen = (globalThis.seen = []);
      const look = () => {
        const bar = document.querySelector('.pull-files progress');
        if (bar) seen.push([bar.value, bar.max]);
        requestAnimationFrame(look);
      };
      look();
    }`);
    await page.getByLabel('Hugging Face repo').fill('acme/Tiny-GGUF:Q8_0');
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    await page.getByText('Pulled acme/Tiny-GGUF:Q8_0: it is in the list below.').waitFor({ timeout: 30_000 });
    await row(page, 'Tiny-Q8_0').waitFor();
    const seen = await page.evaluate<[number, number][]>('globalThis.seen');
    const size = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q8_0.gguf')!.size;
    assert.ok(seen.length > 0 && seen.every(([, max]) => max === size), `the bar's max is the file's size (${size})`);
    assert.ok(seen.some(([v]) => v > 0 && v < size), `the bar showed the file part way: ${JSON.stringify(seen.slice(0, 5))}…`);
    const values = seen.map(([v]) => v);
    assert.deepEqual(values, [...values].sort((a, b) => a - b), 'progress only goes forward');
    assert.equal(await row(page, 'Tiny-Q8_0').locator('[data-label="Weights"]').textContent(), 'Q8_0 (gguf)');
    assert.equal(await row(page, 'Tiny-Q8_0').locator('[data-label="Parameters"]').textContent(), `${(weightCount(randomWeights(HUB_SPEC, 11)) / 1e3).toFixed(1)}K`);

    // Cancel: the download stalls; the button stops it, and nothing joins the list.
    await page.getByLabel('Hugging Face repo').fill('acme/Stalled-GGUF');
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    await page.locator('.pull-files progress').waitFor();
    await page.getByRole('button', { name: 'Cancel pull' }).click();
    await page.getByText('Pull of acme/Stalled-GGUF cancelled.', { exact: false }).waitFor();
    assert.equal(await page.getByLabel('Hugging Face repo').isEnabled(), true);
    const names = ((await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
    assert.ok(!names.some((n) => n.startsWith('stalled')), names.join(', '));
  } finally {
    await page.close();
  }
});

test('a failed pull is said plainly, with what to do', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await openModels(page);
    await page.getByLabel('Hugging Face repo').fill('acme/nothing-here');
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    const alert = page.locator('.pull-error[role="alert"]');
    await alert.waitFor({ timeout: 30_000 });
    const text = (await alert.textContent())!;
    assert.match(text, /Could not pull acme\/nothing-here: repository acme\/nothing-here not found/);
    assert.match(text, /Check the name on huggingface\.co/);
    assert.doesNotMatch(text, new RegExp(root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no server paths');

    await page.getByLabel('Hugging Face repo').fill('acme/Tiny-GGUF:Q2_K');
    await page.getByRole('button', { name: 'Pull', exact: true }).click();
    await alert.getByText(/matches ":Q2_K"; it has: tiny-Q8_0\.gguf/).waitFor({ timeout: 30_000 });
    assert.match((await alert.textContent())!, /Pick a quantization the repo has/);

    // (The Hub out of reach is not tried here: the pull retries for ~30–60 s before it says so.)
  } finally {
    await page.close();
  }
});

test('the status panel counts the tokens of a generation and charts their rate', { skip }, async () => {
  const page = await browser.newPage();
  try {
    await openModels(page);
    const tokens = page.locator('[data-stat="tokens"]');
    await page.waitForFunction(`/^\\d/.test(document.querySelector('[data-stat="tokens"]')?.textContent ?? '')`);
    const before = Number((await tokens.textContent())!.replace(/,/g, ''));
    const res = await fetch(`${url}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-gguf', prompt: 'hello', raw: true, stream: false, options: { temperature: 0, num_predict: 24 } }),
    });
    const done = (await res.json()) as { eval_count: number };
    assert.equal(done.eval_count, 24);
    await page.waitForFunction(`Number((document.querySelector('[data-stat="tokens"]')?.textContent ?? '').replace(/,/g, '')) === ${before + done.eval_count}`,
      undefined, { timeout: 10_000 });
    // The rate: the chart's line rises above its baseline for the second the tokens came in.
    await page.waitForFunction(`(document.querySelector('.chart polyline')?.getAttribute('points') ?? '')
      .split(' ').some((p) => Number(p.split(',')[1]) < 78)`, undefined, { timeout: 10_000 });
    assert.match((await page.locator('.chart').getAttribute('aria-label'))!, /peak [1-9][\d.]*/);
    await page.locator('[data-stat="loaded"]').getByText('1').waitFor();

    // Six long streams at once on a server with 4 slots: 4 generate, 2 wait; the panel shows both.
    // (A server of its own, with a long context and one thread, so the streams outlast the panel's
    // one-second polling on any machine.)
    const busy = await startServer(models, { backend: 'cpu', contextLength: 8192, threads: 1 });
    const stop = new AbortController();
    try {
      await page.goto(`${busy.url}${APP_PATH}#/models`);
      await page.locator('tbody.model-row').first().waitFor();
      const streams = Array.from({ length: 6 }, () => fetch(`${busy.url}/api/generate`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: stop.signal,
        body: JSON.stringify({ model: 'tiny-gguf', prompt: 'hello', raw: true, stream: true, options: { num_predict: 8000, temperature: 0 } }),
      }).then((r) => r.text()).catch(() => ''));
      try {
        await page.locator('[data-stat="active"]').getByText('4').waitFor({ timeout: 20_000 });
        await page.locator('[data-stat="queued"]').getByText('2').waitFor({ timeout: 10_000 });
      } finally {
        stop.abort();
        await Promise.all(streams);
      }
      await page.locator('[data-stat="active"]').getByText('0').waitFor({ timeout: 10_000 });
    } finally {
      await busy.server.close();
    }
  } finally {
    await page.close();
  }
});

test('no serious accessibility violations, light and dark; screenshots at desktop and phone sizes', { skip }, async () => {
  for (const scheme of ['light', 'dark'] as const) {
    for (const [size, viewport] of [['desktop', { width: 1280, height: 860 }], ['phone', { width: 390, height: 844 }]] as const) {
      const page = await browser.newPage({ viewport, colorScheme: scheme });
      try {
        await openModels(page);
        await row(page, 'tiny').getByRole('button', { name: 'Details of tiny' }).click();
        await row(page, 'tiny').locator('.model-details').waitFor();
        await page.waitForFunction(`document.querySelectorAll('.chart polyline').length === 1`);
        assert.equal(await page.evaluate('getComputedStyle(document.body).backgroundColor'),
          scheme === 'dark' ? 'rgb(21, 23, 27)' : 'rgb(255, 255, 255)');
        if (size === 'phone') {
          // Cards, not a table: no header row, and nothing wider than the screen.
          assert.equal(await page.locator('.models-table thead').isVisible(), false);
          assert.ok(await page.evaluate(`document.documentElement.scrollWidth <= window.innerWidth
            && [...document.querySelectorAll('.models-screen, .models-list')].every((e) => e.scrollWidth <= e.clientWidth)`), 'no sideways scrolling');
        }
        assert.deepEqual(await seriousA11yViolations(page), [], `${scheme} ${size}`);
        if (size === 'desktop') {
          // Something on the chart for the picture.
          await fetch(`${url}/api/generate`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'tiny-gguf', prompt: 'hello', raw: true, stream: false, options: { num_predict: 64 } }),
          });
          await page.waitForTimeout(2500);
        }
        // The screen scrolls inside the window: a window as tall as the screen's content shows it all.
        const tall = await page.evaluate<number>(`document.querySelector('.topbar').offsetHeight + document.querySelector('.models-screen').scrollHeight`);
        await page.setViewportSize({ width: viewport.width, height: Math.max(viewport.height, tall) });
        await screenshot(page, `models-${size}-${scheme}`);
      } finally {
        await page.close();
      }
    }
  }
});
