// llama2.c checkpoints: the stories260K fixture (legacy v0), small v0/v1 files written here in
// export.py's order, and bad headers / sizes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openLlama2c, type Llama2cConfig } from '../src/formats/llama2c.js';
import { FormatError } from '../src/formats/tensor.js';
import { FIXTURES, fixturesSkip } from './helpers/fixtures.js';

const stories = path.join(FIXTURES, 'llama2c', 'stories260K.bin');

const tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'minerva-llama2c-'));
after(() => rm(tmpRoot, { recursive: true, force: true }));
let counter = 0;
const tmpFile = () => path.join(tmpRoot, `model-${counter++}.bin`);

function f32FromBytes(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

test('stories260K.bin (legacy v0): header, tensor names and shapes, plausible weights', { skip: fixturesSkip }, async () => {
  const { config, provider } = await openLlama2c(stories);
  try {
    assert.deepEqual(config, {
      dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKVHeads: 4, vocabSize: 512, seqLen: 512,
      sharedClassifier: true, version: 0,
    });
    assert.equal(provider.source, stories);
    assert.equal(provider.tensors.size, 2 + 5 * 9); // embedding, final norm, 9 per layer; no output.weight
    const shapes: Record<string, number[]> = {
      'token_embd.weight': [512, 64], 'output_norm.weight': [64],
      'blk.4.attn_norm.weight': [64], 'blk.4.attn_q.weight': [64, 64], 'blk.4.attn_k.weight': [32, 64],
      'blk.4.attn_v.weight': [32, 64], 'blk.4.attn_output.weight': [64, 64], 'blk.4.ffn_norm.weight': [64],
      'blk.4.ffn_gate.weight': [172, 64], 'blk.4.ffn_down.weight': [64, 172], 'blk.4.ffn_up.weight': [172, 64],
    };
    for (const [name, shape] of Object.entries(shapes)) {
      const info = provider.tensors.get(name);
      assert.ok(info, name);
      assert.deepEqual([...info.shape], shape, name);
      assert.equal(info.dtype, 'F32');
      assert.equal(info.byteLength, shape.reduce((a, b) => a * b, 1) * 4);
    }
    assert.equal(provider.tensors.has('output.weight'), false);

    // RMSNorm gains of a trained model: finite, positive, around 1.
    for (const name of ['blk.0.attn_norm.weight', 'blk.4.ffn_norm.weight', 'output_norm.weight']) {
      const g = f32FromBytes(await provider.read(name));
      assert.ok(g.every((v) => Number.isFinite(v) && v > 0.1 && v < 10), name);
    }
    const emb = f32FromBytes(await provider.read('token_embd.weight'));
    assert.ok(emb.every((v) => Number.isFinite(v) && Math.abs(v) < 10));

    // Cross-check the layout against run.c's pointer arithmetic: output_norm.weight ends where
    // freq_cis_real begins, whose row t is cos(t · 10000^(-2i/head_size)).
    const L = 5, dim = 64, hidden = 172, kvDim = 32, vocab = 512, headSize = 8;
    const floatsBefore = vocab * dim + L * dim + L * dim * dim + 2 * L * kvDim * dim + L * dim * dim + L * dim
      + 3 * L * hidden * dim + dim;
    const fh = await open(stories, 'r');
    try {
      const raw = new Uint8Array((dim + 2 * headSize / 2) * 4);
      await fh.read(raw, 0, raw.length, 28 + (floatsBefore - dim) * 4);
      const tail = f32FromBytes(raw);
      assert.deepEqual(tail.subarray(0, dim), f32FromBytes(await provider.read('output_norm.weight')));
      const freqRow0 = tail.subarray(dim, dim + 4), freqRow1 = tail.subarray(dim + 4);
      assert.deepEqual([...freqRow0], [1, 1, 1, 1]);
      freqRow1.forEach((v, i) => assert.ok(Math.abs(v - Math.cos(10000 ** (-2 * i / headSize))) < 1e-6));
    } finally {
      await fh.close();
    }
  } finally {
    await provider.close();
  }
});

/** Tensors of a checkpoint in one version's file order: [GGUF name or freq_cis label, length]. */
function fileOrder(c: Llama2cConfig): [string, number][] {
  const { dim, hiddenDim: hidden, vocabSize: vocab, nLayers: L } = c;
  const kvDim = (dim / c.nHeads) * c.nKVHeads;
  const perLayer = (kind: string, n: number) => Array.from({ length: L }, (_, i) => [`blk.${i}.${kind}.weight`, n] as [string, number]);
  const q = perLayer('attn_q', dim * dim), k = perLayer('attn_k', kvDim * dim), v = perLayer('attn_v', kvDim * dim);
  const o = perLayer('attn_output', dim * dim);
  const w1 = perLayer('ffn_gate', hidden * dim), w2 = perLayer('ffn_down', dim * hidden), w3 = perLayer('ffn_up', hidden * dim);
  const cls: [string, number][] = c.sharedClassifier ? [] : [['output.weight', vocab * dim]];
  if (c.version === 0) {
    const freq = c.seqLen * (dim / c.nHeads) / 2;
    return [['token_embd.weight', vocab * dim], ...perLayer('attn_norm', dim), ...q, ...k, ...v, ...o,
      ...perLayer('ffn_norm', dim), ...w1, ...w2, ...w3, ['output_norm.weight', dim],
      ['freq_cis_real', freq], ['freq_cis_imag', freq], ...cls];
  }
  return [...perLayer('attn_norm', dim), ...perLayer('ffn_norm', dim), ['output_norm.weight', dim],
    ['token_embd.weight', vocab * dim], ...q, ...k, ...v, ...o, ...w1, ...w2, ...w3, ...cls];
}

/** Writes a checkpoint as export.py would; each tensor's values encode its position. */
async function writeCheckpoint(file: string, c: Llama2cConfig): Promise<Map<string, Float32Array>> {
  const params = [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKVHeads, c.vocabSize, c.seqLen];
  let header: Buffer;
  if (c.version === 0) {
    header = Buffer.alloc(28);
    params.forEach((p, i) => header.writeInt32LE(i === 5 && !c.sharedClassifier ? -p : p, i * 4));
  } else {
    header = Buffer.alloc(256);
    header.writeUInt32LE(0x616b3432, 0);
    header.writeInt32LE(1, 4);
    params.forEach((p, i) => header.writeInt32LE(p, 8 + i * 4));
    header.writeUInt8(c.sharedClassifier ? 1 : 0, 36);
  }
  const expected = new Map<string, Float32Array>();
  const parts: Uint8Array[] = [header];
  fileOrder(c).forEach(([name, n], t) => {
    const values = Float32Array.from({ length: n }, (_, i) => t + i / 4096);
    expected.set(name, values);
    parts.push(new Uint8Array(values.buffer));
  });
  await writeFile(file, Buffer.concat(parts));
  return expected;
}

const tiny: Llama2cConfig = {
  dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKVHeads: 2, vocabSize: 10, seqLen: 8,
  sharedClassifier: false, version: 1,
};

for (const variant of [
  { version: 1 as const, sharedClassifier: false }, { version: 1 as const, sharedClassifier: true },
  { version: 0 as const, sharedClassifier: false },
]) {
  test(`a v${variant.version} file (${variant.sharedClassifier ? 'shared' : 'separate'} classifier) written here reads back`, async () => {
    const config = { ...tiny, ...variant };
    const file = tmpFile();
    const expected = await writeCheckpoint(file, config);
    const opened = await openLlama2c(file);
    try {
      assert.deepEqual(opened.config, config);
      const names = [...expected.keys()].filter((n) => !n.startsWith('freq_cis'));
      assert.deepEqual([...opened.provider.tensors.keys()].sort(), names.sort());
      for (const name of names) {
        const bytes = await opened.provider.read(name);
        assert.equal(bytes.byteOffset % 8, 0);
        assert.deepEqual(f32FromBytes(bytes), expected.get(name), name);
      }
      assert.deepEqual([...opened.provider.tensors.get('blk.1.attn_k.weight')!.shape], [8, 16]);
      assert.deepEqual([...opened.provider.tensors.get('blk.1.ffn_down.weight')!.shape], [16, 24]);
    } finally {
      await opened.provider.close();
    }
    await assert.rejects(opened.provider.read('output_norm.weight'), /after close/);
  });
}

/** Expects opening `file` to fail with a FormatError naming it and matching `problem`. */
async function rejectsWith(file: string, problem: RegExp): Promise<void> {
  await assert.rejects(openLlama2c(file), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `"${e.message}" does not name ${file}`);
    assert.match(e.message, problem);
    return true;
  });
}

test('bad: truncated file or trailing bytes (sizes named)', async () => {
  const file = tmpFile();
  await writeCheckpoint(file, tiny);
  const fh = await open(file, 'r+');
  const { size } = await fh.stat();
  await fh.truncate(size - 4);
  await fh.close();
  await rejectsWith(file, new RegExp(`implies a file of ${size} bytes, but it has ${size - 4} \\(truncated\\?\\)`));

  const longer = tmpFile();
  await writeCheckpoint(longer, { ...tiny, version: 0, sharedClassifier: true });
  await writeFile(longer, new Uint8Array(8), { flag: 'a' });
  await rejectsWith(longer, /but it has \d+ \(trailing data/);

  const short = tmpFile();
  await writeFile(short, new Uint8Array(20));
  await rejectsWith(short, /20 bytes, too short for a llama2\.c header/);
});

test('bad: header nonsense', async () => {
  const header = (values: number[], magic = false) => {
    const b = Buffer.alloc(magic ? 256 : 28 + 64);
    values.forEach((v, i) => b.writeInt32LE(v, i * 4));
    return b;
  };
  const cases: [Buffer, RegExp][] = [
    [header([0, 24, 2, 4, 2, 10, 8]), /dim = 0 is not in 1\.\.65536/],
    [header([16, 24, -2, 4, 2, 10, 8]), /nLayers = -2/],
    [header([16, 24, 2, 4, 2, 10, 1e9]), /seqLen = 1000000000/],
    [header([16, 24, 2, 5, 5, 10, 8]), /dim 16 is not a multiple of n_heads 5/],
    [header([16, 24, 2, 4, 3, 10, 8]), /n_heads 4 is not a multiple of n_kv_heads 3/],
    [header([12, 24, 2, 4, 2, 10, 8]), /head size 3 is odd/],
    [Buffer.from('this is a text file, not a checkpoint at all'), /not a llama2\.c checkpoint/],
    [header([0x616b3432, 2, 16, 24, 2, 4, 2, 10, 8], true), /version 2 checkpoints \(int8 group-quantized\) are not supported/],
    [header([0x616b3432, 7, 16, 24, 2, 4, 2, 10, 8], true), /unknown llama2\.c checkpoint version 7/],
    [header([0x616b3432, 1, 16, 24, 2, 4, 2, -10, 8], true), /vocabSize = -10/],
    [header([0x616b3432, 1, 16, 24, 2, 4, 2, 10, 8, 0x0102]), /too short for a llama2\.c version 1 header/],
  ];
  const flagged = header([0x616b3432, 1, 16, 24, 2, 4, 2, 10, 8], true);
  flagged.writeUInt8(7, 36);
  cases.push([flagged, /shared-classifier flag is 7/]);
  for (const [bytes, problem] of cases) {
    const file = tmpFile();
    await writeFile(file, bytes);
    await rejectsWith(file, problem);
  }
});
