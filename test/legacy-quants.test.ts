// Q4_1, Q5_0, Q5_1 and IQ4_NL (ggml's other blocks of 32): hand-computed blocks in llama.cpp's
// layouts, the quantizers' error bounds and bytes (against llama.cpp's own quantizers), the cpu kernels against the exact block-scaled integer
// dot (every row and tile split, decode == prefill bit for bit), and the cpu and webgpu backends'
// matmul and embed against the reference backend. Model files against llama.cpp:
// legacy-quants-llamacpp.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Backend, Weight } from '../src/backends/backend.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createKernelMemory, loadMatvecKernels } from '../src/backends/cpu/kernel-module.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';
import { DTYPE_LAYOUT, WEIGHT_DTYPES, type DType } from '../src/quant/dtype.js';
import { readF16 } from '../src/quant/f16.js';
import * as iq4_nl from '../src/quant/iq4_nl.js';
import * as q4_1 from '../src/quant/q4_1.js';
import * as q5_1 from '../src/quant/q5_1.js';
import { activations, assertClose } from './helpers/backend-ops.js';
import { createWebGpu, webgpuSkip } from './helpers/webgpu.js';

const TYPES = ['Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'] as const;
type LegacyType = typeof TYPES[number];
const WITH_MIN: ReadonlySet<DType> = new Set(['Q4_1', 'Q5_1']);

const rng = new Rng(4101);
const random = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const gaussian = (n: number) => Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()));

test('Q4_1: hand-computed block (min, scale, nibble order)', () => {
  // Values 0.5·i − 3 for i = 0..31: min −3, max 12.5, d = 15.5 / 15, q = round((x + 3) / d).
  const x = Float32Array.from({ length: 32 }, (_, i) => 0.5 * i - 3);
  const bytes = q4_1.quantize(x);
  assert.equal(bytes.length, 20);
  assert.equal(readF16(bytes, 2), -3, 'm is the minimum');
  assert.ok(Math.abs(readF16(bytes, 0) - 15.5 / 15) < 1e-3, 'd = (max − min) / 15');
  const d = readF16(bytes, 0);
  for (let j = 0; j < 16; j++) {
    const lo = Math.min(15, Math.trunc(Math.fround(Math.fround(x[j]! + 3) * Math.fround(1 / Math.fround(15.5 / 15))) + 0.5));
    assert.equal(bytes[4 + j]! & 0x0f, lo, `element ${j} in the low nibble of byte ${j}`);
  }
  assert.equal(bytes[4]! & 0x0f, 0, 'the minimum is level 0');
  assert.equal(bytes[4 + 15]! >> 4, 15, 'the maximum (element 31) is level 15, in the high nibble of byte 15');
  const back = q4_1.dequantize(bytes, 32);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(back[i]! - x[i]!) <= d / 2 + 1e-2, `element ${i}`);
  // A constant block: d = 0, every value is m exactly.
  assert.deepEqual([...q4_1.dequantize(q4_1.quantize(new Float32Array(32).fill(0.75)), 32)], new Array(32).fill(0.75));
});

test('Q5_1: hand-computed block (fifth bits in qh, bit j for element j)', () => {
  // 0..31 exactly: min 0, d = 31 / 31 = 1, q = i.
  const x = Float32Array.from({ length: 32 }, (_, i) => i);
  const bytes = q5_1.quantize(x);
  assert.equal(bytes.length, 24);
  assert.deepEqual([readF16(bytes, 0), readF16(bytes, 2)], [1, 0]);
  // Elements 16..31 have the fifth bit: qh = 0xffff0000.
  assert.deepEqual([...bytes.subarray(4, 8)], [0, 0, 0xff, 0xff]);
  assert.deepEqual([...bytes.subarray(8, 11)], [0x00, 0x11, 0x22], 'byte j: element j low, element j+16 high (low 4 bits)');
  assert.deepEqual([...q5_1.dequantize(bytes, 32)], [...x]);
});

test('IQ4_NL: the level table, hand-made blocks, and the scale search', () => {
  assert.deepEqual(iq4_nl.KVALUES, [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
  // Bytes written by hand: d = 0.5, indices 0..15 in the low nibbles, 15..0 in the high ones.
  const bytes = new Uint8Array(18);
  bytes[1] = 0x38; // f16 0.5
  for (let j = 0; j < 16; j++) bytes[2 + j] = j | ((15 - j) << 4);
  const back = iq4_nl.dequantize(bytes, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(back[j], 0.5 * iq4_nl.KVALUES[j]!);
    assert.equal(back[j + 16], 0.5 * iq4_nl.KVALUES[15 - j]!);
  }
  // Values on the grid come back exactly (d·level with d a power of two).
  const onGrid = Float32Array.from({ length: 32 }, (_, i) => 0.25 * iq4_nl.KVALUES[(i * 7) % 16]!);
  assert.deepEqual([...iq4_nl.dequantize(iq4_nl.quantize(onGrid), 32)], [...onGrid]);
  // An all-zero block: d = 0 (llama.cpp then writes index 8, level 1, everywhere).
  const zero = iq4_nl.quantize(new Float32Array(32));
  assert.deepEqual([...zero.subarray(0, 2)], [0, 0]);
  assert.ok(zero.subarray(2).every((b) => b === 0x88));
  // The search (what llama-quantize writes) lowers the weighted error (x²-weighted, as the search
  // weighs it) below the single scale of quantize_row_iq4_nl_ref's: by ~7% on Gaussian values.
  const x = gaussian(32 * 256);
  const err = (q: Uint8Array) => {
    const y = iq4_nl.dequantize(q, x.length);
    const perBlock: number[] = [];
    for (let b = 0; b < x.length / 32; b++) {
      let e = 0;
      for (let j = b * 32; j < b * 32 + 32; j++) e += x[j]! ** 2 * (y[j]! - x[j]!) ** 2;
      perBlock.push(e);
    }
    return perBlock;
  };
  const searched = err(iq4_nl.quantize(x)), single = err(iq4_nl.quantize(x, { search: false }));
  const total = (a: number[]) => a.reduce((s, v) => s + v, 0);
  assert.ok(total(searched) < 0.97 * total(single), `search ${total(searched)} vs single scale ${total(single)}`);
});

test('every type: quantize → dequantize within what its bits allow, ordered by bits; bad input refused', () => {
  const x = gaussian(32 * 512);
  const rel = (dtype: DType) => {
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    let num = 0, den = 0;
    for (let i = 0; i < x.length; i++) { num += (y[i]! - x[i]!) ** 2; den += x[i]! ** 2; }
    return Math.sqrt(num / den);
  };
  const e = Object.fromEntries(['Q4_0', 'Q8_0', ...TYPES].map((t) => [t, rel(t as DType)])) as Record<string, number>;
  // Uniform rounding of a block's range into 2^b levels: RMS step / √12 relative to the values'.
  assert.ok(e.Q4_1! < 0.12 && e.IQ4_NL! < 0.12 && e.Q5_0! < 0.06 && e.Q5_1! < 0.06, JSON.stringify(e));
  assert.ok(e.Q5_1! < e.Q4_1! && e.Q5_0! < e.Q4_0!, `5 bits beat 4: ${JSON.stringify(e)}`);
  assert.ok(e.Q4_1! < e.Q4_0! && e.Q5_1! < e.Q5_0!, `a min beats a symmetric scale: ${JSON.stringify(e)}`);
  assert.ok(e.IQ4_NL! < e.Q4_0!, `non-linear levels beat linear ones on Gaussian weights: ${JSON.stringify(e)}`);
  assert.ok(e.Q8_0! < e.Q5_1!);
  for (const t of TYPES) {
    assert.ok(WEIGHT_DTYPES.has(t), `${t} is a weight type`);
    assert.throws(() => quantize(t, new Float32Array(33)), /not a whole number of blocks/);
    assert.throws(() => quantize(t, Float32Array.of(...new Array(31).fill(0), NaN)), new RegExp(`${t}: cannot quantize the non-finite value NaN at index 31`));
    assert.throws(() => dequantize(t, new Uint8Array(DTYPE_LAYOUT[t].blockBytes - 1), 32), /need/);
  }
});

// llama.cpp's own quantizers, from the prebuilt ggml library node-llama-cpp ships (linux-x64),
// called through Python's ctypes: ggml_quantize_chunk is what llama-quantize calls (for IQ4_NL,
// quantize_iq4_nl with its scale search), and quantize_row_iq4_nl_ref the single-scale reference.
const GGML_BASE = path.resolve('node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so');
const ggmlSkip = (() => {
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync(GGML_BASE)) return 'no linux-x64 ggml library from node-llama-cpp';
  try { execFileSync('python3', ['-c', 'import ctypes']); return false; } catch { return 'no python3 with ctypes'; }
})();
const GGML_QUANTIZE = String.raw`
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.ggml_quantize_chunk.restype = ctypes.c_size_t
lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
lib.quantize_row_iq4_nl_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
x = open(sys.argv[2], 'rb').read()
n, rows, block_bytes, which = len(x) // 4, int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
out = ctypes.create_string_buffer(n // 32 * block_bytes)
if which.startswith('dequantize_row_'):
    n = len(x) // block_bytes * 32
    out = ctypes.create_string_buffer(4 * n)
    getattr(lib, which)(x, out, ctypes.c_int64(n))
elif which == 'ref':
    lib.quantize_row_iq4_nl_ref(x, out, n)
else:
    lib.ggml_quantize_chunk(int(which), x, out, 0, rows, n // rows, None)
open(sys.argv[3], 'wb').write(out.raw)
`;
const GGML_IDS: Record<LegacyType, number> = { Q4_1: 3, Q5_0: 6, Q5_1: 7, IQ4_NL: 20 };

test('the quantizers write the bytes llama.cpp\'s own quantizers write; the dequantizers give its values bit for bit', { skip: ggmlSkip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-ggml-quant-'));
  try {
    const ggml = async (x: Float32Array, rows: number, dtype: LegacyType, which: string) => {
      const [inFile, outFile] = [path.join(dir, 'x.f32'), path.join(dir, 'q.bin')];
      await writeFile(inFile, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
      execFileSync('python3', ['-c', GGML_QUANTIZE, GGML_BASE, inFile, outFile, String(rows), String(DTYPE_LAYOUT[dtype].blockBytes), which]);
      return new Uint8Array(await readFile(outFile));
    };
    // Rows of 256: Gaussian, uniform, wide-ranged, tiny (near GROUP_MAX_EPS and f16's subnormals),
    // all-zero and constant blocks, and values on a coarse grid (ties in the rounding).
    const k = 256;
    const inputs: Float32Array[] = [
      gaussian(8 * k), random(8 * k).map((v) => v * 1e4), random(4 * k).map((v) => v * 1e-6), random(2 * k).map((v) => v * 1e-16),
      Float32Array.from({ length: 4 * k }, (_, i) => (i >> 5) % 3 === 0 ? 0 : (i >> 5) % 3 === 1 ? 0.75 : Math.round(8 * Math.sin(i)) / 4),
    ];
    for (const dtype of TYPES) {
      for (const [i, x] of inputs.entries()) {
        const expected = await ggml(x, x.length / k, dtype, String(GGML_IDS[dtype]));
        assert.deepEqual(quantize(dtype, x), expected, `${dtype}, input ${i}`);
      }
    }
    // quantize_row_iq4_nl_ref leaves an all-zero block's indices as they were: uninitialised stack
    // memory when no block before it set them. Such blocks (d = 0) are compared by d alone.
    const zeroBlocksCleared = (q: Uint8Array) => {
      const c = q.slice();
      for (let at = 0; at < c.length; at += 18) if (c[at] === 0 && c[at + 1] === 0) c.fill(0, at + 2, at + 18);
      return c;
    };
    for (const [i, x] of inputs.entries()) {
      const expected = zeroBlocksCleared(await ggml(x, 1, 'IQ4_NL', 'ref'));
      assert.deepEqual(zeroBlocksCleared(iq4_nl.quantize(x, { search: false })), expected, `IQ4_NL reference (no search), input ${i}`);
    }
    // Dequantization of arbitrary blocks (random bytes under finite f16 scales and mins) as
    // llama.cpp's dequantize_row_*: bit for bit.
    for (const dtype of TYPES) {
      const bytes = Uint8Array.from({ length: 64 * DTYPE_LAYOUT[dtype].blockBytes }, () => Math.floor(rng.next() * 256));
      for (let at = 0; at < bytes.length; at += DTYPE_LAYOUT[dtype].blockBytes) for (const f of SCALE_FIELDS[dtype]) bytes[at + f + 1]! &= 0xbb;
      const theirs = await ggml(new Float32Array(bytes.buffer), 1, dtype, `dequantize_row_${dtype.toLowerCase()}`);
      assert.deepEqual(dequantize(dtype, bytes, 64 * 32), new Float32Array(theirs.buffer), `${dtype} dequantized`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Byte offsets of a block's f16 fields, to plant edge-case scales in. */
const SCALE_FIELDS: Record<LegacyType, number[]> = { Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], IQ4_NL: [0] };

test('cpu kernels: the block-scaled integer dot on 8-bit x; gemm equals matvec bit for bit, any rows, tile and token count', async () => {
  const memory = createKernelMemory(64);
  const kernels = await loadMatvecKernels(memory);
  let top = 0;
  const alloc = (bytes: number) => { const o = top; top = Math.ceil((top + bytes) / 64) * 64; return o; };
  const put = (bytes: Uint8Array) => { const o = alloc(bytes.length); new Uint8Array(memory.buffer, o, bytes.length).set(bytes); return o; };
  for (const dtype of TYPES) {
    const blockBytes = DTYPE_LAYOUT[dtype].blockBytes;
    for (const [n, k] of [[1, 32], [5, 96], [19, 160], [23, 96]] as const) {
      for (const nTok of [1, 2, 3, 6]) {
        top = 65536; // above the module's static data
        const wBytes = quantize(dtype, random(n * k));
        // Scales the kernels convert branch-free: subnormal, negative, zero, the largest f16.
        [0x0001, 0x8400, 0x0000, 0x7bff].forEach((h, b) => {
          for (const at of SCALE_FIELDS[dtype]) {
            if ((b + 1) * blockBytes <= wBytes.length) { wBytes[b * blockBytes + at] = h & 0xff; wBytes[b * blockBytes + at + 1] = h >> 8; }
          }
        });
        const wOff = put(wBytes), xOff = put(new Uint8Array(random(nTok * k).buffer));
        const x16 = alloc(nTok * k * 2), xd = alloc(nTok * k / 8 + 4), xt = alloc(nTok * k / 8 + 4);
        const viaMatvec = alloc(nTok * n * 4), viaGemm = alloc(nTok * n * 4);
        kernels.setScratch(alloc(16 * k), 16 * k, 0); // the 4-row minimum tile: larger shapes span several
        const [r0, r1] = [n > 4 ? 1 : 0, n];
        kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, nTok);
        if (WITH_MIN.has(dtype)) {
          const kind = dtype as 'Q4_1' | 'Q5_1';
          kernels.blockSumsQ8(x16, xd, xt, k, 0, nTok);
          kernels[`matmul${kind}`](wOff, x16, xd, xt, viaMatvec, k, n, nTok, r0, r1);
          kernels[`gemm${kind}`](wOff, x16, xd, xt, viaGemm, k, n, nTok, r0, r1);
        } else {
          const kind = dtype as 'Q5_0' | 'IQ4_NL';
          kernels[`matmul${kind}`](wOff, x16, xd, viaMatvec, k, n, nTok, r0, r1);
          kernels[`gemm${kind}`](wOff, x16, xd, viaGemm, k, n, nTok, r0, r1);
        }
        const a = new Float32Array(memory.buffer, viaMatvec, nTok * n), b = new Float32Array(memory.buffer, viaGemm, nTok * n);
        const w = dequantize(dtype, wBytes, n * k);
        const xq = new Int16Array(memory.buffer, x16, nTok * k), xs = new Float32Array(memory.buffer, xd, nTok * k / 32);
        for (let t = 0; t < nTok; t++) {
          for (let r = r0; r < r1; r++) {
            const what = `${dtype} [${n}, ${k}] token ${t} of ${nTok}, row ${r}`;
            assert.equal(b[t * n + r], a[t * n + r], what);
            // The exact value of Σ w · (dx · xq), in f64; the kernel rounds per block and per lane.
            let sum = 0, mag = 0;
            for (let i = 0; i < k; i++) {
              const p = w[r * k + i]! * xs[t * k / 32 + (i >> 5)]! * xq[t * k + i]!;
              sum += p; mag += Math.abs(p);
            }
            assert.ok(Math.abs(a[t * n + r]! - sum) <= 1e-5 * mag + 1e-30, `${what}: ${a[t * n + r]} vs ${sum}`);
          }
        }
      }
    }
  }
});

/** out = x · Wᵀ on a backend, for `tokens` rows of x at once. */
async function matmulOn(be: Backend, w: Weight, x: Float32Array, tokens: number, n: number, k: number): Promise<Float32Array> {
  const o = be.createActivations(tokens, n);
  be.matmul(o, activations(be, tokens, k, x), w);
  return be.read(o);
}

test('cpu backend: matmul close to the reference; a token alone (decode) equals the same token in a batch (prefill), bit for bit; embed exact', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const dtype of TYPES) {
      for (const [n, k] of [[3, 32], [67, 96], [37, 160]] as const) {
        const bytes = quantize(dtype, random(n * k));
        const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
        const wc = cpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes);
        for (const tokens of [1, 3, 9]) {
          const x = random(tokens * k);
          const batch = await matmulOn(cpu, wc, x, tokens, n, k), expected = await matmulOn(ref, wr, x, tokens, n, k);
          // x is rounded to 8-bit blocks (as llama.cpp does): each element by at most half a step,
          // max|x in its block| / 254, so out moves by at most Σ |w| · that (plus f32 rounding).
          const w = dequantize(dtype, bytes, n * k);
          for (let t = 0; t < tokens; t++) {
            for (let r = 0; r < n; r++) {
              let bound = 0;
              for (let i = 0; i < k; i++) {
                const block = x.subarray(t * k + (i & ~31), t * k + (i & ~31) + 32);
                bound += Math.abs(w[r * k + i]!) * (Math.max(...block.map(Math.abs)) / 254 + 1e-6 * Math.abs(x[t * k + i]!));
              }
              const got = batch[t * n + r]!, want = expected[t * n + r]!;
              assert.ok(Math.abs(got - want) <= bound, `${dtype} [${n}, ${k}] × ${tokens}, token ${t} row ${r}: ${got} vs ${want} (bound ${bound})`);
            }
          }
          for (let t = 0; t < tokens; t++) {
            const alone = await matmulOn(cpu, wc, x.slice(t * k, (t + 1) * k), 1, n, k);
            assert.deepEqual(batch.subarray(t * n, (t + 1) * n), alone, `${dtype} [${n}, ${k}] token ${t} of ${tokens}`);
          }
        }
        const ids = Int32Array.of(n - 1, 0, 1 % n);
        const embed = async (be: Backend, w: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, w, ids); return be.read(o); };
        assert.deepEqual(await embed(cpu, wc), await embed(ref, wr), `${dtype} embed`);
      }
    }
  } finally {
    cpu.dispose();
  }
});

const gpuSkip = await webgpuSkip();

test('webgpu backend: matmul (decode and prefill kernels) and embed equal the reference', { skip: gpuSkip }, async () => {
  const gpu = await createWebGpu(), ref = new ReferenceBackend();
  try {
    for (const dtype of TYPES) {
      for (const [n, k] of [[3, 32], [67, 96], [9, 160]] as const) {
        const bytes = quantize(dtype, random(n * k));
        const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
        const wg = gpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes);
        for (const tokens of [1, 3, 9, 70]) {
          const x = random(tokens * k);
          assertClose(await matmulOn(gpu, wg, x, tokens, n, k), await matmulOn(ref, wr, x, tokens, n, k), 1e-5 * Math.sqrt(k), `${dtype} [${n}, ${k}] × ${tokens} tokens`);
        }
        const ids = Int32Array.of(n - 1, 0, 2 % n, 2 % n);
        const embed = async (be: Backend, w: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, w, ids); return be.read(o); };
        assertClose(await embed(gpu, wg), await embed(ref, wr), 0, `${dtype} embed`);
      }
    }
  } finally {
    gpu.dispose();
  }
});
