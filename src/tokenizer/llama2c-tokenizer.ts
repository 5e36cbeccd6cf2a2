// A Tokenizer from a llama2.c tokenizer.bin (karpathy/llama2.c, run.c build_tokenizer):
//   int32 max_token_length
//   vocabSize × { f32 score, int32 byte length, UTF-8 bytes }      (little-endian)
// It is a SentencePiece BPE vocabulary with spaces stored as " " (not "▁"), byte-fallback pieces
// "<0xXX>", BOS = 1 and EOS = 2 (whose pieces some files store as "\n<s>\n" / "\n</s>\n").
// llama2.c's encode() adds a dummy prefix space; so does the SentencePiece model behind it.
import { readFile } from 'node:fs/promises';
import { FormatError } from '../formats/tensor.js';
import { HFTokenizer } from './hf-tokenizer.js';
import { SPM_SPACE, spmTokenizerJSON } from './spm-json.js';
import { TokenType, isBytePiece } from './token-types.js';
import type { Tokenizer } from './tokenizer.js';

const UNK_ID = 0;
const BOS_ID = 1;
const EOS_ID = 2;

export interface Llama2cVocab {
  /** Pieces by id exactly as stored (spaces as " "). */
  readonly pieces: string[];
  readonly scores: Float32Array;
  readonly maxTokenLength: number;
}

/**
 * Parses tokenizer.bin bytes. With vocabSize the file must hold exactly that many tokens; without
 * it, tokens are read to the end of the file.
 */
export function parseLlama2cVocab(bytes: Uint8Array, file: string, vocabSize?: number): Llama2cVocab {
  if (vocabSize !== undefined && (!Number.isInteger(vocabSize) || vocabSize <= 0)) {
    throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new FormatError(file, `${bytes.byteLength} bytes is too short for a llama2.c tokenizer`);
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0) throw new FormatError(file, `max_token_length is ${maxTokenLength}; not a llama2.c tokenizer`);

  // ignoreBOM: Llama 2's piece 30143 is U+FEFF itself, which a default decoder would drop.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const pieces: string[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (vocabSize === undefined ? offset < bytes.byteLength : pieces.length < vocabSize) {
    const id = pieces.length;
    if (offset + 8 > bytes.byteLength) {
      throw new FormatError(file, `ends inside the header of token ${id} at byte ${offset}` +
        (vocabSize !== undefined ? ` (expected ${vocabSize} tokens)` : ''));
    }
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (!Number.isFinite(score)) throw new FormatError(file, `token ${id} has score ${score}`);
    if (length < 0 || length > maxTokenLength) {
      throw new FormatError(file, `token ${id} has length ${length} (max_token_length is ${maxTokenLength})`);
    }
    if (offset + length > bytes.byteLength) {
      throw new FormatError(file, `token ${id} (${length} bytes at byte ${offset}) runs past the end of the file (${bytes.byteLength} bytes)`);
    }
    let piece: string;
    try {
      piece = utf8.decode(bytes.subarray(offset, offset + length));
    } catch {
      throw new FormatError(file, `token ${id} is not valid UTF-8`);
    }
    offset += length;
    pieces.push(piece);
    scores.push(score);
  }
  if (offset !== bytes.byteLength) {
    throw new FormatError(file, `${bytes.byteLength - offset} bytes follow the ${pieces.length} tokens the model's vocabulary has`);
  }
  if (pieces.length <= EOS_ID) throw new FormatError(file, `has only ${pieces.length} tokens (BOS is 1, EOS is 2)`);
  return { pieces, scores: Float32Array.from(scores), maxTokenLength };
}

/** The Tokenizer for a parsed llama2.c vocabulary; `source` names the file in messages. */
export function tokenizerFromLlama2cVocab(vocab: Llama2cVocab, source: string): Tokenizer {
  const pieces = vocab.pieces.map((piece, id) => {
    // "\n<s>\n" → "<s>": the padding newlines are not part of the token.
    if (id === UNK_ID || id === BOS_ID || id === EOS_ID) return piece.trim();
    return piece.replaceAll(' ', SPM_SPACE);
  });
  const types = Int32Array.from(pieces, (piece, id) => {
    if (id === UNK_ID) return TokenType.unknown;
    if (id === BOS_ID || id === EOS_ID) return TokenType.control;
    return isBytePiece(piece) ? TokenType.byte : TokenType.normal;
  });
  const json = spmTokenizerJSON({ pieces, scores: vocab.scores, types, unkId: UNK_ID, addSpacePrefix: true });
  return new HFTokenizer({
    json, source, kind: 'llama2c', bosId: BOS_ID,
    // llama2.c models are trained on stories delimited by BOS, and run.c stops when BOS comes out.
    eosIds: [EOS_ID, BOS_ID], addBos: true, addEos: false, pieces,
  });
}

export async function loadLlama2cTokenizer(path: string, vocabSize?: number): Promise<Tokenizer> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FormatError(path, `cannot read the tokenizer: ${(e as Error).message}`);
  }
  return tokenizerFromLlama2cVocab(parseLlama2cVocab(bytes, path, vocabSize), path);
}
