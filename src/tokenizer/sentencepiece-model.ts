// SentencePiece's tokenizer.model: a protobuf ModelProto (sentencepiece_model.proto). Only what a
// GGUF "llama" vocabulary needs is read:
//   ModelProto     1: repeated SentencePiece pieces, 2: TrainerSpec, 3: NormalizerSpec
//   SentencePiece  1: string piece, 2: float score (default 0), 3: Type type (default NORMAL = 1;
//                  UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6 — GGUF's token types)
//   TrainerSpec    3: ModelType model_type (UNIGRAM 1 = default, BPE 2, WORD 3, CHAR 4),
//                  35: bool byte_fallback
//   NormalizerSpec 3: bool add_dummy_prefix (default true)
// Every other field is skipped by its wire type. Protobuf wire format: each field is a varint key
// (field number << 3 | wire type), then a varint (0), 8 bytes (1), a varint length and that many
// bytes (2), or 4 bytes (5); little-endian throughout.
import { FormatError } from '../formats/tensor.js';

export interface SentencePieceModel {
  pieces: string[];
  scores: Float32Array;
  /** GGUF token types (the enums agree). */
  types: Int32Array;
  /** 1 unigram, 2 BPE, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
  addDummyPrefix: boolean;
}

// ignoreBOM: a piece that is U+FEFF (Llama 2 has one) must not lose it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A cursor over one protobuf message; every read is bounds-checked against the message's end. */
class Reader {
  constructor(
    private readonly bytes: Uint8Array, private at: number, private readonly end: number,
    private readonly file: string, private readonly what: string,
  ) {}

  private fail(problem: string): never {
    throw new FormatError(this.file, `not a SentencePiece model: ${this.what} ${problem} at byte ${this.at}`);
  }

  done(): boolean {
    return this.at >= this.end;
  }

  /** A varint as a number (exact up to 2^53; larger values are only ever skipped). */
  varint(): number {
    let value = 0, scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) this.fail('ends inside a varint');
      const b = this.bytes[this.at++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    return this.fail('has a varint longer than 10 bytes');
  }

  /** The next field's number and wire type. */
  key(): { field: number; wire: number } {
    const k = this.varint();
    return { field: Math.floor(k / 8), wire: k % 8 };
  }

  /** A length-delimited field's bytes, as a reader of their own. */
  sub(what: string): Reader {
    const length = this.varint();
    if (this.at + length > this.end) this.fail(`has a field of ${length} bytes running past its end`);
    const r = new Reader(this.bytes, this.at, this.at + length, this.file, what);
    this.at += length;
    return r;
  }

  string(): string {
    const r = this.sub(this.what);
    try {
      return utf8.decode(this.bytes.subarray(r.at, r.end));
    } catch {
      return this.fail('has a string that is not valid UTF-8');
    }
  }

  float(): number {
    if (this.at + 4 > this.end) this.fail('ends inside a float');
    const v = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.at, 4).getFloat32(0, true);
    this.at += 4;
    return v;
  }

  skip(wire: number): void {
    switch (wire) {
      case 0: this.varint(); return;
      case 1: this.at += 8; break;
      case 2: this.sub(this.what); return;
      case 5: this.at += 4; break;
      default: this.fail(`has wire type ${wire}, which no SentencePiece field uses`);
    }
    if (this.at > this.end) this.fail('ends inside a field');
  }
}

/** Parses tokenizer.model bytes; `file` names it in errors. */
export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const pieces: string[] = [], scores: number[] = [], types: number[] = [];
  let modelType = 1, byteFallback = false, addDummyPrefix = true;
  const top = new Reader(bytes, 0, bytes.length, file, 'ModelProto');
  while (!top.done()) {
    const { field, wire } = top.key();
    if (field === 1 && wire === 2) {
      const p = top.sub(`piece ${pieces.length}`);
      let piece: string | undefined, score = 0, type = 1;
      while (!p.done()) {
        const k = p.key();
        if (k.field === 1 && k.wire === 2) piece = p.string();
        else if (k.field === 2 && k.wire === 5) score = p.float();
        else if (k.field === 3 && k.wire === 0) type = p.varint();
        else p.skip(k.wire);
      }
      if (piece === undefined) throw new FormatError(file, `not a SentencePiece model: piece ${pieces.length} has no text`);
      if (!Number.isFinite(score)) throw new FormatError(file, `piece ${pieces.length} ("${piece}") has score ${score}`);
      if (type < 1 || type > 6) throw new FormatError(file, `piece ${pieces.length} ("${piece}") has unknown type ${type}`);
      pieces.push(piece);
      scores.push(score);
      types.push(type);
    } else if (field === 2 && wire === 2) {
      const t = top.sub('TrainerSpec');
      while (!t.done()) {
        const k = t.key();
        if (k.field === 3 && k.wire === 0) modelType = t.varint();
        else if (k.field === 35 && k.wire === 0) byteFallback = t.varint() !== 0;
        else t.skip(k.wire);
      }
    } else if (field === 3 && wire === 2) {
      const n = top.sub('NormalizerSpec');
      while (!n.done()) {
        const k = n.key();
        if (k.field === 3 && k.wire === 0) addDummyPrefix = n.varint() !== 0;
        else n.skip(k.wire);
      }
    } else {
      top.skip(wire);
    }
  }
  if (pieces.length === 0) throw new FormatError(file, 'not a SentencePiece model: it has no pieces');
  return { pieces, scores: Float32Array.from(scores), types: Int32Array.from(types), modelType, byteFallback, addDummyPrefix };
}
