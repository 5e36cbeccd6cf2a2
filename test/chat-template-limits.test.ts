// A chat template is code from a downloaded file: rendering it is bounded in time, memory and output
// size, reaches no globals or prototypes, and a template that fails says which model and why, while
// the server goes on serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChatTemplateError, renderChatTemplate } from '../src/tokenizer/chat-template.js';
import { RENDER_TIME_LIMIT_MS } from '../src/tokenizer/chat-template-sandbox.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';

const HI = [{ role: 'user' as const, content: 'hi' }];
const ECHO = '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}';

/** Renders, expecting a ChatTemplateError; returns it with the time it took. */
function failure(source: string): { error: ChatTemplateError; ms: number } {
  const start = performance.now();
  try {
    renderChatTemplate(source, HI);
  } catch (e) {
    assert.ok(e instanceof ChatTemplateError, `a ChatTemplateError, got ${(e as Error).name}: ${(e as Error).message}`);
    return { error: e, ms: performance.now() - start };
  }
  assert.fail(`${source} rendered`);
}

test('a template that runs forever or exhausts memory stops at the bound, and the next template renders', () => {
  const cases = [
    '{% for i in range(1000000000) %}x{% endfor %}', // a billion-element list: the template's heap runs out
    '{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}', // 10^10 steps
  ];
  for (const source of cases) {
    const { error, ms } = failure(source);
    assert.match(error.message, new RegExp(`chat template failed: rendering did not finish within ${RENDER_TIME_LIMIT_MS} ms`));
    // Bounded: the limit plus starting a fresh template thread, with room for a busy machine.
    assert.ok(ms < RENDER_TIME_LIMIT_MS + 8000, `stopped after ${ms.toFixed(0)} ms`);
    assert.equal(renderChatTemplate(ECHO, HI), '<user>hi', 'a good template renders after a bad one');
  }
});

test('output out of proportion to the messages is refused', () => {
  const { error } = failure('{{ "a\nb" | indent(50000000) }}');
  assert.match(error.message, /its output is 50000003 characters, more than the \d+ allowed for these messages/);
  // Long conversations render whole: the bound grows with the messages.
  const long = [{ role: 'user' as const, content: 'x'.repeat(3 << 20) }];
  assert.equal(renderChatTemplate(ECHO, long).length, (3 << 20) + '<user>'.length);
});

test('templates reach no JavaScript globals, prototypes or functions', () => {
  const probes = [
    '{{ messages.constructor }}', '{{ messages.__proto__ }}', '{{ "".constructor }}', '{{ process }}', '{{ globalThis }}',
    '{{ require }}', '{{ this }}', '{{ messages[0].content.constructor }}',
    '{{ cycler.__init__.__globals__ }}', '{{ lipsum.__globals__ }}', '{{ self.__init__ }}', '{{ namespace.__call__ }}',
  ];
  for (const probe of probes) {
    let out = '';
    try {
      out = renderChatTemplate(probe, HI);
    } catch (e) {
      assert.ok(e instanceof ChatTemplateError, `${probe}: ${(e as Error).name}`);
      continue;
    }
    assert.doesNotMatch(out, /function|native code|\[object|process|env/i, `${probe} rendered ${JSON.stringify(out)}`);
  }
});

test('a template error says why: raise_exception\'s message, a parse error, a non-function call', () => {
  assert.match(failure('{{ raise_exception("Conversation roles must alternate") }}').error.message,
    /^chat template failed: Conversation roles must alternate$/);
  assert.match(failure('{% for %}').error.message, /^chat template does not parse: /);
  assert.match(failure('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}').error.message, /^chat template failed: /);
});

test('through the server: a model whose template does not finish is named, answered 400, and other models keep serving', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-template-limits-'));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await writeModels(models);
  await writeFile(path.join(models, 'tiny-gguf.jinja'), '{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}');
  const { server, url } = await startServer(models);
  try {
    const post = (route: string, body: unknown) => fetch(`${url}${route}`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    for (const [route, body] of [
      ['/v1/chat/completions', { model: 'tiny-gguf', messages: HI, max_tokens: 2 }],
      ['/api/chat', { model: 'tiny-gguf', messages: HI, stream: false }],
    ] as const) {
      const res = await post(route, body);
      const text = await res.text();
      assert.equal(res.status, 400, `${route}: ${text}`);
      assert.match(text, /model \\?"tiny-gguf\\?": chat template failed: rendering did not finish within/, route);
    }
    const ok = await post('/v1/chat/completions', { model: 'tiny', messages: HI, max_tokens: 2 });
    assert.equal(ok.status, 200, await ok.text());
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
