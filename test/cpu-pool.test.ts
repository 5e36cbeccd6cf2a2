// The cpu worker pool: a matvec split across threads equals the single-threaded kernel, and an
// idle pool sleeps instead of spinning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createKernelMemory, loadMatvecKernels } from '../src/backends/cpu/kernel-module.js';
import { WorkerPool } from '../src/backends/cpu/worker-pool.js';
import { Rng } from '../src/engine/rng.js';

test('a matvec split across 3 threads equals the single-threaded result, call after call', async () => {
  const memory = createKernelMemory(64);
  const pool = await WorkerPool.create(3, memory);
  try {
    const single = await loadMatvecKernels(memory);
    const rng = new Rng(9);
    for (const [n, k] of [[1, 16], [7, 33], [130, 96], [1000, 64]] as const) {
      const heap = new Float32Array(memory.buffer);
      const w = 0, x = n * k * 4, a = x + k * 4, b = a + n * 4;
      for (let i = 0; i < n * k + k; i++) heap[i] = rng.next() - 0.5;
      for (let rep = 0; rep < 20; rep++) pool.run('matmulF32', [w, x, a, k, n, 1], n);
      single.matvecF32(w, x, b, k, 0, n);
      assert.deepEqual(new Float32Array(memory.buffer, a, n), new Float32Array(memory.buffer, b, n), `[${n}, ${k}]`);
    }
  } finally {
    await pool.dispose();
  }
});

test('idle workers go to sleep, and wake for the next job', async () => {
  const memory = createKernelMemory(1);
  const pool = await WorkerPool.create(2, memory);
  try {
    pool.run('matmulF32', [0, 64, 128, 16, 4, 1], 4);
    await sleep(200);
    assert.ok(pool.allSleeping(), 'workers sleep when there is no work');
    pool.run('matmulF32', [0, 64, 128, 16, 8, 1], 8);
  } finally {
    await pool.dispose();
  }
  assert.throws(() => pool.run('matmulF32', [0, 0, 0, 1, 1, 1], 1), /disposed/);
});

test('chunks are claimed once each, and a thread holding an old job\'s tag claims nothing', async () => {
  const { CLAIM, jobTag, runChunks } = await import('../src/backends/cpu/worker-pool.js');
  const claims = new Int32Array(new SharedArrayBuffer(CLAIM.size * 4));
  Atomics.store(claims, CLAIM.next, jobTag(7) << 16);
  const rowsSeen: number[] = [];
  const record = (r0: number, r1: number) => { for (let r = r0; r < r1; r++) rowsSeen.push(r); };
  // A late worker of job 6 finds job 7's chunks and must leave them alone.
  assert.equal(runChunks(claims, jobTag(6), 50, 8, record, [], 0), undefined);
  assert.deepEqual(rowsSeen, []);
  // Job 7's threads take every row exactly once (the last chunk short), then find none left.
  runChunks(claims, jobTag(7), 50, 8, record, [], 0);
  runChunks(claims, jobTag(7), 50, 8, record, [], 0);
  assert.deepEqual(rowsSeen, Array.from({ length: 50 }, (_, i) => i));
  assert.equal(Atomics.load(claims, CLAIM.finished), 7);
  // A kernel that throws still finishes its chunk (the job must end) and the error is returned.
  Atomics.store(claims, CLAIM.finished, 0);
  Atomics.store(claims, CLAIM.next, jobTag(8) << 16);
  const error = runChunks(claims, jobTag(8), 12, 4, () => { throw new Error('trap'); }, [], 0);
  assert.match(String(error), /trap/);
  assert.equal(Atomics.load(claims, CLAIM.finished), 3);
});

test('a kernel that traps in the pool is reported, and the pool keeps working', async () => {
  const memory = createKernelMemory(1);
  const pool = await WorkerPool.create(2, memory);
  try {
    // Rows far beyond the memory: the kernel traps (out of bounds) in whichever thread runs them.
    assert.throws(() => pool.run('matmulF32', [0, 0, 1 << 30, 16, 4096, 1], 4096), /out of bounds|failed in a worker/);
    pool.run('matmulF32', [0, 64, 128, 16, 8, 1], 8);
  } finally {
    await pool.dispose();
  }
});
