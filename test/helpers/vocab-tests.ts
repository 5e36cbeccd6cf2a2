// Checks a tokenizer against llama.cpp's vocab tests (read with readVocabTests from fixtures.ts).
import assert from 'node:assert/strict';
import { IncrementalDecoder, type Tokenizer } from '../../src/tokenizer/index.js';

/**
 * Every case encodes (no BOS) to llama.cpp's ids, and the whole run takes under a second. With
 * roundTrip, each encoding also decodes back to its text, whole and streamed token by token
 * without a broken character on the way.
 */
export function assertVocabTests(tok: Tokenizer, cases: { text: string; ids: number[] }[], { roundTrip = false } = {}): void {
  assert.equal(cases.length, 46);
  const t0 = performance.now();
  for (const { text, ids } of cases) {
    const got = tok.encode(text, { addSpecial: false });
    assert.deepEqual(got, ids, JSON.stringify(text));
    if (!roundTrip) continue;
    assert.equal(tok.decode(got), text, `round trip of ${JSON.stringify(text)}`);
    const stream = new IncrementalDecoder(tok);
    const chunks = got.map((id) => stream.push(id));
    chunks.push(stream.flush());
    assert.equal(chunks.join(''), text, `streamed ${JSON.stringify(text)}`);
    assert.ok(chunks.every((c) => !c.includes('\uFFFD')), `no broken character streaming ${JSON.stringify(text)}`);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `${roundTrip ? 'the vocab tests' : 'encoding the vocab tests'} took ${ms.toFixed(0)} ms`);
}
