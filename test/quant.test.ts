// f16/bf16 conversion and the Q8_0/Q4_0 block formats: edge cases, hand-computed blocks, and
// error bounds of quantize -> dequantize.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32, decodeBF16, decodeF16, encodeBF16, encodeF16, f16ToF32, f32Bits, f32ToBF16, f32ToF16,
} from '../src/quant/f16.js';
import * as q8_0 from '../src/quant/q8_0.js';
import * as q4_0 from '../src/quant/q4_0.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';
import type { DType } from '../src/quant/dtype.js';

/** Deterministic pseudo-random f32s in [-scale, scale) (xorshift32). */
function randomValues(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

test('f32 -> f16: exact values, ties to even, overflow, subnormals, signed zero', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // below the midpoint to 65536
    [65520, 0x7c00], // the midpoint ties to even: 0x7bff is odd, so up to inf
    [1e6, 0x7c00], [-Infinity, 0xfc00], [Infinity, 0x7c00],
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [2 ** -14, 0x0400], // smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even (0)
    [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above that tie
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even
    [-(2 ** -24), 0x8001], [2 ** -30, 0x0000], [-(2 ** -30), 0x8000],
    [(2 ** -14) * (1 - 2 ** -12), 0x0400], // rounds up from subnormal into the smallest normal
  ];
  for (const [x, h] of cases) assert.equal(f32ToF16(x), h, `f32ToF16(${x})`);
  const nan = f32ToF16(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x03ff, 0, 'NaN must not become inf');
});

test('f16 -> f32: every finite f16 round-trips; inf and NaN decode as such', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) {
      assert.equal(h & 0x7c00, 0x7c00);
      assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))));
    } else {
      assert.equal(f32ToF16(x), h, `round trip of 0x${h.toString(16)}`);
    }
  }
});

test('f32 -> f16 rounds to the nearest f16 (ties even) for random f32 bit patterns', () => {
  // Independent oracle: the sorted positive finite f16 values and a binary search.
  const positives: number[] = [];
  for (let h = 0; h < 0x7c00; h++) positives.push(f16ToF32(h));
  const nearest = (a: number): number => {
    if (a >= 65520) return 0x7c00;
    let lo = 0, hi = positives.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (positives[mid]! <= a) lo = mid; else hi = mid;
    }
    const dLo = a - positives[lo]!, dHi = positives[hi]! - a;
    if (dLo < dHi) return lo;
    if (dHi < dLo) return hi;
    return lo % 2 === 0 ? lo : hi;
  };
  const bits = new Uint32Array(20000);
  const f = new Float32Array(bits.buffer);
  let s = 12345;
  for (let i = 0; i < bits.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // Exponents spread over the f16 range and a little beyond it.
    const exp = 90 + (s % 60);
    bits[i] = ((s & 0x80000000) | (exp << 23) | (Math.imul(s, 0x9e3779b1) >>> 9)) >>> 0;
  }
  for (const x of f) {
    const want = nearest(Math.abs(x)) | (x < 0 ? 0x8000 : 0);
    assert.equal(f32ToF16(x), want, `f32ToF16(${x})`);
  }
});

test('f32 <-> bf16: ties to even, overflow to inf, NaN stays NaN, round trips', () => {
  assert.equal(f32ToBF16(1), 0x3f80);
  assert.equal(f32ToBF16(-0), 0x8000);
  assert.equal(f32ToBF16(1 + 2 ** -8), 0x3f80); // tie: even
  assert.equal(f32ToBF16(1 + 3 * 2 ** -8), 0x3f82); // tie: even
  assert.equal(f32ToBF16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(f32ToBF16(3.4028234663852886e38), 0x7f80); // f32 max rounds up to inf
  assert.equal(f32ToBF16(-Infinity), 0xff80);
  assert.equal(f32ToBF16(2 ** -149), 0x0000); // smallest f32 subnormal: to zero
  assert.equal(f32ToBF16(3 * 2 ** -134), 0x0002); // subnormal tie (1.5 units): even
  const nan = f32ToBF16(NaN);
  assert.ok(Number.isNaN(bf16ToF32(nan)));
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc040), -3);
  for (let b = 0; b < 65536; b++) {
    const x = bf16ToF32(b);
    if (!Number.isNaN(x)) assert.equal(f32ToBF16(x), b);
  }
});

test('array f16/bf16 decoding reads little-endian bytes at any offset', () => {
  const values = new Float32Array([1, -2, 0.5, 61440, -0, 2 ** -24]); // exact in f16 and bf16
  for (const [encode, decode] of [[encodeF16, decodeF16], [encodeBF16, decodeBF16]] as const) {
    const encoded = encode(values);
    assert.equal(encoded.length, 12);
    const shifted = new Uint8Array(encoded.length + 1);
    shifted.set(encoded, 1);
    const view = shifted.subarray(1); // odd byteOffset
    const out = decode(view, values.length);
    assert.deepEqual([...out].map((x) => f32Bits(x)), [...values].map((x) => f32Bits(x)));
  }
  assert.deepEqual([...encodeF16(new Float32Array([1]))], [0x00, 0x3c]);
  assert.deepEqual([...encodeBF16(new Float32Array([1]))], [0x80, 0x3f]);
  assert.throws(() => decodeF16(new Uint8Array(3), 2), /need 4 bytes/);
});

test('Q8_0: a hand-computed block', () => {
  // amax = 127 so d = 1 (f16 0x3c00) and q = roundf(x), halves away from zero.
  const x = new Float32Array(32);
  x.set([127, 2.5, -2.5, 0.49, -0.5, 126.6, -127, 3.2, -3.7]);
  const bytes = q8_0.quantize(x);
  assert.equal(bytes.length, 34);
  const q = [127, 3, -3, 0, -1, 127, -127, 3, -4, ...new Array(23).fill(0)];
  assert.deepEqual([...bytes], [0x00, 0x3c, ...q.map((v) => v & 0xff)]);
  assert.deepEqual([...q8_0.dequantize(bytes, 32)], q);

  // An all-zero block has d = 0 and all q = 0.
  assert.deepEqual([...q8_0.quantize(new Float32Array(32))], new Array(34).fill(0));

  // amax = 16: d = 16/127 is stored as f16 0x3008 (0.1259765625); 1/d = 7.9375 in f32.
  const y = new Float32Array(32);
  y[0] = -16; y[1] = 8; y[2] = 1;
  const yb = q8_0.quantize(y);
  assert.deepEqual([...yb.subarray(0, 5)], [0x08, 0x30, -127 & 0xff, 64, 8]); // 8 × 7.9375 = 63.5 -> 64
  const back = q8_0.dequantize(yb, 32);
  assert.equal(back[0], -127 * 0.1259765625);
  assert.equal(back[1], 64 * 0.1259765625);
});

test('Q4_0: hand-computed blocks (nibble order, clamping, sign of d)', () => {
  // Largest magnitude -8: d = -8 / -8 = 1 (0x3c00); q = min(15, trunc(x + 8.5)).
  const x = new Float32Array(32);
  x.set([-8, 7, 7.4, 7.6, 0, -0.5, -0.6, 0.5]);
  x[16] = 1; x[17] = -1; x[31] = -7;
  const bytes = q4_0.quantize(x);
  assert.equal(bytes.length, 18);
  const low = [0, 15, 15, 15, 8, 8, 7, 9, ...new Array(8).fill(8)];
  const high = [9, 7, ...new Array(13).fill(8), 1];
  assert.deepEqual([...bytes], [0x00, 0x3c, ...low.map((l, j) => l | (high[j]! << 4))]);
  const back = q4_0.dequantize(bytes, 32);
  assert.deepEqual([...back.subarray(0, 8)], [-8, 7, 7, 7, 0, 0, -1, 1]);
  assert.equal(back[16], 1);
  assert.equal(back[31], -7);

  // Largest magnitude +8: d = -1 (0xbc00); x = -8 maps to q = 16, clamped to 15 (-> -7).
  const y = new Float32Array(32);
  y[0] = 8; y[1] = -8; y[2] = 3;
  const yb = q4_0.quantize(y);
  assert.deepEqual([...yb.subarray(0, 5)], [0x00, 0xbc, 0x80, 0x8f, 0x85]);
  assert.deepEqual([...q4_0.dequantize(yb, 32).subarray(0, 3)], [8, -7, 3]);

  // On equal magnitudes the first one sets the sign: max = 3, d = -0.375.
  const z = new Float32Array(32);
  z[0] = 3; z[1] = -3;
  const zb = q4_0.quantize(z);
  assert.equal(f16ToF32(zb[0]! | (zb[1]! << 8)), -0.375);
});

test('Q8_0 and Q4_0 quantize -> dequantize stay within their error bounds', () => {
  const n = 32 * 256;
  const x = randomValues(n, 99, 3);
  for (let b = 0; b < n / 32; b += 7) x[b * 32 + (b % 32)] = 40 * (b % 2 ? 1 : -1); // outliers
  const r8 = q8_0.dequantize(q8_0.quantize(x), n);
  const r4 = q4_0.dequantize(q4_0.quantize(x), n);
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const f16Slack = amax * 2 ** -10; // d is rounded to f16 (relative error <= 2^-11, times |q| <= 8 or 127 steps)
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      assert.ok(Math.abs(r8[i]! - x[i]!) <= amax / 254 + f16Slack, `Q8_0 element ${i}`);
      // Half a step, or a whole step where -max clamps from 16 to 15.
      assert.ok(Math.abs(r4[i]! - x[i]!) <= amax / 8 + f16Slack, `Q4_0 element ${i}`);
    }
  }
  assert.throws(() => q8_0.quantize(new Float32Array(31)), /whole number of blocks/);
  assert.throws(() => q4_0.quantize(new Float32Array([NaN, ...new Array(31).fill(0)])), /non-finite/);
  assert.throws(() => q8_0.dequantize(new Uint8Array(33), 32), /need 34 bytes/);
});

test('dequantize/quantize by dtype, including a misaligned F32 view', () => {
  const x = randomValues(64, 5);
  for (const dtype of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0'] as DType[]) {
    const bytes = quantize(dtype, x);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const view = shifted.subarray(3);
    const a = dequantize(dtype, bytes, 64);
    const b = dequantize(dtype, view, 64);
    assert.deepEqual(b, a, dtype);
    const out = new Float32Array(70);
    assert.equal(dequantize(dtype, view, 64, out), out);
    assert.deepEqual(out.subarray(0, 64), a);
  }
  assert.deepEqual(dequantize('F32', quantize('F32', x), 64), x);
  assert.throws(() => dequantize('I32', new Uint8Array(8), 2), /cannot convert I32 to f32: only F32, F16, BF16, Q8_0, Q4_0, /);
  assert.throws(() => quantize('U8', x), /U8/);
  assert.throws(() => dequantize('F32', new Uint8Array(7), 2), /need 8 bytes/);
});
