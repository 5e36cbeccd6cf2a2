// The scale searches of ggml's reference K-quant quantizers (quantize_row_q{2,3,5}_K_ref in
// ggml-quants.c: make_qkx2_quants for the types with a min, make_q3_quants for Q3_K), computed in
// f32 step by step as the C code does (every operation rounded with Math.fround, its order kept),
// so the bytes come out as llama.cpp's own quantizer writes them (test/kquants-235.test.ts checks
// them against the quantize_row_*_ref of the libggml-base that node-llama-cpp ships, built without
// fused multiply-adds, which would round a·b + c once where this rounds twice).

const f = Math.fround;

/** ggml's nearest_int: round to nearest, ties to even (the 1.5·2^23 trick), for |v| < 2^22. */
export function nearestInt(v: number): number {
  return f(f(v) + 12582912) - 12582912;
}

/**
 * make_qkx2_quants: the scale and min (x ≈ scale·L − min, L in 0..nmax, min ≥ 0) of the n values
 * at x, with weighted error (squared, or absolute when `useMad`) over nstep + 1 trial scales
 * (nmax + rmin + rdelta·is over max − the best min so far), each refit by weighted least squares. L (length n)
 * receives the chosen levels; laux is scratch of length n.
 */
export function makeQkx2Quants(
  x: Float32Array, weights: Float32Array, nmax: number, L: Uint8Array, laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): { scale: number; min: number } {
  const n = x.length;
  let min = x[0]!, max = x[0]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[0]!);
  for (let i = 1; i < n; i++) {
    const v = x[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, 0, n);
    return { scale: 0, min: -min };
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(f(iscale * f(x[i]! - min)));
    L[i] = l < 0 ? 0 : l > nmax ? nmax : l;
    let diff = f(f(f(scale * L[i]!) + min) - x[i]!);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestError = f(bestError + f(weights[i]! * diff));
  }
  if (nstep < 1) return { scale, min: -min };
  const fRmin = f(rmin), fRdelta = f(rdelta);
  for (let is = 0; is <= nstep; is++) {
    // As in ggml, later trials measure from the best fit's min so far, not the data's.
    iscale = f(f(f(fRmin + f(fRdelta * is)) + nmax) / f(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * f(x[i]! - min)));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      laux[i] = l;
      const w = weights[i]!, wl = f(w * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * laux[i]!) + thisMin) - x[i]!);
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        err = f(err + f(weights[i]! * diff));
      }
      if (err < bestError) {
        L.set(laux.subarray(0, n));
        bestError = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}

/** ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it quantizes to zeros. */
const GROUP_MAX_EPS = f(1e-15);

/**
 * make_q3_quants with do_rmse: the signed scale of the n values at x for levels −nmax..nmax−1
 * (the largest magnitude mapped to −nmax), then up to 5 passes moving single levels where that
 * raises the x²-weighted fit. L receives the levels plus nmax (0..2·nmax−1).
 */
export function makeQ3Quants(x: Float32Array, nmax: number, L: Int8Array): number {
  const n = x.length;
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[i]!);
    if (ax > amax) { amax = ax; max = x[i]!; }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(f(iscale * x[i]!));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[i] = l;
    const w = f(x[i]! * x[i]!);
    sumlx = f(sumlx + f(f(w * x[i]!) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i]!, w = f(v * v), li = L[i]!;
      let slx = f(sumlx - f(f(w * v) * li));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * li) * li));
        let nl = nearestInt(f(f(v * sl2) / slx));
        nl = Math.max(-nmax, Math.min(nmax - 1, nl));
        if (nl !== li) {
          slx = f(slx + f(f(w * v) * nl));
          sl2 = f(sl2 + f(f(w * nl) * nl));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = nl; sumlx = slx; suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[i] = L[i]! + nmax;
  return f(sumlx / suml2);
}
