// SmolLM2 and SmolLM3.
//
// SmolLM2 is plain Llama (config.json model_type "llama", LlamaForCausalLM, tied embeddings): it
// loads as llama and needs nothing here.
//
// SmolLM3 (HF model_type "smollm3", GGUF "smollm3") is Llama with no RoPE on some layers ("NoPE"):
// config.json lists them in no_rope_layers (one 0/1 per layer, 1 = RoPE applied) or, failing that,
// derives them from no_rope_layer_interval (every interval-th layer, counted from 1, has none;
// transformers' default 4). GGUF has no key for it: llama.cpp hard-codes the interval 4 for
// smollm3 (layer il has no RoPE when (il + 1) % 4 == 0). The graph is LlamaGraph, which skips
// RoPE on layers whose spec.ropeLayers entry is false. llama.cpp's converter treats SmolLM3 as
// Llama, so its GGUF Q/K rows are permuted for interleaved RoPE, as Llama's are.
import type { ConfigReader } from '../config-reader.js';
import type { ModelSpec } from '../spec.js';

/** llama.cpp's n_no_rope_layer_step for smollm3 (no GGUF key carries it). */
export const SMOLLM3_GGUF_NO_ROPE_INTERVAL = 4;

/** Which of nLayers layers apply RoPE when every interval-th (counted from 1) does not. */
export function ropeLayersByInterval(nLayers: number, interval: number): boolean[] {
  return Array.from({ length: nLayers }, (_, i) => (i + 1) % interval !== 0);
}

/** SmolLM3's part of config.json: the per-layer RoPE flags; sliding windows are refused. */
export function smollm3FromHFConfig(c: ConfigReader, spec: ModelSpec): ModelSpec {
  if (c.boolean('use_sliding_window', false)) c.fail('"use_sliding_window": true is not supported for smollm3');
  let ropeLayers: boolean[];
  const list = c.raw('no_rope_layers');
  if (list !== undefined && list !== null) {
    if (!Array.isArray(list) || list.length !== spec.nLayers || list.some((v) => v !== 0 && v !== 1 && v !== true && v !== false)) {
      c.fail(`"no_rope_layers" must be a list of ${spec.nLayers} entries, each 1 (RoPE) or 0 (no RoPE)`);
    }
    ropeLayers = (list as (number | boolean)[]).map((v) => v === 1 || v === true);
  } else {
    ropeLayers = ropeLayersByInterval(spec.nLayers, c.count('no_rope_layer_interval', 4));
  }
  return { ...spec, ropeLayers };
}

/** SmolLM3 from GGUF: llama.cpp's fixed interval. */
export function smollm3FromGGUF(spec: ModelSpec): ModelSpec {
  return { ...spec, ropeLayers: ropeLayersByInterval(spec.nLayers, SMOLLM3_GGUF_NO_ROPE_INTERVAL) };
}

/**
 * Refuses to write a SmolLM3 GGUF whose no-RoPE layers are not llama.cpp's fixed pattern: the
 * file could not say so, and llama.cpp (and Minerva reading it back) would rotate the wrong layers.
 */
export function checkSmolLM3GGUFLayers(spec: ModelSpec): void {
  const expected = ropeLayersByInterval(spec.nLayers, SMOLLM3_GGUF_NO_ROPE_INTERVAL);
  const actual = spec.ropeLayers ?? expected.map(() => true);
  if (actual.some((v, i) => v !== expected[i])) {
    const noRope = actual.flatMap((v, i) => (v ? [] : [i]));
    throw new Error(`smollm3: layers without RoPE [${noRope.join(', ')}] are not every ${SMOLLM3_GGUF_NO_ROPE_INTERVAL}th layer, `
      + 'the only pattern a GGUF file can hold (llama.cpp fixes it; no metadata key states it)');
  }
}
