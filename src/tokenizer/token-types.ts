// Token kinds as GGUF stores them in tokenizer.ggml.token_type (llama.cpp's llama_token_type).

export const TokenType = {
  undefined: 0,
  normal: 1,
  unknown: 2,
  /** BOS, EOS, chat markers: never produced from plain text by the model's merges. */
  control: 3,
  /** Pieces matched whole in the input text before tokenization. */
  userDefined: 4,
  unused: 5,
  /** <0xXX> byte-fallback pieces. */
  byte: 6,
} as const;

export type TokenTypeCode = (typeof TokenType)[keyof typeof TokenType];

const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;

/** Whether a piece is a SentencePiece byte-fallback piece such as "<0x0A>". */
export function isBytePiece(piece: string): boolean {
  return BYTE_PIECE.test(piece);
}
