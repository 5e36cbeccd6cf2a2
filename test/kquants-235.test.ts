// Q5_K, Q3_K and Q2_K (ggml's K-quants): the block layouts against hand-built blocks, the
// quantizers' closeness to F32, the cpu kernels against exact sums and the reference backend, and
// llama.cpp reading the GGUF files Minerva writes: logits close, greedy continuations equal or
// parting only at a near-tie, decode equal to a batch bit for bit, `--quant q5_k / q3_k`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { llamaCppLogitsAndGreedy, relativeRMS } from './helpers/llamacpp.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createKernelMemory, loadMatvecKernels } from '../src/backends/cpu/kernel-module.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import type { Backend, Weight } from '../src/backends/backend.js';
import { Rng } from '../src/engine/rng.js';
import { encodeF16 } from '../src/quant/f16.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';
import { openModel } from '../src/model/load.js';
import { loadModel, type Model } from '../src/index.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';
import { activations, assertBatchEqualsTokenByToken } from './helpers/backend-ops.js';
import { assertQuantOnLoadEqualsGGUF, collect } from './helpers/generation.js';

const TYPES = ['Q5_K', 'Q3_K', 'Q2_K'] as const;
type KType = typeof TYPES[number];

const rng = new Rng(235);
const normal = (n: number, scale: number) => Float32Array.from({ length: n }, () => {
  const u = Math.max(rng.next(), 1e-12), v = rng.next();
  return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
});
const f16 = (v: number) => { const b = encodeF16(Float32Array.of(v)); return [b[0]!, b[1]!]; };
const f = Math.fround;

test('a hand-built Q5_K block decodes as ggml lays it out', () => {
  // d = 0.5, dmin = 0.25; the scale/min packing is Q4_K's (j ≥ 4 exercises the split bits).
  const sc = [1, 2, 3, 4, 45, 50, 60, 63], m = [3, 5, 7, 9, 11, 33, 48, 62];
  const block = new Uint8Array(176);
  block.set([...f16(0.5), ...f16(0.25)], 0);
  for (let j = 0; j < 4; j++) {
    block[4 + j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    block[8 + j] = m[j]! | ((m[j + 4]! >> 4) << 6);
    block[12 + j] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
  const q = (e: number) => (e * 7 + 3) % 32;
  // Chunk c of 64: qs[32c + l] = low 4 bits of 64c + l (low nibble) and 64c + 32 + l (high);
  // qh[l] bit 2c = 5th bit of 64c + l, bit 2c + 1 = of 64c + 32 + l.
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const a = q(64 * c + l), b = q(64 * c + 32 + l);
      block[48 + 32 * c + l] = (a & 15) | ((b & 15) << 4);
      block[16 + l]! |= ((a >> 4) << (2 * c)) | ((b >> 4) << (2 * c + 1));
    }
  }
  const x = dequantize('Q5_K', block, 256);
  for (let e = 0; e < 256; e++) {
    const j = e >> 5;
    assert.equal(x[e], f(f(f(0.5 * sc[j]!) * q(e)) - f(0.25 * m[j]!)), `element ${e}`);
  }
});

test('a hand-built Q3_K block decodes as ggml lays it out', () => {
  // d = 0.125; sub-block j (16 elements) has 6-bit scale s_j, used as s_j − 32.
  const s = Array.from({ length: 16 }, (_, j) => (j * 13 + 5) % 64);
  const block = new Uint8Array(110);
  for (let j = 0; j < 16; j++) {
    if (j < 8) block[96 + j]! |= s[j]! & 15;
    else block[96 + j - 8]! |= (s[j]! & 15) << 4;
    block[96 + 8 + (j & 3)]! |= (s[j]! >> 4) << (2 * (j >> 2));
  }
  block.set(f16(0.125), 108);
  const q = (e: number) => (e * 5 + 1) % 8;
  // Element e: low 2 bits at bit pair (e & 127) >> 5 of qs[32·(e >> 7) + (e & 31)]; 3rd bit at
  // bit e >> 5 of hmask[e & 31].
  for (let e = 0; e < 256; e++) {
    block[32 + 32 * (e >> 7) + (e & 31)]! |= (q(e) & 3) << (2 * ((e & 127) >> 5));
    block[e & 31]! |= (q(e) >> 2) << (e >> 5);
  }
  const x = dequantize('Q3_K', block, 256);
  for (let e = 0; e < 256; e++) assert.equal(x[e], f(f(0.125 * (s[e >> 4]! - 32)) * (q(e) - 4)), `element ${e}`);
});

test('a hand-built Q2_K block decodes as ggml lays it out', () => {
  const block = new Uint8Array(84);
  const sc = (j: number) => (j * 3 + 2) % 16, mn = (j: number) => (j * 7 + 1) % 16;
  for (let j = 0; j < 16; j++) block[j] = sc(j) | (mn(j) << 4);
  block.set([...f16(0.75), ...f16(0.0625)], 80);
  const q = (e: number) => (e * 3 + 2) % 4;
  for (let e = 0; e < 256; e++) block[16 + 32 * (e >> 7) + (e & 31)]! |= q(e) << (2 * ((e & 127) >> 5));
  const x = dequantize('Q2_K', block, 256);
  for (let e = 0; e < 256; e++) {
    const j = e >> 4;
    assert.equal(x[e], f(f(f(0.75 * sc(j)) * q(e)) - f(0.0625 * mn(j))), `element ${e}`);
  }
});

test('the quantizers: error on Gaussian weights by bits (Q2_K > Q3_K > Q4_K > Q5_K > Q6_K), zeros stay zero, bad input refused', () => {
  const x = normal(256 * 64, 0.02);
  const rel = (dtype: KType | 'Q4_K' | 'Q6_K') => {
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) { e += (x[i]! - y[i]!) ** 2; s += x[i]! ** 2; }
    return Math.sqrt(e / s);
  };
  const e = { Q2_K: rel('Q2_K'), Q3_K: rel('Q3_K'), Q4_K: rel('Q4_K'), Q5_K: rel('Q5_K'), Q6_K: rel('Q6_K') };
  // Each bit halves a uniform quantizer's step; ggml's searches land near these (measured here:
  // ~0.037, ~0.15, ~0.30 for Q5_K, Q3_K, Q2_K at seed 235).
  assert.ok(e.Q5_K < 0.05, `Q5_K relative RMS error ${e.Q5_K}`);
  assert.ok(e.Q3_K < 0.2, `Q3_K relative RMS error ${e.Q3_K}`);
  assert.ok(e.Q2_K < 0.4, `Q2_K relative RMS error ${e.Q2_K}`);
  assert.ok(e.Q6_K < e.Q5_K && e.Q5_K < e.Q4_K && e.Q4_K < e.Q3_K && e.Q3_K < e.Q2_K, JSON.stringify(e));
  for (const dtype of TYPES) {
    assert.deepEqual(dequantize(dtype, quantize(dtype, new Float32Array(512)), 512), new Float32Array(512), `${dtype} zeros`);
    assert.throws(() => quantize(dtype, new Float32Array(100)), new RegExp(`${dtype}: 100 elements is not a whole number of blocks of 256`));
    assert.throws(() => quantize(dtype, Float32Array.from({ length: 256 }, (_, i) => (i === 9 ? Infinity : 0))), /non-finite value Infinity at index 9/);
  }
  assert.throws(() => dequantize('Q3_K', new Uint8Array(109), 256), /Q3_K: 256 elements need 110 bytes, got 109/);
});

// llama.cpp's own reference quantizers (quantize_row_*_ref in the libggml-base that node-llama-cpp
// ships, called through Python's ctypes) on the same values: the bytes must be the same. The values
// mix scales, offsets and exact zeros so that every branch of the scale searches is taken.
const GGML_BASE = path.join(path.dirname(fileURLToPath(import.meta.resolve('node-llama-cpp'))), '..', '..', '@node-llama-cpp',
  `${process.platform}-${process.arch}`, 'bins', `${process.platform}-${process.arch}`, 'libggml-base.so');
const PYTHON_QUANTIZE = [
  'import ctypes, sys',
  'lib = ctypes.CDLL(sys.argv[1])',
  'data = sys.stdin.buffer.read()',
  'src = ctypes.create_string_buffer(data, len(data))',
  'out = ctypes.create_string_buffer(len(data) // 1024 * int(sys.argv[3]))',
  'getattr(lib, "quantize_row_" + sys.argv[2] + "_ref")(src, out, ctypes.c_int64(len(data) // 4))',
  'sys.stdout.buffer.write(out.raw)',
].join('\n');
const pythonSkip = (() => {
  if (!existsSync(GGML_BASE)) return `no ${GGML_BASE}`;
  const r = spawnSync('python3', ['-c', 'import ctypes'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'python3 with ctypes is not on this machine';
})();

test('the quantizers write the bytes llama.cpp\'s reference quantizers write', { skip: pythonSkip }, () => {
  const blocks = 600;
  const x = Float32Array.from({ length: 256 * blocks }, (_, i) => {
    const b = i >> 8;
    if (b % 50 === 7) return 0; // an all-zero super-block
    if (b % 50 === 8 && (i & 31) < 16) return 0; // zero sub-blocks
    const scale = [0.02, 1e-3, 3, 0.05][b % 4]!, offset = b % 5 === 0 ? 0.5 * scale : 0;
    return normal(1, scale)[0]! + offset;
  });
  for (const dtype of TYPES) {
    const blockBytes = { Q5_K: 176, Q3_K: 110, Q2_K: 84 }[dtype];
    const r = spawnSync('python3', ['-c', PYTHON_QUANTIZE, GGML_BASE, dtype.toLowerCase().replace('_k', '_K'), String(blockBytes)], {
      input: Buffer.from(x.buffer), maxBuffer: 64 << 20,
    });
    assert.equal(r.status, 0, r.stderr?.toString());
    const theirs = new Uint8Array(r.stdout), ours = quantize(dtype, x);
    assert.equal(ours.length, theirs.length);
    for (let b = 0; b < blocks; b++) {
      const at = b * blockBytes;
      assert.deepEqual(ours.subarray(at, at + blockBytes), theirs.subarray(at, at + blockBytes), `${dtype} block ${b}`);
    }
  }
});

for (const dtype of TYPES) {
  test(`matvec${dtype} computes the exact block-scaled dot of ${dtype} weights and 8-bit x`, async () => {
    const memory = createKernelMemory(64);
    const kernels = await loadMatvecKernels(memory);
    for (const [n, k] of [[1, 256], [7, 512], [13, 768], [4, 2048]] as const) {
      const wBytes = quantize(dtype, normal(n * k, 0.05));
      const x = normal(k, 1);
      const wOff = 65536, xOff = wOff + Math.ceil(wBytes.length / 64) * 64, x16 = xOff + 4 * k, xd = x16 + 2 * k, xt = xd + k / 8, outOff = xt + k / 8;
      new Uint8Array(memory.buffer).set(wBytes, wOff);
      new Float32Array(memory.buffer, xOff, k).set(x);
      kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, 1);
      if (dtype === 'Q5_K') {
        kernels.blockSumsQ8(x16, xd, xt, k, 0, 1);
        kernels.matvecQ5_K(wOff, x16, xd, xt, outOff, k, 1, n);
      } else {
        kernels[`matvec${dtype}`](wOff, x16, xd, outOff, k, 1, n);
      }
      const w = dequantize(dtype, wBytes, n * k);
      const xq = new Int16Array(memory.buffer, x16, k), dx = new Float32Array(memory.buffer, xd, k / 32);
      const out = new Float32Array(memory.buffer, outOff, n);
      for (let r = 1; r < n; r++) {
        let sum = 0, mag = 0;
        for (let i = 0; i < k; i++) { sum += w[r * k + i]! * dx[i >> 5]! * xq[i]!; mag += Math.abs(w[r * k + i]! * dx[i >> 5]! * xq[i]!); }
        assert.ok(Math.abs(out[r]! - sum) <= 1e-5 * mag, `[${n}, ${k}] row ${r}: ${out[r]} vs ${sum}`);
      }
    }
  });
}

test('gemmQ2_K with room for only a few tokens\' min terms (chunked) equals matmulQ2_K bit for bit', async () => {
  const memory = createKernelMemory(64);
  const kernels = await loadMatvecKernels(memory);
  const [n, k, nTok] = [9, 512, 7];
  const ws = 2 * k + k / 8; // an unpacked row: int16 values and f32 block scales
  let top = 65536;
  const alloc = (bytes: number) => { const o = top; top = Math.ceil((top + bytes) / 64) * 64; return o; };
  const wBytes = quantize('Q2_K', normal(n * k, 0.05));
  const w = alloc(wBytes.length);
  new Uint8Array(memory.buffer, w, wBytes.length).set(wBytes);
  const x = alloc(4 * nTok * k), x16 = alloc(2 * nTok * k), xd = alloc(nTok * k / 8), viaMatvec = alloc(4 * nTok * n), viaGemm = alloc(4 * nTok * n);
  new Float32Array(memory.buffer, x, nTok * k).set(normal(nTok * k, 1));
  kernels.quantizeRowsQ8(x, x16, xd, k, 0, nTok);
  // Scratch for a tile of 4 rows and the min terms of 2 tokens: chunks of 2, 2, 2, 1 tokens.
  const scratchBytes = Math.ceil((4 * ws) / 64) * 64 + 2 * 4 * 4;
  kernels.setScratch(alloc(scratchBytes), scratchBytes, 0);
  kernels.matmulQ2_K(w, x16, xd, viaMatvec, k, n, nTok, 0, n);
  kernels.gemmQ2_K(w, x16, xd, viaGemm, k, n, nTok, 0, n);
  assert.deepEqual(new Float32Array(memory.buffer, viaGemm, nTok * n), new Float32Array(memory.buffer, viaMatvec, nTok * n));
});

test('cpu backend matmul of Q5_K, Q3_K and Q2_K weights (decode and prefill) equals the reference within 8-bit x, embed exactly', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const dtype of TYPES) {
      for (const [n, k] of [[9, 256], [70, 512]] as const) {
        const bytes = quantize(dtype, normal(n * k, 0.05));
        const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
        const wc = cpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes);
        const w = dequantize(dtype, bytes, n * k);
        for (const tokens of [1, 3, 9]) { // 1 and 3: matvec kernels; 9: gemm
          const x = normal(tokens * k, 1);
          const run = async (be: Backend, wt: Weight) => {
            const o = be.createActivations(tokens, n);
            be.matmul(o, activations(be, tokens, k, x), wt);
            return be.read(o);
          };
          const [a, b] = [await run(cpu, wc), await run(ref, wr)];
          for (let t = 0; t < tokens; t++) {
            for (let r = 0; r < n; r++) {
              // x rounded to 8 bits per block of 32: each product moves by at most |w|·amax/254.
              let bound = 0;
              for (let blk = 0; blk < k; blk += 32) {
                let amax = 0, wsum = 0;
                for (let i = blk; i < blk + 32; i++) { amax = Math.max(amax, Math.abs(x[t * k + i]!)); wsum += Math.abs(w[r * k + i]!); }
                bound += wsum * amax / 254;
              }
              assert.ok(Math.abs(a[t * n + r]! - b[t * n + r]!) <= 1.01 * bound + 1e-5, `${dtype} [${n}, ${k}] × ${tokens}: token ${t} row ${r}: ${a[t * n + r]} vs ${b[t * n + r]}`);
            }
          }
        }
        const ids = Int32Array.of(0, n - 1, 5);
        const embed = async (be: Backend, wt: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, wt, ids); return be.read(o); };
        assert.deepEqual(await embed(cpu, wc), await embed(ref, wr), `${dtype} embed`);
      }
    }
  } finally {
    cpu.dispose();
  }
});

// llama.cpp reads the files Minerva writes: a wrong block layout on either side makes a different
// model. Its logits at the end of each prompt are compared with Minerva's on the same file, and
// its greedy continuations with Minerva's: they may part only where Minerva's top two logits are
// within `tie` RMS of the logits (llama.cpp rounds x to 8 bits in blocks of 256 for K-quants,
// Minerva in blocks of 32). Minerva on the file is also compared with Minerva on the F32 weights.
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café'];
const TOKENS = 16;
/** engines: relative RMS of llama.cpp's and Minerva's logits; source: of Minerva's on the file and on F32. */
const BOUNDS: Record<KType, { engines: number; source: number; tie: number }> = {
  Q5_K: { engines: 0.05, source: 0.15, tie: 0.12 },
  Q3_K: { engines: 0.05, source: 0.5, tie: 0.12 },
  Q2_K: { engines: 0.05, source: 0.9, tie: 0.12 },
};

let dir: string;
let llama: Llama | undefined;
const spec = randomSpec({ arch: 'llama', dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: false });
const weights = randomWeights(spec, 11);
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-kquants235-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }).catch(() => undefined);
  await writeGGUFModel(path.join(dir, 'f32.gguf'), spec, weights, { dtype: 'F32' });
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function llamaCppRun(file: string, prompts: number[][]): Promise<{ logits: Float32Array[]; greedy: number[][] }> {
  return llamaCppLogitsAndGreedy(llama!, file, prompts, { vocabSize: spec.vocabSize, maxTokens: TOKENS });
}

for (const dtype of TYPES) {
  test(`${dtype} GGUF: llama.cpp and Minerva (cpu) agree on logits and greedy continuations; close to F32 within the bits`, { skip }, async (t) => {
    if (!llama) return t.skip('node-llama-cpp could not load llama.cpp here');
    const file = path.join(dir, `${dtype}.gguf`);
    await writeGGUFModel(file, spec, weights, { dtype });
    const mine = await loadModel(file, { contextLength: 256, backend: 'cpu', threads: 2 });
    const f32 = await loadModel(path.join(dir, 'f32.gguf'), { contextLength: 256, backend: 'cpu', threads: 2 });
    try {
      const prompts = PROMPTS.map((p) => mine.tokenize(p));
      const cpp = await llamaCppRun(file, prompts);
      let engines = 0, source = 0;
      for (let i = 0; i < prompts.length; i++) {
        const l = await mine.logits(prompts[i]!);
        engines = Math.max(engines, relativeRMS(cpp.logits[i]!, l));
        source = Math.max(source, relativeRMS(l, await f32.logits(prompts[i]!)));
      }
      const b = BOUNDS[dtype];
      t.diagnostic(`engines ${engines.toExponential(2)}, source ${source.toExponential(2)}`);
      assert.ok(engines <= b.engines, `llama.cpp vs Minerva on the file: relative logit error ${engines.toExponential(2)}`);
      assert.ok(source <= b.source, `Minerva on the file vs on F32: relative logit error ${source.toExponential(2)}`);
      for (let i = 0; i < prompts.length; i++) {
        const ours = (await collect(mine.generate(prompts[i]!, { temperature: 0, maxTokens: TOKENS }))).tokens;
        await assertGreedyAgrees(`${dtype} prompt ${i}`, cpp.greedy[i]!, ours, prompts[i]!, mine, b.tie);
      }
    } finally {
      mine.dispose();
      f32.dispose();
    }
  });

  test(`${dtype} GGUF: token-by-token decode and a mixed batch give bit-identical logits on the cpu backend`, { skip }, async () => {
    const file = path.join(dir, `${dtype}-batch.gguf`);
    await writeGGUFModel(file, spec, weights, { dtype });
    const opened = await openModel(file);
    const be = await CpuBackend.create(2);
    try {
      await assertBatchEqualsTokenByToken(be, opened);
    } finally {
      await opened.close();
      be.dispose();
    }
  });
}

/** llama.cpp's tokens follow Minerva's, or part where Minerva's two candidates are within `tie` RMS of the logits. */
async function assertGreedyAgrees(what: string, theirs: number[], ours: number[], prompt: number[], judge: Model, tie: number): Promise<void> {
  assert.equal(theirs.length, TOKENS, `${what}: llama.cpp stopped after ${theirs.length} tokens`);
  assert.equal(ours.length, TOKENS, `${what}: Minerva stopped after ${ours.length} tokens`);
  const k = theirs.findIndex((t, j) => t !== ours[j]);
  if (k < 0) return;
  const l = await judge.logits([...prompt, ...ours.slice(0, k)]);
  const rms = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length);
  const gap = (l[ours[k]!]! - l[theirs[k]!]!) / rms;
  assert.ok(gap <= tie, `${what}: greedy paths part at token ${k} (${ours[k]} vs llama.cpp's ${theirs[k]}) where the logits are ${gap.toExponential(2)} RMS apart, more than ${tie}`);
}

for (const quant of ['q5_k', 'q3_k'] as const) {
  test(`quant: "${quant}" on an F32 SafeTensors folder equals the ${quant.toUpperCase()} GGUF of the same weights`, { skip }, async () => {
    const small = randomSpec({ arch: 'llama', dim: 256, nLayers: 1, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: true });
    const w = randomWeights(small, 12);
    const hf = path.join(dir, `hf-${quant}`), gguf = path.join(dir, `${quant}.gguf`);
    await writeHFModel(hf, small, w);
    await writeGGUFModel(gguf, small, w, { dtype: quant === 'q5_k' ? 'Q5_K' : 'Q3_K' });
    await assertQuantOnLoadEqualsGGUF(hf, quant, gguf);
  });
}
