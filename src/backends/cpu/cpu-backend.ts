// The cpu backend: weights, activations and the KV cache live in one shared WebAssembly memory;
// matrix products run in the wasm SIMD kernels on a worker pool, reading weights in their stored
// format (never expanded to f32). The light element-wise ops and attention run in TypeScript on
// views of the same memory for now.
//
// Scope today: F32, F16, BF16, Q8_0 and Q4_0 weight matrices, models up to the 4 GiB one wasm32 memory
// addresses. K-quant kernels and sharding weights across memories come next.
import type {
  Activations, AttentionParams, Backend, BatchLayout, KVCache, KVCacheShape, RopeParams, Weight,
} from '../backend.js';
import { elementCount, type TensorInfo } from '../../formats/tensor.js';
import { dequantize } from '../../quant/dequantize.js';
import { byteSize, type DType } from '../../quant/dtype.js';
import * as ops from '../f32-ops.js';
import {
  ATTENTION_PARAMS as AP, createKernelMemory, loadMatvecKernels, type MatvecKernels,
} from './kernel-module.js';
import { WorkerPool, type KernelName } from './worker-pool.js';

const PAGE = 65536;
/** The low memory kept for the kernel module's static data (Mathf.exp's tables, ~1.3 KB). */
const RESERVED_BYTES = PAGE;
const MAX_BYTES = 65536 * PAGE;
/**
 * Matrix dtypes with kernels. `matvec`: rows read straight from the stored format for each token
 * (decode); `gemm`: tiles unpacked once and reused by every token (prefill, batched decode), used
 * from `gemmFrom` tokens on (measured on 2048×2048: f16's conversion is dear, so gemm pays from 2
 * tokens; bf16 and the quantized types from 4). Both give bit-identical results. `input` is how x
 * is prepared: as is, permuted to match how f16/bf16 pairs are split, or quantized to 8-bit blocks.
 */
const KERNELS: Partial<Record<DType, { matvec: KernelName; gemm: KernelName; gemmFrom: number; input: 'f32' | 'permuted' | 'q8' }>> = {
  F32: { matvec: 'matmulF32', gemm: 'gemmF32', gemmFrom: 2, input: 'f32' },
  F16: { matvec: 'matmulF16', gemm: 'gemmF16', gemmFrom: 2, input: 'permuted' },
  BF16: { matvec: 'matmulBF16', gemm: 'gemmBF16', gemmFrom: 4, input: 'permuted' },
  Q8_0: { matvec: 'matmulQ8_0', gemm: 'gemmQ8_0', gemmFrom: 4, input: 'q8' },
  Q4_0: { matvec: 'matmulQ4_0', gemm: 'gemmQ4_0', gemmFrom: 4, input: 'q8' },
};

class CpuWeight implements Weight {
  constructor(
    readonly name: string, readonly shape: readonly number[], readonly dtype: DType,
    /** Byte offset of the stored data in the kernel memory. */
    readonly offset: number,
    /** 1-D tensors (norms, biases) as f32, for the TypeScript ops. */
    readonly f32: Float32Array | undefined,
    /** F16 with inf or NaN values: only the exact-conversion kernels may read it. */
    readonly f16Specials = false,
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
const wt = (w: Weight) => w as CpuWeight;

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  /**
   * Bytes handed out so far (16-byte aligned bump allocation; nothing is freed before dispose).
   * Starts above the kernel module's static data, which every thread's instantiation rewrites.
   */
  private used = RESERVED_BYTES;

  private constructor(
    private readonly memory: WebAssembly.Memory, private readonly pool: WorkerPool,
    /** The kernels instantiated on this thread, for single-threaded steps. */
    private readonly local: MatvecKernels,
  ) {}

  static async create(threads: number): Promise<CpuBackend> {
    const memory = createKernelMemory(16);
    const local = await loadMatvecKernels(memory);
    if (local.staticDataEnd() > RESERVED_BYTES) {
      throw new Error(`cpu kernels: static data ends at ${local.staticDataEnd()}, above the ${RESERVED_BYTES} bytes reserved for it`);
    }
    return new CpuBackend(memory, await WorkerPool.create(threads, memory), local);
  }

  get threads(): number {
    return this.pool.threads;
  }

  /** Reserves `bytes` in the kernel memory, growing it; returns the byte offset. */
  private alloc(bytes: number, what: string): number {
    const offset = Math.ceil(this.used / 16) * 16;
    const end = offset + bytes;
    if (end > MAX_BYTES) {
      throw new RangeError(`cpu backend: ${what} does not fit in the 4 GiB of one wasm memory `
        + `(${(end / 2 ** 30).toFixed(2)} GiB needed); use --backend reference for now`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.used = end;
    return offset;
  }

  /** A Float32Array over [offset, offset + count·4) of the (possibly grown) memory. */
  private f32(offset: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, count);
  }

  loadWeight(info: TensorInfo, data: Uint8Array): Weight {
    const count = elementCount(info.shape);
    if (info.shape.length === 1) {
      return new CpuWeight(info.name, info.shape, 'F32', -1, dequantize(info.dtype, data, count));
    }
    if (!KERNELS[info.dtype]) {
      throw new RangeError(`cpu backend: ${info.name} is ${info.dtype}; only ${Object.keys(KERNELS).join(', ')} `
        + 'matrices are supported yet (use --backend reference)');
    }
    if (info.dtype !== 'F32' && info.shape[1]! % 8 !== 0) { // (Q8_0 rows are whole blocks of 32)
      throw new RangeError(`cpu backend: ${info.name} has rows of ${info.shape[1]}, not a multiple of 8 (${info.dtype} kernels)`);
    }
    const offset = this.alloc(data.length, info.name);
    new Uint8Array(this.memory.buffer, offset, data.length).set(data);
    const specials = info.dtype === 'F16' && this.local.countF16Specials(offset, count) > 0;
    return new CpuWeight(info.name, info.shape, info.dtype, offset, undefined, specials);
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

  embed(out: Activations, table: Weight, tokens: Int32Array): void {
    const t = wt(table), o = this.view(out);
    const dim = t.shape[1]!;
    const rowBytes = byteSize(t.dtype, dim);
    for (let i = 0; i < tokens.length; i++) {
      const bytes = new Uint8Array(this.memory.buffer, t.offset + tokens[i]! * rowBytes, rowBytes);
      dequantize(t.dtype, bytes, dim, o.subarray(i * dim, (i + 1) * dim));
    }
  }

  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void {
    ops.rmsNorm(this.view(out), this.view(x), wt(weight).f32!, act(x).rows, act(x).cols, eps);
  }

  matmul(out: Activations, x: Activations, w: Weight, bias?: Weight): void {
    const o = act(out), xa = act(x), wa = wt(w);
    const [n, k] = wa.shape as [number, number];
    const kernels = KERNELS[wa.dtype]!;
    const t = xa.rows;
    const gemm = t >= kernels.gemmFrom;
    if (gemm) this.ensureThreadScratch(16 * k);
    let input: number[];
    let kernel = gemm ? kernels.gemm : kernels.matvec;
    if (kernels.input === 'permuted') {
      // f16 and bf16 kernels read x with even and odd elements split per group of 8. For f16
      // decode, x is also scaled by 2^112 for matvecF16Scaled when that is exact (see matmulF16Scaled).
      const s = this.scratchFor(t * k);
      const scaled = wa.dtype === 'F16' && !gemm && !wa.f16Specials;
      const maxAbs = this.local.permuteX(xa.offset, s.x, t * k, scaled ? 2 ** 112 : 1);
      if (scaled && maxAbs < 65536) kernel = 'matmulF16Scaled';
      else if (scaled) this.local.permuteX(xa.offset, s.x, t * k, 1);
      input = [s.x];
    } else if (kernels.input === 'q8') {
      // Quantized dots are integer dots: x is quantized to 8-bit blocks first, as llama.cpp does
      // (and widened to int16 for gemm, which multiplies int16 tiles).
      const s = this.scratchFor(t * k);
      for (let r = 0; r < t; r++) this.local.quantizeRowQ8(xa.offset + r * k * 4, s.xq + r * k, s.xd + r * (k / 8), k);
      if (gemm) this.local.widenI8(s.xq, s.x16, t * k);
      input = [gemm ? s.x16 : s.xq, s.xd];
    } else {
      input = [xa.offset];
    }
    this.pool.run(kernel, [wa.offset, ...input, o.offset, k, n, t], n);
    if (bias) {
      const ov = this.view(out), b = wt(bias).f32!;
      for (let r = 0; r < t; r++) for (let j = 0; j < n; j++) ov[r * n + j]! += b[j]!;
    }
  }

  /** Scratch for prepared activations (permuted f32, or int8/int16 + block scales), grown on demand. */
  private scratch = { capacity: 0, x: 0, xq: 0, x16: 0, xd: 0 };
  private scratchFor(elements: number): { x: number; xq: number; x16: number; xd: number } {
    if (elements > this.scratch.capacity) {
      this.scratch = {
        capacity: elements, x: this.alloc(elements * 4, 'scratch'), xq: this.alloc(elements, 'scratch'),
        x16: this.alloc(elements * 2, 'scratch'), xd: this.alloc(elements / 8, 'scratch'),
      };
    }
    return this.scratch;
  }

  /**
   * Each thread's scratch: for gemm at least 4 unpacked rows (f32, 4k bytes each) and ~256 KiB,
   * so a tile of rows stays in that core's L2 while every token runs over it; for attention the
   * scores of one context.
   */
  private threadScratch = 0;
  private ensureThreadScratch(bytes: number): void {
    const stride = Math.ceil(Math.max(262144, bytes) / 64) * 64;
    if (stride <= this.threadScratch) return;
    const base = this.alloc(stride * this.pool.threads, 'thread scratch');
    this.pool.broadcast('setScratch', [base, stride]);
    this.threadScratch = stride;
  }

  rope(x: Activations, batch: BatchLayout, nHeads: number, headDim: number, rope: RopeParams): void {
    ops.rope(this.view(x), act(x).rows, act(x).cols, batch, nHeads, headDim, rope);
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
    // 1. Store every token's k and v first: a later token of the batch attends to earlier ones.
    const keys = this.f32(c.keys[layer]!, maxSeqs * ctxLen * kvDim), values = this.f32(c.values[layer]!, maxSeqs * ctxLen * kvDim);
    const kv = this.view(k), vv = this.view(v);
    for (let t = 0; t < n; t++) {
      const pos = batch.positions[t]!;
      if (pos >= ctxLen) throw new Error(`position ${pos} is beyond the context length ${ctxLen}`);
      const dst = (batch.seqs[t]! * ctxLen + pos) * kvDim;
      keys.set(kv.subarray(t * kvDim, (t + 1) * kvDim), dst);
      values.set(vv.subarray(t * kvDim, (t + 1) * kvDim), dst);
    }
    // 2. Causal attention on the pool, one item per (head, token).
    if (this.batchInts.capacity < n) this.batchInts = { capacity: n, offset: this.alloc(8 * n, 'batch layout') };
    const ints = new Int32Array(this.memory.buffer, this.batchInts.offset, 2 * n);
    ints.set(batch.positions.subarray(0, n));
    ints.set(batch.seqs.subarray(0, n), n);
    if (this.attentionParams < 0) this.attentionParams = this.alloc(4 * AP.size, 'attention parameters');
    const params = new Int32Array(this.memory.buffer, this.attentionParams, AP.size);
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
    new Float32Array(params.buffer, params.byteOffset + 4 * AP.scale, 1)[0] = p.scale;
    this.ensureThreadScratch(4 * ctxLen);
    this.pool.run('attention', [this.attentionParams], p.nHeads * n);
  }

  siluMul(out: Activations, gate: Activations, up: Activations): void {
    const o = act(out);
    this.pool.run('siluMul', [act(gate).offset, act(up).offset, o.offset], o.rows * o.cols);
  }

  add(out: Activations, a: Activations, b: Activations): void {
    ops.add(this.view(out), this.view(a), this.view(b));
  }

  gatherRows(out: Activations, x: Activations, rows: Int32Array): void {
    ops.gatherRows(this.view(out), this.view(x), rows, act(x).cols);
  }

  copyKV(cache: KVCache, from: number, to: number, count: number): void {
    const c = cache as CpuKVCache;
    const rowLen = c.shape.nKVHeads * c.shape.headDim, slotSize = c.shape.ctxLen * rowLen;
    for (let l = 0; l < c.shape.nLayers; l++) {
      for (const base of [c.keys[l]!, c.values[l]!]) {
        ops.copySlot(this.f32(base, c.shape.maxSeqs * slotSize), slotSize, rowLen, from, to, count);
      }
    }
  }

  async read(a: Activations, into?: Float32Array): Promise<Float32Array> {
    return ops.copyOut(this.view(a), into);
  }

  dispose(): void {
    void this.pool.dispose();
  }
}
