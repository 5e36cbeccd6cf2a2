// What the runtime does with the relaxed-SIMD instructions the kernels use, for kernel-module.ts
// to check before it picks build/kernels-relaxed.wasm (the plain build answers too, unfused).
// Relaxed instructions may differ between engines and CPUs by design (a multiply-add fused or
// not), and flagged engine versions have had outright wrong ones, so the choice rests on results
// from known inputs, not on feature detection alone.
import { madd } from './common';

/**
 * out[0..3] = madd(c, a, b) per lane (the kernels' multiply-add), for three f32x4 a, b, c at `inputs`
 * (48 bytes, one after another), repeated `rounds` times so that a caller can make the runtime
 * optimise this function and compare the answer of its first compiler with that of its second.
 * Reads its inputs from memory so that the optimiser cannot fold the instruction away.
 */
export function relaxedSelfTest(inputs: usize, out: usize, rounds: i32): void {
  for (let i = 0; i < rounds; i++) {
    const a = v128.load(inputs), b = v128.load(inputs, 16), c = v128.load(inputs, 32);
    v128.store(out, madd(c, a, b));
  }
}
