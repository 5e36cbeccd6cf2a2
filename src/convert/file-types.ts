// The `--type` choices of `minerva convert`: llama.cpp's file type (general.file_type) and the
// type most matrices get. f32/f16/bf16/q8_0 are what convert_hf_to_gguf.py --outtype writes;
// q4_0, q4_k_m, q6_k, q5_k_m and q3_k_m are llama-quantize's mixes (tensor-types.ts says which tensor gets what).
import type { DType } from '../quant/dtype.js';
import { LLAMA_FTYPE } from '../model/gguf-metadata.js';

export const CONVERT_TYPES = {
  f32: { fileType: LLAMA_FTYPE.ALL_F32, dtype: 'F32' },
  f16: { fileType: LLAMA_FTYPE.MOSTLY_F16, dtype: 'F16' },
  bf16: { fileType: LLAMA_FTYPE.MOSTLY_BF16, dtype: 'BF16' },
  q8_0: { fileType: LLAMA_FTYPE.MOSTLY_Q8_0, dtype: 'Q8_0' },
  q4_0: { fileType: LLAMA_FTYPE.MOSTLY_Q4_0, dtype: 'Q4_0' },
  q4_k_m: { fileType: LLAMA_FTYPE.MOSTLY_Q4_K_M, dtype: 'Q4_K' },
  q6_k: { fileType: LLAMA_FTYPE.MOSTLY_Q6_K, dtype: 'Q6_K' },
  q5_k_m: { fileType: LLAMA_FTYPE.MOSTLY_Q5_K_M, dtype: 'Q5_K' },
  q3_k_m: { fileType: LLAMA_FTYPE.MOSTLY_Q3_K_M, dtype: 'Q3_K' },
} as const satisfies Record<string, { fileType: number; dtype: DType }>;

export type ConvertType = keyof typeof CONVERT_TYPES;

export function isConvertType(t: string): t is ConvertType {
  return Object.hasOwn(CONVERT_TYPES, t);
}
