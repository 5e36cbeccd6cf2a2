// minerva convert: random-weight Hugging Face folders (Llama with the Llama 2 SentencePiece-style
// tokenizer.json, Qwen2 with qkv bias and Qwen3 with per-head Q/K norms, both with a byte-level
// Qwen2 tokenizer, Llama 3 RoPE scaling with a byte-level Llama 3 tokenizer, and a 256-wide 8-layer
// Llama for the K-quant mixes) converted to every --type, then:
//  (a) @huggingface/gguf, an independent parser, reads the metadata and tensor infos;
//  (b) llama.cpp (node-llama-cpp, CPU, KV cache in F32, no flash attention) loads the file and
//      is compared with Minerva: logits at the end of each prompt, and greedy continuations of 32
//      tokens. Greedy paths may only part at a near-tie: where the judging model's top two logits
//      are closer (in units of the logits' RMS) than the type's rounding can move them. f32 and
//      f16 are judged against Minerva on the source folder; bf16 and the quantized types against
//      Minerva on the converted file, because their rounding of the weights is in the file and
//      llama.cpp also rounds activations (to bf16, or to 8-bit blocks for quantized weights);
//  (c) what must be refused is, with an error that names it.
// Also: the committed demo model, the vocabulary readers, and the per-tensor types against the
// tensor counts llama.cpp reports for published files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gguf } from '@huggingface/gguf';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { loadModel, type Model } from '../src/index.js';
import { convertModel } from '../src/convert/convert.js';
import { convertCommand } from '../src/cli/convert.js';
import { CONVERT_TYPES, type ConvertType } from '../src/convert/file-types.js';
import type { DType } from '../src/quant/dtype.js';
import { GGML_TYPE_IDS } from '../src/quant/dtype.js';
import { tensorTypes, useMoreBits, type PlannedTensor } from '../src/convert/tensor-types.js';
import { vocabEntries } from '../src/convert/gguf-vocab.js';
import { vocabFromHFFolder } from '../src/convert/vocab-hf.js';
import { openGGUF } from '../src/formats/gguf.js';
import { loadHFTokenizer, tokenizerFromGGUF } from '../src/tokenizer/index.js';
import { llamaManifest } from '../src/model/arch/llama.js';
import { openModelFiles } from '../src/model/load.js';
import * as random from '../src/model/random-model.js';
import * as q5_0 from '../src/quant/q5_0.js';
import { syntheticSpmVocab, syntheticVocabHF } from '../src/tokenizer/synthetic-vocab.js';
import type { ModelSpec } from '../src/model/spec.js';
import { randomSpec, randomWeights, writeHFModel, LLAMA2_GGUF_VOCAB, LLAMA2_HF_TOKENIZER, type RandomModelShape } from './helpers/random-model.js';
import { byteLevelTokenizer, LLAMA3_CHAT_TEMPLATE } from './helpers/byte-level-tokenizer.js';
import { FIXTURES, fixturesSkip as skip, readVocabTests } from './helpers/fixtures.js';
import { llamaCppLogitsAndGreedy, relativeRMS } from './helpers/llamacpp.js';
import { assertQuantOnLoadEqualsGGUF, collect, greedyContinuations, logitsDiff } from './helpers/generation.js';
import { assertVocabTests } from './helpers/vocab-tests.js';

const TYPES = Object.keys(CONVERT_TYPES) as ConvertType[];
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京 🚀'];
const TOKENS = 32;
const DEMO = fileURLToPath(new URL('../../models/demo/stories260K.gguf', import.meta.url));
const STORIES = path.join(FIXTURES, 'llama2c/stories260K.bin');
const TOK512 = path.join(FIXTURES, 'llama2c/tok512.bin');

type Vocab = 'llama2' | 'llama3' | 'qwen2' | 'synthetic';
const MODELS: Record<string, { shape: RandomModelShape; vocab: Vocab; pre: string }> = {
  'llama-gqa': { shape: { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false }, vocab: 'llama2', pre: 'default' },
  'qwen2-bias': { shape: { arch: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, ffnDim: 128, tied: true }, vocab: 'qwen2', pre: 'qwen2' },
  'llama3-rope': {
    shape: {
      arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false, ropeTheta: 500000,
      llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
    },
    vocab: 'llama3', pre: 'llama-bpe',
  },
  // Rows of 256 and 512: whole K-quant super-blocks, so q4_k_m and q6_k write Q4_K and Q6_K.
  'llama-kquant': { shape: { arch: 'llama', dim: 256, nLayers: 8, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: false }, vocab: 'synthetic', pre: 'default' },
  // Last, so that the models above keep their seeds (the weights their bounds were checked on).
  // Per-head Q/K norms, and heads of 32 in a width of 64 (attention.key_length must be written).
  'qwen3': { shape: { arch: 'qwen3', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true, ropeTheta: 1000000 }, vocab: 'qwen2', pre: 'qwen2' },
};

/**
 * Bounds per type. engines: relative RMS difference of llama.cpp's and Minerva's logits on the
 * converted file; source: of Minerva's logits on the converted file and on the source folder (the
 * type's rounding); tie: how close (in RMS of the logits) the top two may be where greedy paths part.
 */
const BOUNDS: Record<ConvertType, { engines: number; source: number; tie: number; judge: 'source' | 'converted' }> = {
  f32: { engines: 1e-5, source: 1e-5, tie: 1e-4, judge: 'source' },
  f16: { engines: 3e-3, source: 3e-3, tie: 5e-3, judge: 'source' },
  bf16: { engines: 1.5e-2, source: 1.5e-2, tie: 2e-2, judge: 'converted' },
  q8_0: { engines: 0.08, source: 0.06, tie: 0.12, judge: 'converted' },
  q6_k: { engines: 0.08, source: 0.16, tie: 0.12, judge: 'converted' },
  q4_0: { engines: 0.08, source: 0.5, tie: 0.12, judge: 'converted' },
  q4_k_m: { engines: 0.08, source: 0.45, tie: 0.12, judge: 'converted' },
  q5_k_m: { engines: 0.08, source: 0.2, tie: 0.12, judge: 'converted' },
  q3_k_m: { engines: 0.08, source: 0.6, tie: 0.12, judge: 'converted' },
};

let dir: string;
let llama: Llama | undefined;
/** Per model: its spec, and Minerva's run of the source folder. */
const sources = new Map<string, { spec: ModelSpec; prompts: number[][]; greedy: number[][]; logits: Float32Array[] }>();

async function writeModel(name: string, shape: RandomModelShape, vocab: Vocab, seed: number): Promise<ModelSpec> {
  const folder = path.join(dir, name);
  if (vocab === 'llama2') {
    const spec = randomSpec(shape);
    await writeHFModel(folder, spec, randomWeights(spec, seed));
    return spec;
  }
  if (vocab === 'synthetic') {
    const spec = randomSpec({ ...shape, vocabSize: 512 });
    await random.writeHFModel(folder, spec, randomWeights(spec, seed), { tokenizer: syntheticVocabHF(syntheticSpmVocab(512)) });
    return spec;
  }
  const tok = await byteLevelTokenizer(vocab);
  const spec = randomSpec({ ...shape, vocabSize: tok.vocabSize });
  await random.writeHFModel(folder, spec, randomWeights(spec, seed), { tokenizer: tok });
  // The writer's config.json has Llama 2's BOS 1 and EOS 2; these vocabularies have their own.
  const configFile = path.join(folder, 'config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(configFile, JSON.stringify({ ...config, bos_token_id: tok.bosId ?? null, eos_token_id: tok.eosId }));
  return spec;
}


before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-convert-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  let seed = 200;
  for (const [name, m] of Object.entries(MODELS)) {
    const spec = await writeModel(name, m.shape, m.vocab, seed++);
    const model = await loadModel(path.join(dir, name), { contextLength: 256 });
    try {
      const prompts = PROMPTS.map((p) => model.tokenize(p));
      const logits: Float32Array[] = [];
      for (const p of prompts) logits.push(await model.logits(p));
      sources.set(name, { spec, prompts, greedy: await greedyContinuations(model, prompts, TOKENS), logits });
    } finally {
      model.dispose();
    }
  }
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** llama.cpp on a file: logits at the end of each prompt, greedy continuations, and its tokenizer. */
/** llama.cpp on a file: logits and greedy continuations (helpers/llamacpp.ts), and its tokenization of `texts`. */
async function llamaCppRun(file: string, prompts: number[][], vocabSize: number, texts: string[] = []) {
  const run = await llamaCppLogitsAndGreedy(llama!, file, prompts, { vocabSize, maxTokens: TOKENS, texts });
  return { ...run, tokenized: run.tokenized ?? [] };
}


/**
 * `actual` follows `expected` token for token, or parts from it where `judge`'s top logit and the
 * logit of actual's token are within `tie` RMS of the logits (both continuations are then right).
 */
async function assertGreedyAgrees(what: string, actual: number[][], expected: number[][], prompts: number[][], judge: Model, tie: number): Promise<void> {
  for (let i = 0; i < prompts.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    assert.equal(a.length, TOKENS, `${what}, prompt ${i}: llama.cpp stopped after ${a.length} tokens`);
    assert.equal(e.length, TOKENS, `${what}, prompt ${i}: Minerva stopped after ${e.length} tokens`);
    const k = a.findIndex((t, j) => t !== e[j]);
    if (k < 0) continue;
    const l = await judge.logits([...prompts[i]!, ...e.slice(0, k)]);
    const rms = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length);
    const gap = (l[e[k]!]! - l[a[k]!]!) / rms;
    assert.ok(gap <= tie, `${what}, prompt ${i}: greedy paths part at token ${k} (${e[k]} vs llama.cpp's ${a[k]}) where the logits are ${gap.toExponential(2)} RMS apart, more than ${tie}`);
  }
}

const TOKENIZER_TEXTS = [
  'Hello world', ' Hello world', 'Hello  world', '  leading and trailing  ', '\n\n\tTabs\tand\nnewlines\n',
  '1234567890 3.14159 1,000,000', 'Ünïcödé façade naïve résumé', '日本語のテキスト 中文 한국어', 'Привет, мир!',
  '🚀🔥👍🏽 👨‍👩‍👧‍👦', 'emoji🙂inside', "don't won't y'all", 'x'.repeat(50), '',
];

/** What llama-quantize writes instead of a K-quant for rows that are not whole super-blocks. */
const KQUANT_ROW_FALLBACK: Partial<Record<ConvertType, DType>> = { q4_k_m: 'Q5_0', q5_k_m: 'Q5_1', q3_k_m: 'Q4_0' };

for (const [name, m] of Object.entries(MODELS)) {
  for (const type of TYPES) {
    // q5_k_m and q3_k_m on small rows are their fallbacks (Q5_1, Q4_0) almost throughout: one
    // such model (llama-gqa) covers that, llama-kquant the K-quants themselves (suite time).
    if ((type === 'q5_k_m' || type === 'q3_k_m') && name !== 'llama-kquant' && name !== 'llama-gqa') continue;
    test(`${name} → ${type}: @huggingface/gguf reads it; llama.cpp runs it as Minerva runs the source (bounds: ${JSON.stringify(BOUNDS[type])})`, { skip }, async () => {
      const src = sources.get(name)!;
      const { spec } = src;
      const out = path.join(dir, `${name}-${type}.gguf`);
      const result = await convertModel(path.join(dir, name), out, { type });
      assert.equal(result.type, type);

      // (a) An independent parser reads what llama.cpp reads.
      const parsed = await gguf(out, { allowLocalFile: true });
      const md = parsed.metadata as unknown as Record<string, unknown>;
      const a = spec.arch;
      assert.equal(md['general.architecture'], a);
      assert.equal(md['general.name'], name);
      assert.equal(md['general.file_type'], CONVERT_TYPES[type].fileType);
      assert.equal(md['general.quantization_version'], 2);
      for (const [key, value] of [['context_length', spec.contextLength], ['embedding_length', spec.dim], ['block_count', spec.nLayers],
        ['feed_forward_length', spec.ffnDim], ['attention.head_count', spec.nHeads], ['attention.head_count_kv', spec.nKVHeads],
        ['rope.dimension_count', spec.headDim], ['vocab_size', spec.vocabSize]] as const) {
        assert.equal(md[`${a}.${key}`], value, `${a}.${key}`);
      }
      assert.ok(Math.abs((md[`${a}.attention.layer_norm_rms_epsilon`] as number) - spec.normEps) < 1e-9);
      if (spec.headDim * spec.nHeads !== spec.dim) {
        assert.equal(md[`${a}.attention.key_length`], spec.headDim);
        assert.equal(md[`${a}.attention.value_length`], spec.headDim);
      }
      assert.equal(md[`${a}.rope.freq_base`], spec.rope.theta);
      assert.equal(md['tokenizer.ggml.model'], m.vocab === 'llama2' || m.vocab === 'synthetic' ? 'llama' : 'gpt2');
      assert.equal(md['tokenizer.ggml.pre'], m.pre);
      assert.equal((md['tokenizer.ggml.tokens'] as string[]).length, spec.vocabSize);
      if (m.vocab === 'llama3') assert.equal(md['tokenizer.chat_template'], LLAMA3_CHAT_TEMPLATE);
      const names = parsed.tensorInfos.map((t) => t.name);
      assert.equal(names.includes('output.weight'), !spec.tiedEmbeddings, 'output.weight only when not tied');
      assert.equal(names.includes('rope_freqs.weight'), spec.rope.scaling.type === 'llama3');
      const manifest = llamaManifest(spec).filter((e) => !(e.name === 'output.weight' && spec.tiedEmbeddings));
      assert.deepEqual(names.filter((n) => n !== 'rope_freqs.weight').sort(), manifest.map((e) => e.name).sort());
      for (const t of parsed.tensorInfos) {
        if (t.name === 'rope_freqs.weight') continue;
        const e = manifest.find((x) => x.name === t.name)!;
        assert.deepEqual(t.shape.map(Number), [...e.shape].reverse(), `${t.name} shape`);
        if (e.shape.length === 1) assert.equal(t.dtype, 0, `${t.name} (1-D) is F32`);
      }
      const written = Object.fromEntries(parsed.tensorInfos.map((t) => [t.name, t.dtype]));
      assert.equal(written['blk.0.attn_q.weight'], GGML_IDS[(spec.dim % 256 !== 0 ? KQUANT_ROW_FALLBACK[type] : undefined) ?? expectedMain(type, spec.dim)]);

      // (b) llama.cpp against Minerva.
      const bounds = BOUNDS[type];
      const vocabTests = name === 'llama-gqa' ? await readVocabTests('ggml-vocab-llama-spm.gguf') : [];
      const texts = type === 'f32' ? [...TOKENIZER_TEXTS, ...vocabTests.map((c) => c.text)] : [];
      const cpp = await llamaCppRun(out, src.prompts, spec.vocabSize, texts);
      const converted = await loadModel(out, { contextLength: 256 });
      try {
        let engines = 0, source = 0;
        for (let i = 0; i < src.prompts.length; i++) {
          const mine = await converted.logits(src.prompts[i]!);
          engines = Math.max(engines, relativeRMS(cpp.logits[i]!, mine));
          source = Math.max(source, relativeRMS(mine, src.logits[i]!));
        }
        assert.ok(engines <= bounds.engines, `llama.cpp vs Minerva on the file: relative logit error ${engines.toExponential(2)}`);
        assert.ok(source <= bounds.source, `Minerva on the file vs on the source: relative logit error ${source.toExponential(2)}`);
        if (bounds.judge === 'source') {
          const folder = await loadModel(path.join(dir, name), { contextLength: 256 });
          try {
            await assertGreedyAgrees(`${name} ${type}`, cpp.greedy, src.greedy, src.prompts, folder, bounds.tie);
          } finally {
            folder.dispose();
          }
        } else {
          await assertGreedyAgrees(`${name} ${type}`, cpp.greedy, await greedyContinuations(converted, src.prompts, TOKENS), src.prompts, converted, bounds.tie);
        }
        if (type === 'f32') {
          // llama.cpp's tokenizer on the written vocabulary equals Minerva's on the folder.
          const folderTok = await loadHFTokenizer(path.join(dir, name));
          TOKENIZER_TEXTS.forEach((t, i) => assert.deepEqual(cpp.tokenized[i], folderTok.encode(t, { addSpecial: false }), `tokens of ${JSON.stringify(t)}`));
          // The Llama 2 vocabulary, with scores from tokenizer.json's merge ranks: llama.cpp's own tests.
          vocabTests.forEach((c, i) => assert.deepEqual(cpp.tokenized[TOKENIZER_TEXTS.length + i], c.ids, `llama.cpp vocab test ${JSON.stringify(c.text)}`));
        }
      } finally {
        converted.dispose();
      }
    });
  }
}

const GGML_IDS = GGML_TYPE_IDS as Record<string, number>;
/** The type of an ordinary matrix (attn_q of layer 0) under `type`, for rows of `dim`. */
function expectedMain(type: ConvertType, dim: number): string {
  const main = CONVERT_TYPES[type].dtype;
  if (main === 'Q6_K' && dim % 256 !== 0) return 'Q8_0';
  return main;
}

test('llama-kquant → q4_k_m, q6_k, q4_0, q5_k_m and q3_k_m: llama-quantize\'s mixes, tensor by tensor', { skip }, async () => {
  for (const [type, expect] of [
    // use_more_bits for 8 layers: 0, 3, 6, 7.
    ['q4_k_m', (n: string) => (n === 'output.weight' || /^blk\.[0367]\.(attn_v|ffn_down)\.weight$/.test(n) ? 'Q6_K' : 'Q4_K')],
    ['q6_k', () => 'Q6_K'],
    ['q4_0', (n: string) => (n === 'output.weight' ? 'Q6_K' : 'Q4_0')],
    ['q5_k_m', (n: string) => (n === 'output.weight' || /^blk\.[0367]\.(attn_v|ffn_down)\.weight$/.test(n) ? 'Q6_K' : 'Q5_K')],
    // 8 layers: attn_v Q5_K in layers 0–1, Q4_K after; ffn_down Q4_K (8/16 = 0 layers get Q5_K); attn_output Q4_K.
    ['q3_k_m', (n: string) => (n === 'output.weight' ? 'Q6_K' : /^blk\.[01]\.attn_v\.weight$/.test(n) ? 'Q5_K'
      : /\.(attn_v|ffn_down|attn_output)\.weight$/.test(n) ? 'Q4_K' : 'Q3_K')],
  ] as const) {
    const out = path.join(dir, `llama-kquant-mix-${type}.gguf`);
    await convertModel(path.join(dir, 'llama-kquant'), out, { type });
    const file = await openGGUF(out);
    await file.close();
    for (const [n, t] of file.tensors) assert.equal(t.dtype, t.shape.length === 1 ? 'F32' : expect(n), `${type}: ${n}`);
  }
});

test('q8_0 holds exactly the blocks of Minerva\'s quantize-on-load (llama.cpp\'s reference Q8_0)', { skip }, async () => {
  const out = path.join(dir, 'llama-gqa-q8_0-check.gguf');
  await convertModel(path.join(dir, 'llama-gqa'), out, { type: 'q8_0' });
  await assertQuantOnLoadEqualsGGUF(path.join(dir, 'llama-gqa'), 'q8_0', out);
});

// The type rules against the tensor counts llama.cpp's loader prints for published files.
function modelTensors(s: { dim: number; nLayers: number; nHeads: number; nKVHeads: number; ffnDim: number; vocabSize: number; tied: boolean; qkvBias?: boolean }): PlannedTensor[] {
  const spec = randomSpec({ arch: s.qkvBias ? 'qwen2' : 'llama', dim: s.dim, nLayers: s.nLayers, nHeads: s.nHeads, nKVHeads: s.nKVHeads, ffnDim: s.ffnDim, tied: s.tied, vocabSize: s.vocabSize });
  return llamaManifest(spec).filter((e) => !(e.name === 'output.weight' && s.tied));
}
function countTypes(types: Map<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of types.values()) out[t] = (out[t] ?? 0) + 1;
  return out;
}

test('per-tensor types match llama.cpp\'s counts for Llama-2-7B and TinyLlama-1.1B files', () => {
  const llama2 = modelTensors({ dim: 4096, nLayers: 32, nHeads: 32, nKVHeads: 32, ffnDim: 11008, vocabSize: 32000, tied: false });
  // llama-2-7b.Q4_K_M.gguf: f32 65, q4_K 193, q6_K 33; .Q4_0: q4_0 225, q6_K 1; .Q6_K: q6_K 226; .Q8_0: q8_0 226.
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q4_k_m', 32)), { F32: 65, Q4_K: 193, Q6_K: 33 });
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q4_0', 32)), { F32: 65, Q4_0: 225, Q6_K: 1 });
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q6_k', 32)), { F32: 65, Q6_K: 226 });
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q8_0', 32)), { F32: 65, Q8_0: 226 });
  // llama-2-7b.Q5_K_M.gguf: f32 65, q5_K 193, q6_K 33; .Q3_K_M: q3_K 129, q4_K 92, q5_K 4, q6_K 1.
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q5_k_m', 32)), { F32: 65, Q5_K: 193, Q6_K: 33 });
  assert.deepEqual(countTypes(tensorTypes(llama2, 'q3_k_m', 32)), { F32: 65, Q3_K: 129, Q4_K: 92, Q5_K: 4, Q6_K: 1 });
  assert.deepEqual(countTypes(tensorTypes(llama2, 'f16', 32)), { F32: 65, F16: 226 });
  // tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf: f32 45, q4_K 135, q6_K 21; TinyLlama q4_0 (llama.cpp issue 3018): q4_0 155, q6_K 1.
  const tiny = modelTensors({ dim: 2048, nLayers: 22, nHeads: 32, nKVHeads: 4, ffnDim: 5632, vocabSize: 32000, tied: false });
  assert.deepEqual(countTypes(tensorTypes(tiny, 'q4_k_m', 22)), { F32: 45, Q4_K: 135, Q6_K: 21 });
  assert.deepEqual(countTypes(tensorTypes(tiny, 'q4_0', 22)), { F32: 45, Q4_0: 155, Q6_K: 1 });
  assert.deepEqual([...Array(8).keys()].filter((i) => useMoreBits(i, 8)), [0, 3, 6, 7]);
});

test('rows that are not whole blocks fall back as llama-quantize does; tied embeddings take the output\'s type', () => {
  // Qwen2-0.5B: 896 columns (3.5 super-blocks), ffn 4864 (19), tied embeddings.
  const qwen = modelTensors({ dim: 896, nLayers: 24, nHeads: 14, nKVHeads: 2, ffnDim: 4864, vocabSize: 151936, tied: true, qkvBias: true });
  const types = tensorTypes(qwen, 'q4_k_m', 24);
  assert.equal(types.get('token_embd.weight'), 'Q8_0', 'tied: the output rule, 896 % 256 ≠ 0 → Q8_0');
  assert.equal(types.get('blk.1.attn_q.weight'), 'Q5_0', 'Q4_K → Q5_0');
  assert.equal(types.get('blk.0.attn_v.weight'), 'Q8_0', 'Q6_K (more bits) → Q8_0');
  assert.equal(types.get('blk.0.ffn_down.weight'), 'Q6_K', '4864 columns are whole super-blocks');
  assert.equal(types.get('blk.3.ffn_down.weight'), 'Q4_K');
  assert.equal(types.get('blk.0.attn_q.bias'), 'F32');
  // What those rules give the whole model (worked out from the rules, not read from a published file).
  assert.deepEqual(countTypes(types), { F32: 121, Q5_0: 132, Q8_0: 13, Q4_K: 12, Q6_K: 12 });
  // Tied with whole super-blocks: token_embd is the output, Q6_K; rows of 40 fit nothing: F16.
  const tied = modelTensors({ dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 4, ffnDim: 512, vocabSize: 1000, tied: true });
  assert.equal(tensorTypes(tied, 'q4_k_m', 2).get('token_embd.weight'), 'Q6_K');
  const odd = modelTensors({ dim: 40, nLayers: 1, nHeads: 2, nKVHeads: 2, ffnDim: 64, vocabSize: 100, tied: false });
  for (const type of ['q8_0', 'q4_0', 'q4_k_m', 'q6_k'] as const) assert.equal(tensorTypes(odd, type, 1).get('blk.0.attn_q.weight'), 'F16', type);
  assert.equal(tensorTypes(odd, 'q4_k_m', 1).get('blk.0.ffn_down.weight'), 'Q8_0', 'rows of 64: Q6_K → Q8_0 (layer 0 of 1 has more bits)');
});

test('Q5_0: hand-made block', () => {
  // One block: -8 is the largest magnitude, so d = -8 / -16 = 0.5 and q = x / 0.5 + 16.
  const x = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.5);
  const bytes = q5_0.quantize(x);
  assert.equal(bytes.length, 22);
  assert.deepEqual([...q5_0.dequantize(bytes, 32)], [...x]);
  // q = i: low nibbles i & 15, fifth bits set for i ≥ 16 (elements 16..31: the high half of qh).
  assert.deepEqual([...bytes.subarray(2, 6)], [0, 0, 0xff, 0xff]);
  // Byte j: element j's low nibble, element j+16's above it (both j here).
  assert.deepEqual([...bytes.subarray(6, 9)], [0x00, 0x11, 0x22]);
});

test('tokenizer.model is read as llama.cpp\'s converter reads it; tokenizer.json gives the same tokenization', { skip }, async () => {
  const folder = path.join(dir, 'spm-folder');
  await mkdir(folder, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(LLAMA2_HF_TOKENIZER, f), path.join(folder, f));
  const tok = await loadHFTokenizer(folder);
  const fromJSON = await vocabFromHFFolder(folder, tok, 32000);
  await copyFile(path.join(FIXTURES, 'sentencepiece/llama2-tokenizer.model'), path.join(folder, 'tokenizer.model'));
  const fromModel = await vocabFromHFFolder(folder, tok, 32000);
  // ggml-vocab-llama-spm.gguf was written by llama.cpp's converter from this tokenizer.model.
  const reference = await openGGUF(LLAMA2_GGUF_VOCAB);
  await reference.close();
  assert.deepEqual(fromModel.tokens, reference.metadata.get('tokenizer.ggml.tokens'));
  assert.deepEqual(fromModel.scores, reference.metadata.get('tokenizer.ggml.scores'));
  assert.deepEqual(fromModel.types, reference.metadata.get('tokenizer.ggml.token_type'));
  assert.equal(fromModel.addSpacePrefix, true);
  const cases = await readVocabTests('ggml-vocab-llama-spm.gguf');
  for (const v of [fromModel, fromJSON]) {
    const meta = new Map(vocabEntries(v).map((e) => [e.key, e.value as unknown]));
    assertVocabTests(tokenizerFromGGUF(meta, 'converted'), cases);
  }
});

test('the demo model: converting the fixture again gives the committed file byte for byte; it generates as stories260K.bin', {
  skip: skip || (existsSync(DEMO) ? false : `${DEMO} is absent`),
}, async () => {
  const out = path.join(dir, 'stories260K.gguf');
  await convertModel(STORIES, out, { type: 'f32', tokenizer: TOK512 });
  assert.ok((await readFile(out)).equals(await readFile(DEMO)), 'byte-identical to models/demo/stories260K.gguf');
  const bin = await loadModel(STORIES, { tokenizer: TOK512, contextLength: 512 });
  const demo = await loadModel(DEMO, { contextLength: 512 });
  try {
    for (const prompt of ['Zoo', 'Once upon a time', 'Lily and Ben', '']) {
      const ids = bin.tokenize(prompt);
      assert.deepEqual(demo.tokenize(prompt), ids, `tokens of ${JSON.stringify(prompt)}`);
      const a = await collect(bin.generate(ids, { temperature: 0, maxTokens: 400 }));
      const b = await collect(demo.generate(ids, { temperature: 0, maxTokens: 400 }));
      assert.deepEqual(b.tokens, a.tokens, `greedy from ${JSON.stringify(prompt)}`);
      assert.equal(b.text, a.text);
      assert.equal(b.last.finishReason, a.last.finishReason);
    }
    const cpp = await llamaCppRun(DEMO, [bin.tokenize('Once upon a time')], 512);
    const expected = await greedyContinuations(bin, [bin.tokenize('Once upon a time')], TOKENS);
    await assertGreedyAgrees('llama.cpp on the demo', cpp.greedy, expected, [bin.tokenize('Once upon a time')], bin, 1e-4);
  } finally {
    bin.dispose();
    demo.dispose();
  }
});

test('Mistral: sliding_window is written (and read back by Minerva); the architecture is llama', { skip }, async () => {
  const folder = path.join(dir, 'mistral');
  const spec = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: false });
  await writeHFModel(folder, spec, randomWeights(spec, 5));
  const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(path.join(folder, 'config.json'), JSON.stringify({ ...config, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 16 }));
  const out = path.join(dir, 'mistral.gguf');
  await convertModel(folder, out, { type: 'f16' });
  const parsed = await gguf(out, { allowLocalFile: true });
  const md = parsed.metadata as unknown as Record<string, unknown>;
  assert.equal(md['general.architecture'], 'llama');
  assert.equal(md['llama.attention.sliding_window'], 16);
  const files = await openModelFiles(out);
  await files.close();
  assert.equal(files.spec.slidingWindow, 16);
  const cpp = await llamaCppRun(out, [[1, 450, 4996]], 32000);
  assert.equal(cpp.greedy[0]!.length, TOKENS, 'llama.cpp runs it');
});

test('a GGUF source: f32 → f16 gives the f16 the folder gives; its vocabulary is carried over; requantizing is refused', { skip }, async () => {
  const viaGGUF = path.join(dir, 'llama3-rope-via-gguf-f16.gguf');
  await convertModel(path.join(dir, 'llama3-rope-f32.gguf'), viaGGUF, { type: 'f16', name: 'llama3-rope' });
  const direct = path.join(dir, 'llama3-rope-direct-f16.gguf');
  await convertModel(path.join(dir, 'llama3-rope'), direct, { type: 'f16' });
  assert.ok((await readFile(viaGGUF)).equals(await readFile(direct)), 'the same file');
  await assert.rejects(convertModel(path.join(dir, 'llama-gqa-q4_0.gguf'), path.join(dir, 'requant.gguf'), { type: 'q8_0' }),
    /token_embd\.weight is stored as Q4_0; requantizing it to Q8_0 would add a second rounding error/);
  // To a float type is fine: the stored values, exactly.
  const f32 = path.join(dir, 'dequant.gguf');
  await convertModel(path.join(dir, 'llama-gqa-q4_0.gguf'), f32, { type: 'f32' });
  // The reference backend computes in f32 from the decoded weights, whatever their stored type.
  const [q, f] = [await loadModel(path.join(dir, 'llama-gqa-q4_0.gguf'), { contextLength: 64, backend: 'reference' }), await loadModel(f32, { contextLength: 64, backend: 'reference' })];
  try {
    const ids = q.tokenize('Once upon a time');
    const { maxDiff, maxAbs } = logitsDiff(await q.logits(ids), await f.logits(ids));
    assert.ok(maxDiff <= 1e-4 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
  } finally {
    q.dispose();
    f.dispose();
  }
});

test('refused with an error naming the problem: unknown pre-tokenizer, unsupported architecture, bad --type, no tokenizer', { skip }, async () => {
  const out = path.join(dir, 'refused.gguf');
  // A byte-level tokenizer.json whose Split regex is nobody's.
  const folder = path.join(dir, 'odd-pre');
  const tok = await byteLevelTokenizer('qwen2', 600);
  const json = JSON.parse(tok.tokenizerJSON) as { pre_tokenizer: { pretokenizers: { pattern: { Regex: string } }[] } };
  json.pre_tokenizer.pretokenizers[0]!.pattern.Regex = '\\p{N}+| ?\\p{L}+|[^\\s\\p{L}\\p{N}]+|\\s+';
  const spec = randomSpec({ arch: 'qwen2', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: true, vocabSize: tok.vocabSize });
  await random.writeHFModel(folder, spec, randomWeights(spec, 9), { tokenizer: { ...tok, tokenizerJSON: JSON.stringify(json) } });
  await assert.rejects(convertModel(folder, out, { type: 'f16' }),
    /tokenizer\.json: pre-tokenizer Sequence\[Split "\\\\p\{N\}\+\| \?\\\\p\{L\}\+.*, ByteLevel\] is not one llama\.cpp and Minerva both know.*refusing to write a tokenizer\.ggml\.pre/);
  json.pre_tokenizer = { type: 'Whitespace' } as never;
  await writeFile(path.join(folder, 'tokenizer.json'), JSON.stringify(json));
  await assert.rejects(convertModel(folder, out, { type: 'f16' }), /pre-tokenizer Whitespace is not one llama\.cpp and Minerva both know/);
  // A GGUF whose tokenizer.ggml.pre Minerva does not know: refused when its tokenizer is built.
  const gguf16 = path.join(dir, 'llama3-rope-f16.gguf');
  const file = await openGGUF(gguf16);
  const metadata = [...file.metadata.keys()];
  await file.close();
  assert.ok(metadata.includes('tokenizer.ggml.pre'));
  const odd = path.join(dir, 'odd-pre.gguf');
  const bytes = await readFile(gguf16);
  await writeFile(odd, Buffer.from(bytes.toString('latin1').replace('llama-bpe', 'llama-xyz'), 'latin1'));
  await assert.rejects(convertModel(odd, out, { type: 'f16' }), /tokenizer\.ggml\.pre is "llama-xyz", a pre-tokenizer this engine does not know/);

  const falcon = path.join(dir, 'falcon');
  await mkdir(falcon, { recursive: true });
  await writeFile(path.join(falcon, 'config.json'), JSON.stringify({ model_type: 'falcon', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 128, vocab_size: 256 }));
  await assert.rejects(convertModel(falcon, out, { type: 'f16' }), /config\.json: model_type "falcon" is not supported \(supported: llama, mistral, qwen2, qwen3, phi3, smollm3, gemma, gemma2, gemma3_text, gemma3\)/);

  await assert.rejects(convertModel(path.join(dir, 'llama-gqa'), out, { type: 'q5_k' }),
    /--type must be one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k, q5_k_m, q3_k_m, got "q5_k"/);
  await assert.rejects(convertCommand(path.join(dir, 'llama-gqa'), out, { type: 'Q8_0' }), /--type must be one of .* got "Q8_0"/);
  await assert.rejects(convertModel(STORIES, out, { type: 'f32' }), /a llama2\.c checkpoint has no tokenizer: pass one with --tokenizer/);
  await assert.rejects(convertModel(DEMO, DEMO, { type: 'f32' }), /the output would replace the model being read/);
  await assert.rejects(convertModel(DEMO, path.join(dir, 'no-such-folder', 'x.gguf'), { type: 'f32' }), /no-such-folder does not exist/);
  assert.equal(existsSync(out), false, 'nothing written');
});
