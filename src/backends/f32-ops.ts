// The element-wise ops and attention as plain loops over row-major f32 arrays. The reference
// backend is built from them, so they are the specification the other backends' kernels are
// tested against; the cpu backend shares only the shape rule of rmsNorm (normRows), the RoPE
// angle table and copyOut.
import { ropeDims, type AttentionParams, type BatchLayout, type RopeParams } from './backend.js';

/** o[r, :] = x[r, :] / rms(x[r, :]) · w, for `rows` rows of `cols`. */
export function rmsNorm(o: Float32Array, x: Float32Array, w: Float32Array, rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let ss = 0;
    for (let i = 0; i < cols; i++) ss += x[base + i]! * x[base + i]!;
    const inv = 1 / Math.sqrt(ss / cols + eps);
    for (let i = 0; i < cols; i++) o[base + i] = x[base + i]! * inv * w[i]!;
  }
}

/**
 * The shape rmsNorm works on for x [rows, cols] and a weight of `weightLength`: a weight shorter
 * than the row normalises each group of weightLength columns (backend.ts), which is the plain
 * row norm of x seen as [rows·cols/weightLength, weightLength].
 */
export function normRows(rows: number, cols: number, weightLength: number): { rows: number; cols: number } {
  if (weightLength <= 0 || cols % weightLength !== 0) {
    throw new Error(`rmsNorm: a weight of ${weightLength} does not divide rows of ${cols}`);
  }
  return { rows: rows * (cols / weightLength), cols: weightLength };
}

/**
 * Rotates each head of x ([rows, cols], heads of headDim from column 0) by its token's position:
 * its first p.dims dims (partial rotary), cos and sin scaled by p.scale.
 */
export function rope(
  x: Float32Array, rows: number, cols: number, batch: BatchLayout, nHeads: number, headDim: number, p: RopeParams,
): void {
  const half = ropeDims(p, headDim) / 2, scale = p.scale ?? 1;
  for (let t = 0; t < rows; t++) {
    const pos = batch.positions[t]!;
    for (let h = 0; h < nHeads; h++) {
      const base = t * cols + h * headDim;
      for (let i = 0; i < half; i++) {
        const angle = pos * p.invFreq[i]!;
        const cos = scale * Math.cos(angle), sin = scale * Math.sin(angle);
        // The two elements of pair i, in either layout.
        const a = p.style === 'interleaved' ? base + 2 * i : base + i;
        const b = p.style === 'interleaved' ? a + 1 : a + half;
        const x0 = x[a]!, x1 = x[b]!;
        x[a] = x0 * cos - x1 * sin;
        x[b] = x0 * sin + x1 * cos;
      }
    }
  }
}

/**
 * cos and sin of each (token, pair) angle, times `scale` (RopeParams.scale), [n, invFreq.length, 2]
 * into `out`: computed once per batch (in double precision, then rounded) and shared by every
 * layer and head, by the backends whose RoPE kernels read a table.
 */
export function ropeAngleTable(positions: Int32Array, invFreq: Float32Array, out: Float32Array, scale = 1): void {
  const half = invFreq.length;
  for (let i = 0; i < positions.length; i++) {
    for (let j = 0; j < half; j++) {
      const angle = positions[i]! * invFreq[j]!;
      out[2 * (i * half + j)] = scale * Math.cos(angle);
      out[2 * (i * half + j) + 1] = scale * Math.sin(angle);
    }
  }
}

/** A layer's KV cache: [maxSeqs, ctxLen, nKVHeads·headDim] keys and values. */
export interface KVLayer {
  keys: Float32Array;
  values: Float32Array;
  ctxLen: number;
}

/**
 * Stores each token's k and v ([nTokens, nKVHeads·headDim]) at its (slot, position), then computes
 * causal attention of q ([nTokens, nHeads·headDim]) over the token's own sequence into o.
 * @param scores scratch of at least ctxLen floats
 */
export function attention(
  o: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, nTokens: number,
  cache: KVLayer, batch: BatchLayout, p: AttentionParams, scores: Float32Array,
): void {
  const { keys, values, ctxLen } = cache;
  const hd = p.headDim, kvDim = p.nKVHeads * hd, qCols = p.nHeads * hd;
  // 1. Store every token's k and v first: a later token of the batch attends to earlier ones.
  storeKV(cache, k, v, nTokens, kvDim, batch);
  // 2. Causal attention over the token's own sequence (its last `slidingWindow` positions).
  const group = p.nHeads / p.nKVHeads;
  for (let t = 0; t < nTokens; t++) {
    const pos = batch.positions[t]!;
    const slotBase = batch.seqs[t]! * ctxLen;
    const first = p.slidingWindow !== undefined ? Math.max(0, pos - p.slidingWindow + 1) : 0;
    for (let h = 0; h < p.nHeads; h++) {
      const qBase = t * qCols + h * hd;
      const kvHead = Math.floor(h / group) * hd; // grouped-query: heads share a KV head
      let max = -Infinity;
      for (let s = first; s <= pos; s++) {
        const kBase = (slotBase + s) * kvDim + kvHead;
        let dot = 0;
        for (let i = 0; i < hd; i++) dot += q[qBase + i]! * keys[kBase + i]!;
        const score = p.softcap !== undefined ? p.softcap * Math.tanh((dot * p.scale) / p.softcap) : dot * p.scale;
        scores[s] = score;
        if (score > max) max = score;
      }
      let sum = 0;
      for (let s = first; s <= pos; s++) {
        const e = Math.exp(scores[s]! - max);
        scores[s] = e;
        sum += e;
      }
      const oBase = t * qCols + h * hd;
      o.fill(0, oBase, oBase + hd);
      for (let s = first; s <= pos; s++) {
        const weight = scores[s]! / sum;
        const vBase = (slotBase + s) * kvDim + kvHead;
        for (let i = 0; i < hd; i++) o[oBase + i]! += weight * values[vBase + i]!;
      }
    }
  }
}

/** Writes each token's k and v rows ([nTokens, kvDim]) at its (slot, position) of the cache. */
export function storeKV(cache: KVLayer, k: Float32Array, v: Float32Array, nTokens: number, kvDim: number, batch: BatchLayout): void {
  for (let t = 0; t < nTokens; t++) {
    const pos = batch.positions[t]!;
    if (pos >= cache.ctxLen) throw new Error(`position ${pos} is beyond the context length ${cache.ctxLen}`);
    const dst = (batch.seqs[t]! * cache.ctxLen + pos) * kvDim;
    cache.keys.set(k.subarray(t * kvDim, (t + 1) * kvDim), dst);
    cache.values.set(v.subarray(t * kvDim, (t + 1) * kvDim), dst);
  }
}

/** o = silu(g) · u, elementwise over the first o.length values. */
export function siluMul(o: Float32Array, g: Float32Array, u: Float32Array): void {
  for (let i = 0; i < o.length; i++) {
    const x = g[i]!;
    o[i] = (x / (1 + Math.exp(-x))) * u[i]!;
  }
}

/** √(2/π), GELU's tanh-approximation constant. */
export const GELU_TANH_C = Math.sqrt(2 / Math.PI);

/** o = gelu(g) · u, elementwise, GELU's tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function geluMul(o: Float32Array, g: Float32Array, u: Float32Array): void {
  for (let i = 0; i < o.length; i++) {
    const x = g[i]!;
    o[i] = 0.5 * x * (1 + Math.tanh(GELU_TANH_C * (x + 0.044715 * x * x * x))) * u[i]!;
  }
}

/** x = cap · tanh(x / cap), elementwise, in place. */
export function softcap(x: Float32Array, cap: number): void {
  for (let i = 0; i < x.length; i++) x[i] = cap * Math.tanh(x[i]! / cap);
}

/** o = a + b, elementwise. */
export function add(o: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < o.length; i++) o[i] = a[i]! + b[i]!;
}

/** o[i, :] = x[rows[i], :] */
export function gatherRows(o: Float32Array, x: Float32Array, rows: Int32Array, cols: number): void {
  for (let i = 0; i < rows.length; i++) o.set(x.subarray(rows[i]! * cols, (rows[i]! + 1) * cols), i * cols);
}

/** Copies `count` positions of slot `from` to slot `to` in one layer's keys or values. */
export function copySlot(kv: Float32Array, slotSize: number, rowLen: number, from: number, to: number, count: number): void {
  kv.copyWithin(to * slotSize, from * slotSize, from * slotSize + count * rowLen);
}

/** A copy of `src`: into `into` (returned as a view of src's length) when given, else a new array. */
export function copyOut(src: Float32Array, into?: Float32Array): Float32Array {
  if (!into) return src.slice();
  if (into.length < src.length) throw new RangeError(`read: ${src.length} values do not fit in ${into.length}`);
  const out = into.subarray(0, src.length);
  out.set(src);
  return out;
}
