// The ops Gemma added, checked the same way on every backend against the reference: GELU(tanh)·up
// (in place as the graph runs it, and not; gates large enough to reach tanh's flat ends), soft-capping
// in place, embedding rows scaled by √dim, and attention whose scores are soft-capped (with and
// without a sliding window, mixed sequences, prefill then decode).
import type { AttentionParams, Backend } from '../../src/backends/backend.js';
import { ReferenceBackend } from '../../src/backends/reference/reference-backend.js';
import { activations, assertClose, attentionSteps } from './backend-ops.js';

export async function assertGemmaOpsMatchReference(be: Backend, random: (n: number) => Float32Array): Promise<void> {
  const ref = new ReferenceBackend();
  for (const [rows, cols] of [[1, 7], [3, 64], [9, 300]] as const) {
    const x = random(rows * cols), g = random(rows * cols).map((v, i) => (i % 5 === 0 ? v * 60 : i % 7 === 0 ? v * 4 : v));
    const gelu = async (b: Backend) => {
      const gate = activations(b, rows, cols, g);
      b.geluMul(gate, gate, activations(b, rows, cols, x)); // in place, as the graph does
      const o = b.createActivations(rows, cols);
      b.geluMul(o, activations(b, rows, cols, x), gate);
      return b.read(o);
    };
    assertClose(await gelu(be), await gelu(ref), 1e-5, `gelu·up [${rows}, ${cols}]`);
    const cap = async (b: Backend) => {
      const a = activations(b, rows, cols, g);
      b.softcap(a, 5);
      return b.read(a);
    };
    const capped = await cap(ref);
    assertClose(await cap(be), capped, 1e-5, `softcap [${rows}, ${cols}]`);
    if (capped.some((v) => Math.abs(v) > 5)) throw new Error('softcap: a value passed the cap');
  }
  const [n, k] = [9, 37];
  const table = random(n * k);
  const embed = async (b: Backend) => {
    const w = b.loadWeight({ name: 'token_embd.weight', dtype: 'F32', shape: [n, k], byteLength: 4 * n * k }, new Uint8Array(table.buffer.slice(0)));
    const o = b.createActivations(4, k);
    b.embed(o, w, Int32Array.of(8, 0, 3, 3), Math.sqrt(2304));
    return b.read(o);
  };
  assertClose(await embed(be), await embed(ref), 1e-6, 'embed × √dim');

  const prefill = { seqs: [0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2], positions: [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3] };
  const decode = { seqs: [2, 0], positions: [4, 7] };
  for (const p of [
    { nHeads: 4, nKVHeads: 2, headDim: 8, scale: 1.5, softcap: 2 },
    { nHeads: 4, nKVHeads: 2, headDim: 16, scale: 2, softcap: 1, slidingWindow: 3 },
  ] as AttentionParams[]) {
    const steps = [prefill, decode].map(({ seqs, positions }) => ({
      batch: { seqs: Int32Array.from(seqs), positions: Int32Array.from(positions) },
      q: random(seqs.length * p.nHeads * p.headDim), k: random(seqs.length * p.nKVHeads * p.headDim),
      v: random(seqs.length * p.nKVHeads * p.headDim),
    }));
    const expected = await attentionSteps(ref, p, steps);
    const actual = await attentionSteps(be, p, steps);
    const uncapped = await attentionSteps(ref, { ...p, softcap: undefined }, steps);
    for (let i = 0; i < steps.length; i++) {
      assertClose(actual[i]!, expected[i]!, 1e-5, `attention softcap ${p.softcap}${p.slidingWindow ? ` window ${p.slidingWindow}` : ''} step ${i + 1}`);
      if (uncapped[i]!.every((v, j) => Math.abs(v - expected[i]![j]!) < 1e-3)) throw new Error('the attention softcap changes nothing here');
    }
  }
}
