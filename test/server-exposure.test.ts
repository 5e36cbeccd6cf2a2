// What the server tells clients and the world: errors name the model, never the server's paths;
// API keys are compared in constant time; a warning when listening beyond this machine without a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import { exposureWarning, isLoopback, redactPaths } from '../src/server/exposure.js';

test('paths in error messages: inside the models folder relative to it, elsewhere their last part; routes and URLs kept', () => {
  const models = path.join(os.tmpdir(), 'srv', 'models');
  const cases: [string, string][] = [
    [`${models}/tiny-gguf.gguf: tensor data ends at byte 12 of 10`, 'tiny-gguf.gguf: tensor data ends at byte 12 of 10'],
    [`model "x": cannot open ${models}/family/x.gguf (ENOENT)`, 'model "x": cannot open family/x.gguf (ENOENT)'],
    [`${models}: not readable`, 'the models folder: not readable'],
    ['/tmp/minerva-abc/model.gguf: no chat template', 'model.gguf: no chat template'],
    ["cannot read '/home/someone/.cache/minerva/x.json'", "cannot read 'x.json'"],
    ['C:\\Users\\someone\\models\\m.gguf: bad magic', 'm.gguf: bad magic'],
    ['use POST /api/chat or /v1/chat/completions, not /api/generate', 'use POST /api/chat or /v1/chat/completions, not /api/generate'],
    ['fetch https://huggingface.co/org/repo/resolve/main/x failed', 'fetch https://huggingface.co/org/repo/resolve/main/x failed'],
    ['ratio 3/4 and a/b stay', 'ratio 3/4 and a/b stay'],
  ];
  for (const [message, expected] of cases) assert.equal(redactPaths(message, models), expected, message);
});

test('listening beyond loopback without an API key warns; loopback, or a key, does not', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) {
    assert.ok(isLoopback(host), host);
    assert.equal(exposureWarning(host, undefined), undefined, host);
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.org']) {
    assert.equal(isLoopback(host), false, host);
    assert.match(exposureWarning(host, undefined)!, new RegExp(`listening on ${host.replace(/[.]/g, '\\.')} without an API key.*--api-key`));
    assert.equal(exposureWarning(host, 'sesame'), undefined, `${host} with a key`);
  }
});

test('a model whose files fail is named to the client, without the server\'s paths; the server keeps serving', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-exposure-'));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await writeModels(models);
  const { server, url } = await startServer(models);
  try {
    const post = (route: string, body: unknown) => fetch(`${url}${route}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    // A chat template beside the model (tiny-gguf.jinja) that does not parse: the error the
    // server logs names the file by its full path.
    await writeFile(path.join(models, 'tiny-gguf.jinja'), '{% if %}broken');
    for (const [route, body] of [
      ['/v1/chat/completions', { model: 'tiny-gguf', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }],
      ['/api/chat', { model: 'tiny-gguf', messages: [{ role: 'user', content: 'hi' }], stream: false }],
    ] as const) {
      const res = await post(route, body);
      assert.ok(res.status >= 400, `${route}: ${res.status}`);
      const text = await res.text();
      assert.ok(!text.includes(dir) && !text.includes(os.tmpdir()), `${route} tells a path: ${text}`);
      assert.match(text, /tiny-gguf\.jinja/, `${route} names the model's file: ${text}`);
    }
    // Other models still serve.
    const ok = await post('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(ok.status, 200);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
