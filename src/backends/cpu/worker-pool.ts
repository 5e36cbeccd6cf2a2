// A pool of worker threads running the wasm kernels over one shared memory. A job is a kernel and
// its arguments plus a range of rows; the rows are split between the workers and the calling
// thread, which does a share itself and returns when every share is done.
//
// Several memories: a wasm32 memory addresses 4 GiB, so larger models put weights in further
// memories ("shards"). Every thread holds one kernel instance per shard, and a job names the shard
// whose memory its pointers refer to.
//
// Dispatch: DESIGN.md measured 70–80 µs to wake a sleeping worker with Atomics.notify and ~0.5 µs
// for a spinning one, with ~150 matmuls per token. So a worker spins on its control word for a
// short while after each job (the next matmul usually follows within microseconds) and only then
// sleeps in Atomics.wait; an idle pool costs no CPU.
import { Worker } from 'node:worker_threads';
import { instantiateKernels } from './kernel-module.js';
import { compileKernels, loadMatvecKernels, type MatvecKernels } from './kernel-module.js';

/** Kernels a job can name, by index (the control block holds numbers only). */
export const KERNELS = [
  'matmulF32', 'matmulF16', 'matmulF16Scaled', 'matmulBF16', 'matmulQ8_0', 'matmulQ4_0', 'matmulQ4_K', 'matmulQ6_K',
  'gemmF32', 'gemmF16', 'gemmBF16', 'gemmQ8_0', 'gemmQ4_0', 'gemmQ4_K', 'gemmQ6_K',
  'matmulIQ4_XS', 'gemmIQ4_XS',
  'matmulMXFP4', 'gemmMXFP4',
  'matmulQ4_1', 'gemmQ4_1', 'matmulQ5_0', 'gemmQ5_0', 'matmulQ5_1', 'gemmQ5_1', 'matmulIQ4_NL', 'gemmIQ4_NL',
  'attention', 'siluMul', 'rmsNorm', 'rope', 'add', 'quantizeRowsQ8', 'blockSumsQ8', 'addSparseRows', 'setScratch',
  'matmulQ5_K', 'gemmQ5_K',
  'matmulQ3_K', 'gemmQ3_K',
  'matmulQ2_K', 'gemmQ2_K',
  'geluMul', 'softcap',
  'embedRows', 'embedSparse', 'gatherRows', 'storeKV', 'copyRows', 'addBias', 'addRmsNorm',
] as const satisfies readonly (keyof MatvecKernels)[];
export type KernelName = typeof KERNELS[number];

/** Int32 slots of one worker's control block. */
export const CTL = {
  /** Job sequence number: the caller bumps it to start a job; -1 asks the worker to exit. */
  seq: 0,
  /** Sequence number of the last job the worker finished. */
  done: 1,
  kernel: 2,
  /** How many kernel arguments the job has (at most maxArgs). */
  nArgs: 3,
  /** Kernel arguments (byte offsets and sizes); the row range follows them in the call. */
  args: 4,
  maxArgs: 8,
  r0: 12,
  r1: 13,
  /** 1 while the worker sleeps in Atomics.wait (so the caller knows a notify is needed). */
  sleeping: 14,
  /** Non-zero if the worker's kernel threw. */
  failed: 15,
  /** Which memory (shard) the job's pointers refer to. */
  shard: 16,
  size: 17,
} as const;

/** Kernel index of the job that makes a worker take the memory posted to it as its next shard. */
export const ADOPT_SHARD = -2;

/**
 * How long a worker spins after a job before it sleeps: long enough to bridge the gaps between
 * the kernels of one token and between tokens (the TypeScript ops, sampling), which measured up to
 * ~1 ms; a wake from sleep costs 70–80 µs per job (decode went from 30 to 36 tok/s on a Q4_0
 * TinyLlama-width model when workers stopped sleeping between matmuls). An idle pool sleeps after this.
 */
export const SPIN_MS = 2;
/** Spins between clock reads while spinning (a clock read costs more than a spin). */
export const SPINS_PER_CHECK = 1024;

export class WorkerPool {
  private nextSeq = 0;
  private disposed = false;

  private constructor(
    private readonly workers: Worker[],
    private readonly controls: Int32Array[],
    private readonly module: WebAssembly.Module,
    /** This thread's kernel instance on each shard's memory. */
    private readonly local: MatvecKernels[],
  ) {}

  /** Starts `threads - 1` workers (the caller is the last thread) on `memory`. */
  static async create(threads: number, memory: WebAssembly.Memory): Promise<WorkerPool> {
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new RangeError(`threads must be an integer in 1..256, got ${threads}`);
    }
    const module = await compileKernels();
    const local = await loadMatvecKernels(memory, module);
    const workers: Worker[] = [];
    const controls: Int32Array[] = [];
    try {
      for (let i = 0; i < threads - 1; i++) {
        const control = new Int32Array(new SharedArrayBuffer(CTL.size * 4));
        const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: { memory, control, module } });
        workers.push(worker);
        controls.push(control);
        await new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
        });
        worker.unref(); // a pool left undisposed must not keep the process alive
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WorkerPool(workers, controls, module, [local]);
  }

  /** How many memories the pool's threads run kernels on. */
  get shards(): number {
    return this.local.length;
  }

  /** This thread's kernels on shard `shard`'s memory. */
  kernels(shard: number): MatvecKernels {
    return this.local[shard]!;
  }

  /**
   * Adds a memory: every thread instantiates the kernels on it (synchronously: workers take the
   * posted memory with receiveMessageOnPort inside the job). Returns the new shard's index.
   */
  addShard(memory: WebAssembly.Memory): number {
    if (this.disposed) throw new Error('the worker pool has been disposed');
    const local = instantiateKernels(memory, this.module);
    const seq = ++this.nextSeq;
    for (let w = 0; w < this.workers.length; w++) {
      this.workers[w]!.postMessage({ memory });
      this.start(this.controls[w]!, seq, ADOPT_SHARD, [], 0, 0, 0);
    }
    this.finish('shard set-up', seq);
    this.local.push(local);
    return this.local.length - 1;
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs `kernel(args…, r0, r1)` over rows [0, rows), split evenly (in multiples of 4 rows, the
   * kernels' pass width) across the threads; blocks until all are done.
   */
  run(kernel: KernelName, args: readonly number[], rows: number, shard = 0): void {
    if (this.disposed) throw new Error('the worker pool has been disposed');
    if (args.length > CTL.maxArgs) throw new RangeError(`${kernel}: ${args.length} arguments, at most ${CTL.maxArgs}`);
    const id = KERNELS.indexOf(kernel);
    const shares = this.threads;
    const per = Math.ceil(rows / shares / 4) * 4;
    const seq = ++this.nextSeq;
    for (let w = 0; w < this.workers.length; w++) {
      this.start(this.controls[w]!, seq, id, args, Math.min(rows, (w + 1) * per), Math.min(rows, (w + 2) * per), shard);
    }
    // The caller's own share: the first rows.
    (this.local[shard]![kernel] as (...a: number[]) => void)(...args, 0, Math.min(rows, per));
    this.finish(kernel, seq);
  }

  /**
   * Runs `kernel(args…, index)` once on every thread (index 0 = the caller, workers 1…): for
   * per-thread set-up such as each thread's scratch.
   */
  broadcast(kernel: KernelName, args: readonly number[], shard = 0): void {
    if (this.disposed) throw new Error('the worker pool has been disposed');
    if (args.length > CTL.maxArgs) throw new RangeError(`${kernel}: ${args.length} arguments, at most ${CTL.maxArgs}`);
    const id = KERNELS.indexOf(kernel);
    const seq = ++this.nextSeq;
    for (let w = 0; w < this.workers.length; w++) this.start(this.controls[w]!, seq, id, args, w + 1, 0, shard);
    (this.local[shard]![kernel] as (...a: number[]) => void)(...args, 0);
    this.finish(kernel, seq);
  }

  private start(c: Int32Array, seq: number, id: number, args: readonly number[], r0: number, r1: number, shard: number): void {
    if (shard < 0 || shard >= this.local.length) throw new RangeError(`no shard ${shard}`);
    c[CTL.kernel] = id;
    c[CTL.shard] = shard;
    c[CTL.nArgs] = args.length;
    for (let i = 0; i < args.length; i++) c[CTL.args + i] = args[i]!;
    c[CTL.r0] = r0;
    c[CTL.r1] = r1;
    Atomics.store(c, CTL.seq, seq);
    if (Atomics.load(c, CTL.sleeping) === 1) Atomics.notify(c, CTL.seq);
  }

  /** Waits for every worker to finish job `seq`: spins briefly, then sleeps between checks. */
  private finish(kernel: string, seq: number): void {
    for (const c of this.controls) {
      let spins = 0;
      while (Atomics.load(c, CTL.done) !== seq) {
        // The caller's own share usually ends close to the workers'; past a short spin it sleeps
        // in 1 ms slices (the worker's notify wakes it at once).
        if (++spins > 64 * SPINS_PER_CHECK) Atomics.wait(c, CTL.done, Atomics.load(c, CTL.done), 1);
      }
      if (c[CTL.failed] !== 0) throw new Error(`cpu kernel ${kernel} failed in a worker`);
    }
  }

  /** True when every worker is asleep (idle pools use no CPU). */
  allSleeping(): boolean {
    return this.controls.every((c) => Atomics.load(c, CTL.sleeping) === 1);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of this.controls) {
      Atomics.store(c, CTL.seq, -1);
      Atomics.notify(c, CTL.seq);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
