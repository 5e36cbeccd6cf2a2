// The one weight-provider interface every model file format offers (SafeTensors single or sharded,
// GGUF, llama2.c). The model loader sees only this.
import type { DType } from '../quant/dtype.js';

export interface TensorInfo {
  /** Name as stored in the file (HF name for SafeTensors, GGUF name for GGUF). */
  readonly name: string;
  readonly dtype: DType;
  /**
   * Shape, outermost dimension first (PyTorch / SafeTensors order): a weight matrix of a linear
   * layer mapping k inputs to n outputs is [n, k]. GGUF stores dims innermost first; its reader
   * reverses them so every format reports the same order.
   */
  readonly shape: readonly number[];
  /** Exact byte length of the tensor's data in the file. */
  readonly byteLength: number;
}

export interface WeightProvider {
  /** The file or folder this provider reads, for error messages. */
  readonly source: string;
  /** Every tensor the file holds, by stored name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /**
   * Reads one tensor's bytes from disk (a fresh, 8-byte aligned buffer of exactly byteLength bytes,
   * or a view of the start of `into` when given). Nothing is read before this is called.
   */
  read(name: string, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases file handles. */
  close(): Promise<void>;
}

/**
 * A tensor's bytes for a writer: given, or produced when the writer reaches the tensor (so a file
 * larger than memory can be written one tensor at a time; a producer may read its source file,
 * hence the promise). `byteLength` must be what `bytes()` returns; the writers check.
 */
export type TensorBytes = Uint8Array | { readonly byteLength: number; bytes(): Uint8Array | Promise<Uint8Array> };

/** The bytes of `data`, produced now if lazy; `what` names the tensor if the length is wrong. */
export async function materialize(data: TensorBytes, what: string): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  const bytes = await data.bytes();
  if (bytes.length !== data.byteLength) throw new Error(`${what}: produced ${bytes.length} bytes, promised ${data.byteLength}`);
  return bytes;
}

/** Number of elements of a shape. */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** An error in an input file: the message names the file and what is wrong with it. */
export class FormatError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'FormatError';
  }
}
