// The reference backend: plain TypeScript, f32, one loop nest per op (matmul here, the rest in
// ../f32-ops.ts). It is the executable specification every other backend is tested against, so
// it favours being obviously right over being fast. Weights of any dtype are dequantized to f32
// once, at load.
import type {
  Activations, AttentionParams, Backend, BatchLayout, KVCache, KVCacheShape, RopeParams, Weight,
} from '../backend.js';
import type { TensorInfo } from '../../formats/tensor.js';
import { elementCount } from '../../formats/tensor.js';
import { dequantize } from '../../quant/dequantize.js';
import * as ops from '../f32-ops.js';

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

  embed(out: Activations, table: Weight, tokens: Int32Array, scale = 1): void {
    const o = act(out), t = wt(table);
    const dim = t.shape[1]!;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      o.data.set(t.data.subarray(id * dim, (id + 1) * dim), i * dim);
      if (scale !== 1) for (let j = i * dim; j < (i + 1) * dim; j++) o.data[j]! *= scale;
    }
  }

  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void {
    const xa = act(x), w = wt(weight).data;
    const g = ops.normRows(xa.rows, xa.cols, w.length);
    ops.rmsNorm(act(out).data, xa.data, w, g.rows, g.cols, eps);
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
    ops.rope(xa.data, xa.rows, xa.cols, batch, nHeads, headDim, rope);
  }

  attention(
    out: Activations, q: Activations, k: Activations, v: Activations,
    cache: KVCache, layer: number, batch: BatchLayout, p: AttentionParams,
  ): void {
    const c = cache as RefKVCache;
    if (this.scores.length < c.shape.ctxLen) this.scores = new Float32Array(c.shape.ctxLen);
    const kv = { keys: c.keys[layer]!, values: c.values[layer]!, ctxLen: c.shape.ctxLen };
    ops.attention(act(out).data, act(q).data, act(k).data, act(v).data, act(q).rows, kv, batch, p, this.scores);
  }

  siluMul(out: Activations, gate: Activations, up: Activations): void {
    ops.siluMul(act(out).data, act(gate).data, act(up).data);
  }

  geluMul(out: Activations, gate: Activations, up: Activations): void {
    ops.geluMul(act(out).data, act(gate).data, act(up).data);
  }

  softcap(x: Activations, cap: number): void {
    ops.softcap(act(x).data, cap);
  }

  add(out: Activations, a: Activations, b: Activations): void {
    ops.add(act(out).data, act(a).data, act(b).data);
  }

  /** The composition itself: the specification the fused kernels of other backends are held to. */
  addRmsNorm(sum: Activations, normed: Activations, a: Activations, b: Activations, weight: Weight, eps: number): void {
    this.add(sum, a, b);
    this.rmsNorm(normed, sum, weight, eps);
  }

  gatherRows(out: Activations, x: Activations, rows: Int32Array): void {
    ops.gatherRows(act(out).data, act(x).data, rows, act(x).cols);
  }

  copyKV(cache: KVCache, from: number, to: number, count: number): void {
    const c = cache as RefKVCache;
    const rowLen = c.shape.nKVHeads * c.shape.headDim, slotSize = c.shape.ctxLen * rowLen;
    for (let l = 0; l < c.shape.nLayers; l++) {
      ops.copySlot(c.keys[l]!, slotSize, rowLen, from, to, count);
      ops.copySlot(c.values[l]!, slotSize, rowLen, from, to, count);
    }
  }

  async read(a: Activations, into?: Float32Array): Promise<Float32Array> {
    return ops.copyOut(act(a).data, into);
  }

  dispose(): void {
    this.scores = new Float32Array(0);
  }
}
