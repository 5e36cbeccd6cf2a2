// What the tokenizer fuzz targets do with a tokenizer that loaded: encode a few texts (ASCII,
// accents, an emoji, newlines, special-token text, a lone surrogate), check every id is in the
// vocabulary, decode them back, and ask each id's text and bytes.
import assert from 'node:assert/strict';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

export const TEXTS = ['hello ab', ' a\n\nb!', 'é ✓ 🙂', '<s>he</s><|im_end|>', '', '\uD800x', 'hellohellohello  '];

export function encodeDecodeSome(tok: Tokenizer): void {
  assert.ok(tok.vocabSize > 0);
  for (const text of TEXTS) {
    for (const addSpecial of [true, false]) {
      const ids = tok.encode(text, { addSpecial });
      for (const id of ids) assert.ok(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `id ${id} of "${text}" is outside the vocabulary`);
      assert.equal(typeof tok.decode(ids), 'string');
      assert.equal(typeof tok.decode(ids, { skipSpecial: false }), 'string');
      for (const id of ids) {
        assert.equal(typeof tok.tokenText(id), 'string');
        const bytes = tok.tokenBytes(id);
        assert.ok(bytes === undefined || bytes instanceof Uint8Array);
      }
    }
  }
  for (const id of [0, tok.vocabSize - 1]) tok.tokenBytes(id);
}
