// Reading Gemma's config.json files and tensor names: Gemma 3's multimodal config (text_config,
// with transformers' defaults for what the published files leave out), its text weights under
// either prefix with the vision tower skipped, Gemma 2/3's four norms per layer, and refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { specFromHFConfig } from '../src/model/hf-config.js';
import { ggufNameFromHF, hfNameFromGGUF } from '../src/model/tensor-names.js';

test('a gemma3 (multimodal) config.json is read from its text_config, with transformers\' defaults', () => {
  // As google/gemma-3-4b-it publishes it: sizes and scaling only.
  const spec = specFromHFConfig({
    model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'],
    text_config: {
      model_type: 'gemma3_text', hidden_size: 2560, intermediate_size: 10240, num_hidden_layers: 34,
      rope_scaling: { factor: 8.0, rope_type: 'linear' }, sliding_window: 1024,
    },
    vision_config: { model_type: 'siglip_vision_model' },
  }, 'config.json');
  assert.equal(spec.arch, 'gemma3');
  assert.deepEqual([spec.nHeads, spec.nKVHeads, spec.headDim, spec.vocabSize], [8, 4, 256, 262208]);
  assert.equal(spec.attentionScale, 1 / 16);
  assert.equal(spec.embedScale, Math.sqrt(2560));
  assert.equal(spec.qkNorm, true);
  assert.equal(spec.tiedEmbeddings, true);
  assert.equal(spec.attnSoftcap, undefined);
  assert.equal(spec.finalSoftcap, undefined);
  const layers = spec.layers!;
  assert.equal(layers.length, 34);
  assert.deepEqual(layers.map((l, i) => [i, l.slidingWindow]).filter(([, w]) => w === undefined).map(([i]) => i), [5, 11, 17, 23, 29]);
  assert.deepEqual(layers[0], { slidingWindow: 1024, rope: { theta: 10000, scaling: { type: 'none' } } });
  assert.deepEqual(spec.rope, { theta: 1e6, scaling: { type: 'linear', factor: 8 }, style: 'halves' });
});

test('Gemma 2: every other layer slides, soft-caps and query_pre_attn_scalar as configured', () => {
  const spec = specFromHFConfig({
    model_type: 'gemma2', hidden_size: 4608, intermediate_size: 36864, num_hidden_layers: 46, num_attention_heads: 32,
    num_key_value_heads: 16, head_dim: 128, query_pre_attn_scalar: 144, sliding_window: 4096,
    attn_logit_softcapping: 50.0, final_logit_softcapping: 30.0, hidden_activation: 'gelu_pytorch_tanh', vocab_size: 256000,
  }, 'config.json');
  assert.equal(spec.attentionScale, 1 / 12);
  assert.deepEqual([spec.attnSoftcap, spec.finalSoftcap], [50, 30]);
  assert.deepEqual(spec.layers!.slice(0, 3), [{ slidingWindow: 4096 }, { slidingWindow: undefined }, { slidingWindow: 4096 }]);
});

test('Gemma configs that cannot run are refused by name', () => {
  assert.throws(() => specFromHFConfig({ model_type: 'gemma3' }, 'config.json'), /config\.json: .*"text_config"/);
  assert.throws(() => specFromHFConfig({ model_type: 'gemma2', hidden_size: 8, intermediate_size: 8, num_hidden_layers: 2, hidden_activation: 'relu' }, 'config.json'),
    /hidden_activation "relu" is not supported/);
  assert.throws(() => specFromHFConfig({ model_type: 'gemma3_text', hidden_size: 8, intermediate_size: 8, num_hidden_layers: 2, layer_types: ['x', 'y'] }, 'config.json'),
    /"layer_types"\[0\] is "x"/);
});

test('Gemma tensor names: four norms per layer, multimodal prefixes, vision weights skipped', () => {
  assert.equal(ggufNameFromHF('model.layers.3.post_attention_layernorm.weight', 'gemma2'), 'blk.3.post_attention_norm.weight');
  assert.equal(ggufNameFromHF('model.layers.3.pre_feedforward_layernorm.weight', 'gemma2'), 'blk.3.ffn_norm.weight');
  assert.equal(ggufNameFromHF('model.layers.3.post_feedforward_layernorm.weight', 'gemma3'), 'blk.3.post_ffw_norm.weight');
  assert.equal(ggufNameFromHF('model.layers.3.post_attention_layernorm.weight', 'gemma'), 'blk.3.ffn_norm.weight');
  assert.equal(ggufNameFromHF('language_model.model.layers.0.self_attn.q_norm.weight', 'gemma3'), 'blk.0.attn_q_norm.weight');
  assert.equal(ggufNameFromHF('model.language_model.embed_tokens.weight', 'gemma3'), 'token_embd.weight');
  assert.equal(ggufNameFromHF('vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight', 'gemma3'), null);
  assert.equal(ggufNameFromHF('model.multi_modal_projector.mm_input_projection_weight', 'gemma3'), null);
  assert.equal(hfNameFromGGUF('blk.7.ffn_norm.weight', 'gemma2'), 'model.layers.7.pre_feedforward_layernorm.weight');
  assert.equal(hfNameFromGGUF('blk.7.post_attention_norm.weight', 'gemma3'), 'model.layers.7.post_attention_layernorm.weight');
  assert.equal(hfNameFromGGUF('blk.7.ffn_norm.weight'), 'model.layers.7.post_attention_layernorm.weight');
});
