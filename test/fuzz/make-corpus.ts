// Writes the fuzz targets' seed corpus (test/fuzz/corpus/<target>/seed-*) with the project's own
// writers where it has one (GGUF, SafeTensors, tokenizer.json from a SentencePiece vocabulary) and
// by hand where it has none (llama2.c checkpoints and tokenizer.bin). Run after a build, from the
// repository root: `node dist/test/fuzz/make-corpus.js`. The seeds are committed; regress-* files
// beside them are findings kept by hand and are never rewritten here.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeGGUF } from '../../src/formats/gguf.js';
import { writeSafeTensors, writeSafeTensorsSharded, INDEX_FILE } from '../../src/formats/safetensors.js';
import { LLAMA2C_MAGIC } from '../../src/formats/llama2c.js';
import { spmTokenizerJSONWithBos } from '../../src/tokenizer/synthetic-vocab.js';
import { TokenType } from '../../src/tokenizer/token-types.js';
import { CORPUS } from '../helpers/fuzz.js';

async function put(target: string, file: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(path.join(CORPUS, target), { recursive: true });
  await writeFile(path.join(CORPUS, target, file), bytes);
}

/** Bytes 0, 1, 2, … of the given length (tensor data whose content does not matter). */
function counting(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => i & 0xff);
}

const tmp = path.join(os.tmpdir(), `minerva-corpus-${process.pid}`);
await mkdir(tmp, { recursive: true });

// GGUF: every value type, arrays of numbers, strings and arrays, tensors of several dtypes.
for (const version of [2, 3] as const) {
  const file = path.join(tmp, `v${version}.gguf`);
  await writeGGUF(file, {
    version,
    metadata: [
      { key: 'general.architecture', type: 'string', value: 'llama' },
      { key: 'general.name', type: 'string', value: 'fuzz seed ✓' },
      { key: 'u8', type: 'u8', value: 200 }, { key: 'i8', type: 'i8', value: -100 },
      { key: 'u16', type: 'u16', value: 60000 }, { key: 'i16', type: 'i16', value: -30000 },
      { key: 'u32', type: 'u32', value: 4000000000 }, { key: 'i32', type: 'i32', value: -2000000000 },
      { key: 'f32', type: 'f32', value: 1.5 }, { key: 'bool', type: 'bool', value: true },
      { key: 'u64', type: 'u64', value: 2n ** 60n }, { key: 'i64', type: 'i64', value: -5 },
      { key: 'f64', type: 'f64', value: Math.PI },
      { key: 'llama.context_length', type: 'u32', value: 64 },
      { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: ['<unk>', '<s>', '</s>', '▁a', 'b'] },
      { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: [0, 0, 0, -1, -2] },
      { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: [2, 3, 3, 1, 1] },
      { key: 'bytes', type: 'array', itemType: 'u8', value: [1, 2, 3] },
      { key: 'flags', type: 'array', itemType: 'bool', value: [true, false] },
      { key: 'wide', type: 'array', itemType: 'u64', value: [1, 2n ** 63n] },
      { key: 'nested', type: 'array', itemType: 'array', value: [{ itemType: 'u8', value: [1] }, { itemType: 'string', value: ['x', ''] }] },
      { key: 'empty', type: 'array', itemType: 'i16', value: [] },
    ],
    tensors: [
      { name: 'a.f32', dtype: 'F32', shape: [2, 4], data: counting(32) },
      { name: 'b.f16', dtype: 'F16', shape: [3], data: counting(6) },
      { name: 'c.q8_0', dtype: 'Q8_0', shape: [1, 32], data: counting(34) },
      { name: 'd.q4_k', dtype: 'Q4_K', shape: [256], data: counting(144) },
    ],
  });
  await put('gguf', `seed-v${version}.gguf`, await readFile(file));
}
// An alignment other than 32, and a file with no tensors.
{
  const file = path.join(tmp, 'align.gguf');
  await writeGGUF(file, {
    alignment: 64,
    metadata: [{ key: 'general.architecture', type: 'string', value: 'qwen3' }],
    tensors: [{ name: 'w', dtype: 'Q4_0', shape: [2, 32], data: counting(36) }, { name: 'i', dtype: 'I32', shape: [2], data: counting(8) }],
  });
  await put('gguf', 'seed-align64.gguf', await readFile(file));
  await writeGGUF(file, { metadata: [{ key: 'k', type: 'string', value: 'v' }], tensors: [] });
  await put('gguf', 'seed-no-tensors.gguf', await readFile(file));
}

// GGUF vocabularies: a tiny SentencePiece ("llama") one and a tiny byte-level BPE ("gpt2") one.
{
  const file = path.join(tmp, 'vocab.gguf');
  const spm = ['<unk>', '<s>', '</s>', '<0x0A>', '<0xE2>', '▁', 'a', 'b', 'h', 'e', 'l', 'o', '▁a', 'ab', '▁ab', 'he', 'll', '▁hello'];
  await writeGGUF(file, {
    metadata: [
      { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
      { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: spm },
      { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: spm.map((_, i) => -i) },
      { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: spm.map((p, i) => (i === 0 ? 2 : i < 3 ? 3 : p.startsWith('<0x') ? 6 : 1)) },
      { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
      { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
      { key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: true },
      { key: 'tokenizer.chat_template', type: 'string', value: '{{ messages[0].content }}' },
    ],
    tensors: [],
  });
  await put('gguf-vocab', 'seed-llama.gguf', await readFile(file));
  const bpe = ['<|endoftext|>', '!', 'a', 'b', 'e', 'h', 'l', 'o', 'Ġ', 'Ċ', 'Ã', '©', 'Ġa', 'ab', 'Ġab', 'he', 'll', 'hell', 'hello', 'Ã©'];
  await writeGGUF(file, {
    metadata: [
      { key: 'tokenizer.ggml.model', type: 'string', value: 'gpt2' },
      { key: 'tokenizer.ggml.pre', type: 'string', value: 'default' },
      { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: bpe },
      { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: bpe.map((_, i) => (i === 0 ? 3 : 1)) },
      { key: 'tokenizer.ggml.merges', type: 'array', itemType: 'string', value: ['Ġ a', 'a b', 'Ġa b', 'h e', 'l l', 'he ll', 'hell o', 'Ã ©'] },
      { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 0 },
    ],
    tensors: [],
  });
  await put('gguf-vocab', 'seed-gpt2.gguf', await readFile(file));
}

// SafeTensors: one file with metadata and tensors of several dtypes; a sharded folder's index.
{
  const tensors = [
    { name: 'model.embed_tokens.weight', dtype: 'F32' as const, shape: [4, 2], data: counting(32) },
    { name: 'model.norm.weight', dtype: 'BF16' as const, shape: [2], data: counting(4) },
    { name: 'scalar', dtype: 'I64' as const, shape: [], data: counting(8) },
    { name: 'empty', dtype: 'U8' as const, shape: [0, 3], data: new Uint8Array(0) },
    { name: 'flags', dtype: 'BOOL' as const, shape: [3], data: new Uint8Array([0, 1, 1]) },
  ];
  const file = path.join(tmp, 'one.safetensors');
  await writeSafeTensors(file, tensors, { format: 'pt', note: 'fuzz seed' });
  await put('safetensors', 'seed-one.safetensors', await readFile(file));
  const dir = path.join(tmp, 'sharded');
  await writeSafeTensorsSharded(dir, tensors, 16);
  await put('safetensors-index', `seed-${INDEX_FILE}`, await readFile(path.join(dir, INDEX_FILE)));
}

// llama2.c checkpoints (no writer in the project: laid out here as export.py does).
function llama2cCheckpoint(version: 0 | 1, shared: boolean): Uint8Array {
  const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = [8, 16, 1, 2, 1, 8, 4];
  const kvDim = (dim / heads) * kvHeads, headSize = dim / heads;
  const floats = vocab * dim + layers * (2 * dim + dim * dim * 2 + kvDim * dim * 2 + 3 * hidden * dim) + dim
    + (version === 0 ? 2 * seqLen * (headSize / 2) : 0) + (shared ? 0 : vocab * dim);
  const header = new DataView(new ArrayBuffer(version === 0 ? 28 : 256));
  const params = [dim, hidden, layers, heads, kvHeads, vocab, seqLen];
  if (version === 0) {
    params.forEach((p, i) => header.setInt32(i * 4, i === 5 && !shared ? -p : p, true));
  } else {
    header.setUint32(0, LLAMA2C_MAGIC, true);
    header.setInt32(4, 1, true);
    params.forEach((p, i) => header.setInt32(8 + i * 4, p, true));
    header.setUint8(36, shared ? 1 : 0);
  }
  const data = Float32Array.from({ length: floats }, (_, i) => i / 1024);
  const out = new Uint8Array(header.byteLength + data.byteLength);
  out.set(new Uint8Array(header.buffer));
  out.set(new Uint8Array(data.buffer), header.byteLength);
  return out;
}
await put('llama2c', 'seed-v0-shared.bin', llama2cCheckpoint(0, true));
await put('llama2c', 'seed-v1-separate.bin', llama2cCheckpoint(1, false));

// llama2.c tokenizer.bin: max_token_length, then (score, length, bytes) per token.
{
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n', '<0x0A>', '<0xE2>', ' ', 'a', 'b', ' a', 'ab', ' ab', 'é', 'h', 'e', 'l', 'o', 'he', 'll', ' hello'];
  const encoded = pieces.map((p) => new TextEncoder().encode(p));
  const size = 4 + encoded.reduce((n, e) => n + 8 + e.length, 0);
  const view = new DataView(new ArrayBuffer(size));
  view.setInt32(0, Math.max(...encoded.map((e) => e.length)), true);
  let at = 4;
  encoded.forEach((e, id) => {
    view.setFloat32(at, id < 5 ? 0 : -id, true);
    view.setInt32(at + 4, e.length, true);
    new Uint8Array(view.buffer).set(e, at + 8);
    at += 8 + e.length;
  });
  await put('llama2c-tokenizer', 'seed-tokenizer.bin', new Uint8Array(view.buffer));
}

// tokenizer.json: a tiny SentencePiece-style BPE (from the project's converter) and a tiny
// byte-level BPE (GPT-2 layout, by hand); each with a tokenizer_config.json.
{
  const pieces = ['<unk>', '<s>', '</s>', '<0x0A>', '<0x21>', '▁', 'a', 'b', 'h', 'e', 'l', 'o', '▁a', 'ab', '▁ab', 'he', 'll', '▁he', '▁hello', '<|im_end|>'];
  const types = pieces.map((p, i) => (i === 0 ? TokenType.unknown : i <= 2 || i === 19 ? TokenType.control : p.startsWith('<0x') ? TokenType.byte : TokenType.normal));
  const withBos = spmTokenizerJSONWithBos({ pieces, scores: pieces.map((_, i) => -i), types, unkId: 0, addSpacePrefix: true });
  await put('tokenizer-json', 'seed-spm.tokenizer.json', JSON.stringify(withBos));
  await put('tokenizer-json', 'seed-spm.tokenizer_config.json', JSON.stringify({
    bos_token: '<s>', eos_token: { content: '</s>', special: true }, unk_token: '<unk>', add_bos_token: true, add_eos_token: false,
    chat_template: "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + eos_token }}{% endfor %}",
  }));
  const vocab = ['<|endoftext|>', '!', 'a', 'b', 'c', 'e', 'h', 'l', 'o', 'Ġ', 'Ċ', 'Ã', '©', 'Ġa', 'ab', 'Ġab', 'he', 'll', 'hell', 'hello', 'Ġhello', 'Ã©'];
  const bpe = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 0, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      merges: [['Ġ', 'a'], ['a', 'b'], ['Ġa', 'b'], ['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 'hello'], ['Ã', '©']],
    },
  };
  await put('tokenizer-json', 'seed-bpe.tokenizer.json', JSON.stringify(bpe));
  await put('tokenizer-json', 'seed-bpe.tokenizer_config.json', JSON.stringify({
    eos_token: '<|endoftext|>', add_bos_token: false,
    chat_template: [{ name: 'default', template: '{{ messages[0].content }}' }, { name: 'tool_use', template: 'tools' }],
  }));
}

// config.json of the supported families.
{
  const base = {
    hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    vocab_size: 300, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false,
  };
  await put('hf-config', 'seed-llama.json', JSON.stringify({ ...base, model_type: 'llama', architectures: ['LlamaForCausalLM'], rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 128 } }));
  await put('hf-config', 'seed-qwen3.json', JSON.stringify({ ...base, model_type: 'qwen3', head_dim: 32, rope_scaling: { type: 'linear', factor: 4 } }));
  await put('hf-config', 'seed-gemma3.json', JSON.stringify({
    model_type: 'gemma3_text', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1,
    head_dim: 16, vocab_size: 300, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 1000000, rope_local_base_freq: 10000,
    sliding_window: 32, sliding_window_pattern: 2, query_pre_attn_scalar: 16, hidden_activation: 'gelu_pytorch_tanh', final_logit_softcapping: null,
  }));
  await put('hf-config', 'seed-phi3.json', JSON.stringify({ ...base, model_type: 'phi3', partial_rotary_factor: 1, rope_scaling: null }));
}

await rm(tmp, { recursive: true, force: true });
