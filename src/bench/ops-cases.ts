// minerva bench ops: what is measured. The option lists (checked here, with errors naming the
// flag), each backend's default sets, and the random weights the matmul cases run on.
import { quantize } from '../quant/dequantize.js';
import { byteSize, DTYPE_LAYOUT, WEIGHT_DTYPES, type DType } from '../quant/dtype.js';

/** The ops a run can measure (--ops); Backend method names, plus `load` (SafeTensors vs JSON). */
export const OPS = ['matmul', 'add', 'siluMul', 'geluMul', 'softcap', 'rmsNorm', 'rope', 'attention', 'load'] as const;
export type OpName = typeof OPS[number];

export const OPS_BACKENDS = ['cpu', 'reference', 'webgpu'] as const;
export type OpsBackend = typeof OPS_BACKENDS[number];

/** Everything a run measures; every list non-empty. */
export interface OpsPlan {
  backends: OpsBackend[];
  ops: OpName[];
  dtypes: DType[];
  /** Square-ish matmul sizes: n = k. Also the row length of the elementwise ops. */
  sizes: number[];
  /** Tokens per matmul (rows of the activations). */
  batches: number[];
  /** Attention context lengths. */
  contexts: number[];
  /** cpu worker-pool sizes; the other backends run once. */
  threads: number[];
  /** Fewest calls timed per case. */
  repeat: number;
  /** Least time spent per case, ms. */
  minTimeMs: number;
  /** Size of the buffer the read bandwidth is measured over. */
  bandwidthBytes: number;
  /** Size of the f32 tensor loaded from SafeTensors and from JSON. */
  loadBytes: number;
}

/** The flags as given; undefined = the backend's default. */
export interface OpsFlags {
  backend?: OpsBackend[] | 'auto';
  ops?: OpName[];
  dtypes?: DType[];
  sizes?: number[];
  batches?: number[];
  contexts?: number[];
  threads?: number[];
  repeat?: number;
  minTime?: number;
  bandwidthMib?: number;
  loadMib?: number;
}

/**
 * Defaults sized to finish in a few minutes on 2 vCPUs. The reference backend is plain
 * TypeScript over f32 (tens of times slower), so it gets smaller sizes.
 */
export const DEFAULTS = {
  cpu: { sizes: [256, 1024, 4096], batches: [1, 16, 128], contexts: [128, 512, 2048, 4096] },
  webgpu: { sizes: [256, 1024, 4096], batches: [1, 16, 128, 512], contexts: [128, 512, 2048, 4096] },
  reference: { sizes: [256, 512], batches: [1, 8], contexts: [128, 512] },
} as const satisfies Record<OpsBackend, { sizes: number[]; batches: number[]; contexts: number[] }>;

/** Attention's shape: Llama-3.2-1B's heads (32 query heads sharing 8 KV heads of 64). */
export const ATTENTION_SHAPE = { nHeads: 32, nKVHeads: 8, headDim: 64 } as const;
/** Sequences decoding one token each in the batched attention case (continuous batching). */
export const ATTENTION_BATCH = 8;
/** Head size the rope case rotates (the row is size / headDim heads). */
export const ROPE_HEAD_DIM = 64;

/** A comma-separated list, each item parsed by `item`; `flag` names the option in errors. */
function parseList<T>(flag: string, value: string, item: (s: string) => T): T[] {
  const parts = value.split(',').map((s) => s.trim());
  if (value.trim() === '' || parts.every((p) => p === '')) throw new Error(`${flag}: empty list`);
  if (parts.some((p) => p === '')) throw new Error(`${flag}: empty item in "${value}"`);
  return [...new Set(parts.map(item))];
}

/** `--sizes 128,1024`: positive integers up to `max`. */
export function parseIntList(flag: string, value: string, max = 1 << 20): number[] {
  return parseList(flag, value, (s) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: "${s}" is not a positive integer`);
    if (n > max) throw new Error(`${flag}: ${n} is above the limit of ${max}`);
    return n;
  }).sort((a, b) => a - b);
}

/** `--dtypes q4_k,f16`: weight types the backends load (WEIGHT_DTYPES), any case. */
export function parseDTypeList(flag: string, value: string): DType[] {
  const known = new Map([...WEIGHT_DTYPES].map((d) => [d.toLowerCase(), d]));
  return parseList(flag, value, (s) => {
    const d = known.get(s.toLowerCase());
    if (!d) throw new Error(`${flag}: unknown weight type "${s}" (known: ${[...known.keys()].join(', ')})`);
    return d;
  });
}

/** `--ops matmul,rope`, any case. */
export function parseOpList(flag: string, value: string): OpName[] {
  const known = new Map<string, OpName>(OPS.map((o) => [o.toLowerCase(), o]));
  return parseList(flag, value, (s) => {
    const o = known.get(s.toLowerCase());
    if (!o) throw new Error(`${flag}: unknown op "${s}" (known: ${OPS.join(', ')})`);
    return o;
  });
}

/** `--backend cpu,reference` or `auto`. */
export function parseBackendList(flag: string, value: string): OpsBackend[] | 'auto' {
  if (value.trim() === 'auto') return 'auto';
  return parseList(flag, value, (s) => {
    if (!(OPS_BACKENDS as readonly string[]).includes(s)) throw new Error(`${flag}: unknown backend "${s}" (known: auto, ${OPS_BACKENDS.join(', ')})`);
    return s as OpsBackend;
  });
}

/** The plan for `backends` (auto already resolved): flags where given, else the first backend's defaults (the smallest when reference runs). */
export function makePlan(flags: OpsFlags, backends: OpsBackend[], allThreads: number): OpsPlan {
  const base = backends.includes('reference') ? DEFAULTS.reference : DEFAULTS[backends[0]!];
  return {
    backends,
    ops: flags.ops ?? [...OPS],
    dtypes: flags.dtypes ?? [...WEIGHT_DTYPES],
    sizes: flags.sizes ?? [...base.sizes],
    batches: flags.batches ?? [...base.batches],
    contexts: flags.contexts ?? [...base.contexts],
    threads: flags.threads ?? [allThreads],
    repeat: flags.repeat ?? 3,
    minTimeMs: flags.minTime ?? 200,
    bandwidthBytes: (flags.bandwidthMib ?? 256) * 2 ** 20,
    loadBytes: (flags.loadMib ?? 16) * 2 ** 20,
  };
}

/** Why a dtype cannot be an [n, k] matrix (rows not whole blocks, or the cpu kernels' 8-wide rows), or undefined. */
export function unsupportedShape(dtype: DType, k: number): string | undefined {
  const block = DTYPE_LAYOUT[dtype].blockSize;
  if (k % block !== 0) return `rows of ${k} are not whole ${dtype} blocks of ${block}`;
  if (dtype !== 'F32' && k % 8 !== 0) return `rows of ${k} are not a multiple of 8`;
  return undefined;
}

/** Rows quantized once per (dtype, k) and repeated down the matrix (quantizing 4096² K-quants in TypeScript takes seconds). */
const TILE_ROWS = 64;
const tiles = new Map<string, Uint8Array>();

/**
 * Stored bytes of a random [n, k] matrix of `dtype` (values uniform in ±1/√k, as initialised
 * weights are), made with the project's own quantizers: a 64-row tile quantized once and
 * repeated (blocks are independent, so every row is still a valid, distinct-address row).
 */
export function randomWeightBytes(dtype: DType, n: number, k: number, seed = 1): Uint8Array {
  const key = `${dtype}:${k}:${seed}`;
  let tile = tiles.get(key);
  if (!tile) {
    const values = randomValues(TILE_ROWS * k, 1 / Math.sqrt(k), seed);
    tile = quantize(dtype, values);
    tiles.set(key, tile);
  }
  const rowBytes = byteSize(dtype, k);
  const out = new Uint8Array(n * rowBytes);
  for (let r = 0; r < n; r += TILE_ROWS) out.set(tile.subarray(0, Math.min(TILE_ROWS, n - r) * rowBytes), r * rowBytes);
  return out;
}

/** `count` values uniform in ±scale from a small deterministic generator (mulberry32). */
export function randomValues(count: number, scale = 1, seed = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}
