// How RoPE shapes what a GGUF file stores, as llama.cpp's converter lays it out: Llama's Q and K
// rows reordered for interleaved RoPE, and Llama 3's frequency scaling as a tensor of divisors.

/**
 * Q and K rows as convert_hf_to_gguf.py stores them for Llama: within each head, HF row
 * (half·d/2 + i) moves to row (2i + half), so that interleaved RoPE on the GGUF weights equals
 * HF's rotate_half RoPE on the original ones. `shape` is [rows] (a bias) or [rows, cols].
 */
export function permuteForGGUF(data: Float32Array, shape: readonly number[], nHeads: number): Float32Array {
  const rows = shape[0]!, cols = shape.length > 1 ? shape[1]! : 1;
  const headDim = rows / nHeads, half = headDim / 2;
  if (!Number.isInteger(half) || data.length !== rows * cols) {
    throw new RangeError(`permuteForGGUF: [${shape.join(', ')}] is not ${nHeads} heads of an even size`);
  }
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let part = 0; part < 2; part++) {
        const src = (h * headDim + part * half + i) * cols;
        const dst = (h * headDim + 2 * i + part) * cols;
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContextLength: number;
}

/**
 * The per-pair divisors convert_hf_to_gguf.py stores as rope_freqs.weight for Llama 3 scaling:
 * 1 for short wavelengths, `factor` for long ones, a blend in between. Every step is rounded to
 * f32, as the converter's torch code computes it, so the band borders fall where they fall there.
 */
export function llama3RopeFactors(headDim: number, theta: number, s: Llama3RopeScaling): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const freq = f(1 / f(Math.pow(theta, f(f(2 * i) / headDim))));
    const wavelen = f(f(2 * Math.PI) / freq);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = f(f(f(s.originalContextLength / wavelen) - s.lowFreqFactor) / f(s.highFreqFactor - s.lowFreqFactor));
      out[i] = f(1 / f(f(f(1 - smooth) / s.factor) + smooth));
    }
  }
  return out;
}
