// The WebAssembly SIMD matvec kernels against the reference backend's matmul, on random weights
// with odd shapes (row tails, row counts not a multiple of the 4-row pass).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  compileKernelSet, createKernelMemory, judgeMaddSelfTest, loadMatvecKernels, runRelaxedSelfTest, runtimeHasRelaxedSimd,
  type KernelSet,
} from '../src/backends/cpu/kernel-module.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { encodeBF16, encodeF16, readF16 } from '../src/quant/f16.js';
import type { DType } from '../src/quant/dtype.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';

const rng = new Rng(1234);

// Both kernel builds where this runtime runs relaxed SIMD (Node ≥ 22), the plain one otherwise: the
// bit-identity tests hold within each build, whichever the runtime's multiply-add is.
const relaxedVerdict = runtimeHasRelaxedSimd() ? await runRelaxedSelfTest(await compileKernelSet('relaxed')) : undefined;
const SETS: KernelSet[] = relaxedVerdict && !('problem' in relaxedVerdict) ? ['plain', 'relaxed'] : ['plain'];
const loadSet = async (memory: WebAssembly.Memory, set: KernelSet) => loadMatvecKernels(memory, await compileKernelSet(set));
const random = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);

/** The reference backend's x · Wᵀ for a weight stored as `dtype`. */
async function referenceMatvec(dtype: DType, bytes: Uint8Array, n: number, k: number, x: Float32Array): Promise<Float32Array> {
  const be = new ReferenceBackend();
  const w = be.loadWeight({ name: 'w', dtype, shape: [n, k], byteLength: bytes.length }, bytes);
  const xa = be.createActivations(1, k);
  be.embed(xa, be.loadWeight({ name: 'x', dtype: 'F32', shape: [1, k], byteLength: 4 * k }, new Uint8Array(x.buffer.slice(0))), Int32Array.of(0));
  const out = be.createActivations(1, n);
  be.matmul(out, xa, w);
  return be.read(out);
}

/** x laid out as the f16/bf16 kernels read it: per group of 8, the even elements then the odd. */
function permuted(x: Float32Array): Float32Array {
  return x.map((_, i) => x[(i & ~7) + 2 * (i & 3) + ((i & 4) >> 2)]!);
}

function assertClose(actual: Float32Array, expected: Float32Array, tol: number): void {
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `row ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

for (const set of SETS) {
test(`${set} kernels: matvecF32 equals the reference matmul, any shape, any row range`, async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadSet(memory, set);
  for (const [n, k] of [[1, 1], [3, 5], [13, 37], [64, 64], [67, 130]] as const) {
    const w = random(n * k), x = random(k);
    const heap = new Uint8Array(memory.buffer);
    const wOff = 0, xOff = n * k * 4, outOff = xOff + k * 4;
    heap.set(new Uint8Array(w.buffer), wOff);
    heap.set(new Uint8Array(x.buffer), xOff);
    // Two calls over halves of the rows, as two workers would split them.
    const mid = Math.floor(n / 2);
    kernels.matvecF32(wOff, xOff, outOff, k, 0, mid);
    kernels.matvecF32(wOff, xOff, outOff, k, mid, n);
    const out = new Float32Array(memory.buffer, outOff, n).slice();
    assertClose(out, await referenceMatvec('F32', new Uint8Array(w.buffer), n, k, x), 1e-5);
  }
});
}

for (const set of SETS) {
test(`${set} kernels: matvecBF16 equals the reference matmul on the same bf16 weights`, async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadSet(memory, set);
  for (const [n, k] of [[1, 8], [5, 24], [33, 256]] as const) {
    const wBytes = encodeBF16(random(n * k)), x = random(k);
    const xp = permuted(x);
    const heap = new Uint8Array(memory.buffer);
    const wOff = 0, xOff = wBytes.length + 64, outOff = xOff + k * 4;
    heap.set(wBytes, wOff);
    heap.set(new Uint8Array(xp.buffer), xOff);
    kernels.matvecBF16(wOff, xOff, outOff, k, 0, n);
    const out = new Float32Array(memory.buffer, outOff, n).slice();
    assertClose(out, await referenceMatvec('BF16', wBytes, n, k, x), 1e-5);
  }
});
}

test('permuteX lays x out per 8 as evens then odds, scaled, and reports max |x|', async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadMatvecKernels(memory);
  const x = random(24);
  x[13] = -7.5;
  new Float32Array(memory.buffer, 0, 24).set(x);
  assert.equal(kernels.permuteX(0, 256, 24, 4), 7.5);
  assert.deepEqual(new Float32Array(memory.buffer, 256, 24).slice(), permuted(x).map((v) => v * 4));
  new Float32Array(memory.buffer, 0, 8).fill(NaN, 3, 4);
  assert.ok(Number.isNaN(kernels.permuteX(0, 256, 8, 1)), 'NaN is reported, so the caller falls back');
});

for (const set of SETS) {
test(`${set} kernels: matvecF16 and matvecF16Scaled equal the reference matmul, including subnormal, infinite and NaN weights`, async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadSet(memory, set);
  for (const [n, k] of [[1, 8], [6, 40], [17, 128]] as const) {
    const values = random(n * k);
    values[0] = 3e-6; values[1] = -6e-8; values[2] = 65504; values[3] = -0; values[4] = -65504; values[5] = 6.1e-5; // subnormals, max, -0, min, the largest subnormal
    const wBytes = encodeF16(values), x = random(k);
    x[1] = 30000; x[2] = -1e-30; // large (still < 2^16) and tiny activations
    const heap = new Uint8Array(memory.buffer);
    const wOff = 0, xOff = wBytes.length + 64, xsOff = xOff + k * 4, outOff = xsOff + k * 4, outScaled = outOff + n * 4;
    heap.set(wBytes, wOff);
    heap.set(new Uint8Array(permuted(x).buffer), xOff);
    const halves = new Uint16Array(wBytes.buffer, wBytes.byteOffset, n * k);
    const subnormals = halves.filter((h) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0).length;
    assert.ok(subnormals >= 3);
    assert.equal(kernels.countF16Kinds(wOff, n * k), BigInt(subnormals) << 32n, 'no inf or NaN; the subnormals counted');
    kernels.matvecF16(wOff, xOff, outOff, k, 0, n);
    const exact = new Float32Array(memory.buffer, outOff, n).slice();
    assertClose(exact, await referenceMatvec('F16', wBytes, n, k, x), 1e-5);
    // The scaled kernel: bit-identical, given x·2^112.
    heap.set(new Uint8Array(permuted(x).map((v) => v * 2 ** 112).buffer), xsOff);
    kernels.matvecF16Scaled(wOff, xsOff, outScaled, k, 0, n);
    assert.deepEqual(new Float32Array(memory.buffer, outScaled, n).slice(), exact);
  }
  // inf and NaN weights propagate as in f32 arithmetic (the exact kernel; they are counted at load).
  const special = encodeF16(Float32Array.from([Infinity, 0, 0, 0, 0, 0, 0, 0, NaN, 0, 0, 0, 0, 0, 0, 0]));
  new Uint8Array(memory.buffer).set(special, 0);
  assert.equal(kernels.countF16Kinds(0, 16), 2n, 'inf and NaN; no subnormals');
  new Float32Array(memory.buffer, 64, 8).fill(1);
  kernels.matvecF16(0, 64, 128, 8, 0, 2);
  const out = new Float32Array(memory.buffer, 128, 2);
  assert.equal(out[0], Infinity);
  assert.ok(Number.isNaN(out[1]));
});
}

for (const dtype of ['Q8_0', 'Q4_0'] as const) {
test(`matvec${dtype} computes the block-scaled integer dot of ${dtype} weights and 8-bit-quantized x`, async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadMatvecKernels(memory);
  for (const [n, k] of [[1, 32], [5, 96], [19, 256]] as const) {
    const wBytes = quantize(dtype, random(n * k)), x = random(k);
    // Block scales the kernels convert branch-free: subnormal, negative, zero, the largest f16.
    const blockBytes = dtype === 'Q8_0' ? 34 : 18;
    [0x0001, 0x8400, 0x0000, 0x7bff].forEach((h, b) => {
      if ((b + 1) * blockBytes <= wBytes.length) { wBytes[b * blockBytes] = h & 0xff; wBytes[b * blockBytes + 1] = h >> 8; }
    });
    const heap = new Uint8Array(memory.buffer);
    const wOff = 0, xOff = Math.ceil(wBytes.length / 16) * 16 + 64, x16Off = xOff + k * 4, xdOff = x16Off + 2 * k + 64, outOff = xdOff + k;
    heap.set(wBytes, wOff);
    heap.set(new Uint8Array(x.buffer), xOff);
    kernels.quantizeRowsQ8(xOff, x16Off, xdOff, k, 0, 1);
    kernels[`matvec${dtype}`](wOff, x16Off, xdOff, outOff, k, 0, n);
    const xq = new Int16Array(memory.buffer, x16Off, k), xd = new Float32Array(memory.buffer, xdOff, k / 32);
    assert.ok(xq.every((q) => q >= -127 && q <= 127));
    // The activation quantization itself: |x - d·q| ≤ d/2 per element.
    for (let i = 0; i < k; i++) assert.ok(Math.abs(x[i]! - xd[i >> 5]! * xq[i]!) <= xd[i >> 5]! / 2 + 1e-7);
    // The dot: exact integer sums per block, scaled by both block scales.
    const w = dequantize(dtype, wBytes, n * k);
    const expected = new Float32Array(n);
    for (let r = 0; r < n; r++) {
      let sum = 0;
      for (let i = 0; i < k; i++) sum += w[r * k + i]! * xd[i >> 5]! * xq[i]!;
      expected[r] = sum;
    }
    assertClose(new Float32Array(memory.buffer, outOff, n).slice(), expected, 1e-5);
  }
});
}

// The K-quant matvec kernels against their arithmetic written out in scalar f32 (Math.fround after
// every operation), in the order the kernels promise: per output, an f32x4 whose lane l gathers
// the elements of each block of 32 at (e & 7) >> 1 == l, block by block, summed across lanes at
// the end. Pins the operations themselves, not just decode ≡ prefill.
const f = Math.fround;
const hsum4 = (v: number[]) => f(f(f(v[0]! + v[1]!) + v[2]!) + v[3]!);
/** Lane sums of an integer dot over elements [from, from + len) of a block (len a multiple of 8). */
function laneDots(q: (e: number) => number, x: Int16Array, xAt: number, from: number, len: number): number[] {
  const lanes = [0, 0, 0, 0];
  for (let e = from; e < from + len; e++) lanes[(e & 7) >> 1]! += q(e) * x[xAt + e]!;
  return lanes;
}

/** Q4_K: acc += S_j·((d·sc_j)·dx_j) per sub-block, minv += (dmin·m_j)·xt_j four at a time, hsum(acc) − hsum(minv). */
function canonicalQ4_K(w: Uint8Array, row: number, x: Int16Array, xd: Float32Array, xt: Float32Array, k: number): number {
  const acc = [0, 0, 0, 0], minv = [0, 0, 0, 0];
  for (let sb = 0; sb < k / 256; sb++) {
    const b = row * (k / 256) * 144 + sb * 144;
    const d = readF16(w, b), dmin = readF16(w, b + 2), sc = w.subarray(b + 4, b + 16), qs = w.subarray(b + 16, b + 144);
    const scale = (j: number) => (j < 4 ? sc[j]! & 63 : (sc[j + 4]! & 15) | ((sc[j - 4]! >> 6) << 4));
    const min = (j: number) => (j < 4 ? sc[j + 4]! & 63 : (sc[j + 4]! >> 4) | ((sc[j]! >> 6) << 4));
    for (let j = 0; j < 8; j++) {
      const xb = sb * 8 + j;
      const S = laneDots((e) => (j & 1 ? qs[32 * (j >> 1) + e]! >> 4 : qs[32 * (j >> 1) + e]! & 15), x, xb * 32, 0, 32);
      const s = f(f(d * scale(j)) * xd[xb]!);
      for (let l = 0; l < 4; l++) acc[l] = f(acc[l]! + f(f(S[l]!) * s));
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 4; l++) minv[l] = f(minv[l]! + f(f(dmin * min(4 * h + l)) * xt[sb * 8 + 4 * h + l]!));
    }
  }
  return f(hsum4(acc) - hsum4(minv));
}

/** Q6_K: per block of 32, s = sc_a·S_a + sc_b·S_b (integers), acc += s·(d·dx). */
function canonicalQ6_K(w: Uint8Array, row: number, x: Int16Array, xd: Float32Array, k: number): number {
  const acc = [0, 0, 0, 0];
  for (let sb = 0; sb < k / 256; sb++) {
    const b = row * (k / 256) * 210 + sb * 210;
    const d = readF16(w, b + 208);
    for (let j = 0; j < 8; j++) {
      const half = j >> 2, quarter = j & 3, xb = sb * 8 + j;
      const q = (e: number) => {
        const lowByte = w[b + 64 * half + 32 * (quarter & 1) + e]!, highBits = (w[b + 128 + 32 * half + e]! >> (2 * quarter)) & 3;
        return ((quarter >= 2 ? lowByte >> 4 : lowByte & 15) | (highBits << 4)) - 32;
      };
      const scA = (w[b + 192 + 2 * j]! << 24) >> 24, scB = (w[b + 193 + 2 * j]! << 24) >> 24;
      const Sa = laneDots(q, x, xb * 32, 0, 16), Sb = laneDots(q, x, xb * 32, 16, 16);
      const s = f(d * xd[xb]!);
      for (let l = 0; l < 4; l++) acc[l] = f(acc[l]! + f(f(scA * Sa[l]! + scB * Sb[l]!) * s));
    }
  }
  return hsum4(acc);
}

test('matvecQ4_K and matvecQ6_K compute their f32 arithmetic in the canonical order, bit for bit, any row range', async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadMatvecKernels(memory);
  const k = 512, nb = k / 32;
  for (const n of [1, 3, 5]) {
    for (const dtype of ['Q4_K', 'Q6_K'] as const) {
      // x from quantizeRowsQ8 (−127..127), and raw int16 over the whole range (the Q6_K kernel's
      // other path; what quantizeRowsQ8 leaves for blocks of subnormal-scale activations).
      for (const rawX of [false, true]) {
        const wBytes = quantize(dtype, random(n * k));
        const heap = new Uint8Array(memory.buffer);
        const wOff = 65536, xOff = wOff + Math.ceil(wBytes.length / 64) * 64, x16Off = xOff + 4 * k, xdOff = x16Off + 2 * k, xtOff = xdOff + 4 * nb, outOff = xtOff + 4 * nb;
        heap.set(wBytes, wOff);
        new Float32Array(memory.buffer, xOff, k).set(random(k));
        kernels.quantizeRowsQ8(xOff, x16Off, xdOff, k, 0, 1);
        const x16 = new Int16Array(memory.buffer, x16Off, k), xd = new Float32Array(memory.buffer, xdOff, nb);
        if (rawX) for (let i = 0; i < k; i++) x16[i] = i === 5 ? -32768 : i === 9 ? 32767 : Math.round(rng.next() * 65535) - 32768;
        kernels.blockSumsQ8(x16Off, xdOff, xtOff, k, 0, 1);
        const xt = new Float32Array(memory.buffer, xtOff, nb);
        for (let b = 0; b < nb; b++) {
          let sum = 0;
          for (let e = 0; e < 32; e++) sum += x16[b * 32 + e]!;
          assert.equal(xt[b], f(xd[b]! * sum), `blockSumsQ8 block ${b}`);
        }
        const expected = Array.from({ length: n }, (_, r) => dtype === 'Q4_K'
          ? canonicalQ4_K(wBytes, r, x16, xd, xt, k) : canonicalQ6_K(wBytes, r, x16, xd, k));
        // Every row range: all rows, a tail from row 1 (odd counts; the two-row passes and the
        // single-row tail), single rows.
        const ranges: [number, number][] = [[0, n], [Math.min(1, n - 1), n], ...Array.from({ length: n }, (_, r): [number, number] => [r, r + 1])];
        for (const [r0, r1] of ranges) {
          new Float32Array(memory.buffer, outOff, n).fill(NaN);
          if (dtype === 'Q4_K') kernels.matvecQ4_K(wOff, x16Off, xdOff, xtOff, outOff, k, r0, r1);
          else kernels.matvecQ6_K(wOff, x16Off, xdOff, outOff, k, r0, r1);
          const out = new Float32Array(memory.buffer, outOff, n);
          for (let r = 0; r < n; r++) {
            if (r < r0 || r >= r1) assert.ok(Number.isNaN(out[r]), `${dtype} row ${r} outside [${r0}, ${r1}) is untouched`);
            else assert.equal(out[r], expected[r], `${dtype} n=${n} rawX=${rawX} rows [${r0}, ${r1}) row ${r}`);
          }
        }
      }
    }
  }
});

/** Q8_0 / Q4_0: per block of 32, S = the exact lane sums of q·x, acc[l] += f32(S[l]) · (dw · dx). */
function canonicalQ8_0orQ4_0(dtype: 'Q8_0' | 'Q4_0', w: Uint8Array, row: number, x: Int16Array, xd: Float32Array, k: number): number {
  const nb = k / 32, blockBytes = dtype === 'Q8_0' ? 34 : 18;
  const acc = [0, 0, 0, 0];
  for (let b = 0; b < nb; b++) {
    const at = (row * nb + b) * blockBytes;
    const q = dtype === 'Q8_0'
      ? (e: number) => (w[at + 2 + e]! << 24) >> 24
      : (e: number) => (e < 16 ? w[at + 2 + e]! & 15 : w[at + 2 + e - 16]! >> 4) - 8;
    const S = laneDots(q, x, b * 32, 0, 32);
    const s = f(readF16(w, at) * xd[b]!);
    for (let l = 0; l < 4; l++) acc[l] = f(acc[l]! + f(f(S[l]!) * s));
  }
  return hsum4(acc);
}

test('matvecQ8_0 and matvecQ4_0 compute their f32 arithmetic in the canonical order, bit for bit, any row range', async () => {
  const memory = createKernelMemory(16);
  const kernels = await loadMatvecKernels(memory);
  // 7 blocks per row: not a multiple of 2 or 4, so any grouping of blocks has a remainder.
  const k = 224, nb = k / 32;
  for (const n of [1, 3, 5, 6]) {
    for (const dtype of ['Q8_0', 'Q4_0'] as const) {
      // x from quantizeRowsQ8 (−127..127), and raw int16 over the whole range: the integer dots
      // are exact for any int16 x.
      for (const rawX of [false, true]) {
        const wBytes = quantize(dtype, random(n * k));
        // Q8_0 weights may hold −128 (quantize never writes it): a block with one, in the last row.
        if (dtype === 'Q8_0') wBytes[((n - 1) * nb + 3) * 34 + 2 + 17] = 0x80;
        const heap = new Uint8Array(memory.buffer);
        const wOff = 65536, xOff = wOff + Math.ceil(wBytes.length / 64) * 64, x16Off = xOff + 4 * k, xdOff = x16Off + 2 * k, outOff = xdOff + 4 * nb;
        heap.set(wBytes, wOff);
        new Float32Array(memory.buffer, xOff, k).set(random(k));
        kernels.quantizeRowsQ8(xOff, x16Off, xdOff, k, 0, 1);
        const x16 = new Int16Array(memory.buffer, x16Off, k), xd = new Float32Array(memory.buffer, xdOff, nb);
        if (rawX) for (let i = 0; i < k; i++) x16[i] = i === 5 ? -32768 : i === 9 ? 32767 : Math.round(rng.next() * 65535) - 32768;
        const expected = Array.from({ length: n }, (_, r) => canonicalQ8_0orQ4_0(dtype, wBytes, r, x16, xd, k));
        // Every row range: all rows, a tail from row 1 (odd counts: whatever rows a pass takes, and
        // the tail after the last full pass), the middle rows, single rows.
        const ranges: [number, number][] = [[0, n], [Math.min(1, n - 1), n], [Math.min(1, n - 1), Math.max(1, n - 1)],
          ...Array.from({ length: n }, (_, r): [number, number] => [r, r + 1])];
        for (const [r0, r1] of ranges) {
          new Float32Array(memory.buffer, outOff, n).fill(NaN);
          kernels[`matvec${dtype}`](wOff, x16Off, xdOff, outOff, k, r0, r1);
          const out = new Float32Array(memory.buffer, outOff, n);
          for (let r = 0; r < n; r++) {
            if (r < r0 || r >= r1) assert.ok(Number.isNaN(out[r]), `${dtype} row ${r} outside [${r0}, ${r1}) is untouched`);
            else assert.equal(out[r], expected[r], `${dtype} n=${n} rawX=${rawX} rows [${r0}, ${r1}) row ${r}`);
          }
        }
        // matmul (decode of a few tokens, tile by tile) is matvec per token: the same bits.
        new Float32Array(memory.buffer, outOff, n).fill(NaN);
        kernels[`matmul${dtype}`](wOff, x16Off, xdOff, outOff, k, n, 1, 0, n);
        assert.deepEqual(Array.from(new Float32Array(memory.buffer, outOff, n)), expected, `matmul${dtype} n=${n} rawX=${rawX}`);
      }
    }
  }
});

// The gemm kernels (prefill, batches) against the matvec kernels (decode): bit-identical outputs
// for every dtype, token count, row range and tile size, so batching never changes a result.
for (const set of SETS) {
test(`${set} kernels: gemm kernels equal the matvec kernels bit for bit, any token count, row range and tile`, async () => {
  const memory = createKernelMemory(64);
  const kernels = await loadSet(memory, set);
  let top = 0;
  const alloc = (bytes: number) => { const o = top; top = Math.ceil((top + bytes) / 64) * 64; return o; };
  const put = (bytes: Uint8Array) => { const o = alloc(bytes.length); new Uint8Array(memory.buffer, o, bytes.length).set(bytes); return o; };
  for (const dtype of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q5_K', 'Q3_K', 'Q2_K'] as const) {
    const shapes: [number, number][] = dtype === 'F32' ? [[1, 1], [7, 13], [21, 66]] : dtype.endsWith('_K') ? [[3, 256], [23, 512]]
      : dtype.startsWith('Q') ? [[3, 32], [23, 96]] : [[5, 8], [22, 40]];
    for (const [n, k] of shapes) {
      for (const nTok of [1, 2, 3, 6]) {
        top = 65536; // above the module's static data
        const wOff = put(quantize(dtype, random(n * k)));
        const x = random(nTok * k);
        const input = new Float32Array(nTok * k);
        if (dtype === 'BF16' || dtype === 'F16') for (let t = 0; t < nTok; t++) input.set(permuted(x.subarray(t * k, (t + 1) * k)), t * k);
        else input.set(x);
        const xOff = put(new Uint8Array(input.buffer));
        const x16 = alloc(nTok * k * 2), xd = alloc(nTok * k / 8 + 4), xt = alloc(nTok * k / 8 + 4);
        const viaMatvec = alloc(nTok * n * 4), viaGemm = alloc(nTok * n * 4);
        // Scratch for the 4-row minimum tile, so the larger shapes span several tiles.
        kernels.setScratch(alloc(16 * k), 16 * k, 0);
        const [r0, r1] = [n > 4 ? 1 : 0, n];
        if (dtype === 'Q4_K' || dtype === 'Q5_K') {
          kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, nTok);
          kernels.blockSumsQ8(x16, xd, xt, k, 0, nTok);
          kernels[`matmul${dtype}`](wOff, x16, xd, xt, viaMatvec, k, n, nTok, r0, r1);
          kernels[`gemm${dtype}`](wOff, x16, xd, xt, viaGemm, k, n, nTok, r0, r1);
        } else if (dtype === 'Q8_0' || dtype === 'Q4_0' || dtype === 'Q6_K' || dtype === 'Q3_K' || dtype === 'Q2_K') {
          kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, nTok);
          kernels[`matmul${dtype}`](wOff, x16, xd, viaMatvec, k, n, nTok, r0, r1);
          kernels[`gemm${dtype}`](wOff, x16, xd, viaGemm, k, n, nTok, r0, r1);
        } else {
          kernels[`matmul${dtype}`](wOff, xOff, viaMatvec, k, n, nTok, r0, r1);
          kernels[`gemm${dtype}`](wOff, xOff, viaGemm, k, n, nTok, r0, r1);
        }
        const a = new Float32Array(memory.buffer, viaMatvec, nTok * n), b = new Float32Array(memory.buffer, viaGemm, nTok * n);
        for (let t = 0; t < nTok; t++) {
          for (let r = r0; r < r1; r++) assert.equal(b[t * n + r], a[t * n + r], `${dtype} [${n}, ${k}] token ${t} row ${r}`);
        }
      }
    }
  }
});
}

// F16's batched-decode kernel (several sequences' decode steps in one call) against its
// token-by-token kernel: bit-identical for every token count (groups of four, a last group of one,
// two or three), row range and tile, so a stream's tokens never depend on its company.
for (const set of SETS) {
test(`${set} kernels: batchF16Scaled equals matmulF16Scaled bit for bit, any token count, row range and tile`, async () => {
  const memory = createKernelMemory(64);
  const kernels = await loadSet(memory, set);
  let top = 65536;
  const alloc = (bytes: number) => { const o = top; top = Math.ceil((top + bytes) / 64) * 64; return o; };
  const put = (bytes: Uint8Array) => { const o = alloc(bytes.length); new Uint8Array(memory.buffer, o, bytes.length).set(bytes); return o; };
  for (const [n, k] of [[5, 8], [23, 40], [70, 1024]] as const) {
    for (const nTok of [1, 2, 3, 4, 5, 6, 7, 9]) {
      top = 65536;
      const wOff = put(encodeF16(random(n * k)));
      const xOff = alloc(nTok * k * 4), xs = alloc(nTok * k * 4);
      new Float32Array(memory.buffer, xOff, nTok * k).set(random(nTok * k));
      kernels.permuteX(xOff, xs, nTok * k, 2 ** 112);
      const viaTokens = alloc(nTok * n * 4), viaBatch = alloc(nTok * n * 4);
      const [r0, r1] = [n > 4 ? 3 : 0, n];
      kernels.matmulF16Scaled(wOff, xs, viaTokens, k, n, nTok, r0, r1);
      kernels.batchF16Scaled(wOff, xs, viaBatch, k, n, nTok, r0, r1);
      const a = new Float32Array(memory.buffer, viaTokens, nTok * n), b = new Float32Array(memory.buffer, viaBatch, nTok * n);
      for (let t = 0; t < nTok; t++) {
        for (let r = r0; r < r1; r++) assert.equal(b[t * n + r], a[t * n + r], `[${n}, ${k}] ${nTok} tokens: token ${t} row ${r}`);
      }
    }
  }
});
}

// The relaxed-SIMD build against the plain one: the same sums, rounded once per multiply-add
// where the runtime fuses them (so within float rounding), and bit for bit where it does not.
test('relaxed kernels agree with the plain ones: within rounding when fused, bit for bit when not', { skip: SETS.length < 2 && 'this runtime does not run the relaxed-SIMD kernels' }, async () => {
  const fused = relaxedVerdict !== undefined && 'fused' in relaxedVerdict && relaxedVerdict.fused;
  const memory = createKernelMemory(64);
  const plain = await loadSet(memory, 'plain'), relaxed = await loadSet(memory, 'relaxed');
  const n = 37, k = 512, nTok = 5;
  const top = 65536, wBytes = n * k * 4, xOff = top + wBytes, outA = xOff + nTok * k * 4, outB = outA + nTok * n * 4, scratch = outB + nTok * n * 4;
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const w = quantize(dtype, random(n * k)), x = random(nTok * k);
    new Uint8Array(memory.buffer, top, w.length).set(w);
    const input = dtype === 'F32' ? x : Float32Array.from({ length: nTok * k }, (_, i) => permuted(x.subarray(i - (i % k), i - (i % k) + k))[i % k]!);
    new Float32Array(memory.buffer, xOff, nTok * k).set(input);
    for (const kernel of [`matmul${dtype}`, `gemm${dtype}`] as const) {
      for (const [kernels, out] of [[plain, outA], [relaxed, outB]] as const) {
        kernels.setScratch(scratch, 16 * k, 0);
        kernels[kernel](top, xOff, out, k, n, nTok, 0, n);
      }
      const a = new Float32Array(memory.buffer, outA, nTok * n).slice(), b = new Float32Array(memory.buffer, outB, nTok * n).slice();
      if (fused) {
        assertClose(b, a, 1e-5);
        assert.ok(b.some((v, i) => v !== a[i]), `${kernel}: the fused multiply-add rounds differently somewhere (else the relaxed build is not what ran)`);
      } else {
        assert.deepEqual(b, a, `${kernel}: unfused, the relaxed build computes exactly what the plain one does`);
      }
    }
  }
});

test('the multiply-add self-test: the plain build is unfused, the relaxed one consistent, a mix refused', async () => {
  assert.deepEqual(await runRelaxedSelfTest(await compileKernelSet('plain')), { fused: false });
  if (relaxedVerdict) assert.ok(!('problem' in relaxedVerdict), `this runtime's relaxed SIMD: ${JSON.stringify(relaxedVerdict)}`);
  const fused = [2 ** -24, 4, -(2 ** -24), 0], unfused = [0, 4, 0, 0];
  assert.deepEqual(judgeMaddSelfTest(fused, fused), { fused: true });
  assert.deepEqual(judgeMaddSelfTest(unfused, unfused), { fused: false });
  // Fused on the first tier, unfused once optimised: a row's bits would depend on when it ran.
  assert.match((judgeMaddSelfTest(fused, unfused) as { problem: string }).problem, /fused on the first call and unfused once optimised/);
  // Lanes fused and unfused in one answer, or a wrong sum (Node 20's flagged relaxed dot doubled its).
  assert.match((judgeMaddSelfTest([2 ** -24, 4, 0, 0], fused) as { problem: string }).problem, /neither the fused/);
  assert.match((judgeMaddSelfTest(fused, [2 ** -24, 8, -(2 ** -24), 0]) as { problem: string }).problem, /once optimised, neither/);
  assert.match((judgeMaddSelfTest(unfused, [0, 4, 0, -0]) as { problem: string }).problem, /neither/, 'the sign of zero counts');
});

test('MINERVA_CPU_SIMD forces a kernel set, refuses relaxed where the runtime lacks it, and names itself on a bad value', () => {
  const moduleUrl = new URL('../src/backends/cpu/kernel-module.js', import.meta.url).href;
  // (with this process's V8 flags: Node 20 runs relaxed SIMD under --experimental-wasm-relaxed-simd)
  const flags = process.execArgv.filter((a) => !a.startsWith('--test'));
  const choose = (value: string) => spawnSync(process.execPath, [...flags, '--input-type=module', '-e',
    `const m = await import(${JSON.stringify(moduleUrl)}); try { console.log(JSON.stringify(await m.kernelChoice())); } catch (e) { console.log('error: ' + e.message); }`],
  { env: { ...process.env, MINERVA_CPU_SIMD: value }, encoding: 'utf8' }).stdout.trim();
  assert.equal(JSON.parse(choose('plain')).set, 'plain');
  assert.match(choose('plain'), /MINERVA_CPU_SIMD=plain/);
  if (SETS.includes('relaxed')) {
    const relaxed = JSON.parse(choose('relaxed')) as { set: string; description: string };
    assert.equal(relaxed.set, 'relaxed');
    assert.equal(JSON.parse(choose('')).set, 'relaxed', 'auto picks relaxed where its self-test passes');
    assert.match(relaxed.description, /self-test passed/);
  } else {
    assert.match(choose('relaxed'), /^error: MINERVA_CPU_SIMD=relaxed refused: this runtime does not support relaxed SIMD/);
    assert.equal(JSON.parse(choose('')).set, 'plain');
  }
  assert.match(choose('fast'), /^error: MINERVA_CPU_SIMD must be "plain", "relaxed" or "auto" \(unset\), got "fast"/);
});
