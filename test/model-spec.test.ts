import { test } from 'node:test';
import assert from 'node:assert/strict';
import { specFromHFConfig } from '../src/model/hf-config.js';
import { specFromGGUF } from '../src/model/gguf-spec.js';
import { parameterCount, ropeInvFreq } from '../src/model/spec.js';
import { checkManifest } from '../src/model/manifest.js';
import { llamaManifest } from '../src/model/arch/llama.js';
import { ggufNameFromHF, hfNameFromGGUF } from '../src/model/tensor-names.js';
import type { TensorInfo } from '../src/formats/tensor.js';

const tinyLlama = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 5632,
  num_attention_heads: 32, num_hidden_layers: 22, num_key_value_heads: 4, max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, vocab_size: 32000, hidden_act: 'silu',
  torch_dtype: 'bfloat16',
};

test('config.json of TinyLlama (model_type llama, GQA) gives the expected spec', () => {
  const s = specFromHFConfig(tinyLlama, 'config.json');
  assert.equal(s.arch, 'llama');
  assert.equal(s.headDim, 64);
  assert.equal(s.nKVHeads, 4);
  assert.equal(s.rope.style, 'halves');
  assert.equal(s.tiedEmbeddings, false);
  assert.equal(s.qkvBias, false);
  assert.equal(s.slidingWindow, undefined);
});

test('Qwen2 has qkv bias; Mistral keeps its sliding window', () => {
  const q = specFromHFConfig({ ...tinyLlama, model_type: 'qwen2', tie_word_embeddings: true, sliding_window: 4096, use_sliding_window: false }, 'c');
  assert.equal(q.arch, 'qwen2');
  assert.equal(q.qkvBias, true);
  assert.equal(q.tiedEmbeddings, true);
  assert.equal(q.slidingWindow, undefined);
  const m = specFromHFConfig({ ...tinyLlama, model_type: 'mistral', sliding_window: 4096 }, 'c');
  assert.equal(m.slidingWindow, 4096);
});

test('Llama 3 rope_scaling changes only the long wavelengths', () => {
  const base = { ...tinyLlama, rope_theta: 500000, hidden_size: 4096, num_attention_heads: 32 };
  const plain = ropeInvFreq(specFromHFConfig(base, 'c'));
  const scaled = ropeInvFreq(specFromHFConfig({
    ...base,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  }, 'c'));
  assert.equal(scaled[0], plain[0], 'highest frequency untouched');
  assert.ok(Math.abs(scaled[63]! - plain[63]! / 8) < 1e-12, 'lowest frequency divided by the factor');
});

test('malformed config.json values are errors naming the key and the file', () => {
  assert.throws(() => specFromHFConfig([], 'x/config.json'), /x\/config.json: expected a JSON object/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, model_type: 'gpt2' }, 'config.json'), /model_type "gpt2" is not supported/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, hidden_size: '2048' }, 'config.json'), /"hidden_size" must be a number/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, num_key_value_heads: 5 }, 'config.json'), /not a multiple/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, vocab_size: -1 }, 'config.json'), /"vocab_size" must be positive/);
  const { hidden_size: _, ...noHidden } = tinyLlama;
  assert.throws(() => specFromHFConfig(noHidden, 'config.json'), /missing "hidden_size"/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'config.json'),
    /rope_scaling type "yarn" is not supported/);
  assert.throws(() => specFromHFConfig({ ...tinyLlama, rope_scaling: { rope_type: 'linear', factor: 'x' } }, 'config.json'),
    /"rope_scaling.factor" must be a number/);
});

test('GGUF llama metadata gives interleaved RoPE and tied embeddings when output.weight is absent', () => {
  const meta = new Map<string, unknown>([
    ['general.architecture', 'llama'], ['llama.embedding_length', 64], ['llama.block_count', 2],
    ['llama.feed_forward_length', 128], ['llama.attention.head_count', 4], ['llama.attention.head_count_kv', 2],
    ['llama.context_length', 256], ['llama.attention.layer_norm_rms_epsilon', 1e-5],
    ['tokenizer.ggml.tokens', Array.from({ length: 100 }, (_, i) => `t${i}`)],
  ]);
  const s = specFromGGUF(meta, new Set(['token_embd.weight']), 'm.gguf');
  assert.equal(s.rope.style, 'interleaved');
  assert.equal(s.tiedEmbeddings, true);
  assert.equal(s.vocabSize, 100);
  assert.equal(s.headDim, 16);
  meta.set('general.architecture', 'falcon');
  assert.throws(() => specFromGGUF(meta, new Set(), 'm.gguf'), /m.gguf: general.architecture "falcon" is not supported/);
});

test('HF and GGUF tensor names map both ways', () => {
  assert.equal(ggufNameFromHF('model.layers.3.self_attn.q_proj.bias'), 'blk.3.attn_q.bias');
  assert.equal(ggufNameFromHF('lm_head.weight'), 'output.weight');
  assert.equal(ggufNameFromHF('model.layers.0.self_attn.rotary_emb.inv_freq'), null);
  assert.equal(ggufNameFromHF('model.layers.0.mlp.experts.0.w1'), undefined);
  assert.equal(hfNameFromGGUF('blk.12.ffn_down.weight'), 'model.layers.12.mlp.down_proj.weight');
});

test('the manifest check names missing, unexpected and misshapen tensors', () => {
  const spec = specFromHFConfig({ ...tinyLlama, hidden_size: 8, intermediate_size: 16, num_attention_heads: 2,
    num_key_value_heads: 1, num_hidden_layers: 1, vocab_size: 10 }, 'c');
  const tensors = new Map<string, TensorInfo>();
  for (const e of llamaManifest(spec)) {
    tensors.set(e.name, { name: e.name, dtype: 'F32', shape: e.shape, byteLength: 4 * e.shape.reduce((a, b) => a * b, 1) });
  }
  checkManifest('m', llamaManifest(spec), tensors);
  tensors.delete('blk.0.ffn_up.weight');
  tensors.set('blk.0.extra.weight', { name: 'blk.0.extra.weight', dtype: 'F32', shape: [1], byteLength: 4 });
  tensors.set('blk.0.attn_k.weight', { name: 'blk.0.attn_k.weight', dtype: 'F32', shape: [8, 8], byteLength: 256 });
  assert.throws(() => checkManifest('m', llamaManifest(spec), tensors), (e: Error) => {
    assert.match(e.message, /missing tensors: blk.0.ffn_up.weight/);
    assert.match(e.message, /unexpected tensors: blk.0.extra.weight/);
    assert.match(e.message, /blk.0.attn_k.weight is \[8, 8\], expected \[4, 8\]/);
    return true;
  });
});

// Qwen3-0.6B's published config.json (its head_dim of 128 is not hidden_size / heads = 64).
const qwen3 = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
  head_dim: 128, hidden_act: 'silu', hidden_size: 1024, initializer_range: 0.02, intermediate_size: 3072,
  max_position_embeddings: 40960, max_window_layers: 28, model_type: 'qwen3', num_attention_heads: 16, num_hidden_layers: 28,
  num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, use_sliding_window: false, vocab_size: 151936,
};

test('config.json of Qwen3-0.6B: explicit head_dim, per-head Q/K norms, no qkv bias, tied embeddings', () => {
  const s = specFromHFConfig(qwen3, 'config.json');
  assert.equal(s.arch, 'qwen3');
  assert.equal(s.modelType, 'qwen3');
  assert.equal(s.headDim, 128);
  assert.equal(s.nHeads, 16);
  assert.equal(s.nKVHeads, 8);
  assert.equal(s.qkNorm, true);
  assert.equal(s.qkvBias, false);
  assert.equal(s.tiedEmbeddings, true);
  assert.equal(s.rope.theta, 1e6);
  assert.equal(s.rope.style, 'halves');
  assert.equal(s.normEps, 1e-6);
  assert.equal(s.slidingWindow, undefined);
  // The model card's figures: 0.6B parameters, 0.44B of them outside the (tied) embedding table.
  const params = parameterCount(s);
  assert.equal((params / 1e9).toFixed(1), '0.6');
  assert.equal(((params - s.vocabSize * s.dim) / 1e9).toFixed(2), '0.44');
  const norms = llamaManifest(s).filter((e) => /^blk\.0\.attn_[qk]_norm\.weight$/.test(e.name));
  assert.deepEqual(norms.map((e) => e.shape), [[128], [128]]);
  assert.equal(llamaManifest(specFromHFConfig(tinyLlama, 'c')).some((e) => e.name.includes('_norm.weight') && e.name.includes('attn_q')), false);
  assert.throws(() => specFromHFConfig({ ...qwen3, attention_bias: true }, 'config.json'), /config.json: "attention_bias": true is not supported/);
  assert.throws(() => specFromHFConfig({ ...qwen3, use_sliding_window: true, sliding_window: 4096 }, 'config.json'),
    /use_sliding_window with max_window_layers is not supported for qwen3/);
});

test('GGUF qwen3 metadata: key_length gives the head size; halves RoPE; Q/K norm tensor names map both ways', () => {
  const meta = new Map<string, unknown>([
    ['general.architecture', 'qwen3'], ['qwen3.embedding_length', 1024], ['qwen3.block_count', 28],
    ['qwen3.feed_forward_length', 3072], ['qwen3.attention.head_count', 16], ['qwen3.attention.head_count_kv', 8],
    ['qwen3.attention.key_length', 128], ['qwen3.attention.value_length', 128], ['qwen3.context_length', 40960],
    ['qwen3.rope.freq_base', 1e6], ['qwen3.attention.layer_norm_rms_epsilon', 1e-6],
    ['tokenizer.ggml.tokens', Array.from({ length: 151936 }, (_, i) => `t${i}`)],
  ]);
  const s = specFromGGUF(meta, new Set(['token_embd.weight']), 'q.gguf');
  assert.equal(s.arch, 'qwen3');
  assert.equal(s.headDim, 128);
  assert.equal(s.qkNorm, true);
  assert.equal(s.qkvBias, false);
  assert.equal(s.rope.style, 'halves');
  assert.equal(s.tiedEmbeddings, true);
  meta.set('qwen3.attention.value_length', 64);
  assert.throws(() => specFromGGUF(meta, new Set(), 'q.gguf'), /q.gguf: qwen3.attention.value_length differs from key_length/);
  assert.equal(ggufNameFromHF('model.layers.5.self_attn.q_norm.weight'), 'blk.5.attn_q_norm.weight');
  assert.equal(ggufNameFromHF('model.layers.5.self_attn.k_norm.weight'), 'blk.5.attn_k_norm.weight');
  assert.equal(hfNameFromGGUF('blk.27.attn_k_norm.weight'), 'model.layers.27.self_attn.k_norm.weight');
});
