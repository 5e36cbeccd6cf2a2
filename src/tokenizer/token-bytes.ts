// The bytes a token adds to the output text, read from its vocabulary entry the way the
// tokenizer.json decoder would turn it into text — for constrained decoding, which must know what
// each token writes before choosing it. decode() cannot answer this: a byte token such as <0xE2>
// is only a third of a character and decodes to U+FFFD on its own.
//
// Two decoder families cover the models Minerva reads:
// - byte-level BPE (GPT-2, Llama 3, Qwen): every byte is one printable character of GPT-2's
//   byte-to-unicode table ("Ġ" is the space byte);
// - SentencePiece-style (Llama 2, Mistral, llama2.c): "▁" stands for a space (Replace or Metaspace
//   decoders) and <0xNN> pieces are single bytes (ByteFallback).
// A leading-space Strip applies to the start of the whole text only; generated text is decoded
// after the prompt, so it keeps its spaces, and so does this table.

/** GPT-2's table, inverted: code point of a byte-level character → the byte it stands for. */
function byteLevelDecodeTable(): Map<number, number> {
  const table = new Map<number, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.set(printable ? b : 256 + extra++, b);
  }
  return table;
}

interface DecoderStep {
  type?: string;
  decoders?: DecoderStep[];
  pattern?: { String?: string };
  content?: string;
  replacement?: string;
}

/** The decoder's steps in order, Sequence decoders flattened. */
function steps(decoder: unknown): DecoderStep[] {
  if (typeof decoder !== 'object' || decoder === null) return [];
  const d = decoder as DecoderStep;
  if (d.type === 'Sequence' && Array.isArray(d.decoders)) return d.decoders.flatMap(steps);
  return [d];
}

/**
 * A function from vocabulary entry to its bytes, for a tokenizer.json `decoder`; undefined when
 * the decoder is of a kind this module does not know (callers then cannot constrain output).
 */
export function pieceBytesDecoder(decoder: unknown): ((piece: string) => Uint8Array) | undefined {
  const list = steps(decoder);
  if (list.some((s) => s.type === 'ByteLevel')) {
    const table = byteLevelDecodeTable();
    return (piece) => {
      const out: number[] = [];
      for (const ch of piece) {
        const b = table.get(ch.codePointAt(0)!);
        // A character outside the table (an added token's plain text) stands for itself.
        if (b === undefined) out.push(...Buffer.from(ch, 'utf8'));
        else out.push(b);
      }
      return Uint8Array.from(out);
    };
  }
  const replacements: [string, string][] = [];
  let byteFallback = false;
  for (const s of list) {
    if (s.type === 'Replace' && typeof s.pattern?.String === 'string' && typeof s.content === 'string') {
      replacements.push([s.pattern.String, s.content]);
    } else if (s.type === 'Metaspace') {
      replacements.push([s.replacement ?? '\u2581', ' ']);
    } else if (s.type === 'ByteFallback') {
      byteFallback = true;
    } else if (s.type !== 'Fuse' && s.type !== 'Strip') {
      return undefined;
    }
  }
  return (piece) => {
    if (byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(piece)) return Uint8Array.of(parseInt(piece.slice(3, 5), 16));
    let text = piece;
    for (const [from, to] of replacements) text = text.replaceAll(from, to);
    return new Uint8Array(Buffer.from(text, 'utf8'));
  };
}
