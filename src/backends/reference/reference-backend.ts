// The reference backend: plain TypeScript, f32, one loop nest per op. It is the executable
// specification every other backend is tested against, so it favours being obviously right over
// being fast. Weights of any dtype are dequantized to f32 once, at load.
import type {
  Activations, AttentionParams, Backend, BatchLayout, KVCache, KVCacheShape, RopeParams, Weight,
} from '../backend.js';
import type { TensorInfo } from '../../formats/tensor.js';
import { elementCount } from '../../formats/tensor.js';
import { dequantize } from '../../quant/dequantize.js';

class RefWeight implements Weight {
  constructor(readonly name: string, readonly shape: readonly number[], readonly data: Float32Array) {}
}

class RefActivations implements Activations {
  constructor(readonly rows: number, readonly cols: number, readonly data: Float32Array) {}
}

class RefKVCache implements KVCache {
  /** Per layer: [maxSeqs, ctxLen, nKVHeads·headDim] keys and values. */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  constructor(readonly shape: KVCacheShape) {
    const perLayer = shape.maxSeqs * shape.ctxLen * shape.nKVHeads * shape.headDim;
    this.keys = Array.from({ length: shape.nLayers }, () => new Float32Array(perLayer));
    this.values = Array.from({ length: shape.nLayers }, () => new Float32Array(perLayer));
  }
}

const act = (a: Activations): RefActivations => a as RefActivations;
const wt = (w: Weight): RefWeight => w as RefWeight;

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  /** Scratch for one attention row's scores: [ctxLen], grown on demand, reused. */
  private scores = new Float32Array(0);

  loadWeight(info: TensorInfo, data: Uint8Array): Weight {
    const count = elementCount(info.shape);
    return new RefWeight(info.name, info.shape, dequantize(info.dtype, data, count));
  }

  createActivations(rows: number, cols: number): Activations {
    return new RefActivations(rows, cols, new Float32Array(rows * cols));
  }

  rowsView(a: Activations, rows: number): Activations {
    const x = act(a);
    if (rows > x.rows) throw new Error(`rowsView: ${rows} rows asked of a buffer of ${x.rows}`);
    return new RefActivations(rows, x.cols, x.data.subarray(0, rows * x.cols));
  }

  createKVCache(shape: KVCacheShape): KVCache {
    return new RefKVCache(shape);
  }

  embed(out: Activations, table: Weight, tokens: Int32Array): void {
    const o = act(out), t = wt(table);
    const dim = t.shape[1]!;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      o.data.set(t.data.subarray(id * dim, (id + 1) * dim), i * dim);
    }
  }

  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void {
    const o = act(out), xa = act(x), w = wt(weight).data;
    const n = xa.cols;
    for (let r = 0; r < xa.rows; r++) {
      const base = r * n;
      let ss = 0;
      for (let i = 0; i < n; i++) ss += xa.data[base + i]! * xa.data[base + i]!;
      const inv = 1 / Math.sqrt(ss / n + eps);
      for (let i = 0; i < n; i++) o.data[base + i] = xa.data[base + i]! * inv * w[i]!;
    }
  }

  matmul(out: Activations, x: Activations, w: Weight, bias?: Weight): void {
    const o = act(out), xa = act(x), wa = wt(w);
    const [n, k] = wa.shape as [number, number];
    const b = bias ? wt(bias).data : undefined;
    for (let r = 0; r < xa.rows; r++) {
      const xBase = r * k;
      for (let j = 0; j < n; j++) {
        const wBase = j * k;
        let sum = 0;
        for (let i = 0; i < k; i++) sum += xa.data[xBase + i]! * wa.data[wBase + i]!;
        o.data[r * n + j] = b ? sum + b[j]! : sum;
      }
    }
  }

  rope(x: Activations, batch: BatchLayout, nHeads: number, headDim: number, rope: RopeParams): void {
    const xa = act(x);
    const half = headDim / 2;
    for (let t = 0; t < xa.rows; t++) {
      const pos = batch.positions[t]!;
      for (let h = 0; h < nHeads; h++) {
        const base = t * xa.cols + h * headDim;
        for (let i = 0; i < half; i++) {
          const angle = pos * rope.invFreq[i]!;
          const cos = Math.cos(angle), sin = Math.sin(angle);
          // The two elements of pair i, in either layout.
          const a = rope.style === 'interleaved' ? base + 2 * i : base + i;
          const b = rope.style === 'interleaved' ? a + 1 : a + half;
          const x0 = xa.data[a]!, x1 = xa.data[b]!;
          xa.data[a] = x0 * cos - x1 * sin;
          xa.data[b] = x0 * sin + x1 * cos;
        }
      }
    }
  }

  attention(
    out: Activations, q: Activations, k: Activations, v: Activations,
    cache: KVCache, layer: number, batch: BatchLayout, p: AttentionParams,
  ): void {
    const c = cache as RefKVCache, o = act(out), qa = act(q), ka = act(k), va = act(v);
    const { ctxLen } = c.shape;
    const kvDim = p.nKVHeads * p.headDim;
    const keys = c.keys[layer]!, values = c.values[layer]!;
    const nTokens = qa.rows;
    // 1. Store every token's k and v first: a later token of the batch attends to earlier ones.
    for (let t = 0; t < nTokens; t++) {
      const pos = batch.positions[t]!;
      if (pos >= ctxLen) throw new Error(`position ${pos} is beyond the context length ${ctxLen}`);
      const dst = (batch.seqs[t]! * ctxLen + pos) * kvDim;
      keys.set(ka.data.subarray(t * kvDim, (t + 1) * kvDim), dst);
      values.set(va.data.subarray(t * kvDim, (t + 1) * kvDim), dst);
    }
    // 2. Causal attention over the token's own sequence.
    if (this.scores.length < ctxLen) this.scores = new Float32Array(ctxLen);
    const scores = this.scores;
    const group = p.nHeads / p.nKVHeads;
    const hd = p.headDim;
    for (let t = 0; t < nTokens; t++) {
      const pos = batch.positions[t]!;
      const slotBase = batch.seqs[t]! * ctxLen;
      const first = p.slidingWindow !== undefined ? Math.max(0, pos - p.slidingWindow + 1) : 0;
      for (let h = 0; h < p.nHeads; h++) {
        const qBase = t * qa.cols + h * hd;
        const kvHead = Math.floor(h / group) * hd;
        let max = -Infinity;
        for (let s = first; s <= pos; s++) {
          const kBase = (slotBase + s) * kvDim + kvHead;
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qa.data[qBase + i]! * keys[kBase + i]!;
          const score = dot * p.scale;
          scores[s] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let s = first; s <= pos; s++) {
          const e = Math.exp(scores[s]! - max);
          scores[s] = e;
          sum += e;
        }
        const oBase = t * o.cols + h * hd;
        o.data.fill(0, oBase, oBase + hd);
        for (let s = first; s <= pos; s++) {
          const weight = scores[s]! / sum;
          const vBase = (slotBase + s) * kvDim + kvHead;
          for (let i = 0; i < hd; i++) o.data[oBase + i]! += weight * values[vBase + i]!;
        }
      }
    }
  }

  siluMul(out: Activations, gate: Activations, up: Activations): void {
    const o = act(out).data, g = act(gate).data, u = act(up).data;
    for (let i = 0; i < o.length; i++) {
      const x = g[i]!;
      o[i] = (x / (1 + Math.exp(-x))) * u[i]!;
    }
  }

  add(out: Activations, a: Activations, b: Activations): void {
    const o = act(out).data, x = act(a).data, y = act(b).data;
    for (let i = 0; i < o.length; i++) o[i] = x[i]! + y[i]!;
  }

  gatherRows(out: Activations, x: Activations, rows: Int32Array): void {
    const o = act(out), xa = act(x);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      o.data.set(xa.data.subarray(r * xa.cols, (r + 1) * xa.cols), i * xa.cols);
    }
  }

  copyKV(cache: KVCache, from: number, to: number, count: number): void {
    const c = cache as RefKVCache;
    const rowLen = c.shape.nKVHeads * c.shape.headDim;
    const src = from * c.shape.ctxLen * rowLen, dst = to * c.shape.ctxLen * rowLen;
    for (let l = 0; l < c.shape.nLayers; l++) {
      c.keys[l]!.copyWithin(dst, src, src + count * rowLen);
      c.values[l]!.copyWithin(dst, src, src + count * rowLen);
    }
  }

  async read(a: Activations): Promise<Float32Array> {
    return act(a).data.slice();
  }

  dispose(): void {
    this.scores = new Float32Array(0);
  }
}
