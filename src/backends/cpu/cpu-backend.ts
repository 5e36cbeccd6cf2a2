// The cpu backend: weights, activations and the KV cache live in shared WebAssembly memory; the
// ops run as wasm SIMD kernels on a worker pool (src/backends/cpu/kernels/), matrix products
// reading weights in their stored format (never expanded to f32). Every op's arithmetic and copies
// run in wasm; TypeScript only checks arguments, lays out parameters and picks the threads.
//
// Models larger than the 4 GiB one wasm32 memory addresses: weights that do not fit the first
// memory (the "home" shard, which also holds activations, scratch and the KV cache) go to further
// memories; a matmul on such a weight copies its (small) prepared input into that shard, runs
// there, and copies the output home. Each thread of the pool has a kernel instance per shard.
import {
  ropeDims, type Activations, type AttentionParams, type Backend, type BatchLayout, type KVCache, type KVCacheShape,
  type RopeParams, type Weight,
} from '../backend.js';
import { elementCount, type TensorInfo } from '../../formats/tensor.js';
import { dequantize } from '../../quant/dequantize.js';
import type { DType } from '../../quant/dtype.js';
import { firstNonFiniteBlock } from '../../quant/block-checks.js';
import * as ops from '../f32-ops.js';
import {
  ATTENTION_PARAMS as AP, createKernelMemory, EMBED_DTYPES, type MatvecKernels,
} from './kernel-module.js';
import { WorkerPool, type KernelName } from './worker-pool.js';

const PAGE = 65536;
/** The low memory kept for the kernel module's static data (Mathf.exp's tables, ~1.3 KB). */
const RESERVED_BYTES = PAGE;
const MAX_BYTES = 65536 * PAGE;
/**
 * How far weights may fill a memory: the home shard keeps ~1 GiB for activations, scratch and the
 * KV cache; other shards keep 256 MiB for the copied inputs and outputs of their matmuls.
 */
const WEIGHT_LIMIT_HOME = 3 * 2 ** 30;
const WEIGHT_LIMIT_SHARD = MAX_BYTES - 2 ** 28;
/**
 * Matrix dtypes with kernels. `matvec`: rows read straight from the stored format for each token
 * (decode; a few tokens run token by token over cached tiles of rows); `gemm`: tiles unpacked
 * once and reused by every token (prefill, batched decode), used from `gemmFrom` tokens on;
 * `batch`: F16's batched-decode kernel (batched.ts), for `batchFrom` tokens up to gemmFrom.
 * All give bit-identical results. The thresholds were measured per token on one thread
 * (2048×5632, AMD EPYC Zen 3): the K-quants' gemm beats their matvec from 2 tokens (Q4_K 1.3 ms
 * against 2.0), Q8_0, Q4_0 and BF16 from 4, F16's batch kernel beats both from 3 and gemm takes
 * over past ~12. `input` is how x is prepared: as is, permuted to match how f16/bf16 pairs are
 * split, or quantized to 8-bit blocks (`q8+sums`: plus each block's scaled sum, which the mins of
 * Q4_K, Q4_1 and Q5_1 multiply).
 */
interface MatrixKernels {
  matvec: KernelName;
  gemm: KernelName;
  gemmFrom: number;
  batch?: KernelName;
  batchFrom?: number;
  input: 'f32' | 'permuted' | 'q8' | 'q8+sums';
}
const KERNELS: Partial<Record<DType, MatrixKernels>> = {
  F32: { matvec: 'matmulF32', gemm: 'gemmF32', gemmFrom: 2, input: 'f32' },
  F16: { matvec: 'matmulF16', gemm: 'gemmF16', gemmFrom: 12, batch: 'batchF16Scaled', batchFrom: 3, input: 'permuted' },
  BF16: { matvec: 'matmulBF16', gemm: 'gemmBF16', gemmFrom: 4, input: 'permuted' },
  Q8_0: { matvec: 'matmulQ8_0', gemm: 'gemmQ8_0', gemmFrom: 4, input: 'q8' },
  Q4_0: { matvec: 'matmulQ4_0', gemm: 'gemmQ4_0', gemmFrom: 4, input: 'q8' },
  Q4_K: { matvec: 'matmulQ4_K', gemm: 'gemmQ4_K', gemmFrom: 2, input: 'q8+sums' },
  Q6_K: { matvec: 'matmulQ6_K', gemm: 'gemmQ6_K', gemmFrom: 2, input: 'q8' },
  IQ4_XS: { matvec: 'matmulIQ4_XS', gemm: 'gemmIQ4_XS', gemmFrom: 4, input: 'q8' },
  MXFP4: { matvec: 'matmulMXFP4', gemm: 'gemmMXFP4', gemmFrom: 4, input: 'q8' },
  Q5_K: { matvec: 'matmulQ5_K', gemm: 'gemmQ5_K', gemmFrom: 2, input: 'q8+sums' },
  Q3_K: { matvec: 'matmulQ3_K', gemm: 'gemmQ3_K', gemmFrom: 2, input: 'q8' },
  Q2_K: { matvec: 'matmulQ2_K', gemm: 'gemmQ2_K', gemmFrom: 4, input: 'q8' },
  Q4_1: { matvec: 'matmulQ4_1', gemm: 'gemmQ4_1', gemmFrom: 4, input: 'q8+sums' },
  Q5_0: { matvec: 'matmulQ5_0', gemm: 'gemmQ5_0', gemmFrom: 4, input: 'q8' },
  Q5_1: { matvec: 'matmulQ5_1', gemm: 'gemmQ5_1', gemmFrom: 4, input: 'q8+sums' },
  IQ4_NL: { matvec: 'matmulIQ4_NL', gemm: 'gemmIQ4_NL', gemmFrom: 4, input: 'q8' },
};

/** One wasm memory, this thread's kernels on it, and its bump allocator. */
class Shard {
  /** Bytes handed out (16-byte aligned; nothing is freed before dispose), above the static data. */
  used = RESERVED_BYTES;
  /** Per-thread scratch stride set on this shard's kernel instances (0 = none yet). */
  threadScratch = 0;
  /** Away from home: where a matmul's inputs and output are copied. */
  io = { capacity: 0, offset: -1 };
  constructor(readonly index: number, readonly memory: WebAssembly.Memory, readonly kernels: MatvecKernels) {}

  /** Reserves `bytes`, growing the memory; returns the byte offset. */
  alloc(bytes: number, what: string, limit = MAX_BYTES): number {
    const offset = Math.ceil(this.used / 16) * 16;
    const end = offset + bytes;
    if (end > limit) {
      throw new RangeError(`cpu backend: ${what} does not fit in a wasm memory (${(end / 2 ** 30).toFixed(2)} of `
        + `${(limit / 2 ** 30).toFixed(2)} GiB); try a smaller context (--ctx-size)`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.used = end;
    return offset;
  }

  bytes(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }
}

class CpuWeight implements Weight {
  constructor(
    readonly name: string, readonly shape: readonly number[], readonly dtype: DType,
    /** The shard holding the stored data, and its byte offset there. */
    readonly shard: number,
    readonly offset: number,
    /** F16 with inf or NaN values: only the exact-conversion kernels may read it. */
    readonly f16Specials = false,
    /** F16 whose subnormal values were moved out (splitF16Subnormals): home offsets of the sparse rows. */
    readonly subnormals?: { rowStart: number; entries: number },
  ) {}
}

class CpuActivations implements Activations {
  constructor(readonly rows: number, readonly cols: number, readonly offset: number) {}
}

class CpuKVCache implements KVCache {
  constructor(
    readonly shape: KVCacheShape,
    /** Per layer: byte offsets of keys and values, each [maxSeqs, ctxLen, nKVHeads·headDim] f32. */
    readonly keys: number[], readonly values: number[],
  ) {}
}

const act = (a: Activations) => a as CpuActivations;

/** An f32's bit pattern as an int32, for kernel arguments (jobs pass integers only). */
const bitsF32 = new Float32Array(1), bitsI32 = new Int32Array(bitsF32.buffer);
function f32Bits(x: number): number {
  bitsF32[0] = x;
  return bitsI32[0]!;
}
/** An f64's bit pattern as two int32s (low, high), for a kernel that multiplies by it exactly as JS would. */
const bitsF64 = new Float64Array(1), bitsF64I32 = new Int32Array(bitsF64.buffer);
function f64Bits(x: number): [number, number] {
  bitsF64[0] = x;
  return [bitsF64I32[0]!, bitsF64I32[1]!];
}
const wt = (w: Weight) => w as CpuWeight;

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  /** shards[0] is home: activations, scratch, KV cache, and the first weights. */
  private readonly shards: Shard[];

  private constructor(
    memory: WebAssembly.Memory, private readonly pool: WorkerPool,
    /** Most weight bytes per memory: home, then each further shard. */
    private readonly weightLimits: { home: number; shard: number },
  ) {
    this.shards = [new Shard(0, memory, pool.kernels(0))];
  }

  /**
   * `weightBytesPerMemory` lowers how many weight bytes one memory takes (default: 3 GiB at
   * home, ~3.75 GiB elsewhere), so small models can exercise sharding.
   */
  static async create(threads: number, opts: { weightBytesPerMemory?: number } = {}): Promise<CpuBackend> {
    const memory = createKernelMemory(16);
    const pool = await WorkerPool.create(threads, memory);
    const end = pool.kernels(0).staticDataEnd();
    if (end > RESERVED_BYTES) {
      await pool.dispose();
      throw new Error(`cpu kernels: static data ends at ${end}, above the ${RESERVED_BYTES} bytes reserved for it`);
    }
    const cap = opts.weightBytesPerMemory;
    return new CpuBackend(memory, pool, {
      home: Math.min(cap ?? WEIGHT_LIMIT_HOME, WEIGHT_LIMIT_HOME), shard: Math.min(cap ?? WEIGHT_LIMIT_SHARD, WEIGHT_LIMIT_SHARD),
    });
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** How many wasm memories the weights occupy. */
  get shardCount(): number {
    return this.shards.length;
  }

  private get home(): Shard {
    return this.shards[0]!;
  }

  /** The kernels on this thread over the home memory, for single-threaded steps. */
  private get local(): MatvecKernels {
    return this.home.kernels;
  }

  /** Reserves `bytes` in the home memory; returns the byte offset. */
  private alloc(bytes: number, what: string): number {
    return this.home.alloc(bytes, what);
  }

  /** A Float32Array over [offset, offset + count·4) of the (possibly grown) home memory. */
  private f32(offset: number, count: number): Float32Array {
    return new Float32Array(this.home.memory.buffer, offset, count);
  }

  /** Room for a weight of `bytes`: the last shard if it fits under its weight limit, else a new memory. */
  private placeWeight(bytes: number, name: string): { shard: Shard; offset: number } {
    if (bytes > WEIGHT_LIMIT_SHARD) throw new RangeError(`cpu backend: ${name} alone is larger than a wasm memory can hold`);
    let shard = this.shards[this.shards.length - 1]!;
    const limit = shard.index === 0 ? this.weightLimits.home : this.weightLimits.shard;
    // (a weight larger than the limit still gets a memory of its own)
    if (Math.ceil(shard.used / 16) * 16 + bytes > limit && shard.used > RESERVED_BYTES) {
      const memory = createKernelMemory(Math.ceil((RESERVED_BYTES + bytes) / PAGE));
      const index = this.pool.addShard(memory);
      shard = new Shard(index, memory, this.pool.kernels(index));
      this.shards.push(shard);
    }
    return { shard, offset: shard.alloc(bytes, name) };
  }

  loadWeight(info: TensorInfo, data: Uint8Array): Weight {
    const count = elementCount(info.shape);
    if (info.shape.length === 1) { // norms and biases: f32, at home beside the activations
      const offset = this.alloc(count * 4, info.name);
      dequantize(info.dtype, data, count, this.f32(offset, count));
      return new CpuWeight(info.name, info.shape, 'F32', 0, offset);
    }
    if (!KERNELS[info.dtype]) {
      throw new RangeError(`cpu backend: ${info.name} is ${info.dtype}; only ${Object.keys(KERNELS).join(', ')} `
        + 'matrices are supported yet (use --backend reference)');
    }
    if (info.dtype !== 'F32' && info.shape[1]! % 8 !== 0) { // (quantized rows are whole blocks)
      throw new RangeError(`cpu backend: ${info.name} has rows of ${info.shape[1]}, not a multiple of 8 (${info.dtype} kernels)`);
    }
    const bad = firstNonFiniteBlock(info.dtype, data);
    if (bad >= 0) throw new RangeError(`cpu backend: ${info.name}: block ${bad} has a non-finite scale (inf or NaN)`);
    const { shard, offset } = this.placeWeight(data.length, info.name);
    shard.bytes(offset, data.length).set(data);
    if (info.dtype !== 'F16') return new CpuWeight(info.name, info.shape, info.dtype, shard.index, offset);
    const kinds = shard.kernels.countF16Kinds(offset, count);
    const specials = (kinds & 0xffffffffn) > 0n, nnz = Number(kinds >> 32n);
    const subnormals = nnz > 0 ? this.splitSubnormals(shard, offset, info.shape as [number, number], nnz, info.name) : undefined;
    return new CpuWeight(info.name, info.shape, info.dtype, shard.index, offset, specials, subnormals);
  }

  /**
   * Moves the `nnz` subnormal values of the F16 matrix at `offset` of `shard` into sparse rows at
   * home (see splitF16Subnormals: multiplying subnormals is slow on Intel cores; exact either way).
   */
  private splitSubnormals(shard: Shard, offset: number, [n, k]: [number, number], nnz: number, name: string): { rowStart: number; entries: number } {
    const bytes = { rowStart: 4 * (n + 1), entries: 8 * nnz };
    const home = { rowStart: this.alloc(bytes.rowStart, `${name} (subnormal values)`), entries: this.alloc(bytes.entries, `${name} (subnormal values)`) };
    if (shard === this.home) {
      shard.kernels.splitF16Subnormals(offset, n, k, home.rowStart, home.entries);
      return home;
    }
    // Away from home the kernel writes into that memory's io area, and the lists are copied home.
    const total = bytes.rowStart + Math.ceil(bytes.entries / 16) * 16 + 16;
    if (shard.io.capacity < total) shard.io = { capacity: total, offset: shard.alloc(total, 'matmul input and output') };
    const rowStart = shard.io.offset, entries = rowStart + Math.ceil(bytes.rowStart / 16) * 16;
    shard.kernels.splitF16Subnormals(offset, n, k, rowStart, entries);
    this.home.bytes(home.rowStart, bytes.rowStart).set(shard.bytes(rowStart, bytes.rowStart));
    this.home.bytes(home.entries, bytes.entries).set(shard.bytes(entries, bytes.entries));
    return home;
  }

  createActivations(rows: number, cols: number): Activations {
    return new CpuActivations(rows, cols, this.alloc(rows * cols * 4, 'activations'));
  }

  rowsView(a: Activations, rows: number): Activations {
    const x = act(a);
    if (rows > x.rows) throw new Error(`rowsView: ${rows} rows asked of a buffer of ${x.rows}`);
    return new CpuActivations(rows, x.cols, x.offset);
  }

  createKVCache(shape: KVCacheShape): KVCache {
    const bytes = shape.maxSeqs * shape.ctxLen * shape.nKVHeads * shape.headDim * 4;
    const keys: number[] = [], values: number[] = [];
    for (let l = 0; l < shape.nLayers; l++) {
      keys.push(this.alloc(bytes, 'the KV cache'));
      values.push(this.alloc(bytes, 'the KV cache'));
    }
    return new CpuKVCache(shape, keys, values);
  }

  private view(a: Activations): Float32Array {
    const x = act(a);
    return this.f32(x.offset, x.rows * x.cols);
  }

  /**
   * Dequantizes rows of the table (embedRows, exact for every stored dtype) into out. A table in
   * another memory is read there: the token ids go to that shard's io area, the rows come back from
   * it. An F16 table's subnormal values (moved home at load) are put back afterwards.
   */
  embed(out: Activations, table: Weight, tokens: Int32Array, scale = 1): void {
    const t = wt(table), o = act(out), n = tokens.length;
    const [rows, dim] = t.shape as [number, number];
    if (n > o.rows) throw new RangeError(`embed: ${n} tokens into ${o.rows} rows`);
    for (const id of tokens) if (!(id >= 0 && id < rows)) throw new RangeError(`embed: token ${id} is outside ${t.name} (${rows} rows)`);
    if (n === 0) return;
    const kind = EMBED_DTYPES[t.dtype as keyof typeof EMBED_DTYPES];
    const [lo, hi] = f64Bits(scale);
    const shard = this.shards[t.shard]!;
    // ~dim·(a few ns) per row: the pool pays from a few rows.
    if (shard === this.home) {
      this.runOps('embedRows', [kind, t.offset, this.ints(tokens), o.offset, dim, lo, hi], n, 4);
    } else {
      const idBytes = Math.ceil(4 * n / 16) * 16, outBytes = 4 * n * dim;
      const io = this.shardIO(shard, idBytes + outBytes);
      new Int32Array(shard.memory.buffer, io, n).set(tokens);
      this.runOps('embedRows', [kind, t.offset, io, io + idBytes, dim, lo, hi], n, 4, shard);
      this.home.bytes(o.offset, outBytes).set(shard.bytes(io + idBytes, outBytes));
    }
    if (t.subnormals) {
      this.runOps('embedSparse', [t.subnormals.rowStart, t.subnormals.entries, this.ints(tokens), o.offset, dim, lo, hi], n, 64);
    }
  }

  /** i32 values for a kernel (token ids, row indices): copied into a home area grown on demand. */
  private intArea = { capacity: 0, offset: -1 };
  private ints(values: Int32Array): number {
    if (this.intArea.capacity < values.length) {
      const capacity = Math.max(64, values.length);
      this.intArea = { capacity, offset: this.alloc(4 * capacity, 'row indices') };
    }
    new Int32Array(this.home.memory.buffer, this.intArea.offset, values.length).set(values);
    return this.intArea.offset;
  }

  /** At least `bytes` of `shard`'s io area (where ops on its weights put their inputs and outputs); its offset. */
  private shardIO(shard: Shard, bytes: number): number {
    if (shard.io.capacity < bytes) shard.io = { capacity: bytes, offset: shard.alloc(bytes, 'matmul input and output') };
    return shard.io.offset;
  }

  /**
   * Runs an element-wise kernel over `items`: on the pool when there is enough work to beat the
   * dispatch (a few µs), else on this thread.
   */
  private runOps(kernel: KernelName, args: number[], items: number, minForPool: number, shard = this.home): void {
    if (items >= minForPool) this.pool.run(kernel, args, items, shard.index);
    else (shard.kernels[kernel] as (...a: number[]) => void)(...args, 0, items);
  }

  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void {
    const xa = act(x), w = wt(weight);
    const g = ops.normRows(xa.rows, xa.cols, w.shape[0]!);
    this.runOps('rmsNorm', [xa.offset, w.offset, act(out).offset, g.cols, f32Bits(eps)], g.rows, 4);
  }

  matmul(out: Activations, x: Activations, w: Weight, bias?: Weight): void {
    const o = act(out), xa = act(x), wa = wt(w);
    const [n, k] = wa.shape as [number, number];
    const kernels = KERNELS[wa.dtype]!;
    const t = xa.rows;
    const gemm = t >= kernels.gemmFrom;
    if (gemm) this.ensureThreadScratch(16 * k, this.shards[wa.shard]!); // room for a tile of at least 4 unpacked rows
    /** The prepared input as [offset, bytes] regions of home memory (the kernel's x arguments). */
    let input: [number, number][];
    let kernel = gemm ? kernels.gemm : kernels.matvec;
    if (kernels.input === 'permuted') {
      // f16 and bf16 kernels read x with even and odd elements split per group of 8. For f16
      // decode, x is also scaled by 2^112 for matvecF16Scaled when that is exact (see matmulF16Scaled).
      const s = this.scratchFor(t * k);
      const scaled = wa.dtype === 'F16' && !gemm && !wa.f16Specials;
      const maxAbs = this.local.permuteX(xa.offset, s.x, t * k, scaled ? 2 ** 112 : 1);
      if (scaled && maxAbs < 65536) kernel = kernels.batch && t >= kernels.batchFrom! ? kernels.batch : 'matmulF16Scaled';
      else if (scaled) this.local.permuteX(xa.offset, s.x, t * k, 1);
      input = [[s.x, t * k * 4]];
    } else if (kernels.input === 'q8' || kernels.input === 'q8+sums') {
      // Quantized dots are integer dots: x is quantized to 8-bit blocks first, as llama.cpp does,
      // stored as int16 once here rather than widened in every row's dot. Many rows: on the pool.
      const s = this.scratchFor(t * k);
      if (t >= 4) this.pool.run('quantizeRowsQ8', [xa.offset, s.x16, s.xd, k], t);
      else this.local.quantizeRowsQ8(xa.offset, s.x16, s.xd, k, 0, t);
      input = [[s.x16, t * k * 2], [s.xd, t * k / 8]];
      if (kernels.input === 'q8+sums') {
        this.local.blockSumsQ8(s.x16, s.xd, s.xt, k, 0, t);
        input.push([s.xt, t * k / 8]);
      }
    } else {
      input = [[xa.offset, t * k * 4]];
    }
    if (wa.shard === 0) {
      this.pool.run(kernel, [wa.offset, ...input.map(([at]) => at), o.offset, k, n, t], n);
    } else {
      this.runAway(this.shards[wa.shard]!, kernel, wa.offset, input, o.offset, k, n, t);
    }
    if (wa.subnormals) this.pool.run('addSparseRows', [wa.subnormals.rowStart, wa.subnormals.entries, xa.offset, o.offset, k, n, t], n);
    // The bias (f32, at home): on the pool from ~64K values.
    if (bias) this.runOps('addBias', [o.offset, wt(bias).offset, n], t, Math.ceil(65536 / n));
  }

  /** Scratch for prepared activations (permuted f32, or int16 + block scales and sums), grown on demand. */
  private scratch = { capacity: 0, x: 0, x16: 0, xd: 0, xt: 0 };
  private scratchFor(elements: number): { x: number; x16: number; xd: number; xt: number } {
    if (elements > this.scratch.capacity) {
      this.scratch = {
        capacity: elements, x: this.alloc(elements * 4, 'scratch'),
        x16: this.alloc(elements * 2, 'scratch'), xd: this.alloc(elements / 8, 'scratch'), xt: this.alloc(elements / 8, 'scratch'),
      };
    }
    return this.scratch;
  }

  /**
   * A matmul on a weight in another memory: copies the prepared input there, runs the kernel on
   * that shard, and copies the output [t, n] home to `outHome`.
   */
  private runAway(
    shard: Shard, kernel: KernelName, w: number, input: [number, number][], outHome: number,
    k: number, n: number, t: number,
  ): void {
    const sizes = [...input.map(([, bytes]) => bytes), t * n * 4].map((b) => Math.ceil(b / 16) * 16);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (shard.io.capacity < total) shard.io = { capacity: total, offset: shard.alloc(total, 'matmul input and output') };
    const args: number[] = [];
    let at = shard.io.offset;
    input.forEach(([from, bytes], i) => {
      shard.bytes(at, bytes).set(this.home.bytes(from, bytes));
      args.push(at);
      at += sizes[i]!;
    });
    this.pool.run(kernel, [w, ...args, at, k, n, t], n, shard.index);
    this.home.bytes(outHome, t * n * 4).set(shard.bytes(at, t * n * 4));
  }

  /**
   * Each thread's scratch: for gemm at least 4 unpacked rows (f32, 4k bytes each) and ~256 KiB,
   * so a tile of rows stays in that core's L2 while every token runs over it; for attention the
   * scores of one context.
   */
  private ensureThreadScratch(bytes: number, shard = this.home): void {
    const stride = Math.ceil(Math.max(262144, bytes) / 64) * 64;
    if (stride <= shard.threadScratch) return;
    const base = shard.alloc(stride * this.pool.threads, 'thread scratch');
    this.pool.broadcast('setScratch', [base, stride], shard.index);
    shard.threadScratch = stride;
  }

  /** cos and sin per (token, pair) of the last batch, [nTok, dims/2, 2], times the rope's scale: shared by every layer and head. */
  private ropeTable: { offset: number; capacity: number; positions: Int32Array; invFreq: Float32Array | undefined; scale: number } = {
    offset: -1, capacity: 0, positions: new Int32Array(0), invFreq: undefined, scale: 1,
  };

  private ropeAngles(batch: BatchLayout, n: number, invFreq: Float32Array, scale: number): number {
    const t = this.ropeTable, half = invFreq.length;
    const positions = batch.positions.subarray(0, n);
    if (t.invFreq === invFreq && t.scale === scale && t.positions.length === n && t.positions.every((p, i) => p === positions[i])) return t.offset;
    if (t.capacity < n * half * 2) {
      t.capacity = n * half * 2;
      t.offset = this.alloc(4 * t.capacity, 'rope table');
    }
    ops.ropeAngleTable(positions, invFreq, this.f32(t.offset, n * half * 2), scale);
    t.positions = positions.slice();
    t.invFreq = invFreq;
    t.scale = scale;
    return t.offset;
  }

  rope(x: Activations, batch: BatchLayout, nHeads: number, headDim: number, rope: RopeParams): void {
    const xa = act(x);
    const dims = ropeDims(rope, headDim);
    const table = this.ropeAngles(batch, xa.rows, rope.invFreq, rope.scale ?? 1);
    this.runOps('rope', [xa.offset, table, xa.cols, nHeads, headDim, dims, rope.style === 'interleaved' ? 1 : 0], xa.rows * nHeads, 64);
  }

  /** Parameter block of the attention kernel, and the batch's positions and seqs as i32. */
  private attentionParams = -1;
  private batchInts = { capacity: 0, offset: -1 };

  attention(
    out: Activations, q: Activations, k: Activations, v: Activations,
    cache: KVCache, layer: number, batch: BatchLayout, p: AttentionParams,
  ): void {
    const c = cache as CpuKVCache;
    const { ctxLen, maxSeqs } = c.shape;
    const n = act(q).rows, kvDim = p.nKVHeads * p.headDim;
    for (let t = 0; t < n; t++) {
      const pos = batch.positions[t]!, seq = batch.seqs[t]!;
      if (!(pos >= 0 && pos < ctxLen)) throw new Error(`position ${pos} is beyond the context length ${ctxLen}`);
      if (!(seq >= 0 && seq < maxSeqs)) throw new Error(`slot ${seq} is beyond the cache's ${maxSeqs} slots`);
    }
    if (this.batchInts.capacity < n) this.batchInts = { capacity: n, offset: this.alloc(8 * n, 'batch layout') };
    const ints = new Int32Array(this.home.memory.buffer, this.batchInts.offset, 2 * n);
    ints.set(batch.positions.subarray(0, n));
    ints.set(batch.seqs.subarray(0, n), n);
    // 1. Store every token's k and v first (a later token of the batch attends to earlier ones):
    // two row copies per token, on the pool for long prompts.
    this.runOps('storeKV', [act(k).offset, act(v).offset, c.keys[layer]!, c.values[layer]!, this.batchInts.offset,
      this.batchInts.offset + 4 * n, kvDim, ctxLen], n, 128);
    // 2. Causal attention on the pool, one item per (head, token).
    if (this.attentionParams < 0) this.attentionParams = this.alloc(4 * AP.size, 'attention parameters');
    const params = new Int32Array(this.home.memory.buffer, this.attentionParams, AP.size);
    params[AP.q] = act(q).offset;
    params[AP.keys] = c.keys[layer]!;
    params[AP.values] = c.values[layer]!;
    params[AP.out] = act(out).offset;
    params[AP.positions] = this.batchInts.offset;
    params[AP.seqs] = this.batchInts.offset + 4 * n;
    params[AP.nTok] = n;
    params[AP.nHeads] = p.nHeads;
    params[AP.nKVHeads] = p.nKVHeads;
    params[AP.headDim] = p.headDim;
    params[AP.ctxLen] = ctxLen;
    params[AP.window] = p.slidingWindow ?? 0;
    params[AP.scale] = f32Bits(p.scale);
    params[AP.softcap] = f32Bits(p.softcap ?? 0);
    this.ensureThreadScratch(4 * ctxLen);
    this.pool.run('attention', [this.attentionParams], p.nHeads * n);
  }

  siluMul(out: Activations, gate: Activations, up: Activations): void {
    const o = act(out);
    this.pool.run('siluMul', [act(gate).offset, act(up).offset, o.offset], o.rows * o.cols);
  }

  geluMul(out: Activations, gate: Activations, up: Activations): void {
    const o = act(out);
    this.pool.run('geluMul', [act(gate).offset, act(up).offset, o.offset], o.rows * o.cols);
  }

  softcap(x: Activations, cap: number): void {
    const xa = act(x);
    this.runOps('softcap', [xa.offset, f32Bits(cap)], xa.rows * xa.cols, 1 << 14);
  }

  add(out: Activations, a: Activations, b: Activations): void {
    const o = act(out);
    this.runOps('add', [act(a).offset, act(b).offset, o.offset], o.rows * o.cols, 1 << 16);
  }

  /**
   * sum = a + b, normed = rmsNorm(sum) · weight in one pass per row (the residual add and the next
   * norm): the bits of add then rmsNorm.
   */
  addRmsNorm(sum: Activations, normed: Activations, a: Activations, b: Activations, weight: Weight, eps: number): void {
    const aa = act(a), w = wt(weight);
    const g = ops.normRows(aa.rows, aa.cols, w.shape[0]!);
    this.runOps('addRmsNorm', [aa.offset, act(b).offset, w.offset, act(sum).offset, act(normed).offset, g.cols, f32Bits(eps)], g.rows, 4);
  }

  gatherRows(out: Activations, x: Activations, rows: Int32Array): void {
    const o = act(out), xa = act(x);
    if (rows.length > o.rows) throw new RangeError(`gatherRows: ${rows.length} rows into ${o.rows}`);
    for (const r of rows) if (!(r >= 0 && r < xa.rows)) throw new RangeError(`gatherRows: row ${r} of ${xa.rows}`);
    this.runOps('gatherRows', [xa.offset, this.ints(rows), o.offset, xa.cols], rows.length, 64);
  }

  copyKV(cache: KVCache, from: number, to: number, count: number): void {
    const c = cache as CpuKVCache;
    const { maxSeqs, ctxLen } = c.shape;
    for (const [what, v, limit] of [['from', from, maxSeqs], ['to', to, maxSeqs], ['count', count, ctxLen + 1]] as const) {
      if (!(Number.isInteger(v) && v >= 0 && v < limit)) throw new RangeError(`copyKV: ${what} ${v} is outside 0..${limit - 1}`);
    }
    if (from === to || count === 0) return;
    const rowBytes = 4 * c.shape.nKVHeads * c.shape.headDim, slotBytes = ctxLen * rowBytes;
    // One memory.copy per layer's keys and values; split over the pool from ~256 KiB each.
    const minForPool = Math.ceil(2 ** 18 / rowBytes);
    for (let l = 0; l < c.shape.nLayers; l++) {
      for (const base of [c.keys[l]!, c.values[l]!]) {
        this.runOps('copyRows', [base + from * slotBytes, base + to * slotBytes, rowBytes], count, minForPool);
      }
    }
  }

  async read(a: Activations, into?: Float32Array): Promise<Float32Array> {
    return ops.copyOut(this.view(a), into);
  }

  /** The buffer measureReadBandwidth sums (kept: the bump allocator frees nothing), and its per-chunk sums. */
  private bandwidthBuffer = { bytes: 0, offset: -1, partials: -1 };

  /**
   * Read bandwidth of this machine as the pool sees it (minerva bench ops): every thread sums its
   * share of a `bytes` buffer of f32 ones (rounded up to whole 1 MiB chunks, each read as four
   * streams; use far more than the last-level cache) with the sumChunksF32 kernel; the best of
   * `repeat` passes after one warm-up.
   * `checksum` is the sum read back (bytes / 4 when every byte was read).
   */
  measureReadBandwidth(bytes: number, repeat = 3): { bytes: number; seconds: number; bytesPerSecond: number; checksum: number } {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`measureReadBandwidth: bytes must be a positive integer, got ${bytes}`);
    if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`measureReadBandwidth: repeat must be a positive integer, got ${repeat}`);
    const chunk = 1 << 20, chunks = Math.ceil(bytes / chunk), total = chunks * chunk;
    const b = this.bandwidthBuffer;
    if (b.bytes < total) {
      b.offset = this.alloc(total, 'the read-bandwidth buffer');
      b.partials = this.alloc(4 * chunks, 'the read-bandwidth buffer');
      b.bytes = total;
      // Written, not just allocated: fresh pages could all map the one zero page, and reads from it
      // would measure the cache.
      this.f32(b.offset, total / 4).fill(1);
    }
    let best = Infinity;
    for (let i = 0; i <= repeat; i++) {
      const t0 = performance.now();
      this.pool.run('sumChunksF32', [b.offset, b.partials, chunk], chunks);
      const s = (performance.now() - t0) / 1000;
      if (i > 0 && s < best) best = s; // pass 0 warms up the threads
    }
    let checksum = 0;
    for (const x of this.f32(b.partials, chunks)) checksum += x;
    return { bytes: total, seconds: best, bytesPerSecond: total / best, checksum };
  }

  dispose(): void {
    void this.pool.dispose();
  }
}
