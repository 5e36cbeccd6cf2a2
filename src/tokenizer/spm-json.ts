// A SentencePiece-BPE vocabulary (pieces + scores, as GGUF "llama" and llama2.c store it) turned
// into an equivalent tokenizer.json document, the way transformers converts Llama's
// tokenizer.model: a BPE model with byte fallback whose merges are derived from the scores.
//
// Why merges reproduce SentencePiece / llama.cpp: llm_tokenizer_spm starts from single characters
// and repeatedly joins the adjacent pair whose concatenation is in the vocabulary with the highest
// score. A BPE merge list with one entry per (left, right) split of every piece, ranked by the
// joined piece's score, makes the library pick the same pair at every step.
import type { AddedTokenJSON, TokenizerJSON } from './hf-tokenizer.js';
import { TokenType } from './token-types.js';

/** SentencePiece's visible space. */
export const SPM_SPACE = '\u2581';

export interface SpmVocab {
  /** Pieces by id, spaces written as "▁" (U+2581). */
  readonly pieces: readonly string[];
  /** Score per id (higher merges first). */
  readonly scores: ArrayLike<number>;
  /** TokenType per id. */
  readonly types: ArrayLike<number>;
  readonly unkId: number | undefined;
  /** Prepend "▁" to the text (SentencePiece's add_dummy_prefix). */
  readonly addSpacePrefix: boolean;
}

/** Pieces the merges may produce: what SentencePiece's BPE itself can emit. */
function isMergeable(type: number): boolean {
  return type === TokenType.normal || type === TokenType.undefined;
}

/**
 * Every (left, right) split of every mergeable piece whose halves can occur as symbols, best first.
 * A half can occur if it is itself a mergeable piece or a single character (the starting symbols).
 */
export function deriveSpmMerges(vocab: SpmVocab): [string, string][] {
  const { pieces, scores, types } = vocab;
  const mergeable = new Set<string>();
  for (let id = 0; id < pieces.length; id++) if (isMergeable(types[id])) mergeable.add(pieces[id]);

  const isSymbol = (s: string): boolean => {
    if (mergeable.has(s)) return true;
    const cp = s.codePointAt(0);
    return cp !== undefined && s.length === (cp > 0xffff ? 2 : 1);
  };

  interface Merge { left: string; right: string; score: number; id: number }
  const merges: Merge[] = [];
  const seen = new Set<string>();
  for (let id = 0; id < pieces.length; id++) {
    if (!isMergeable(types[id])) continue;
    const piece = pieces[id];
    // A duplicated piece keeps the merges of its first id only.
    if (seen.has(piece)) continue;
    seen.add(piece);
    // Split points at code-point boundaries (a UTF-16 index that is not inside a surrogate pair).
    for (let cut = 1; cut < piece.length; cut++) {
      const unit = piece.charCodeAt(cut);
      if (unit >= 0xdc00 && unit <= 0xdfff) continue;
      const left = piece.slice(0, cut);
      const right = piece.slice(cut);
      if (isSymbol(left) && isSymbol(right)) merges.push({ left, right, score: scores[id], id });
    }
  }
  // Highest score first, as llama.cpp's bigram queue; equal scores keep vocabulary order.
  merges.sort((a, b) => b.score - a.score || a.id - b.id);
  return merges.map((m) => [m.left, m.right]);
}

/**
 * Whether no mergeable piece has a "▁" after another character ("a▁", "▁a▁b"). Then no merge can
 * join across the start of a run of "▁", the text splits into words there, and each word merges
 * on its own with the same result — a large speed-up for long texts (short merge queues, and the
 * library caches words), while llama.cpp's whole-text result is unchanged.
 */
function splitsAtSpaces(vocab: SpmVocab): boolean {
  const spaceAfterOther = new RegExp(`[^${SPM_SPACE}]${SPM_SPACE}`);
  for (let id = 0; id < vocab.pieces.length; id++) {
    if (isMergeable(vocab.types[id]) && spaceAfterOther.test(vocab.pieces[id])) return false;
  }
  return true;
}

export function spmTokenizerJSON(vocab: SpmVocab): TokenizerJSON {
  const { pieces, types } = vocab;
  const vocabObject: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: AddedTokenJSON[] = [];
  for (let id = 0; id < pieces.length; id++) {
    const piece = pieces[id];
    // Later duplicates win, as in llama.cpp's token_to_id.
    vocabObject[piece] = id;
    const type = types[id];
    if (type === TokenType.control || type === TokenType.unknown) {
      added.push({ id, content: piece, special: true, normalized: false });
    } else if (type === TokenType.userDefined) {
      // Matched in the raw text, where spaces are still spaces.
      added.push({ id, content: piece.replaceAll(SPM_SPACE, ' '), special: false, normalized: false });
    }
  }
  const spaceToMeta = { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE };
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: vocab.addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPM_SPACE }, spaceToMeta] }
      : spaceToMeta,
    // Words: a run of "▁" with the characters up to the next "▁", or leading non-"▁" characters.
    pre_tokenizer: splitsAtSpaces(vocab)
      ? { type: 'Split', pattern: { Regex: `${SPM_SPACE}+[^${SPM_SPACE}]*|[^${SPM_SPACE}]+` }, behavior: 'Isolated', invert: false }
      : null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        // Undo the dummy prefix: one leading space of the whole text.
        ...(vocab.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab.unkId !== undefined ? pieces[vocab.unkId] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject,
      merges: deriveSpmMerges(vocab),
    },
  };
}
