// The non-matmul ops that cost time: attention over the KV cache and silu(gate)·up, split over the
// pool like the matmuls. f32 throughout; results depend only on each item's own inputs, never on
// how the batch was formed or split between threads.
import { hsum, scaleByRms } from './common';
import { scratch } from './scratch';

// Attention parameters, as i32 slots of a block in memory (a job has too few argument slots).
const A_Q = 0, A_KEYS = 4, A_VALUES = 8, A_OUT = 12, A_POSITIONS = 16, A_SEQS = 20, A_NTOK = 24;
const A_NHEADS = 28, A_NKVHEADS = 32, A_HEADDIM = 36, A_CTXLEN = 40, A_WINDOW = 44, A_SCALE = 48, A_SOFTCAP = 52;

/**
 * Causal attention for items [r0, r1) of nHeads × nTok (head-major: item = h·nTok + t, so a row
 * range takes whole heads over every token and threads get equal work under the causal mask).
 * Keys and values of the batch must already be in the cache. Block at `params` (see A_*):
 * q [nTok, nHeads·hd], out [nTok, nHeads·hd], keys/values [slots, ctxLen, nKVHeads·hd], positions
 * and seqs [nTok] i32, window 0 = full attention, scale f32, softcap f32 (0 = none; else each score
 * becomes softcap·tanh(score / softcap)). Scores go to this thread's scratch.
 */
export function attention(params: usize, r0: i32, r1: i32): void {
  const q = <usize>load<u32>(params, A_Q), keys = <usize>load<u32>(params, A_KEYS), values = <usize>load<u32>(params, A_VALUES);
  const out = <usize>load<u32>(params, A_OUT), positions = <usize>load<u32>(params, A_POSITIONS), seqs = <usize>load<u32>(params, A_SEQS);
  const nTok = load<i32>(params, A_NTOK), nHeads = load<i32>(params, A_NHEADS), nKV = load<i32>(params, A_NKVHEADS);
  const hd = load<i32>(params, A_HEADDIM), ctxLen = load<i32>(params, A_CTXLEN), window = load<i32>(params, A_WINDOW);
  const scale = load<f32>(params, A_SCALE), softcap = load<f32>(params, A_SOFTCAP);
  const group = nHeads / nKV, kvDim = <usize>(nKV * hd), qCols = <usize>(nHeads * hd);
  const hd4 = hd & ~3;
  const scores = scratch;
  for (let item = r0; item < r1; item++) {
    const h = item / nTok, t = item % nTok;
    const pos = load<i32>(positions + (<usize>t << 2));
    const first = window > 0 ? max(0, pos - window + 1) : 0;
    const rowBase = <usize>load<i32>(seqs + (<usize>t << 2)) * <usize>ctxLen;
    const qRow = q + ((<usize>t * qCols + <usize>(h * hd)) << 2);
    const kvHead = <usize>((h / group) * hd);
    // scores[s − first] = q · k_s · scale, and their max.
    let maxScore = -Infinity as f32;
    for (let s = first; s <= pos; s++) {
      const kRow = keys + (((rowBase + <usize>s) * kvDim + kvHead) << 2);
      let acc = f32x4.splat(0);
      for (let i = 0; i < hd4; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qRow + (<usize>i << 2)), v128.load(kRow + (<usize>i << 2))));
      let dot = hsum(acc);
      for (let i = hd4; i < hd; i++) dot += load<f32>(qRow + (<usize>i << 2)) * load<f32>(kRow + (<usize>i << 2));
      const score = softcap > 0 ? softcap * Mathf.tanh(dot * scale / softcap) : dot * scale;
      store<f32>(scores + (<usize>(s - first) << 2), score);
      if (score > maxScore) maxScore = score;
    }
    // Softmax weights.
    let sum: f32 = 0;
    for (let s = first; s <= pos; s++) {
      const at = scores + (<usize>(s - first) << 2);
      const e = Mathf.exp(load<f32>(at) - maxScore);
      store<f32>(at, e);
      sum += e;
    }
    const inv: f32 = 1 / sum;
    // out = Σ_s weight_s · v_s
    const oRow = out + ((<usize>t * qCols + <usize>(h * hd)) << 2);
    for (let i = 0; i < hd; i++) store<f32>(oRow + (<usize>i << 2), 0);
    for (let s = first; s <= pos; s++) {
      const wt = load<f32>(scores + (<usize>(s - first) << 2)) * inv;
      const wv = f32x4.splat(wt);
      const vRow = values + (((rowBase + <usize>s) * kvDim + kvHead) << 2);
      for (let i = 0; i < hd4; i += 4) {
        const o = oRow + (<usize>i << 2);
        v128.store(o, f32x4.add(v128.load(o), f32x4.mul(wv, v128.load(vRow + (<usize>i << 2)))));
      }
      for (let i = hd4; i < hd; i++) {
        const o = oRow + (<usize>i << 2);
        store<f32>(o, load<f32>(o) + wt * load<f32>(vRow + (<usize>i << 2)));
      }
    }
  }
}

/** out[i] = silu(gate[i]) · up[i] for i in [r0, r1): silu(x) = x / (1 + e^−x). */
export function siluMul(gate: usize, up: usize, out: usize, r0: i32, r1: i32): void {
  for (let i = r0; i < r1; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(out + o, g / (1 + Mathf.exp(-g)) * load<f32>(up + o));
  }
}

/**
 * out[i] = gelu(gate[i]) · up[i] for i in [r0, r1), GELU's tanh approximation:
 * ½x(1 + tanh(√(2/π)(x + 0.044715x³))). out may alias gate.
 */
export function geluMul(gate: usize, up: usize, out: usize, r0: i32, r1: i32): void {
  const c: f32 = 0.7978845608028654; // √(2/π)
  for (let i = r0; i < r1; i++) {
    const o = <usize>i << 2;
    const x = load<f32>(gate + o);
    store<f32>(out + o, <f32>0.5 * x * (<f32>1 + Mathf.tanh(c * (x + <f32>0.044715 * x * x * x))) * load<f32>(up + o));
  }
}

/** x[i] = cap · tanh(x[i] / cap) in place for i in [r0, r1); cap as its f32 bit pattern. */
export function softcap(x: usize, capBits: i32, r0: i32, r1: i32): void {
  const cap = reinterpret<f32>(capBits);
  for (let i = r0; i < r1; i++) {
    const o = x + (<usize>i << 2);
    store<f32>(o, cap * Mathf.tanh(load<f32>(o) / cap));
  }
}

/**
 * out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w for rows [r0, r1) of [rows, cols]; eps is
 * passed as its f32 bit pattern (a job's arguments are integers). out may alias x.
 */
export function rmsNorm(x: usize, w: usize, out: usize, cols: i32, epsBits: i32, r0: i32, r1: i32): void {
  const eps = reinterpret<f32>(epsBits);
  const c4 = cols & ~3;
  for (let r = r0; r < r1; r++) {
    const xr = x + (<usize>r * <usize>cols << 2), or = out + (<usize>r * <usize>cols << 2);
    let acc = f32x4.splat(0);
    for (let i = 0; i < c4; i += 4) {
      const v = v128.load(xr + (<usize>i << 2));
      acc = f32x4.add(acc, f32x4.mul(v, v));
    }
    let ss = hsum(acc);
    for (let i = c4; i < cols; i++) { const v = load<f32>(xr + (<usize>i << 2)); ss += v * v; }
    scaleByRms(xr, w, or, cols, ss, eps);
  }
}

/** out[i] = a[i] + b[i] for i in [r0, r1). out may alias a or b. */
export function add(a: usize, b: usize, out: usize, r0: i32, r1: i32): void {
  let i = r0;
  for (; i + 4 <= r1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < r1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/**
 * Rotary embedding in place for items [r0, r1) of nTok × nHeads (item = t·nHeads + h): each pair
 * within the first `dims` of head h of token t ([nTok, cols], heads of headDim from column 0) is
 * rotated by its angle, read from cosSin [nTok, dims/2, 2] (cos, sin per pair, computed once per
 * batch by the caller); the dims after `dims` pass through. Pairs are (2i, 2i+1) when
 * interleaved, else (i, i + dims/2).
 */
export function rope(x: usize, cosSin: usize, cols: i32, nHeads: i32, headDim: i32, dims: i32, interleaved: i32, r0: i32, r1: i32): void {
  const half = dims >> 1;
  for (let item = r0; item < r1; item++) {
    const t = item / nHeads, h = item % nHeads;
    const base = x + ((<usize>t * <usize>cols + <usize>(h * headDim)) << 2);
    const cs = cosSin + (<usize>(t * half) << 3);
    for (let i = 0; i < half; i++) {
      const c = load<f32>(cs + (<usize>i << 3)), s = load<f32>(cs + (<usize>i << 3), 4);
      const pa = interleaved ? base + (<usize>(2 * i) << 2) : base + (<usize>i << 2);
      const pb = interleaved ? pa + 4 : pa + (<usize>half << 2);
      const x0 = load<f32>(pa), x1 = load<f32>(pb);
      store<f32>(pa, x0 * c - x1 * s);
      store<f32>(pb, x0 * s + x1 * c);
    }
  }
}
