// IEEE half precision (f16) and bfloat16 (bf16) <-> f32, for single values and whole arrays.
// f32 -> f16 and f32 -> bf16 round to nearest, ties to even (what F16C's _cvtss_sh, PyTorch and
// ggml do); subnormals are kept, overflow becomes ±inf, NaN stays a (quiet) NaN of the same sign.
// Array forms read and write little-endian bytes, so a view at any byte offset works.

// Scratch for reinterpreting one f32 as its bits.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bits of the f32 nearest to `x` (x is first rounded to f32). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** The f32 whose bits are `bits` (a uint32). */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/** f16 bits (uint16) -> f32 bits, exactly (every f16 is an f32). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal f16 (mant · 2^-24): normalise so the leading 1 becomes the implicit bit.
  let e = 113; // biased f32 exponent of 2^-14, the f16 subnormal scale
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** The value of an f16 given by its bits (uint16). */
export function f16ToF32(h: number): number {
  return f32FromBits(f16BitsToF32Bits(h & 0xffff));
}

/** f16 bits (uint16) of `x` rounded to nearest even. */
export function f32ToF16(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // inf stays inf; NaN keeps its top payload bits and is made quiet so it cannot become inf.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const halfExp = exp - 112; // rebias 127 -> 15
  if (halfExp >= 0x1f) return sign | 0x7c00; // >= 2^16: beyond the largest f16 even after rounding
  if (halfExp <= 0) {
    // f16 subnormal (or zero): value = m · 2^(exp-150), in units of 2^-24 that is m >> (126-exp).
    const shift = 126 - exp;
    if (shift > 24) return sign; // below half the smallest subnormal: rounds to ±0
    const m = mant | 0x800000;
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (r & 1) === 1)) r++; // may carry into the smallest normal: right
    return sign | r;
  }
  let h = (halfExp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // a carry into exp 31 gives inf: right
  return sign | h;
}

/** The value of a bf16 given by its bits (uint16). */
export function bf16ToF32(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/** bf16 bits (uint16) of `x` rounded to nearest even. */
export function f32ToBF16(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40; // NaN: quiet, sign kept
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; it cannot pass 2^32 for non-NaN.
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

// f16 -> f32 for all 65536 f16 values, as f32 bits: 256 KiB, built on first use.
let f16Table: Uint32Array | undefined;
function f16ToF32BitsTable(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

/** Reads the little-endian f16 at bytes[at..at+2) as a number (block scales). */
export function readF16(bytes: Uint8Array, at: number): number {
  return f16ToF32(bytes[at]! | (bytes[at + 1]! << 8));
}

/** Writes `x` rounded to f16 at bytes[at..at+2), little-endian (block scales). */
export function writeF16(bytes: Uint8Array, at: number, x: number): void {
  const h = f32ToF16(x);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
}

function checkArgs(what: string, bytes: Uint8Array, count: number, out: Float32Array | undefined): Float32Array {
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`${what}: bad element count ${count}`);
  if (bytes.length < count * 2) {
    throw new Error(`${what}: ${count} elements need ${count * 2} bytes, got ${bytes.length}`);
  }
  if (out && out.length < count) throw new Error(`${what}: output holds ${out.length} elements, ${count} needed`);
  return out ?? new Float32Array(count);
}

/** Decodes `count` little-endian f16 values from `bytes` into `out` (or a new array), returned. */
export function decodeF16(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkArgs('f16', bytes, count, out);
  const table = f16ToF32BitsTable();
  // Write f32 bits directly: a Float32Array's byteOffset is always a multiple of 4.
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, count);
  for (let i = 0; i < count; i++) dstBits[i] = table[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  return dst;
}

/** Decodes `count` little-endian bf16 values from `bytes` into `out` (or a new array), returned. */
export function decodeBF16(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkArgs('bf16', bytes, count, out);
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, count);
  for (let i = 0; i < count; i++) dstBits[i] = ((bytes[2 * i]! << 16) | (bytes[2 * i + 1]! << 24)) >>> 0;
  return dst;
}

/** Encodes f32 values as little-endian f16: [n] -> bytes [2n]. */
export function encodeF16(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const h = f32ToF16(values[i]!);
    bytes[2 * i] = h & 0xff;
    bytes[2 * i + 1] = h >>> 8;
  }
  return bytes;
}

/** Encodes f32 values as little-endian bf16: [n] -> bytes [2n]. */
export function encodeBF16(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const b = f32ToBF16(values[i]!);
    bytes[2 * i] = b & 0xff;
    bytes[2 * i + 1] = b >>> 8;
  }
  return bytes;
}
