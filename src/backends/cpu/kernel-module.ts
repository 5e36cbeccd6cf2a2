// Loads the WebAssembly SIMD kernels built from src/backends/cpu/kernels/ (by `npm run
// build:kernels`) into a shared linear memory, so several workers can run them over the same
// weights. This is the first piece of the cpu backend (issue: fast CPU backend); the backend and
// its worker pool build on it.
import { readFile } from 'node:fs/promises';

/** Byte offsets into the kernel memory; k = row length; rows [r0, r1). */
export interface MatvecKernels {
  /** out[r] = w[r, :] · x for an f32 matrix. */
  matvecF32(w: number, x: number, out: number, k: number, r0: number, r1: number): void;
  /** Same for an f16 matrix (k a multiple of 8); x laid out by permuteX. */
  matvecF16(w: number, xp: number, out: number, k: number, r0: number, r1: number): void;
  /** matvecF16, bit-identical and faster, for x laid out by permuteX with scale 2^112 (|x| < 2^16, no inf/NaN weights). */
  matvecF16Scaled(w: number, xs: number, out: number, k: number, r0: number, r1: number): void;
  /** Same for a bf16 matrix (k a multiple of 8); x laid out by permuteX. */
  matvecBF16(w: number, xp: number, out: number, k: number, r0: number, r1: number): void;
  /** xp = x permuted per 8 ([x0 x2 x4 x6 x1 x3 x5 x7]) times scale; returns max |x| (count a multiple of 8). */
  permuteX(x: number, xp: number, count: number, scale: number): number;
  /** How many of count f16 values are inf or NaN (low 32 bits) and how many subnormal (high 32 bits). */
  countF16Kinds(w: number, count: number): bigint;
  /** Moves the subnormals of an f16 matrix [n, k] to sparse rows (rowStart [n+1] i32, entries [nnz] of (col i32, value f32)), zeroing them. */
  splitF16Subnormals(w: number, n: number, k: number, rowStart: number, entries: number): void;
  /** out[t, r] += Σ value·x[t, col] over the sparse entries of rows [r0, r1). */
  addSparseRows(rowStart: number, entries: number, x: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  /** Quantizes rows [r0, r1) of x [rows, k] to 8-bit blocks of 32, stored as int16 (x16 [rows, k], xd [rows, k/32] f32 scales). */
  quantizeRowsQ8(x: number, x16: number, xd: number, k: number, r0: number, r1: number): void;
  /** Same as matvecF32 for a Q8_0 matrix, with x quantized by quantizeRowsQ8. */
  matvecQ8_0(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  /** Same for a Q4_0 matrix. */
  matvecQ4_0(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  /** xt [rows, k/32] = xd · Σ of each x16 block: what Q4_K's mins multiply (kquants.ts). */
  blockSumsQ8(x16: number, xd: number, xt: number, k: number, r0: number, r1: number): void;
  /** Same for Q4_K (with xt from blockSumsQ8) and Q6_K matrices (k a multiple of 256; kquants.ts). */
  matvecQ4_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, r0: number, r1: number): void;
  matvecQ6_K(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  // Several tokens: x [nTok, k] (or x16 [nTok, k] int16, xd [nTok, k/32]) → out [nTok, n], rows [r0, r1).
  matmulF32(w: number, x: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulF16(w: number, xp: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulF16Scaled(w: number, xs: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulBF16(w: number, xp: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ8_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ4_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ4_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ6_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  // Matrix-matrix (gemm.ts): weight tiles unpacked into the thread's scratch, then reused by every
  // token; bit-identical to the matvec kernels of the same dtype.
  /** Where the module's static data ends: the memory below belongs to the kernels. */
  staticDataEnd(): number;
  /** Thread `index` takes [base + index·stride, +stride) as its scratch (set once per thread). */
  setScratch(base: number, stride: number, index: number): void;
  gemmF32(w: number, x: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmF16(w: number, xp: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmBF16(w: number, xp: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ8_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ4_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ4_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ6_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  /** IQ4_XS (k a multiple of 256) and MXFP4 matrices, x as quantizeRowsQ8 leaves it (nonlinear.ts): matvec, several tokens through it, gemm. */
  matvecIQ4_XS(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  matmulIQ4_XS(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmIQ4_XS(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matvecMXFP4(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  matmulMXFP4(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmMXFP4(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  // Q5_K (xt from blockSumsQ8, as Q4_K), Q3_K and Q2_K (kquants-235.ts): matvec, several tokens, gemm.
  matvecQ5_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, r0: number, r1: number): void;
  matmulQ5_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ5_K(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matvecQ3_K(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  matmulQ3_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ3_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matvecQ2_K(w: number, x16: number, xd: number, out: number, k: number, r0: number, r1: number): void;
  matmulQ2_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ2_K(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  // Q4_1, Q5_1 (with xt from blockSumsQ8: their mins multiply it), Q5_0 and IQ4_NL (legacy.ts): matmul* per token, gemm* by unpacked tiles, bit-identical.
  matmulQ4_1(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ4_1(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ5_1(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ5_1(w: number, x16: number, xd: number, xt: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulQ5_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmQ5_0(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  matmulIQ4_NL(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  gemmIQ4_NL(w: number, x16: number, xd: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  /** Batched decode (batched.ts): F16 for a few tokens, each group of stored weights converted once for four tokens; bit-identical to matvecF16Scaled. */
  batchF16Scaled(w: number, xs: number, out: number, k: number, n: number, nTok: number, r0: number, r1: number): void;
  // Other ops (ops.ts).
  /** Causal attention for items [r0, r1) of nHeads × nTok; `params` points at an ATTENTION_PARAMS block. */
  attention(params: number, r0: number, r1: number): void;
  /** out[i] = silu(gate[i]) · up[i] for i in [r0, r1). */
  siluMul(gate: number, up: number, out: number, r0: number, r1: number): void;
  /** out[i] = gelu(gate[i]) · up[i] (tanh approximation) for i in [r0, r1). */
  geluMul(gate: number, up: number, out: number, r0: number, r1: number): void;
  /** x[i] = cap · tanh(x[i] / cap) in place for i in [r0, r1); cap as its f32 bits. */
  softcap(x: number, capBits: number, r0: number, r1: number): void;
  /** RMS norm of rows [r0, r1) of x [rows, cols] times w [cols]; eps as its f32 bits. */
  rmsNorm(x: number, w: number, out: number, cols: number, epsBits: number, r0: number, r1: number): void;
  /** out[i] = a[i] + b[i] for i in [r0, r1). */
  add(a: number, b: number, out: number, r0: number, r1: number): void;
  /** Rotary embedding in place for items [r0, r1) of nTok × nHeads, angles from cosSin [nTok, headDim/2, 2]. */
  rope(x: number, cosSin: number, cols: number, nHeads: number, headDim: number, dims: number, interleaved: number, r0: number, r1: number): void;
  /** partials[c] = Σ of chunk c's f32s for chunks [r0, r1) of chunkBytes (a multiple of 64) from src: read bandwidth (bandwidth.ts). */
  sumChunksF32(src: number, partials: number, chunkBytes: number, r0: number, r1: number): void;
  // Row ops (rows.ts).
  /**
   * out[i, :] = table[tokens[i], :] · scale for rows [r0, r1): a table [rows, dim] of dtype `kind`
   * (EMBED_DTYPES) dequantized exactly; tokens i32; scale an f64 as its bits (lo, hi).
   */
  embedRows(kind: number, table: number, tokens: number, out: number, dim: number, scaleLo: number, scaleHi: number, r0: number, r1: number): void;
  /** Puts an F16 table's subnormal values (splitF16Subnormals' sparse rows) back into the rows embedRows wrote, times scale. */
  embedSparse(rowStart: number, entries: number, tokens: number, out: number, dim: number, scaleLo: number, scaleHi: number, r0: number, r1: number): void;
  /** out[i, :] = x[rows[i], :] for i in [r0, r1), rows of `cols` f32. */
  gatherRows(x: number, rows: number, out: number, cols: number, r0: number, r1: number): void;
  /** Writes tokens [r0, r1) of k and v [nTok, kvDim] into keys and values [slots, ctxLen, kvDim] at (seqs[t], positions[t]). */
  storeKV(k: number, v: number, keys: number, values: number, positions: number, seqs: number, kvDim: number, ctxLen: number, r0: number, r1: number): void;
  /** Copies rows [r0, r1) of rowBytes bytes from src to dst (not overlapping). */
  copyRows(src: number, dst: number, rowBytes: number, r0: number, r1: number): void;
  /** out[r, :] += bias for rows [r0, r1) of out [rows, n]. */
  addBias(out: number, bias: number, n: number, r0: number, r1: number): void;
  /** sum = a + b, normed = rmsNorm(sum) · w for rows [r0, r1) of [rows, cols]; eps as its f32 bits; sum may alias a, normed b. */
  addRmsNorm(a: number, b: number, w: number, sum: number, normed: number, cols: number, epsBits: number, r0: number, r1: number): void;
}

/** The dtype codes embedRows takes (rows.ts has the same numbers). */
export const EMBED_DTYPES = {
  F32: 0, F16: 1, BF16: 2, Q8_0: 3, Q4_0: 4, Q4_1: 5, Q5_0: 6, Q5_1: 7, IQ4_NL: 8,
  Q2_K: 9, Q3_K: 10, Q4_K: 11, Q5_K: 12, Q6_K: 13, IQ4_XS: 14, MXFP4: 15,
} as const;

/** Int32 slots of the attention kernel's parameter block (scale and softcap are f32s, softcap 0 = none). */
export const ATTENTION_PARAMS = {
  q: 0, keys: 1, values: 2, out: 3, positions: 4, seqs: 5, nTok: 6,
  nHeads: 7, nKVHeads: 8, headDim: 9, ctxLen: 10, window: 11, scale: 12, softcap: 13, size: 14,
} as const;

const WASM_URL = new URL('../../../../build/kernels.wasm', import.meta.url);
let compiled: Promise<WebAssembly.Module> | undefined;

/** 64 KiB pages; 65536 pages = the 4 GiB a wasm32 memory can address. */
export function createKernelMemory(initialPages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: initialPages, maximum: 65536, shared: true });
}

/** The compiled kernel module (compiled once per process; shared with workers by postMessage). */
export function compileKernels(): Promise<WebAssembly.Module> {
  compiled ??= readFile(WASM_URL).then((bytes) => WebAssembly.compile(bytes)).catch((e: unknown) => {
    compiled = undefined;
    throw new Error(`cannot load the cpu kernels from ${WASM_URL.pathname} (run npm install): ${(e as Error).message}`);
  });
  return compiled;
}

/** Instantiates a compiled kernel module on `memory`, synchronously (no compilation happens). */
export function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module): MatvecKernels {
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort: () => { throw new Error('cpu kernel aborted'); },
    },
  });
  return instance.exports as unknown as MatvecKernels;
}

/**
 * Instantiates the kernels on `memory`. Pass the module a worker received from its parent: V8
 * then shares one copy of the machine code, optimised once, between threads.
 */
export async function loadMatvecKernels(memory: WebAssembly.Memory, module?: WebAssembly.Module): Promise<MatvecKernels> {
  const instance = await WebAssembly.instantiate(module ?? await compileKernels(), {
    env: {
      memory,
      abort: () => { throw new Error('cpu kernel aborted'); },
    },
  });
  return instance.exports as unknown as MatvecKernels;
}
