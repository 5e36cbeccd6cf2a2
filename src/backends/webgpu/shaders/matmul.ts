// WGSL for matrix products out[t, n] = Σ_k x[t, k] · w[n, k] (+ bias[n]), for a weight of any
// dtype (its `load8` comes from weight-layout.ts), in two kernels:
//   - matvec: decode (a few tokens). A workgroup takes ROWS weight rows; 32 lanes split each
//     row's k, decode its weights in registers once and dot them with every token.
//   - gemm: prefill and large batches. A workgroup computes a 64-row × 64-token tile; k is walked
//     in tiles of 16 elements, the weight tile decoded once into workgroup memory.
// Both add up each output in the same order, so a token's result does not depend on which kernel
// (that is, how large a batch) computed it: k is cut into groups of 8, each group's products
// summed as dot(a) + dot(b); the groups into LANES contiguous runs (run L = groups
// [L·G/LANES, (L+1)·G/LANES)), each run summed from 0 in order; the runs then summed in order,
// and the bias added last.


const UNIFORM = /* wgsl */ `
struct P {
  n: u32,          // weight rows in this part (outputs)
  k: u32,          // stored elements per weight row (a multiple of 8)
  t: u32,          // tokens
  kx: u32,         // elements per x row (k before padding)
  outStride: u32,  // columns of out (all parts)
  outOffset: u32,  // first column of out this part writes
  aux: u32,        // dtype-specific (weight-layout.ts)
  hasBias: u32,
  gridX: u32,      // workgroups along x (grids over 65535 go 2-D)
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> X: array<f32>;
@group(0) @binding(4) var<storage, read> B: array<f32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
const LANES = 32u;

// Elements 8g .. 8g+7 of x row t (zero beyond kx).
fn loadX(t: u32, g: u32) -> W8 {
  let base = t * p.kx;
  var v: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) {
    let e = 8u * g + j;
    v[j] = select(0.0, X[base + min(e, p.kx - 1u)], e < p.kx);
  }
  return W8(vec4<f32>(v[0], v[1], v[2], v[3]), vec4<f32>(v[4], v[5], v[6], v[7]));
}

fn groupDot(w: W8, x: W8) -> f32 { return dot(w.a, x.a) + dot(w.b, x.b); }

// First group of run L (runs of nearly equal length over G groups).
fn runStart(L: u32, G: u32) -> u32 { return (L * G) / LANES; }

fn store(t: u32, row: u32, total: f32) {
  var s = total;
  if (p.hasBias != 0u) { s = s + B[p.outOffset + row]; }
  O[t * p.outStride + p.outOffset + row] = s;
}
`;

export const MATVEC_ROWS = 4;
export const MATVEC_TOKENS = 8;

/** Matvec: workgroups of (32 lanes, ROWS rows); grid (rows / ROWS, 2-D if needed) × ceil(t / TOKENS). */
export function matvecShader(reader: string): string {
  return UNIFORM + reader + /* wgsl */ `
const ROWS = ${MATVEC_ROWS}u;
const TOKENS = ${MATVEC_TOKENS}u;
var<workgroup> partial: array<f32, ${MATVEC_ROWS * MATVEC_TOKENS * 32}>;

@compute @workgroup_size(32, ${MATVEC_ROWS}, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lane = lid.x;
  let row = (wid.y * p.gridX + wid.x) * ROWS + lid.y;
  let t0 = wid.z * TOKENS;
  let nt = min(TOKENS, p.t - t0);
  let G = p.k >> 3u;
  var acc: array<f32, ${MATVEC_TOKENS}>;
  for (var t = 0u; t < TOKENS; t++) { acc[t] = 0.0; }
  if (row < p.n) {
    let end = runStart(lane + 1u, G);
    for (var g = runStart(lane, G); g < end; g++) {
      let w = load8(row, g);
      for (var t = 0u; t < nt; t++) { acc[t] = acc[t] + groupDot(w, loadX(t0 + t, g)); }
    }
  }
  for (var t = 0u; t < TOKENS; t++) { partial[(lid.y * TOKENS + t) * LANES + lane] = acc[t]; }
  workgroupBarrier();
  if (row < p.n && lane < nt) { // lane t adds up token t's runs, in order
    var total = 0.0;
    for (var L = 0u; L < LANES; L++) { total = total + partial[(lid.y * TOKENS + lane) * LANES + L]; }
    store(t0 + lane, row, total);
  }
}
`;
}

export const GEMM_TILE_ROWS = 64;
export const GEMM_TILE_TOKENS = 64;

/** Gemm: workgroups of 16×16 threads, each 4 rows × 4 tokens of a 64×64 tile; grid (rows/64, 2-D if needed) × tokens/64. */
export function gemmShader(reader: string): string {
  return UNIFORM + reader + /* wgsl */ `
const KT = 2u; // groups of 8 per k tile
var<workgroup> Ws: array<W8, ${GEMM_TILE_ROWS * 2}>;   // [64 rows][KT groups]
var<workgroup> Xs: array<W8, ${GEMM_TILE_TOKENS * 2}>; // [64 tokens][KT groups]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = (wid.y * p.gridX + wid.x) * 64u;
  let tok0 = wid.z * 64u;
  let G = p.k >> 3u;
  var run: array<f32, 16>;   // the current run's sum, [4 rows][4 tokens]
  var total: array<f32, 16>; // finished runs
  for (var i = 0u; i < 16u; i++) { run[i] = 0.0; total[i] = 0.0; }
  var lane = 0u;
  var runEnd = runStart(1u, G);
  // Runs that are empty (G < LANES) end before the first group.
  loop {
    if (lane >= LANES || runEnd > 0u) { break; }
    lane++; runEnd = runStart(lane + 1u, G);
  }
  for (var g0 = 0u; g0 < G; g0 += KT) {
    // Load the tiles: threads 0..127 decode weight groups, 128..255 read x groups.
    let r = (li & 127u) >> 1u; let gi = li & 1u; let g = g0 + gi;
    if (li < 128u) {
      var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
      if (row0 + r < p.n && g < G) { w = load8(row0 + r, g); }
      Ws[r * KT + gi] = w;
    } else {
      var x = W8(vec4<f32>(0.0), vec4<f32>(0.0));
      if (tok0 + r < p.t && g < G) { x = loadX(tok0 + r, g); }
      Xs[r * KT + gi] = x;
    }
    workgroupBarrier();
    for (var j = 0u; j < KT; j++) {
      if (g0 + j >= G) { break; }
      for (var a = 0u; a < 4u; a++) {
        for (var b = 0u; b < 4u; b++) {
          let i = a * 4u + b;
          run[i] = run[i] + groupDot(Ws[(lid.y + 16u * a) * KT + j], Xs[(lid.x + 16u * b) * KT + j]);
        }
      }
      // The end of a run (and of any empty runs after it): fold it into the totals.
      loop {
        if (g0 + j + 1u != runEnd) { break; }
        for (var i = 0u; i < 16u; i++) { total[i] = total[i] + run[i]; run[i] = 0.0; }
        lane++;
        if (lane >= LANES) { break; }
        runEnd = runStart(lane + 1u, G);
      }
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    for (var b = 0u; b < 4u; b++) {
      let row = row0 + lid.y + 16u * a; let t = tok0 + lid.x + 16u * b;
      if (row < p.n && t < p.t) { store(t, row, total[a * 4u + b]); }
    }
  }
}
`;
}
