// llama2.c checkpoints (karpathy/llama2.c: run.c reads them, export.py writes them).
//
// Legacy v0 (legacy_export; what run.c reads): 7 int32 — dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size (negative: the classifier is not shared with the embedding), seq_len —
// then f32 arrays, matrices [out, in] row-major, each per-layer kind for all layers in a row:
//   token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
//   wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
//   w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
//   freq_cis_real [seq_len, head_size/2], freq_cis_imag [seq_len, head_size/2] (unused: RoPE is
//   recomputed), then wcls [vocab, dim] when not shared.
// Version 1 (version1_export): u32 magic 0x616b3432 ("ak42"), int32 version = 1, the same 7
// int32 (vocab_size positive), a uint8 shared-classifier flag, zeros up to 256 bytes; then f32:
//   rms_att [L, dim], rms_ffn [L, dim], rms_final [dim], token_embedding [vocab, dim], wq, wk,
//   wv, wo, w1, w2, w3 (shapes as above), then wcls [vocab, dim] when not shared. No freq_cis.
// Version 2 (int8 groups) is refused.
//
// The file size must be exactly what the header implies: run.c would silently read garbage
// from a short file, and extra bytes mean the header (e.g. the shared-classifier flag) is wrong.
// Tensors are exposed under GGUF names, read lazily with a file handle kept open until close().
import type { FileHandle } from 'node:fs/promises';
import { FormatError, type TensorInfo, type WeightProvider } from './tensor.js';
import { openForReading, readAt } from './file-io.js';

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  vocabSize: number;
  seqLen: number;
  /** The output classifier is the token embedding (no output.weight). */
  sharedClassifier: boolean;
  /** 0 for the legacy header-less export, 1 for "ak42" version 1. */
  version: 0 | 1;
}

/** "ak42" read as a little-endian uint32. */
export const LLAMA2C_MAGIC = 0x616b3432;
const V0_HEADER_BYTES = 28;
const V1_HEADER_BYTES = 256;

// Generous upper bounds on header values: they only stop nonsense before the size check, and
// keep every size product below 2^53.
const CAPS = {
  dim: 1 << 16, hiddenDim: 1 << 20, nLayers: 1 << 10, nHeads: 1 << 12, nKVHeads: 1 << 12,
  vocabSize: 1 << 24, seqLen: 1 << 22,
} as const;

/** One f32 array of the file, in file order. */
interface Segment {
  /** GGUF name; with "{i}" for per-layer kinds. Absent for arrays nobody reads (freq_cis). */
  name?: string;
  /** Shape of one tensor (one layer's, for per-layer kinds), outermost first. */
  shape: number[];
  perLayer: boolean;
}

/** The arrays of a checkpoint in file order. */
function segments(c: Llama2cConfig): Segment[] {
  const { dim, hiddenDim: hidden, vocabSize: vocab } = c;
  const kvDim = (dim / c.nHeads) * c.nKVHeads;
  const headSize = dim / c.nHeads;
  const layer = (name: string, shape: number[]): Segment => ({ name: `blk.{i}.${name}.weight`, shape, perLayer: true });
  const one = (name: string | undefined, shape: number[]): Segment => ({ name, shape, perLayer: false });
  const embedding = one('token_embd.weight', [vocab, dim]);
  const attnNorm = layer('attn_norm', [dim]);
  const ffnNorm = layer('ffn_norm', [dim]);
  const outputNorm = one('output_norm.weight', [dim]);
  const matrices = [
    layer('attn_q', [dim, dim]), layer('attn_k', [kvDim, dim]), layer('attn_v', [kvDim, dim]),
    layer('attn_output', [dim, dim]),
  ];
  const ffn = [layer('ffn_gate', [hidden, dim]), layer('ffn_down', [dim, hidden]), layer('ffn_up', [hidden, dim])];
  const classifier = c.sharedClassifier ? [] : [one('output.weight', [vocab, dim])];
  if (c.version === 0) {
    return [
      embedding, attnNorm, ...matrices, ffnNorm, ...ffn, outputNorm,
      one(undefined, [c.seqLen, headSize / 2]), one(undefined, [c.seqLen, headSize / 2]), // freq_cis real, imag
      ...classifier,
    ];
  }
  return [attnNorm, ffnNorm, outputNorm, embedding, ...matrices, ...ffn, ...classifier];
}

/** Opens a llama2.c checkpoint: reads and checks its header, reads no weights. */
export async function openLlama2c(file: string): Promise<{ config: Llama2cConfig; provider: WeightProvider }> {
  const { handle, size: fileSize } = await openForReading(file);
  try {
    const head = await readAt(handle, file, 0, Math.min(fileSize, V1_HEADER_BYTES));
    const { config, headerBytes } = parseHeader(file, head, fileSize);

    const tensors = new Map<string, TensorInfo>();
    const offsets = new Map<string, number>();
    let offset = headerBytes;
    for (const s of segments(config)) {
      const byteLength = s.shape.reduce((a, b) => a * b, 1) * 4;
      const copies = s.perLayer ? config.nLayers : 1;
      for (let i = 0; i < copies; i++) {
        if (s.name !== undefined) {
          const name = s.name.replace('{i}', String(i));
          tensors.set(name, { name, dtype: 'F32', shape: s.shape, byteLength });
          offsets.set(name, offset);
        }
        offset += byteLength;
      }
    }
    if (offset !== fileSize) {
      throw new FormatError(file,
        `the header (${describeConfig(config)}) implies a file of ${offset} bytes, but it has ${fileSize}` +
        (fileSize < offset ? ' (truncated?)' : ' (trailing data, or a wrong shared-classifier flag)'));
    }
    return { config, provider: new Llama2cProvider(file, handle, tensors, offsets) };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** Reads the header; `head` holds the first min(fileSize, 256) bytes. */
function parseHeader(file: string, head: Uint8Array, fileSize: number): { config: Llama2cConfig; headerBytes: number } {
  if (fileSize < V0_HEADER_BYTES) {
    throw new FormatError(file, `file is ${fileSize} bytes, too short for a llama2.c header (${V0_HEADER_BYTES} bytes)`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.length);
  const int = (at: number) => view.getInt32(at, true);
  let version: 0 | 1;
  let paramsAt: number;
  let headerBytes: number;
  let shared: boolean | undefined;
  if (view.getUint32(0, true) === LLAMA2C_MAGIC) {
    if (fileSize < V1_HEADER_BYTES) {
      throw new FormatError(file, `file is ${fileSize} bytes, too short for a llama2.c version 1 header (${V1_HEADER_BYTES} bytes)`);
    }
    const v = int(4);
    if (v === 2) {
      throw new FormatError(file,
        'llama2.c version 2 checkpoints (int8 group-quantized) are not supported: export the model with version 1 (fp32) or the legacy format');
    }
    if (v !== 1) throw new FormatError(file, `unknown llama2.c checkpoint version ${v} (supported: legacy and 1)`);
    version = 1;
    paramsAt = 8;
    headerBytes = V1_HEADER_BYTES;
    const flag = view.getUint8(36);
    if (flag > 1) throw new FormatError(file, `shared-classifier flag is ${flag}, expected 0 or 1`);
    shared = flag === 1;
  } else {
    version = 0;
    paramsAt = 0;
    headerBytes = V0_HEADER_BYTES;
  }
  const raw = {
    dim: int(paramsAt), hiddenDim: int(paramsAt + 4), nLayers: int(paramsAt + 8), nHeads: int(paramsAt + 12),
    nKVHeads: int(paramsAt + 16), vocabSize: int(paramsAt + 20), seqLen: int(paramsAt + 24),
  };
  if (version === 0) {
    // Legacy: the sign of vocab_size is the shared-classifier flag.
    shared = raw.vocabSize > 0;
    raw.vocabSize = Math.abs(raw.vocabSize);
  }
  for (const key of Object.keys(CAPS) as (keyof typeof CAPS)[]) {
    const v = raw[key];
    if (v <= 0 || v > CAPS[key]) {
      throw new FormatError(file,
        `header value ${key} = ${v} is not in 1..${CAPS[key]}: not a llama2.c checkpoint, or a corrupt one`);
    }
  }
  if (raw.dim % raw.nHeads !== 0) throw new FormatError(file, `dim ${raw.dim} is not a multiple of n_heads ${raw.nHeads}`);
  if (raw.nHeads % raw.nKVHeads !== 0) {
    throw new FormatError(file, `n_heads ${raw.nHeads} is not a multiple of n_kv_heads ${raw.nKVHeads}`);
  }
  if ((raw.dim / raw.nHeads) % 2 !== 0) {
    throw new FormatError(file, `head size ${raw.dim / raw.nHeads} is odd: RoPE rotates pairs of dimensions`);
  }
  return { config: { ...raw, sharedClassifier: shared!, version }, headerBytes };
}

function describeConfig(c: Llama2cConfig): string {
  return `v${c.version}, dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads, ` +
    `${c.nKVHeads} kv heads, vocab ${c.vocabSize}, seq_len ${c.seqLen}, ${c.sharedClassifier ? 'shared' : 'separate'} classifier`;
}

class Llama2cProvider implements WeightProvider {
  private closed = false;
  constructor(
    readonly source: string,
    private readonly handle: FileHandle,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** Absolute file offset of each tensor. */
    private readonly offsets: ReadonlyMap<string, number>,
  ) {}

  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new Error(`${this.source}: read("${name}") after close()`);
    const info = this.tensors.get(name);
    if (!info) throw new FormatError(this.source, `no tensor named "${name}"`);
    return readAt(this.handle, this.source, this.offsets.get(name)!, info.byteLength, name, into);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}


