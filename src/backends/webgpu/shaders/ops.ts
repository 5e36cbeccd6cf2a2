// WGSL for the ops other than matrix products. Every kernel reads its sizes from a uniform `p`;
// per-step integers and floats (token ids, positions, slots, rope angles) come from the step's
// arena `A` (array<u32>, written once per submit) at word offsets given in `p`. Grids over 65535
// workgroups go 2-D: the linear workgroup index is wid.y · p.gridX + wid.x.

const ARENA = /* wgsl */ `@group(0) @binding(1) var<storage, read> A: array<u32>;\n`;

/**
 * tanh whose argument is clamped to ±10 first (tanh(10) rounds to 1 in f32): a driver may compute
 * WGSL's tanh from exponentials that overflow to inf/inf = NaN for large arguments.
 */
const TANH = /* wgsl */ `fn tanhClamped(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }\n`;

/** out[i, :] = table[tokens[i], :] · scale for the tokens that fall in this part's rows [r0, r0 + n). */
export function embedShader(reader: string): string {
  return /* wgsl */ `
struct P { n: u32, k: u32, aux: u32, r0: u32, tokens: u32, nTok: u32, dim: u32, gridX: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${ARENA}
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
${reader}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let groups = p.k >> 3u;
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.nTok * groups) { return; }
  let t = i / groups; let g = i % groups;
  let id = A[p.tokens + t];
  if (id < p.r0 || id >= p.r0 + p.n) { return; }
  let w = load8(id - p.r0, g);
  let v = array<f32, 8>(w.a.x, w.a.y, w.a.z, w.a.w, w.b.x, w.b.y, w.b.z, w.b.w);
  for (var j = 0u; j < 8u; j++) {
    let e = 8u * g + j;
    if (e < p.dim) { O[t * p.dim + e] = v[j] * p.scale; }
  }
}
`;
}

/**
 * out[r, :] = x[r, :] / rms(x[r, :]) · w; a workgroup per row, a fixed-order tree sum. A per-group
 * norm (a weight shorter than x's rows) runs as rows of the weight's length (f32-ops normRows).
 */
export const RMS_NORM = /* wgsl */ `
struct P { rows: u32, cols: u32, eps: f32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> Wn: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.y * p.gridX + wid.x;
  if (r >= p.rows) { return; } // uniform across the workgroup
  let base = r * p.cols;
  var ss = 0.0;
  for (var i = lid.x; i < p.cols; i += 256u) { let v = X[base + i]; ss = ss + v * v; }
  red[lid.x] = ss;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] = red[lid.x] + red[lid.x + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
  for (var i = lid.x; i < p.cols; i += 256u) { O[base + i] = X[base + i] * inv * Wn[i]; }
}
`;

/**
 * Rotates head pairs in place by the angles the host computed (cos, sin per token and pair, in
 * the arena at p.table), within the first p.dims of each head: interleaved pairs (2i, 2i+1) or
 * halves (i, i + dims/2).
 */
export const ROPE = /* wgsl */ `
struct P { rows: u32, cols: u32, nHeads: u32, headDim: u32, dims: u32, interleaved: u32, table: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${ARENA}
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // One invocation per rotated pair; the dims of a head after p.dims are left as they are.
  let half = p.dims >> 1u;
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.rows * p.nHeads * half) { return; }
  let pair = i % half; let h = (i / half) % p.nHeads; let t = i / (half * p.nHeads);
  let at = p.table + 2u * (t * half + pair);
  let c = bitcast<f32>(A[at]); let s = bitcast<f32>(A[at + 1u]);
  let base = t * p.cols + h * p.headDim;
  var a = base + pair; var b = a + half;
  if (p.interleaved != 0u) { a = base + 2u * pair; b = a + 1u; }
  let x0 = X[a]; let x1 = X[b];
  X[a] = x0 * c - x1 * s;
  X[b] = x0 * s + x1 * c;
}
`;

/** Writes each token's k and v rows into the layer's cache at (slot, position). */
export const STORE_KV = /* wgsl */ `
struct P { nTok: u32, kvDim: u32, ctxLen: u32, positions: u32, seqs: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${ARENA}
@group(0) @binding(2) var<storage, read> K: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> KC: array<f32>;
@group(0) @binding(5) var<storage, read_write> VC: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.nTok * p.kvDim) { return; }
  let t = i / p.kvDim; let j = i % p.kvDim;
  let dst = (A[p.seqs + t] * p.ctxLen + A[p.positions + t]) * p.kvDim + j;
  KC[dst] = K[i];
  VC[dst] = V[i];
}
`;

export const ATTENTION_MAX_HEAD_DIM = 256;

/**
 * Causal attention of one (token, head) per workgroup over its own sequence (the last `window`
 * positions when window > 0), in chunks of 256 positions with a running max and sum (online
 * softmax); thread d accumulates output dims d, d + 64, d + 128, d + 192.
 */
export const ATTENTION = /* wgsl */ `
struct P {
  nTok: u32, nHeads: u32, nKVHeads: u32, headDim: u32, ctxLen: u32, window: u32, scale: f32,
  positions: u32, seqs: u32, gridX: u32, softcap: f32,
}
@group(0) @binding(0) var<uniform> p: P;
${ARENA}
@group(0) @binding(2) var<storage, read> Q: array<f32>;
@group(0) @binding(3) var<storage, read> KC: array<f32>;
@group(0) @binding(4) var<storage, read> VC: array<f32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
const WG = 64u;
const CHUNK = 256u;
var<workgroup> qs: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> sc: array<f32, 256>;
var<workgroup> red: array<f32, 64>;

${TANH}
fn reduceMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn reduceSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lidv: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lidv.x;
  let item = wid.y * p.gridX + wid.x;
  if (item >= p.nTok * p.nHeads) { return; } // uniform across the workgroup
  let t = item / p.nHeads; let h = item % p.nHeads;
  let hd = p.headDim;
  let kvDim = p.nKVHeads * hd;
  let kvHead = (h / (p.nHeads / p.nKVHeads)) * hd;
  let pos = A[p.positions + t];
  let slot = A[p.seqs + t] * p.ctxLen;
  var first = 0u;
  if (p.window > 0u && pos + 1u > p.window) { first = pos + 1u - p.window; }
  let qBase = t * p.nHeads * hd + h * hd;
  for (var i = lid; i < hd; i += WG) { qs[i] = Q[qBase + i]; }
  workgroupBarrier();

  var m = -3.0e38; // running max (finite, so the first rescale is exp(-huge) = 0)
  var l = 0.0;     // running sum of exp(score - m)
  var acc = vec4<f32>(0.0);
  for (var c0 = first; c0 <= pos; c0 += CHUNK) {
    let cn = min(CHUNK, pos + 1u - c0);
    var localMax = -3.0e38;
    for (var i = lid; i < cn; i += WG) {
      let kBase = (slot + c0 + i) * kvDim + kvHead;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) { dot = dot + qs[d] * KC[kBase + d]; }
      var s = dot * p.scale;
      if (p.softcap > 0.0) { s = p.softcap * tanhClamped(s / p.softcap); }
      sc[i] = s;
      localMax = max(localMax, s);
    }
    let newM = max(m, reduceMax(localMax, lid));
    let corr = exp(m - newM);
    var localSum = 0.0;
    for (var i = lid; i < cn; i += WG) { let e = exp(sc[i] - newM); sc[i] = e; localSum = localSum + e; }
    l = l * corr + reduceSum(localSum, lid); // (its barriers also publish sc)
    acc = acc * corr;
    for (var j = 0u; j < 4u; j++) {
      let d = lid + WG * j;
      if (d < hd) {
        var a = 0.0;
        for (var i = 0u; i < cn; i++) { a = a + sc[i] * VC[(slot + c0 + i) * kvDim + kvHead + d]; }
        acc[j] = acc[j] + a;
      }
    }
    m = newM;
    workgroupBarrier(); // before the next chunk overwrites sc
  }
  for (var j = 0u; j < 4u; j++) {
    let d = lid + WG * j;
    if (d < hd) { O[qBase + d] = acc[j] / l; }
  }
}
`;

/** out = silu(gate) · up; `inPlace` reads gate from out (out aliases gate). */
export function siluMulShader(inPlace: boolean): string {
  return /* wgsl */ `
struct P { count: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${inPlace ? '' : '@group(0) @binding(2) var<storage, read> G: array<f32>;'}
@group(0) @binding(3) var<storage, read> U: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.count) { return; }
  let g = ${inPlace ? 'O' : 'G'}[i];
  O[i] = g / (1.0 + exp(-g)) * U[i];
}
`;
}

/** out = gelu(gate) · up (tanh approximation); `inPlace` reads gate from out (out aliases gate). */
export function geluMulShader(inPlace: boolean): string {
  return /* wgsl */ `
struct P { count: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${inPlace ? '' : '@group(0) @binding(2) var<storage, read> G: array<f32>;'}
@group(0) @binding(3) var<storage, read> U: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
${TANH}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.count) { return; }
  let x = ${inPlace ? 'O' : 'G'}[i];
  O[i] = 0.5 * x * (1.0 + tanhClamped(0.7978845608028654 * (x + 0.044715 * x * x * x))) * U[i];
}
`;
}

/** x = cap · tanh(x / cap) in place. */
export const SOFTCAP = /* wgsl */ `
struct P { count: u32, cap: f32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
${TANH}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.count) { return; }
  X[i] = p.cap * tanhClamped(X[i] / p.cap);
}
`;

/** out = a + b; `inPlace` reads a from out (out aliases a). */
export function addShader(inPlace: boolean): string {
  return /* wgsl */ `
struct P { count: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${inPlace ? '' : '@group(0) @binding(2) var<storage, read> X: array<f32>;'}
@group(0) @binding(3) var<storage, read> Y: array<f32>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.count) { return; }
  O[i] = ${inPlace ? 'O' : 'X'}[i] + Y[i];
}
`;
}

/** out[i, :] = x[rows[i], :] */
export const GATHER_ROWS = /* wgsl */ `
struct P { nRows: u32, cols: u32, rows: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
${ARENA}
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i >= p.nRows * p.cols) { return; }
  let r = i / p.cols; let c = i % p.cols;
  O[i] = X[A[p.rows + r] * p.cols + c];
}
`;

/** Copies `count` floats from word `src` to word `dst` of one buffer (ranges that do not overlap). */
export const COPY_WITHIN = /* wgsl */ `
struct P { src: u32, dst: u32, count: u32, gridX: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(2) var<storage, read_write> X: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * p.gridX * 64u + gid.x;
  if (i < p.count) { X[p.dst + i] = X[p.src + i]; }
}
`;
