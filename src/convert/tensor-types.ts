// Which type each tensor of a converted file gets, as llama.cpp decides it.
//
// Always: 1-D tensors (norms, biases, rope_freqs) stay F32, as convert_hf_to_gguf.py keeps them.
// f32, f16, bf16: every matrix in that type (convert_hf_to_gguf.py --outtype).
// q8_0: every matrix Q8_0; one whose rows are not whole 32-element blocks falls back to F16, as
// convert_hf_to_gguf.py does on its QuantError.
// q4_0, q4_k_m, q6_k, q5_k_m, q3_k_m: llama-quantize's mix (src/llama-quant.cpp, llama_tensor_get_type):
//  - output.weight (token_embd.weight when the embeddings are tied, which then serves as both):
//    Q6_K, or Q8_0 when its rows are not whole blocks of the file's main type;
//  - q4_k_m: attn_v and ffn_down get Q6_K in the layers use_more_bits picks (the first and
//    last eighth of the layers and every third one between), the rest Q4_K;
//  - q5_k_m: the same layers' attn_v and ffn_down get Q6_K, the rest Q5_K;
//  - q3_k_m: attn_v gets Q5_K in layers 0 and 1 and Q4_K after; ffn_down Q5_K in the first
//    sixteenth of the layers and Q4_K after; attn_output Q4_K; the rest Q3_K;
//  - then rows that are not whole blocks fall back: Q4_K → Q5_0, Q5_K → Q5_1, Q2_K and Q3_K →
//    Q4_0, Q6_K → Q8_0, and to F16 where even that does not fit. (llama-quantize has no fallback
//    for Q4_0 and Q8_0 and refuses such a model; here they fall back to F16 as
//    convert_hf_to_gguf.py's q8_0 does.)
import { DTYPE_LAYOUT, type DType } from '../quant/dtype.js';
import { CONVERT_TYPES, type ConvertType } from './file-types.js';

export interface PlannedTensor {
  name: string;
  /** Outermost first. */
  shape: readonly number[];
}

/** llama-quantize's use_more_bits: which layers of n get more bits in the _M mixes. */
export function useMoreBits(layer: number, nLayers: number): boolean {
  const eighth = Math.trunc(nLayers / 8);
  return layer < eighth || layer >= Math.trunc((7 * nLayers) / 8) || (layer - eighth) % 3 === 2;
}

function fits(dtype: DType, rowLength: number): boolean {
  return rowLength % DTYPE_LAYOUT[dtype].blockSize === 0;
}

/** llama-quantize's tensor_type_fallback for rows that are not whole super-blocks. */
const KQUANT_FALLBACK: Partial<Record<DType, DType>> = { Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q6_K: 'Q8_0' };

/** llama-quantize's tensor_type_fallback, with F16 for the types it has none for. */
function fallback(dtype: DType, rowLength: number): DType {
  if (fits(dtype, rowLength)) return dtype;
  const next: DType = KQUANT_FALLBACK[dtype] ?? 'F16';
  return fits(next, rowLength) ? next : 'F16';
}

/**
 * The stored type of every tensor in `tensors` (the tensors the file will hold, so whether
 * output.weight is among them decides what token_embd.weight gets).
 */
export function tensorTypes(tensors: readonly PlannedTensor[], type: ConvertType, nLayers: number): Map<string, DType> {
  const main: DType = CONVERT_TYPES[type].dtype;
  const hasOutput = tensors.some((t) => t.name === 'output.weight');
  const out = new Map<string, DType>();
  for (const t of tensors) {
    const rowLength = t.shape[t.shape.length - 1]!;
    let dtype: DType;
    if (t.shape.length < 2) {
      dtype = 'F32';
    } else if (type === 'f32' || type === 'f16' || type === 'bf16' || type === 'q8_0') {
      dtype = fallback(main, rowLength);
    } else {
      dtype = main;
      const layer = /^blk\.(\d+)\./.exec(t.name);
      if (t.name === 'output.weight' || (!hasOutput && t.name === 'token_embd.weight')) {
        dtype = fits(main, rowLength) ? 'Q6_K' : 'Q8_0';
      } else if ((type === 'q4_k_m' || type === 'q5_k_m') && layer && /\.(attn_v|ffn_down)\.weight$/.test(t.name) && useMoreBits(Number(layer[1]), nLayers)) {
        dtype = 'Q6_K';
      } else if (type === 'q3_k_m' && layer) {
        const i = Number(layer[1]);
        if (/\.attn_v\.weight$/.test(t.name)) dtype = i < 2 ? 'Q5_K' : 'Q4_K';
        else if (/\.ffn_down\.weight$/.test(t.name)) dtype = i < Math.trunc(nLayers / 16) ? 'Q5_K' : 'Q4_K';
        else if (/\.attn_output\.weight$/.test(t.name)) dtype = 'Q4_K';
      }
      dtype = fallback(dtype, rowLength);
    }
    out.set(t.name, dtype);
  }
  return out;
}
