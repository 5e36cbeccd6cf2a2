// Reference conversion between a tensor's stored bytes and f32, for the dtypes a weight may have
// (WEIGHT_DTYPES). Stored bytes are little-endian and may sit at any byte offset
// (a view into a file buffer), so nothing here assumes the bytes are 4-byte aligned.
import { WEIGHT_DTYPES, type DType } from './dtype.js';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from './f16.js';
import * as q4_0 from './q4_0.js';
import * as q8_0 from './q8_0.js';
import * as q4_k from './q4_k.js';
import * as q6_k from './q6_k.js';
import * as iq4_xs from './iq4_xs.js';
import * as mxfp4 from './mxfp4.js';
import * as q5_k from './q5_k.js';
import * as q3_k from './q3_k.js';
import * as q2_k from './q2_k.js';
import * as q4_1 from './q4_1.js';
import * as q5_0 from './q5_0.js';
import * as q5_1 from './q5_1.js';
import * as iq4_nl from './iq4_nl.js';

const hostIsLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Decodes `count` elements of `dtype` from `bytes` into out[0..count) (a new array when out is
 * not given) and returns it. Throws for dtypes without a reference decoder, for too few bytes,
 * or for a count that is not a whole number of blocks.
 */
export function dequantize(dtype: DType, bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  switch (dtype) {
    case 'F32': return decodeF32(bytes, count, out);
    case 'F16': return decodeF16(bytes, count, out);
    case 'BF16': return decodeBF16(bytes, count, out);
    case 'Q8_0': return q8_0.dequantize(bytes, count, out);
    case 'Q4_0': return q4_0.dequantize(bytes, count, out);
    case 'Q4_K': return q4_k.dequantize(bytes, count, out);
    case 'Q6_K': return q6_k.dequantize(bytes, count, out);
    case 'IQ4_XS': return iq4_xs.dequantize(bytes, count, out);
    case 'MXFP4': return mxfp4.dequantize(bytes, count, out);
    case 'Q5_K': return q5_k.dequantize(bytes, count, out);
    case 'Q3_K': return q3_k.dequantize(bytes, count, out);
    case 'Q2_K': return q2_k.dequantize(bytes, count, out);
    case 'Q4_1': return q4_1.dequantize(bytes, count, out);
    case 'Q5_0': return q5_0.dequantize(bytes, count, out);
    case 'Q5_1': return q5_1.dequantize(bytes, count, out);
    case 'IQ4_NL': return iq4_nl.dequantize(bytes, count, out);
    default:
      throw new Error(`cannot convert ${dtype} to f32: only ${[...WEIGHT_DTYPES].join(', ')} are supported`);
  }
}

/** Encodes f32 values as `dtype` bytes (little-endian; whole blocks for Q8_0 and Q4_0). */
export function quantize(dtype: DType, values: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32': return encodeF32(values);
    case 'F16': return encodeF16(values);
    case 'BF16': return encodeBF16(values);
    case 'Q8_0': return q8_0.quantize(values);
    case 'Q4_0': return q4_0.quantize(values);
    case 'Q4_K': return q4_k.quantize(values);
    case 'Q6_K': return q6_k.quantize(values);
    case 'IQ4_XS': return iq4_xs.quantize(values);
    case 'MXFP4': return mxfp4.quantize(values);
    case 'Q5_K': return q5_k.quantize(values);
    case 'Q3_K': return q3_k.quantize(values);
    case 'Q2_K': return q2_k.quantize(values);
    case 'Q4_1': return q4_1.quantize(values);
    case 'Q5_0': return q5_0.quantize(values);
    case 'Q5_1': return q5_1.quantize(values);
    case 'IQ4_NL': return iq4_nl.quantize(values);
    default:
      throw new Error(`cannot convert f32 to ${dtype}: only ${[...WEIGHT_DTYPES].join(', ')} are supported`);
  }
}

function decodeF32(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`F32: bad element count ${count}`);
  if (bytes.length < count * 4) throw new Error(`F32: ${count} elements need ${count * 4} bytes, got ${bytes.length}`);
  if (out && out.length < count) throw new Error(`F32: output holds ${out.length} elements, ${count} needed`);
  const dst = out ?? new Float32Array(count);
  if (hostIsLittleEndian && bytes.byteOffset % 4 === 0) {
    dst.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
  } else if (hostIsLittleEndian) {
    // Misaligned: copy the bytes into the (aligned) destination as they are.
    new Uint8Array(dst.buffer, dst.byteOffset, count * 4).set(bytes.subarray(0, count * 4));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, count * 4);
    for (let i = 0; i < count; i++) dst[i] = view.getFloat32(i * 4, true);
  }
  return dst;
}

function encodeF32(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  if (hostIsLittleEndian) {
    bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
  } else {
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  }
  return bytes;
}
