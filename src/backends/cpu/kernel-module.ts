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
  /** out[0..3] = the kernels' multiply-add of the f32x4s a, b, c at `inputs` (48 bytes), `rounds` times (selftest.ts). */
  relaxedSelfTest(inputs: number, out: number, rounds: number): void;
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

/**
 * The two builds of the kernels, from the same sources: plain WebAssembly SIMD, and with the
 * relaxed-SIMD instructions the kernels' helpers pick when built with `--enable relaxed-simd`
 * (common.ts: f32x4.relaxed_madd for the float kernels' multiply-adds).
 */
export type KernelSet = 'plain' | 'relaxed';

const WASM_URLS: Record<KernelSet, URL> = {
  plain: new URL('../../../../build/kernels.wasm', import.meta.url),
  relaxed: new URL('../../../../build/kernels-relaxed.wasm', import.meta.url),
};

/** Which kernel set this process runs, and why. */
export interface KernelChoice {
  set: KernelSet;
  /** Whether the runtime fuses the multiply-adds (one rounding): true only for the relaxed set on a CPU with FMA. */
  fusedMultiplyAdd: boolean;
  /** One line for `minerva devices` and bench output, e.g. "relaxed SIMD (fused multiply-add; self-test passed)". */
  description: string;
}

/** The environment variable that forces a kernel set. */
export const SIMD_ENV = 'MINERVA_CPU_SIMD';

/**
 * The smallest module using f32x4.relaxed_madd (one function, v128 → v128):
 * WebAssembly.validate answers whether this runtime decodes relaxed SIMD at all.
 */
const RELAXED_PROBE = Uint8Array.of(
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x00, 0x20, 0x00, 0xfd,
  0x85, 0x02, 0x0b,
);

const compiledSets = new Map<KernelSet, Promise<WebAssembly.Module>>();
let chosen: Promise<{ choice: KernelChoice; module: WebAssembly.Module }> | undefined;

/** 64 KiB pages; 65536 pages = the 4 GiB a wasm32 memory can address. */
export function createKernelMemory(initialPages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: initialPages, maximum: 65536, shared: true });
}

/** One kernel set's compiled module (compiled once per process), whether or not this runtime would choose it. */
export function compileKernelSet(set: KernelSet): Promise<WebAssembly.Module> {
  let p = compiledSets.get(set);
  if (!p) {
    const url = WASM_URLS[set];
    p = readFile(url).then((bytes) => WebAssembly.compile(bytes)).catch((e: unknown) => {
      compiledSets.delete(set);
      throw new Error(`cannot load the cpu kernels from ${url.pathname} (run npm install): ${(e as Error).message}`);
    });
    compiledSets.set(set, p);
  }
  return p;
}

/** Whether this runtime decodes relaxed-SIMD instructions (Node ≥ 22 by default; Node 20 only with --experimental-wasm-relaxed-simd). */
export function runtimeHasRelaxedSimd(): boolean {
  // (validate is missing from the typings this project compiles against; every runtime has it.)
  return (WebAssembly as unknown as { validate(bytes: Uint8Array): boolean }).validate(RELAXED_PROBE);
}

// The self-test's inputs, per lane a·b + c: lanes 0 and 2 are where a fused multiply-add (one
// rounding: ±2^-24) and an unfused one (the product rounded to 1 + 2^-11 first: +0) differ; lanes 1
// and 3 are exact either way (4 and +0).
const MADD_A = [1 + 2 ** -12, 1.5, -(1 + 2 ** -12), 3];
const MADD_B = [1 + 2 ** -12, 2, 1 + 2 ** -12, 0.25];
const MADD_C = [-(1 + 2 ** -11), 1, 1 + 2 ** -11, -0.75];
const MADD_FUSED = [2 ** -24, 4, -(2 ** -24), 0];
const MADD_UNFUSED = [0, 4, 0, 0];

/**
 * Judges the multiply-add self-test: `first` is the answer of the runtime's first compiler,
 * `optimised` the answer after the function has been run long enough to be optimised. Both must
 * be the fused or both the unfused result on every lane (bit for bit, signs of zero included): a
 * mix would make a row's result depend on when, or by which kernel, it was computed.
 */
export function judgeMaddSelfTest(first: ArrayLike<number>, optimised: ArrayLike<number>): { fused: boolean } | { problem: string } {
  const same = (v: ArrayLike<number>, want: number[]) => want.every((w, i) => Object.is(v[i], w));
  const show = (v: ArrayLike<number>) => `[${Array.from(v).join(', ')}]`;
  const kind = (v: ArrayLike<number>) => same(v, MADD_FUSED) ? 'fused' : same(v, MADD_UNFUSED) ? 'unfused' : undefined;
  const a = kind(first), b = kind(optimised);
  if (!a) return { problem: `f32x4.relaxed_madd returned ${show(first)}, neither the fused ${show(MADD_FUSED)} nor the unfused ${show(MADD_UNFUSED)} result` };
  if (!b) return { problem: `f32x4.relaxed_madd returned ${show(optimised)} once optimised, neither the fused ${show(MADD_FUSED)} nor the unfused ${show(MADD_UNFUSED)} result` };
  if (a !== b) return { problem: `f32x4.relaxed_madd was ${a} on the first call and ${b} once optimised` };
  return { fused: a === 'fused' };
}

/**
 * Runs `module`'s relaxedSelfTest on known inputs: once as first compiled, then after enough
 * rounds (about 10^7 multiply-adds, a few milliseconds) for V8 to have moved it to its optimising
 * tier, checking again between short pauses while that compile may still be in the background.
 */
export async function runRelaxedSelfTest(module: WebAssembly.Module): Promise<{ fused: boolean } | { problem: string }> {
  const memory = createKernelMemory(2);
  const k = instantiateKernels(memory, module);
  const inputs = 65536, out = inputs + 64; // the second page: above the module's static data
  new Float32Array(memory.buffer, inputs, 12).set([...MADD_A, ...MADD_B, ...MADD_C]);
  const result = new Float32Array(memory.buffer, out, 4);
  k.relaxedSelfTest(inputs, out, 1);
  const first = result.slice();
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 20; i++) k.relaxedSelfTest(inputs, out, 100_000);
    await new Promise((resolve) => setTimeout(resolve, 2));
    result.fill(NaN);
    k.relaxedSelfTest(inputs, out, 1);
    const verdict = judgeMaddSelfTest(first, result);
    if ('problem' in verdict) return verdict;
  }
  return judgeMaddSelfTest(first, result);
}

/** The kernel set MINERVA_CPU_SIMD asks for, or undefined when unset (auto). */
function requestedSet(value: string | undefined): KernelSet | undefined {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if (value === 'plain' || value === 'relaxed') return value;
  throw new Error(`${SIMD_ENV} must be "plain", "relaxed" or "auto" (unset), got ${JSON.stringify(value)}`);
}

async function choose(): Promise<{ choice: KernelChoice; module: WebAssembly.Module }> {
  const requested = requestedSet(process.env[SIMD_ENV]);
  const plain = async (why: string) => ({
    choice: { set: 'plain' as const, fusedMultiplyAdd: false, description: `plain SIMD (${why})` },
    module: await compileKernelSet('plain'),
  });
  if (requested === 'plain') return plain(`${SIMD_ENV}=plain`);
  const refuse = (why: string) => {
    if (requested === 'relaxed') throw new Error(`${SIMD_ENV}=relaxed refused: ${why}`);
    return plain(why);
  };
  if (!runtimeHasRelaxedSimd()) return refuse(`this runtime does not support relaxed SIMD (Node ${process.versions.node})`);
  const module = await compileKernelSet('relaxed');
  const verdict = await runRelaxedSelfTest(module);
  if ('problem' in verdict) return refuse(`relaxed-SIMD self-test failed: ${verdict.problem}`);
  const how = verdict.fused ? 'fused multiply-add' : 'multiply-add unfused on this CPU';
  return {
    choice: { set: 'relaxed', fusedMultiplyAdd: verdict.fused, description: `relaxed SIMD (${how}; self-test passed${requested ? `; ${SIMD_ENV}=relaxed` : ''})` },
    module,
  };
}

/**
 * Which kernel set the cpu backend runs in this process, chosen once: relaxed SIMD when the
 * runtime validates it and its self-test passes, else plain; MINERVA_CPU_SIMD=plain|relaxed forces
 * one (relaxed is refused, with the reason, where it would fail).
 */
export async function kernelChoice(): Promise<KernelChoice> {
  return (await chosenKernels()).choice;
}

function chosenKernels(): Promise<{ choice: KernelChoice; module: WebAssembly.Module }> {
  chosen ??= choose().catch((e: unknown) => {
    chosen = undefined;
    throw e;
  });
  return chosen;
}

/** The compiled module of the chosen kernel set (see kernelChoice; shared with workers by postMessage). */
export async function compileKernels(): Promise<WebAssembly.Module> {
  return (await chosenKernels()).module;
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
