// minerva bench ops: runs the plan's cases through the Backend interface (so every backend is
// measured by the same code), the read bandwidth through the cpu backend's SIMD sum, and tensor
// loading from SafeTensors against JSON.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Activations, Backend, BatchLayout, Weight } from '../backends/backend.js';
import { CpuBackend } from '../backends/cpu/cpu-backend.js';
import { ReferenceBackend } from '../backends/reference/reference-backend.js';
import { openSafeTensors, writeSafeTensors } from '../formats/safetensors.js';
import { byteSize, type DType } from '../quant/dtype.js';
import {
  ATTENTION_BATCH, ATTENTION_SHAPE, ROPE_HEAD_DIM, randomValues, randomWeightBytes, unsupportedShape,
  type OpName, type OpsBackend, type OpsPlan,
} from './ops-cases.js';

/** One timed case. `threads` is null for backends without a thread pool. */
export interface OpResult {
  backend: OpsBackend;
  threads: number | null;
  op: Exclude<OpName, 'load'>;
  /** matmul: the weight type. */
  dtype?: DType;
  /** matmul: outputs and inputs (n = k); elementwise ops, rmsNorm, rope: the row length in n. */
  n?: number;
  k?: number;
  /** Rows (tokens) per call; attention: sequences decoding one token each. */
  batch?: number;
  /** attention: context length; mode: one sequence (decode) or ATTENTION_BATCH at once (batch). */
  ctx?: number;
  mode?: 'decode' | 'batch';
  /** Median and fastest time of one call, and how many calls were timed. */
  msPerCall: number;
  msMin: number;
  calls: number;
  /** Floating-point operations per second (matmul, attention), 1e9. */
  gflops?: number;
  /** Bytes per second, 1e9: matmul batch 1 = stored weight bytes; elementwise = bytes read + written; attention = KV cache read. */
  gbps?: number;
  /** gbps over the read bandwidth measured with the same threads (matmul batch 1, cpu and reference). */
  bandwidthFraction?: number;
}

export interface BandwidthResult {
  threads: number;
  bytes: number;
  gbps: number;
}

export interface LoadResult {
  format: 'safetensors' | 'json';
  /** Bytes of the f32 tensor. */
  tensorBytes: number;
  fileBytes: number;
  msMedian: number;
  /** Tensor MB (1e6 bytes) per second. */
  mbps: number;
}

export interface RunOutput {
  bandwidth: BandwidthResult[];
  results: OpResult[];
  loading: LoadResult[];
  notes: string[];
  /** The GPU adapter, when webgpu ran. */
  adapter?: string;
}

export type ProgressFn = (done: number, total: number, what: string) => void;

/** A backend of `name`; cpu with `threads` workers. */
async function createBackend(name: OpsBackend, threads: number): Promise<Backend> {
  switch (name) {
    case 'cpu': return CpuBackend.create(threads);
    case 'reference': return new ReferenceBackend();
    case 'webgpu': {
      // Loaded only when asked for: importing Dawn costs time and prints driver warnings.
      const { WebGpuBackend } = await import('../backends/webgpu/webgpu-backend.js');
      return WebGpuBackend.create({ allowSoftware: true });
    }
  }
}

const ELEMENTWISE: readonly OpName[] = ['add', 'siluMul', 'geluMul', 'softcap', 'rmsNorm', 'rope'];
/** Bytes each elementwise op reads and writes per element (f32). */
const ELEMENT_BYTES: Record<string, number> = { add: 12, siluMul: 12, geluMul: 12, softcap: 8, rmsNorm: 8, rope: 8 };

/** Runs every case of `plan`; `onProgress` hears of each step. */
export async function runOps(plan: OpsPlan, onProgress: ProgressFn = () => {}): Promise<RunOutput> {
  const out: RunOutput = { bandwidth: [], results: [], loading: [], notes: [] };
  const has = (op: OpName) => plan.ops.includes(op);
  const elementwise = ELEMENTWISE.filter(has);
  const maxBatch = Math.max(...plan.batches);
  const configs = plan.backends.flatMap((b) => (b === 'cpu' ? plan.threads : [null]).map((t) => ({ backend: b, threads: t })));
  // (not for webgpu alone: its weights are in GPU memory, which this does not measure)
  const bandwidthThreads = [...new Set(configs.filter((c) => c.backend !== 'webgpu').map((c) => c.threads ?? 1))];

  let done = 0;
  const total = (has('matmul') ? configs.length * plan.dtypes.length * plan.sizes.length : 0)
    + configs.length * elementwise.length * plan.sizes.length
    + (has('attention') ? configs.length * plan.contexts.length : 0)
    + (has('matmul') ? bandwidthThreads.length : 0) + (has('load') ? 2 : 0);
  const step = (what: string) => onProgress(++done, total, what);
  onProgress(0, total, 'starting');

  const timing = { repeat: plan.repeat, minTimeMs: plan.minTimeMs };

  // The machine's read bandwidth, for each thread count the matmuls run with (the reference
  // backend is one thread). Only the matmul's batch-1 GB/s is held against it.
  if (has('matmul')) {
    for (const threads of bandwidthThreads) {
      const cpu = await CpuBackend.create(threads);
      try {
        const m = cpu.measureReadBandwidth(plan.bandwidthBytes, Math.max(plan.repeat, 3));
        if (!(m.checksum === m.bytes / 4)) throw new Error(`read bandwidth: the sum read back is ${m.checksum}, expected ${m.bytes / 4}`);
        out.bandwidth.push({ threads, bytes: m.bytes, gbps: m.bytesPerSecond / 1e9 });
      } finally {
        cpu.dispose();
      }
      step(`read bandwidth, ${threads} thread${threads === 1 ? '' : 's'}`);
    }
  }
  const bandwidthOf = (threads: number | null) => out.bandwidth.find((b) => b.threads === (threads ?? 1))?.gbps;

  for (const { backend: name, threads } of configs) {
    const label = `${name}${threads === null ? '' : `, ${threads} threads`}`;
    if (has('matmul')) {
      for (const dtype of plan.dtypes) {
        const backend = await createBackend(name, threads ?? 1);
        if (name === 'webgpu') out.adapter ??= adapterName(backend);
        try {
          for (const size of plan.sizes) {
            step(`${label}: matmul ${dtype} ${size}×${size}`);
            const why = unsupportedShape(dtype, size);
            if (why) {
              note(out, `matmul ${dtype} ${size}×${size} skipped: ${why}`);
              continue;
            }
            const rs = await benchMatmul(backend, dtype, size, plan.batches, timing);
            for (const r of rs) {
              const bw = bandwidthOf(threads);
              out.results.push({
                backend: name, threads, ...r,
                ...(r.batch === 1 && r.gbps !== undefined && bw !== undefined && name !== 'webgpu' ? { bandwidthFraction: r.gbps / bw } : {}),
              });
            }
          }
        } finally {
          backend.dispose();
        }
      }
    }
    if (elementwise.length > 0 || has('attention')) {
      const backend = await createBackend(name, threads ?? 1);
      if (name === 'webgpu') out.adapter ??= adapterName(backend);
      try {
        for (const op of elementwise) {
          for (const size of plan.sizes) {
            step(`${label}: ${op} ×${size}`);
            if (op === 'rope' && size % ROPE_HEAD_DIM !== 0) {
              note(out, `rope over rows of ${size} skipped: not whole heads of ${ROPE_HEAD_DIM}`);
              continue;
            }
            for (const batch of plan.batches) {
              const t = await benchElementwise(backend, op, size, batch, maxBatch, timing);
              const elements = size * batch;
              out.results.push({ backend: name, threads, op: op as OpResult['op'], n: size, batch, ...t, gbps: elements * ELEMENT_BYTES[op]! / (t.msPerCall * 1e6) });
            }
          }
        }
        if (has('attention')) {
          for (const ctx of plan.contexts) {
            step(`${label}: attention over ${ctx}`);
            out.results.push(...(await benchAttention(backend, ctx, timing)).map((r) => ({ backend: name, threads, ...r })));
          }
        }
      } finally {
        backend.dispose();
      }
    }
  }
  if (has('load')) out.loading = await benchLoading(plan.loadBytes, plan.repeat, step);
  out.notes.push('softmax: the Backend interface has no standalone softmax (attention computes its own), so none is measured');
  if (plan.backends.includes('webgpu')) out.notes.push('webgpu: GB/s is not compared with a read bandwidth (the one measured is the CPU\'s)');
  return out;
}

function note(out: RunOutput, text: string): void {
  if (!out.notes.includes(text)) out.notes.push(text);
}

function adapterName(b: Backend): string | undefined {
  const a = (b as { adapter?: { description?: string; vendor?: string; architecture?: string } }).adapter;
  return a ? [a.vendor, a.architecture, a.description].filter((s) => s).join(' ') : undefined;
}

interface Timed { msPerCall: number; msMin: number; calls: number }

/**
 * Times `call`: one warm-up call, one to size the samples, then samples of several calls (about 1 ms or more each, so the
 * clock and the sync are small against them) until at least `repeat` calls and `minTimeMs` have
 * passed. `sync` waits for queued work (GPU); the cpu and reference ops return when done.
 */
async function timeCalls(call: () => void, sync: () => Promise<unknown>, o: { repeat: number; minTimeMs: number }): Promise<Timed> {
  call(); // warm-up: first-use allocations, JIT, sleeping workers
  await sync();
  let t0 = performance.now();
  call();
  await sync();
  const one = performance.now() - t0;
  const inner = Math.max(1, Math.min(10_000, Math.floor(1 / Math.max(one, 1e-4))));
  const perCall: number[] = [];
  const start = performance.now();
  let calls = 0;
  while (calls < o.repeat || performance.now() - start < o.minTimeMs) {
    t0 = performance.now();
    for (let i = 0; i < inner; i++) call();
    await sync();
    perCall.push((performance.now() - t0) / inner);
    calls += inner;
  }
  perCall.sort((a, b) => a - b);
  return { msPerCall: perCall[perCall.length >> 1]!, msMin: perCall[0]!, calls };
}

/** Waits for `a`'s writes by reading its first row (what a GPU backend needs; the others are done already). */
function syncOn(backend: Backend, a: Activations): () => Promise<Float32Array> {
  const row = backend.rowsView(a, 1), into = new Float32Array(a.cols);
  return () => backend.read(row, into);
}

/** `rows` rows of random f32 values of length `cols`, put into `into` through the interface (embed of a random table). */
function fill(backend: Backend, into: Activations, seed: number): void {
  const { rows, cols } = into;
  const values = randomValues(rows * cols, 1, seed);
  const table = backend.loadWeight({ name: `table${seed}`, dtype: 'F32', shape: [rows, cols], byteLength: rows * cols * 4 }, new Uint8Array(values.buffer));
  backend.embed(into, table, Int32Array.from({ length: rows }, (_, i) => i));
}

async function benchMatmul(backend: Backend, dtype: DType, size: number, batches: number[], o: { repeat: number; minTimeMs: number }): Promise<Omit<OpResult, 'backend' | 'threads'>[]> {
  const n = size, k = size;
  const bytes = randomWeightBytes(dtype, n, k);
  const w: Weight = backend.loadWeight({ name: `w.${dtype}.${size}`, dtype, shape: [n, k], byteLength: bytes.length }, bytes);
  const maxBatch = Math.max(...batches);
  const x = backend.createActivations(maxBatch, k), y = backend.createActivations(maxBatch, n);
  fill(backend, x, 2);
  const results: Omit<OpResult, 'backend' | 'threads'>[] = [];
  const weightBytes = byteSize(dtype, n * k);
  for (const batch of batches) {
    const xv = backend.rowsView(x, batch), yv = backend.rowsView(y, batch);
    const t = await timeCalls(() => backend.matmul(yv, xv, w), syncOn(backend, yv), o);
    const s = t.msPerCall / 1000;
    results.push({
      op: 'matmul', dtype, n, k, batch, ...t, gflops: 2 * n * k * batch / s / 1e9,
      ...(batch === 1 ? { gbps: weightBytes / s / 1e9 } : {}),
    });
  }
  return results;
}

async function benchElementwise(backend: Backend, op: OpName, size: number, batch: number, maxBatch: number, o: { repeat: number; minTimeMs: number }): Promise<Timed> {
  // Buffers at the largest batch, made once per (backend, size) and viewed per batch.
  const bufs = elementwiseBuffers(backend, size, maxBatch);
  const a = backend.rowsView(bufs.a, batch), b = backend.rowsView(bufs.b, batch), out = backend.rowsView(bufs.out, batch);
  const sync = syncOn(backend, out);
  switch (op) {
    case 'add': return timeCalls(() => backend.add(out, a, b), sync, o);
    case 'siluMul': return timeCalls(() => backend.siluMul(out, a, b), sync, o);
    case 'geluMul': return timeCalls(() => backend.geluMul(out, a, b), sync, o);
    // In place: cap·tanh(x/cap) repeated stays finite.
    case 'softcap': return timeCalls(() => backend.softcap(out, 30), sync, o);
    case 'rmsNorm': return timeCalls(() => backend.rmsNorm(out, a, bufs.norm, 1e-5), sync, o);
    case 'rope': {
      const layout: BatchLayout = { positions: Int32Array.from({ length: batch }, (_, i) => i), seqs: new Int32Array(batch) };
      const invFreq = Float32Array.from({ length: ROPE_HEAD_DIM / 2 }, (_, i) => 10000 ** (-2 * i / ROPE_HEAD_DIM));
      return timeCalls(() => backend.rope(out, layout, size / ROPE_HEAD_DIM, ROPE_HEAD_DIM, { style: 'halves', invFreq }), sync, o);
    }
    default: throw new Error(`not an elementwise op: ${op}`);
  }
}

const elementwiseCache = new WeakMap<Backend, Map<number, { a: Activations; b: Activations; out: Activations; norm: Weight }>>();
function elementwiseBuffers(backend: Backend, size: number, rows: number): { a: Activations; b: Activations; out: Activations; norm: Weight } {
  let perSize = elementwiseCache.get(backend);
  if (!perSize) elementwiseCache.set(backend, perSize = new Map());
  let bufs = perSize.get(size);
  if (!bufs) {
    const a = backend.createActivations(rows, size), b = backend.createActivations(rows, size), out = backend.createActivations(rows, size);
    fill(backend, a, 3);
    fill(backend, b, 4);
    fill(backend, out, 5);
    const w = randomValues(size, 1, 6);
    const norm = backend.loadWeight({ name: `norm${size}`, dtype: 'F32', shape: [size], byteLength: size * 4 }, new Uint8Array(w.buffer));
    bufs = { a, b, out, norm };
    perSize.set(size, bufs);
  }
  return bufs;
}

/** Attention of one new token over `ctx` positions: one sequence, then ATTENTION_BATCH sequences at once. */
async function benchAttention(backend: Backend, ctx: number, o: { repeat: number; minTimeMs: number }): Promise<Omit<OpResult, 'backend' | 'threads'>[]> {
  const { nHeads, nKVHeads, headDim } = ATTENTION_SHAPE;
  const seqs = ATTENTION_BATCH, qDim = nHeads * headDim, kvDim = nKVHeads * headDim;
  const cache = backend.createKVCache({ nLayers: 1, nKVHeads, headDim, maxSeqs: seqs, ctxLen: ctx });
  const q = backend.createActivations(seqs, qDim), k = backend.createActivations(seqs, kvDim), v = backend.createActivations(seqs, kvDim);
  const out = backend.createActivations(seqs, qDim);
  fill(backend, q, 7);
  fill(backend, k, 8);
  fill(backend, v, 9);
  const params = { nHeads, nKVHeads, headDim, scale: 1 / Math.sqrt(headDim) };
  const results: Omit<OpResult, 'backend' | 'threads'>[] = [];
  for (const [mode, batch] of [['decode', 1], ['batch', seqs]] as const) {
    // Each sequence's token sits at the last position: it attends to the whole context (whatever
    // the cache holds there; the work does not depend on the values).
    const layout: BatchLayout = { positions: new Int32Array(batch).fill(ctx - 1), seqs: Int32Array.from({ length: batch }, (_, i) => i) };
    const views = [out, q, k, v].map((a) => backend.rowsView(a, batch)) as [Activations, Activations, Activations, Activations];
    const t = await timeCalls(() => backend.attention(...views, cache, 0, layout, params), syncOn(backend, views[0]), o);
    const s = t.msPerCall / 1000;
    results.push({
      op: 'attention', ctx, mode, batch, ...t,
      gflops: batch * nHeads * 4 * ctx * headDim / s / 1e9,
      gbps: batch * 2 * ctx * kvDim * 4 / s / 1e9,
    });
  }
  return results;
}

/**
 * The same f32 tensor ([rows, 1024], `bytes` in all) read from a SafeTensors file through the
 * project's reader, and parsed from a JSON array: median of `repeat` reads each, page cache warm.
 */
async function benchLoading(bytes: number, repeat: number, step: (what: string) => void): Promise<LoadResult[]> {
  const cols = 1024, rows = Math.max(1, Math.round(bytes / 4 / cols)), count = rows * cols;
  const values = randomValues(count, 1, 10);
  const dir = await mkdtemp(path.join(tmpdir(), 'minerva-bench-ops-'));
  try {
    const stFile = path.join(dir, 'tensor.safetensors'), jsonFile = path.join(dir, 'tensor.json');
    await writeSafeTensors(stFile, [{ name: 'x', dtype: 'F32', shape: [rows, cols], data: new Uint8Array(values.buffer) }]);
    await writeFile(jsonFile, JSON.stringify(Array.from(values)));
    const measure = async (read: () => Promise<Float32Array>): Promise<number> => {
      const ms: number[] = [];
      for (let i = 0; i <= repeat; i++) {
        const t0 = performance.now();
        const got = await read();
        const t = performance.now() - t0;
        if (got.length !== count || got[count - 1] !== values[count - 1]) throw new Error('tensor loading: the tensor read back differs from the one written');
        if (i > 0) ms.push(t); // read 0 warms the page cache
      }
      ms.sort((a, b) => a - b);
      return ms[ms.length >> 1]!;
    };
    const st = await measure(async () => {
      const file = await openSafeTensors(stFile);
      try {
        const data = await file.read('x');
        return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
      } finally {
        await file.close();
      }
    });
    step('SafeTensors load');
    const json = await measure(async () => {
      const parsed: unknown = JSON.parse(await readFile(jsonFile, 'utf8'));
      if (!Array.isArray(parsed)) throw new Error(`${jsonFile}: not a JSON array`);
      return Float32Array.from(parsed as number[]);
    });
    step('JSON load');
    const tensorBytes = count * 4;
    return [
      { format: 'safetensors', tensorBytes, fileBytes: (await stat(stFile)).size, msMedian: st, mbps: tensorBytes / (st * 1e3) },
      { format: 'json', tensorBytes, fileBytes: (await stat(jsonFile)).size, msMedian: json, mbps: tensorBytes / (json * 1e3) },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
