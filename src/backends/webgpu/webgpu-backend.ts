// The webgpu backend: weights, activations and the KV cache live in GPU buffers; every op is a
// WGSL kernel (shaders/) recorded into one command encoder, submitted once per forward pass when
// the logits are read back (recorder.ts). Weight matrices keep their stored type on the GPU
// (weight-layout.ts repacks unaligned GGML blocks, never expanding them); a matrix larger than
// one storage binding may be is split into row ranges, one buffer and one dispatch each.
import {
  ropeDims, type Activations, type AttentionParams, type Backend, type BatchLayout, type KVCache, type KVCacheShape,
  type RopeParams, type Weight,
} from '../backend.js';
import { elementCount, type TensorInfo } from '../../formats/tensor.js';
import { dequantize } from '../../quant/dequantize.js';
import type { DType } from '../../quant/dtype.js';
import { firstNonFiniteBlock } from '../../quant/block-checks.js';
import { f32Bits } from '../../quant/f16.js';
import { normRows, ropeAngleTable } from '../f32-ops.js';
import { BufferUsage, MapMode, pickAdapter, summarize, type AdapterSummary } from './gpu.js';
import { GpuBuffer, Recorder, type Kernel, type RecorderStats } from './recorder.js';
import { GPU_WEIGHT_DTYPES, gpuRowBytes, repack, weightReader, type GpuLayout } from './weight-layout.js';
import { GEMM_TILE_ROWS, GEMM_TILE_TOKENS, MATVEC_ROWS, MATVEC_TOKENS, gemmShader, matvecShader } from './shaders/matmul.js';
import {
  ATTENTION, ATTENTION_MAX_HEAD_DIM, COPY_WITHIN, GATHER_ROWS, RMS_NORM, ROPE, SOFTCAP, STORE_KV, addShader, embedShader,
  geluMulShader, siluMulShader,
} from './shaders/ops.js';

const MAX_GRID = 65535;
/** The kernels index bindings with u32 words and f16 elements: no binding may pass 4 GiB. */
const MAX_BINDING = 2 ** 32 - 4;

/**
 * The GPU cannot hold or run this model as asked (out of memory, a buffer above the adapter's
 * binding limit, an unsupported head size). `--backend auto` then runs the model on the cpu backend.
 */
export class GpuCapacityError extends RangeError {
  constructor(message: string, readonly outOfMemory = false) {
    super(message);
    this.name = 'GpuCapacityError';
  }
}


interface WeightPart {
  buffer: GpuBuffer;
  /** First row of the matrix this part holds, and how many. */
  r0: number;
  n: number;
  layout: GpuLayout;
}

class GpuWeight implements Weight {
  constructor(
    readonly name: string, readonly shape: readonly number[], readonly dtype: DType,
    /** Matrices: row ranges (one unless the matrix exceeds a storage binding). */
    readonly parts: WeightPart[],
    /** 1-D weights (norms, biases): f32. */
    readonly vector?: GpuBuffer,
  ) {}
}

class GpuActivations implements Activations {
  constructor(readonly rows: number, readonly cols: number, readonly buffer: GpuBuffer) {}
}

class GpuKVCache implements KVCache {
  constructor(readonly shape: KVCacheShape, readonly keys: GpuBuffer[], readonly values: GpuBuffer[]) {}
}

const act = (a: Activations) => a as GpuActivations;
const wt = (w: Weight) => w as GpuWeight;

export interface WebGpuOptions {
  /** Use a software adapter (lavapipe, SwiftShader) when no hardware one exists. Default true. */
  allowSoftware?: boolean;
  /** Time compute passes on the GPU (timestamp queries, where the adapter has them) for stats.gpuMs. */
  timestamps?: boolean;
  /** Lowers the bytes one part of a weight matrix may take (the adapter's binding limit), to exercise splitting on small models. */
  maxWeightPartBytes?: number;
}

/** A 1-D grid of `n` workgroups, 2-D when it exceeds the per-dimension limit: [x, y] and x for the shader. */
function grid2d(n: number): { x: number; y: number } {
  if (n <= MAX_GRID) return { x: Math.max(n, 1), y: 1 };
  return { x: MAX_GRID, y: Math.ceil(n / MAX_GRID) };
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private readonly rec: Recorder;
  private readonly kernels = new Map<string, Kernel>();
  private readonly buffers = new Set<GpuBuffer>();
  private readback: GpuBuffer | undefined;
  /** Errors no error scope caught (made while loading weights): reported, once, by the next read. */
  private readonly errors: GPUError[] = [];
  private lost: string | undefined;
  /** Bytes of GPU buffers this backend holds. */
  allocatedBytes = 0;

  private constructor(
    private readonly device: GPUDevice, readonly adapter: AdapterSummary,
    /** Largest buffer one storage binding may cover. */
    private readonly maxBinding: number,
    /** Largest part of a split weight matrix. */
    private readonly maxWeightPart: number,
    timestamps: boolean,
  ) {
    const dummy = this.createBuffer(16, BufferUsage.STORAGE, 'unused binding');
    this.rec = new Recorder(device, dummy, timestamps);
    device.addEventListener('uncapturederror', (ev) => {
      if (this.errors.length < 8) this.errors.push((ev as GPUUncapturedErrorEvent).error);
    });
    void device.lost.then((info) => { this.lost = info.message || info.reason; });
  }

  static async create(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
    const adapter = await pickAdapter(opts.allowSoftware ?? true);
    const summary = summarize(adapter);
    const limits = adapter.limits;
    const timestamps = (opts.timestamps ?? false) && adapter.features.has('timestamp-query');
    const device = await adapter.requestDevice({
      requiredFeatures: timestamps ? ['timestamp-query'] : [],
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
      },
    });
    const maxBinding = Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, MAX_BINDING) / 4) * 4;
    return new WebGpuBackend(device, summary, maxBinding, Math.min(maxBinding, opts.maxWeightPartBytes ?? Infinity), timestamps);
  }

  /** Dispatches, submits, JS recording time and (with timestamps) GPU time so far (see minerva bench). */
  async profile(): Promise<RecorderStats> {
    await this.rec.settled();
    return { ...this.rec.stats };
  }

  private createBuffer(size: number, usage: number, label: string): GpuBuffer {
    const bytes = Math.max(16, Math.ceil(size / 4) * 4);
    if (usage & BufferUsage.STORAGE && bytes > this.maxBinding) {
      throw new GpuCapacityError(`webgpu backend: ${label} needs ${mib(bytes)} in one buffer; this adapter binds at most ${mib(this.maxBinding)}`
        + (label.includes('KV cache') ? ' (try a smaller context, --ctx-size, or fewer parallel sequences)' : ''));
    }
    const buffer = new GpuBuffer(this.device.createBuffer({ size: bytes, usage, label }), bytes);
    this.buffers.add(buffer);
    this.allocatedBytes += bytes;
    return buffer;
  }

  private storage(size: number, label: string): GpuBuffer {
    return this.createBuffer(size, BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST, label);
  }

  private kernel(key: string, make: () => { code: string; buffers: { binding: number; kind: 'read' | 'rw' }[]; arena: boolean }): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      const m = make();
      k = this.rec.kernel(key, m.code, m.buffers, m.arena);
      this.kernels.set(key, k);
    }
    return k;
  }

  loadWeight(info: TensorInfo, data: Uint8Array): Weight {
    const count = elementCount(info.shape);
    if (info.shape.length === 1) { // norms and biases: f32
      const values = dequantize(info.dtype, data, count);
      const buffer = this.storage(count * 4, info.name);
      this.device.queue.writeBuffer(buffer.buffer, 0, values.buffer, values.byteOffset, values.byteLength);
      return new GpuWeight(info.name, info.shape, 'F32', [], buffer);
    }
    if (!GPU_WEIGHT_DTYPES.includes(info.dtype)) {
      throw new RangeError(`webgpu backend: ${info.name} is ${info.dtype}; only ${GPU_WEIGHT_DTYPES.join(', ')} matrices are supported`);
    }
    const bad = firstNonFiniteBlock(info.dtype, data);
    if (bad >= 0) throw new RangeError(`webgpu backend: ${info.name}: block ${bad} has a non-finite scale (inf or NaN)`);
    const [rows, k] = info.shape as [number, number];
    // Rows per part: as many as one binding holds (the scale plane included).
    const rowBytes = gpuRowBytes(info.dtype, k); // (the scale plane's rounding up to a word fits in the 16 bytes kept free)
    const perPart = Math.max(1, Math.floor((this.maxWeightPart - 16) / rowBytes));
    const parts: WeightPart[] = [];
    for (let r0 = 0; r0 < rows; r0 += perPart) {
      const r1 = Math.min(rows, r0 + perPart);
      const { bytes, layout } = repack(info.dtype, data, k, r0, r1);
      const buffer = this.storage(layout.bytes, parts.length === 0 && r1 === rows ? info.name : `${info.name} rows ${r0}..${r1 - 1}`);
      this.device.queue.writeBuffer(buffer.buffer, 0, bytes.buffer, bytes.byteOffset, layout.bytes);
      parts.push({ buffer, r0, n: r1 - r0, layout });
    }
    return new GpuWeight(info.name, info.shape, info.dtype, parts);
  }

  createActivations(rows: number, cols: number): Activations {
    return new GpuActivations(rows, cols, this.storage(rows * cols * 4, `activations [${rows}, ${cols}]`));
  }

  rowsView(a: Activations, rows: number): Activations {
    const x = act(a);
    if (rows > x.rows) throw new Error(`rowsView: ${rows} rows asked of a buffer of ${x.rows}`);
    return new GpuActivations(rows, x.cols, x.buffer);
  }

  createKVCache(shape: KVCacheShape): KVCache {
    if (shape.headDim > ATTENTION_MAX_HEAD_DIM) throw new GpuCapacityError(`webgpu backend: head size ${shape.headDim} is above ${ATTENTION_MAX_HEAD_DIM}`);
    const bytes = shape.maxSeqs * shape.ctxLen * shape.nKVHeads * shape.headDim * 4;
    const keys: GpuBuffer[] = [], values: GpuBuffer[] = [];
    for (let l = 0; l < shape.nLayers; l++) {
      keys.push(this.storage(bytes, `KV cache (keys of layer ${l})`));
      values.push(this.storage(bytes, `KV cache (values of layer ${l})`));
    }
    return new GpuKVCache(shape, keys, values);
  }

  /** Times the JS side of an op (the recording), for stats.encodeMs. */
  private timed(f: () => void): void {
    const t0 = performance.now();
    f();
    this.rec.stats.encodeMs += performance.now() - t0;
  }

  embed(out: Activations, table: Weight, tokens: Int32Array, scale = 1): void {
    this.timed(() => {
      const t = wt(table), o = act(out);
      const dim = t.shape[1]!;
      for (const id of tokens) {
        if (!(id >= 0 && id < t.shape[0]!)) throw new RangeError(`embed: token id ${id} is outside the table's ${t.shape[0]} rows`);
      }
      this.rec.ensureRoom(t.parts.length);
      const at = this.rec.put(tokens, 'u32');
      const k = this.kernel(`embed ${t.dtype}`, () => ({
        code: embedShader(weightReader(t.dtype)), arena: true,
        buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'rw' }],
      }));
      for (const part of t.parts) {
        const g = grid2d(Math.ceil((tokens.length * (part.layout.k / 8)) / 64));
        this.rec.dispatch(k, [part.buffer, o.buffer], [part.n, part.layout.k, part.layout.aux, part.r0, at, tokens.length, dim, g.x, f32Bits(scale)], [g.x, g.y, 1]);
      }
    });
  }

  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void {
    this.timed(() => {
      const xa = act(x);
      if (act(out).buffer === xa.buffer) throw new Error('rmsNorm: out must not alias x');
      const k = this.kernel('rmsNorm', () => ({
        code: RMS_NORM, arena: false,
        buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'read' }, { binding: 4, kind: 'rw' }],
      }));
      const n = normRows(xa.rows, xa.cols, weight.shape[0]!);
      const g = grid2d(n.rows);
      this.rec.dispatch(k, [xa.buffer, wt(weight).vector!, act(out).buffer], [n.rows, n.cols, f32Bits(eps), g.x], [g.x, g.y, 1]);
    });
  }

  matmul(out: Activations, x: Activations, w: Weight, bias?: Weight): void {
    this.timed(() => {
      const o = act(out), xa = act(x), wa = wt(w);
      const [n, k] = wa.shape as [number, number];
      if (xa.cols !== k || o.cols !== n) throw new Error(`matmul: x [${xa.rows}, ${xa.cols}] · ${wa.name} [${n}, ${k}] into [${o.rows}, ${o.cols}]`);
      if (o.buffer === xa.buffer) throw new Error('matmul: out must not alias x');
      const t = xa.rows;
      const gemm = t > MATVEC_TOKENS;
      const kern = this.kernel(`${gemm ? 'gemm' : 'matvec'} ${wa.dtype}`, () => ({
        code: (gemm ? gemmShader : matvecShader)(weightReader(wa.dtype)), arena: false,
        buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'read' }, { binding: 4, kind: 'read' }, { binding: 5, kind: 'rw' }],
      }));
      const b = bias ? wt(bias).vector! : this.rec.none;
      for (const part of wa.parts) {
        const g = grid2d(Math.ceil(part.n / (gemm ? GEMM_TILE_ROWS : MATVEC_ROWS)));
        const z = Math.ceil(t / (gemm ? GEMM_TILE_TOKENS : MATVEC_TOKENS));
        this.rec.dispatch(kern, [part.buffer, xa.buffer, b, o.buffer],
          [part.n, part.layout.k, t, k, n, part.r0, part.layout.aux, bias ? 1 : 0, g.x], [g.x, g.y, z]);
      }
    });
  }

  /** The rope angles of the last batch (cos, sin per token and pair, times the scale), while the arena still holds them. */
  private ropeCache = {
    generation: -1, offset: 0, positions: new Int32Array(0), invFreq: undefined as Float32Array | undefined, scale: 1,
    /** Host scratch for the angles, grown on demand (put() copies them into the arena). */
    table: new Float32Array(0),
  };

  private ropeTable(batch: BatchLayout, n: number, invFreq: Float32Array, scale: number): number {
    const c = this.ropeCache, positions = batch.positions.subarray(0, n);
    if (c.generation === this.rec.generation && c.invFreq === invFreq && c.scale === scale && c.positions.length === n
      && c.positions.every((p, i) => p === positions[i])) return c.offset;
    const size = n * invFreq.length * 2;
    if (c.table.length < size) c.table = new Float32Array(size);
    const table = c.table.subarray(0, size);
    ropeAngleTable(positions, invFreq, table, scale); // (GPU sin/cos are coarse for large angles)
    const offset = this.rec.put(table, 'f32');
    Object.assign(c, { generation: this.rec.generation, offset, positions: positions.slice(), invFreq, scale });
    return offset;
  }

  rope(x: Activations, batch: BatchLayout, nHeads: number, headDim: number, rope: RopeParams): void {
    this.timed(() => {
      const xa = act(x);
      const dims = ropeDims(rope, headDim);
      this.rec.ensureRoom(1);
      const table = this.ropeTable(batch, xa.rows, rope.invFreq, rope.scale ?? 1);
      const k = this.kernel('rope', () => ({ code: ROPE, arena: true, buffers: [{ binding: 2, kind: 'rw' }] }));
      const g = grid2d(Math.ceil((xa.rows * nHeads * (dims / 2)) / 64));
      this.rec.dispatch(k, [xa.buffer], [xa.rows, xa.cols, nHeads, headDim, dims, rope.style === 'interleaved' ? 1 : 0, table, g.x], [g.x, g.y, 1]);
    });
  }

  /** The batch layout (positions then slots) in the arena, shared by every layer of a step. */
  private batchCache = { generation: -1, offset: 0, n: 0, data: new Int32Array(0) };

  private batchData(batch: BatchLayout, n: number): number {
    const c = this.batchCache;
    const same = c.generation === this.rec.generation && c.n === n
      && batch.positions.subarray(0, n).every((v, i) => v === c.data[i]) && batch.seqs.subarray(0, n).every((v, i) => v === c.data[n + i]);
    if (same) return c.offset;
    if (c.data.length < 2 * n) c.data = new Int32Array(2 * n);
    c.data.set(batch.positions.subarray(0, n));
    c.data.set(batch.seqs.subarray(0, n), n);
    Object.assign(c, { generation: this.rec.generation, offset: this.rec.put(c.data.subarray(0, 2 * n), 'u32'), n });
    return c.offset;
  }

  attention(
    out: Activations, q: Activations, k: Activations, v: Activations,
    cache: KVCache, layer: number, batch: BatchLayout, p: AttentionParams,
  ): void {
    this.timed(() => {
      const c = cache as GpuKVCache;
      const { ctxLen } = c.shape;
      const n = act(q).rows, kvDim = p.nKVHeads * p.headDim;
      const o = act(out).buffer;
      if (o === act(q).buffer || o === act(k).buffer || o === act(v).buffer) throw new Error('attention: out must not alias q, k or v');
      for (let t = 0; t < n; t++) {
        const pos = batch.positions[t]!, seq = batch.seqs[t]!;
        if (!(pos >= 0 && pos < ctxLen)) throw new Error(`position ${pos} is beyond the context length ${ctxLen}`);
        if (!(seq >= 0 && seq < c.shape.maxSeqs)) throw new Error(`slot ${seq} is beyond the cache's ${c.shape.maxSeqs} sequences`);
      }
      this.rec.ensureRoom(2);
      const at = this.batchData(batch, n);
      // 1. Store every token's k and v first: a later token of the batch attends to earlier ones.
      const store = this.kernel('storeKV', () => ({
        code: STORE_KV, arena: true,
        buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'read' }, { binding: 4, kind: 'rw' }, { binding: 5, kind: 'rw' }],
      }));
      let g = grid2d(Math.ceil((n * kvDim) / 64));
      this.rec.dispatch(store, [act(k).buffer, act(v).buffer, c.keys[layer]!, c.values[layer]!], [n, kvDim, ctxLen, at, at + n, g.x], [g.x, g.y, 1]);
      // 2. Causal attention, a workgroup per (token, head).
      const attn = this.kernel('attention', () => ({
        code: ATTENTION, arena: true,
        buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'read' }, { binding: 4, kind: 'read' }, { binding: 5, kind: 'rw' }],
      }));
      g = grid2d(n * p.nHeads);
      this.rec.dispatch(attn, [act(q).buffer, c.keys[layer]!, c.values[layer]!, act(out).buffer],
        [n, p.nHeads, p.nKVHeads, p.headDim, ctxLen, p.slidingWindow ?? 0, f32Bits(p.scale), at, at + n, g.x, f32Bits(p.softcap ?? 0)], [g.x, g.y, 1]);
    });
  }

  siluMul(out: Activations, gate: Activations, up: Activations): void {
    this.timed(() => {
      const o = act(out);
      if (o.buffer === act(up).buffer) throw new Error('siluMul: out must not alias up');
      const inPlace = o.buffer === act(gate).buffer;
      const k = this.kernel(`siluMul${inPlace ? ' in place' : ''}`, () => ({
        code: siluMulShader(inPlace), arena: false,
        buffers: [...(inPlace ? [] : [{ binding: 2, kind: 'read' as const }]), { binding: 3, kind: 'read' }, { binding: 4, kind: 'rw' }],
      }));
      this.elementwise(k, inPlace ? [act(up).buffer, o.buffer] : [act(gate).buffer, act(up).buffer, o.buffer], o.rows * o.cols);
    });
  }

  geluMul(out: Activations, gate: Activations, up: Activations): void {
    this.timed(() => {
      const o = act(out);
      if (o.buffer === act(up).buffer) throw new Error('geluMul: out must not alias up');
      const inPlace = o.buffer === act(gate).buffer;
      const k = this.kernel(`geluMul${inPlace ? ' in place' : ''}`, () => ({
        code: geluMulShader(inPlace), arena: false,
        buffers: [...(inPlace ? [] : [{ binding: 2, kind: 'read' as const }]), { binding: 3, kind: 'read' }, { binding: 4, kind: 'rw' }],
      }));
      this.elementwise(k, inPlace ? [act(up).buffer, o.buffer] : [act(gate).buffer, act(up).buffer, o.buffer], o.rows * o.cols);
    });
  }

  softcap(x: Activations, cap: number): void {
    this.timed(() => {
      const xa = act(x), count = xa.rows * xa.cols;
      const k = this.kernel('softcap', () => ({ code: SOFTCAP, arena: false, buffers: [{ binding: 2, kind: 'rw' }] }));
      const g = grid2d(Math.ceil(count / 64));
      this.rec.dispatch(k, [xa.buffer], [count, f32Bits(cap), g.x], [g.x, g.y, 1]);
    });
  }

  add(out: Activations, a: Activations, b: Activations): void {
    this.timed(() => {
      const o = act(out);
      // (a + b is b + a exactly, so out aliasing b is out aliasing a with the operands swapped)
      const [x, y] = o.buffer === act(b).buffer ? [act(b), act(a)] : [act(a), act(b)];
      if (o.buffer === y.buffer) throw new Error('add: out aliases both operands');
      const inPlace = o.buffer === x.buffer;
      const k = this.kernel(`add${inPlace ? ' in place' : ''}`, () => ({
        code: addShader(inPlace), arena: false,
        buffers: [...(inPlace ? [] : [{ binding: 2, kind: 'read' as const }]), { binding: 3, kind: 'read' }, { binding: 4, kind: 'rw' }],
      }));
      this.elementwise(k, inPlace ? [y.buffer, o.buffer] : [x.buffer, y.buffer, o.buffer], o.rows * o.cols);
    });
  }

  private elementwise(k: Kernel, buffers: GpuBuffer[], count: number): void {
    const g = grid2d(Math.ceil(count / 64));
    this.rec.dispatch(k, buffers, [count, g.x], [g.x, g.y, 1]);
  }

  gatherRows(out: Activations, x: Activations, rows: Int32Array): void {
    this.timed(() => {
      const xa = act(x);
      if (act(out).buffer === xa.buffer) throw new Error('gatherRows: out must not alias x');
      for (const r of rows) if (!(r >= 0 && r < xa.rows)) throw new RangeError(`gatherRows: row ${r} of ${xa.rows}`);
      this.rec.ensureRoom(1);
      const at = this.rec.put(rows, 'u32');
      const k = this.kernel('gatherRows', () => ({
        code: GATHER_ROWS, arena: true, buffers: [{ binding: 2, kind: 'read' }, { binding: 3, kind: 'rw' }],
      }));
      const g = grid2d(Math.ceil((rows.length * xa.cols) / 64));
      this.rec.dispatch(k, [xa.buffer, act(out).buffer], [rows.length, xa.cols, at, g.x], [g.x, g.y, 1]);
    });
  }

  copyKV(cache: KVCache, from: number, to: number, count: number): void {
    if (count === 0 || from === to) return;
    this.timed(() => {
      const c = cache as GpuKVCache;
      const rowLen = c.shape.nKVHeads * c.shape.headDim, slotLen = c.shape.ctxLen * rowLen;
      // A kernel, not copyBufferToBuffer: WebGPU copies never stay within one buffer.
      const k = this.kernel('copyWithin', () => ({ code: COPY_WITHIN, arena: false, buffers: [{ binding: 2, kind: 'rw' }] }));
      const g = grid2d(Math.ceil((count * rowLen) / 64));
      for (let l = 0; l < c.shape.nLayers; l++) {
        for (const b of [c.keys[l]!, c.values[l]!]) this.rec.dispatch(k, [b], [from * slotLen, to * slotLen, count * rowLen, g.x], [g.x, g.y, 1]);
      }
    });
  }

  async read(a: Activations, into?: Float32Array): Promise<Float32Array> {
    const x = act(a);
    const count = x.rows * x.cols, bytes = count * 4;
    if (into && into.length < count) throw new RangeError(`read: ${count} values do not fit in ${into.length}`);
    // One read-back buffer, kept; a read while it is still mapping gets a buffer of its own.
    let rb = this.readback;
    const own = this.readbackBusy;
    if (own) {
      rb = this.createBuffer(bytes, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'read-back');
    } else if (!rb || rb.size < bytes) {
      if (rb) this.release(rb);
      rb = this.readback = this.createBuffer(Math.max(bytes, 4096), BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'read-back');
    }
    const buffer = rb!.buffer;
    if (!own) this.readbackBusy = true;
    try {
      this.rec.copy(x.buffer.buffer, 0, buffer, 0, bytes);
      // This step's errors are caught by error scopes, so one failed step does not fail every later one.
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
      this.rec.flush();
      const scoped = [this.device.popErrorScope(), this.device.popErrorScope()];
      let mapError: Error | undefined;
      try {
        await buffer.mapAsync(MapMode.READ, 0, bytes);
      } catch (e) {
        mapError = e as Error;
      }
      const errors = [...this.errors.splice(0), ...(await Promise.all(scoped)).filter((e): e is GPUError => e !== null)];
      if (this.lost) throw new Error(`webgpu: the GPU device was lost: ${this.lost}`);
      if (errors.length > 0 || mapError) {
        if (!mapError) buffer.unmap();
        const oom = errors.find((e) => e.constructor.name === 'GPUOutOfMemoryError');
        if (oom) throw new GpuCapacityError(`webgpu: the GPU is out of memory: ${oom.message}`, true);
        throw new Error(`webgpu: ${errors[0]?.message ?? mapError!.message}`);
      }
      const out = into ? into.subarray(0, count) : new Float32Array(count);
      out.set(new Float32Array(buffer.getMappedRange(0, bytes), 0, count));
      buffer.unmap();
      return out;
    } finally {
      if (own) this.release(rb!);
      else this.readbackBusy = false;
    }
  }

  private readbackBusy = false;

  private release(b: GpuBuffer): void {
    this.buffers.delete(b);
    this.allocatedBytes -= b.size;
    b.buffer.destroy();
  }

  dispose(): void {
    this.rec.dispose();
    for (const b of this.buffers) b.buffer.destroy();
    this.buffers.clear();
    this.allocatedBytes = 0;
    this.device.destroy();
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
