// The Llama family: Llama 2/3, TinyLlama, Mistral (sliding window), llama2.c models, Qwen2
// (the same graph with biases on Q, K and V) and Qwen3 (no biases; each head of Q and K
// RMS-normalised before RoPE: qkNorm), Phi-3 / Phi-4-mini (fused weights split at load, partial
// rotary, LongRoPE: arch/phi3.ts), SmolLM3 (no RoPE on some layers: arch/smollm3.ts), and the
// Gemma family (arch/gemma.ts), through the spec fields it honours: embedScale, activation,
// postNorms, attentionScale, attnSoftcap, finalSoftcap and per-layer attention (layers).
//
//   x = embed(tokens)
//   for each layer:
//     h = x + Wo · attention(rope(qn(Wq·norm(x) + bq)), rope(kn(Wk·norm(x) + bk)), Wv·norm(x) + bv)
//         (qn, kn: per-head RMS norm with Qwen3, identity otherwise)
//     x = h + Wdown · (silu(Wgate · norm(h)) * Wup · norm(h))
//   logits = Woutput · norm(x)      (Woutput = embedding table when tied)
import type {
  Activations, AttentionParams, Backend, BatchLayout, KVCache, RopeParams, Weight,
} from '../../backends/backend.js';
import type { ManifestEntry } from '../manifest.js';
import { ropeParams, type ModelSpec } from '../spec.js';

export function llamaManifest(s: ModelSpec): ManifestEntry[] {
  const qDim = s.nHeads * s.headDim, kvDim = s.nKVHeads * s.headDim;
  const m: ManifestEntry[] = [
    { name: 'token_embd.weight', shape: [s.vocabSize, s.dim] },
    { name: 'output_norm.weight', shape: [s.dim] },
    // A tied model may still carry a copy of the table as output.weight; then it is used.
    { name: 'output.weight', shape: [s.vocabSize, s.dim], optional: s.tiedEmbeddings },
  ];
  for (let i = 0; i < s.nLayers; i++) {
    const b = `blk.${i}.`;
    m.push(
      { name: b + 'attn_norm.weight', shape: [s.dim] },
      { name: b + 'attn_q.weight', shape: [qDim, s.dim] },
      { name: b + 'attn_k.weight', shape: [kvDim, s.dim] },
      { name: b + 'attn_v.weight', shape: [kvDim, s.dim] },
      { name: b + 'attn_output.weight', shape: [s.dim, qDim] },
      { name: b + 'ffn_norm.weight', shape: [s.dim] },
      { name: b + 'ffn_gate.weight', shape: [s.ffnDim, s.dim] },
      { name: b + 'ffn_up.weight', shape: [s.ffnDim, s.dim] },
      { name: b + 'ffn_down.weight', shape: [s.dim, s.ffnDim] },
    );
    if (s.qkvBias) {
      m.push(
        { name: b + 'attn_q.bias', shape: [qDim] },
        { name: b + 'attn_k.bias', shape: [kvDim] },
        { name: b + 'attn_v.bias', shape: [kvDim] },
      );
    }
    if (s.postNorms) {
      m.push(
        { name: b + 'post_attention_norm.weight', shape: [s.dim] },
        { name: b + 'post_ffw_norm.weight', shape: [s.dim] },
      );
    }
    if (s.qkNorm) {
      // One weight shared by every head (llama.cpp: [n_embd_head_k]).
      m.push(
        { name: b + 'attn_q_norm.weight', shape: [s.headDim] },
        { name: b + 'attn_k_norm.weight', shape: [s.headDim] },
      );
    }
  }
  return m;
}

interface LayerWeights {
  attnNorm: Weight; wq: Weight; wk: Weight; wv: Weight; wo: Weight;
  bq?: Weight; bk?: Weight; bv?: Weight;
  qNorm?: Weight; kNorm?: Weight;
  ffnNorm: Weight; gate: Weight; up: Weight; down: Weight;
  postAttnNorm?: Weight; postFfnNorm?: Weight;
  /** This layer's RoPE and attention settings (several layers share one object). */
  rope: RopeParams;
  attention: AttentionParams;
}

export interface GraphLimits {
  /** Most tokens one forward call takes (prefill chunk size × sequences). */
  maxBatchTokens: number;
  /** Most rows of logits one forward call returns. */
  maxOutputs: number;
  /**
   * Positions of KV cache per sequence: picks LongRoPE's long or short factors, as llama.cpp does
   * from its context per sequence (absent: the short ones).
   */
  contextLength?: number;
}

/** The forward pass, with every activation buffer allocated once, at its largest size. */
export class LlamaGraph {
  private readonly layers: LayerWeights[];
  private readonly embedding: Weight;
  private readonly outputNorm: Weight;
  private readonly output: Weight;
  // Activation buffers; B = maxBatchTokens, O = maxOutputs.
  private readonly x: Activations;        // [B, dim] residual stream
  private readonly xn: Activations;       // [B, dim] normalised input of a block
  private readonly q: Activations;        // [B, nHeads·headDim]
  private readonly k: Activations;        // [B, nKVHeads·headDim]
  private readonly v: Activations;        // [B, nKVHeads·headDim]
  // With qkNorm: Q and K as projected, before the per-head norm writes q and k (a backend's
  // rmsNorm may not write in place).
  private readonly qProj?: Activations;   // [B, nHeads·headDim]
  private readonly kProj?: Activations;   // [B, nKVHeads·headDim]
  private readonly attn: Activations;     // [B, nHeads·headDim] attention output
  private readonly proj: Activations;     // [B, dim] output of Wo or Wdown
  private readonly gate: Activations;     // [B, ffnDim]
  private readonly up: Activations;       // [B, ffnDim]
  private readonly last: Activations;     // [O, dim] rows that need logits
  private readonly lastNorm: Activations; // [O, dim]
  private readonly logits: Activations;   // [O, vocab]
  private readonly syncScratch: Float32Array; // [dim] host copy of one row, read only to wait for the device

  constructor(
    readonly backend: Backend, readonly spec: ModelSpec,
    weights: ReadonlyMap<string, Weight>, readonly limits: GraphLimits,
  ) {
    const w = (name: string): Weight => {
      const t = weights.get(name);
      if (!t) throw new Error(`weight ${name} was not loaded`);
      return t;
    };
    this.embedding = w('token_embd.weight');
    this.outputNorm = w('output_norm.weight');
    this.output = weights.get('output.weight') ?? this.embedding;
    // RoPE tables and attention settings, one object per distinct kind of layer (the backends
    // cache a RoPE table by its invFreq array, so layers of one kind share it).
    const ropes = new Map<string, RopeParams>(), attentions = new Map<string, AttentionParams>();
    const layerSettings = (i: number): { rope: RopeParams; attention: AttentionParams } => {
      const own = spec.layers?.[i];
      const freqs = own?.rope ?? spec.rope;
      const ropeKey = JSON.stringify(freqs, (_k, v: unknown) => (v instanceof Float32Array ? [...v] : v));
      let rope = ropes.get(ropeKey);
      if (!rope) ropes.set(ropeKey, rope = ropeParams(spec, limits.contextLength, freqs));
      const window = own ? own.slidingWindow : spec.slidingWindow;
      let attention = attentions.get(String(window));
      if (!attention) {
        attentions.set(String(window), attention = {
          nHeads: spec.nHeads, nKVHeads: spec.nKVHeads, headDim: spec.headDim,
          scale: spec.attentionScale ?? 1 / Math.sqrt(spec.headDim), slidingWindow: window,
          ...(spec.attnSoftcap !== undefined ? { softcap: spec.attnSoftcap } : {}),
        });
      }
      return { rope, attention };
    };
    this.layers = Array.from({ length: spec.nLayers }, (_, i) => {
      const b = `blk.${i}.`;
      const layer: LayerWeights = {
        attnNorm: w(b + 'attn_norm.weight'), wq: w(b + 'attn_q.weight'), wk: w(b + 'attn_k.weight'),
        wv: w(b + 'attn_v.weight'), wo: w(b + 'attn_output.weight'), ffnNorm: w(b + 'ffn_norm.weight'),
        gate: w(b + 'ffn_gate.weight'), up: w(b + 'ffn_up.weight'), down: w(b + 'ffn_down.weight'),
        ...layerSettings(i),
      };
      if (spec.postNorms) {
        layer.postAttnNorm = w(b + 'post_attention_norm.weight'); layer.postFfnNorm = w(b + 'post_ffw_norm.weight');
      }
      if (spec.qkvBias) {
        layer.bq = w(b + 'attn_q.bias'); layer.bk = w(b + 'attn_k.bias'); layer.bv = w(b + 'attn_v.bias');
      }
      if (spec.qkNorm) {
        layer.qNorm = w(b + 'attn_q_norm.weight'); layer.kNorm = w(b + 'attn_k_norm.weight');
      }
      return layer;
    });

    const B = limits.maxBatchTokens, O = limits.maxOutputs;
    const qDim = spec.nHeads * spec.headDim, kvDim = spec.nKVHeads * spec.headDim;
    const a = (rows: number, cols: number) => backend.createActivations(rows, cols);
    this.x = a(B, spec.dim); this.xn = a(B, spec.dim);
    this.q = a(B, qDim); this.k = a(B, kvDim); this.v = a(B, kvDim); this.attn = a(B, qDim);
    if (spec.qkNorm) { this.qProj = a(B, qDim); this.kProj = a(B, kvDim); }
    this.proj = a(B, spec.dim); this.gate = a(B, spec.ffnDim); this.up = a(B, spec.ffnDim);
    this.last = a(O, spec.dim); this.lastNorm = a(O, spec.dim); this.logits = a(O, spec.vocabSize);
    this.syncScratch = new Float32Array(spec.dim);
  }

  /**
   * Runs tokens through the model, appending their keys and values to `cache`.
   * @param tokens [n] token ids
   * @param batch where each token sits (slot, position)
   * @param outputRows indices into tokens whose logits are wanted
   * @param into where to put the logits (a new array if absent)
   * @param hidden rows (indices into tokens) whose final-norm hidden states are wanted (embeddings),
   *   and where to put them: [hidden.rows.length, dim], row-major
   * @returns logits [outputRows.length, vocabSize], row-major (empty when no row wants logits: a
   *   chunk of a prompt that is not its end, or of an embedding)
   */
  async forward(
    tokens: Int32Array, batch: BatchLayout, outputRows: Int32Array, cache: KVCache, into?: Float32Array,
    hidden?: { rows: Int32Array; into: Float32Array },
  ): Promise<Float32Array> {
    const n = tokens.length, nOut = outputRows.length, nHidden = hidden?.rows.length ?? 0;
    if (n === 0 || n > this.limits.maxBatchTokens) throw new Error(`forward: ${n} tokens, limit ${this.limits.maxBatchTokens}`);
    if (nOut > this.limits.maxOutputs) throw new Error(`forward: ${nOut} outputs, limit ${this.limits.maxOutputs}`);
    if (nHidden > n) throw new Error(`forward: ${nHidden} hidden rows of ${n} tokens`);
    const be = this.backend, s = this.spec;
    const view = (t: Activations) => be.rowsView(t, n);
    const x = view(this.x), xn = view(this.xn), q = view(this.q), k = view(this.k), v = view(this.v);
    const attn = view(this.attn), proj = view(this.proj), gate = view(this.gate), up = view(this.up);

    be.embed(x, this.embedding, tokens, s.embedScale);
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l]!;
      if (l === 0) be.rmsNorm(xn, x, L.attnNorm, s.normEps); // later layers: the previous residual add left it in xn
      if (L.qNorm && L.kNorm) {
        // A weight of headDim on rows of heads·headDim: each head normalised on its own.
        const qProj = view(this.qProj!), kProj = view(this.kProj!);
        be.matmul(qProj, xn, L.wq, L.bq);
        be.matmul(kProj, xn, L.wk, L.bk);
        be.rmsNorm(q, qProj, L.qNorm, s.normEps);
        be.rmsNorm(k, kProj, L.kNorm, s.normEps);
      } else {
        be.matmul(q, xn, L.wq, L.bq);
        be.matmul(k, xn, L.wk, L.bk);
      }
      be.matmul(v, xn, L.wv, L.bv);
      if (s.ropeLayers?.[l] ?? true) {
        be.rope(q, batch, s.nHeads, s.headDim, L.rope);
        be.rope(k, batch, s.nKVHeads, s.headDim, L.rope);
      }
      be.attention(attn, q, k, v, cache, l, batch, L.attention);
      be.matmul(proj, attn, L.wo);
      this.addToResidual(x, proj, xn, L.postAttnNorm, L.ffnNorm);

      be.matmul(gate, xn, L.gate);
      be.matmul(up, xn, L.up);
      if (s.activation === 'gelu') be.geluMul(gate, gate, up);
      else be.siluMul(gate, gate, up);
      be.matmul(proj, gate, L.down);
      this.addToResidual(x, proj, xn, L.postFfnNorm, this.layers[l + 1]?.attnNorm);
    }
    let normed: Activations | undefined;
    if (hidden && nHidden > 0) {
      // Embedding rows go through the final norm like the logits rows, in `proj` and `xn`: both
      // [B, dim] and free once the layers are done, so embeddings allocate nothing.
      const picked = be.rowsView(this.proj, nHidden);
      normed = be.rowsView(this.xn, nHidden);
      be.gatherRows(picked, x, hidden.rows);
      be.rmsNorm(normed, picked, this.outputNorm, s.normEps);
    }
    let out = (into ?? new Float32Array(0)).subarray(0, 0);
    if (nOut > 0) {
      const last = be.rowsView(this.last, nOut), lastNorm = be.rowsView(this.lastNorm, nOut);
      const logits = be.rowsView(this.logits, nOut);
      be.gatherRows(last, x, outputRows);
      be.rmsNorm(lastNorm, last, this.outputNorm, s.normEps);
      be.matmul(logits, lastNorm, this.output);
      if (s.finalSoftcap !== undefined) be.softcap(logits, s.finalSoftcap);
      out = await be.read(logits, into);
    }
    if (normed) await be.read(normed, hidden!.into);
    // Nothing read back (a middle chunk of a prompt): wait for the queued work all the same, so a
    // forward call ends with its keys and values in the cache, as one that returns logits does.
    if (nOut === 0 && !normed) await be.read(be.rowsView(this.xn, 1), this.syncScratch);
    return out;
  }

  /**
   * x += block output, RMS-normalised first (into `scratch`, free at that point) when the layer has
   * a post-norm; then scratch = norm(x) · nextNorm, the next block's input, when there is one (the
   * last layer has none: the final norm runs on the gathered rows only). The add and the next norm
   * are one op where the backend has addRmsNorm.
   */
  private addToResidual(x: Activations, block: Activations, scratch: Activations, postNorm: Weight | undefined, nextNorm: Weight | undefined): void {
    const be = this.backend, eps = this.spec.normEps;
    let addend = block;
    if (postNorm) {
      be.rmsNorm(scratch, block, postNorm, eps);
      addend = scratch;
    }
    if (!nextNorm) {
      be.add(x, x, addend);
    } else if (be.addRmsNorm) {
      be.addRmsNorm(x, scratch, x, addend, nextNorm, eps); // (scratch may be the addend: normed may alias b)
    } else {
      be.add(x, x, addend);
      be.rmsNorm(scratch, x, nextNorm, eps);
    }
  }
}
