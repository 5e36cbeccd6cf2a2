// A pool of worker threads running the wasm kernels over one shared memory. A job is a kernel and
// its arguments plus a range of rows; the calling thread takes part and returns when every row is done.
//
// Rows are handed out in chunks that threads claim as they go (a shared counter), not split in
// fixed shares: on a shared machine a thread can lose its core for milliseconds (another process,
// CPU steal under a hypervisor), and with fixed shares every job then waited for that thread's
// share. Now the threads that run take its chunks. A worker that has not yet picked up a job is
// not waited for: it finds the chunks gone and acknowledges the job late; the caller gives it no
// new job until it has (its job fields are its own, never rewritten under it).
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
import { compileKernels, instantiateKernels, loadMatvecKernels, type MatvecKernels } from './kernel-module.js';

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
  'batchF16Scaled',
  'sumChunksF32',
  'embedRows', 'embedSparse', 'gatherRows', 'storeKV', 'copyRows', 'addBias', 'addRmsNorm',
] as const satisfies readonly (keyof MatvecKernels)[];
export type KernelName = typeof KERNELS[number];
/** Index of each kernel in KERNELS (a job names its kernel by index). */
const KERNEL_IDS = new Map<KernelName, number>(KERNELS.map((k, i) => [k, i]));

type KernelFn = (...a: number[]) => void;

/**
 * Calls a kernel with `args` followed by the row range, without spreading (a spread call costs
 * more than a small job's rows, and the pool runs ~150 jobs per decoded token).
 */
export function callKernel(f: KernelFn, a: ArrayLike<number>, n: number, r0: number, r1: number): void {
  switch (n) {
    case 1: return f(a[0]!, r0, r1);
    case 2: return f(a[0]!, a[1]!, r0, r1);
    case 3: return f(a[0]!, a[1]!, a[2]!, r0, r1);
    case 4: return f(a[0]!, a[1]!, a[2]!, a[3]!, r0, r1);
    case 5: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, r0, r1);
    case 6: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, r0, r1);
    case 7: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, r0, r1);
    case 8: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, r0, r1);
    default: return f(...Array.from(a).slice(0, n), r0, r1);
  }
}

/** Int32 slots of one worker's control block (its job fields, written only while it is idle). */
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
  /** Chunked job: rows and rows per chunk. Broadcast (BROADCAST_ROWS): the thread index in `chunk`. */
  rows: 12,
  chunk: 13,
  /** 1 while the worker sleeps in Atomics.wait (so the caller knows a notify is needed). */
  sleeping: 14,
  /** Non-zero if the worker's kernel threw. */
  failed: 15,
  /** Which memory (shard) the job's pointers refer to. */
  shard: 16,
  /** Set (and notified) by the worker as its thread exits, for whatever reason: the pool is then broken. */
  exited: 17,
  size: 18,
} as const;

/** Int32 slots of the pool's shared claim block. */
export const CLAIM = {
  /** (job tag << 16) | next chunk: a thread takes chunk i by moving i to i + 1 under its job's tag. */
  next: 0,
  /** Chunks of the current job finished (by any thread). */
  finished: 1,
  /** 1 while the caller sleeps waiting for `finished` (so the last finisher notifies). */
  callerWaiting: 2,
  /** Workers that have exited (each adds 1 as it ends): one load tells the caller all is well. */
  exited: 3,
  size: 4,
} as const;

/** The tag a job's claims carry: its sequence number's low 15 bits (the claim word is an int32). */
export const jobTag = (seq: number): number => seq & 0x7fff;
/** Most chunks per job (the claim word's low 16 bits). */
const MAX_CHUNKS = 0xffff;
/** Chunks per thread in a job: more let the running threads take over more of a stalled one's rows, each costs a claim. */
export const CHUNKS_PER_THREAD = 8;
/**
 * How many jobs a worker may lag behind (still on an old job, descheduled) before the caller waits
 * for it: far below the 32768 after which a claim tag repeats, so a stale worker never takes a
 * chunk of a later job.
 */
const MAX_LAG = 1024;

/** `rows` value of a job every worker runs once, with its thread index (per-thread set-up). */
export const BROADCAST_ROWS = -1;

/** Kernel index of the job that makes a worker take the memory posted to it as its next shard. */
export const ADOPT_SHARD = -2;

/**
 * How long a worker spins after a job before it sleeps: long enough to bridge the gaps between
 * the kernels of one token (microseconds); a wake from sleep costs 70–80 µs, paid about once per
 * token at this setting. Longer spins cost where it hurts: on a machine shared with another busy
 * process a spinning worker takes CPU time the caller needs (stories110M Q8_0 decode beside one
 * busy process, 2 threads: 28 tok/s spinning 2 ms, 32 at 0.25 ms, 36 with 8 chunks per thread;
 * 6.8 with the fixed shares before). An idle pool sleeps after this.
 */
export const SPIN_MS = 0.25;
/** Spins between clock reads while spinning (a clock read costs more than a spin). */
export const SPINS_PER_CHECK = 1024;

/**
 * Takes chunks of a job under `tag` and runs them until none is left. Shared by the caller and the
 * workers: rows [c·chunk, min((c+1)·chunk, rows)) of chunk c. A chunk whose kernel throws still
 * counts as finished (the job must end); the first error is returned for the thread to report.
 */
export function runChunks(
  claims: Int32Array, tag: number, rows: number, chunk: number, f: KernelFn, args: ArrayLike<number>, nArgs: number,
): unknown {
  const nChunks = Math.ceil(rows / chunk);
  let error: unknown;
  for (;;) {
    const v = Atomics.load(claims, CLAIM.next);
    const c = v & 0xffff;
    if (v >>> 16 !== tag || c >= nChunks) return error;
    if (Atomics.compareExchange(claims, CLAIM.next, v, v + 1) !== v) continue;
    try {
      callKernel(f, args, nArgs, c * chunk, Math.min(rows, (c + 1) * chunk));
    } catch (e) {
      error ??= e;
    }
    if (Atomics.add(claims, CLAIM.finished, 1) + 1 === nChunks && Atomics.load(claims, CLAIM.callerWaiting) === 1) {
      Atomics.notify(claims, CLAIM.finished);
    }
  }
}

/**
 * A worker thread of the pool exited (a crash, an uncaught error, out of memory): the pool cannot
 * run jobs any more, and every job then and after fails with this instead of waiting forever for
 * rows the thread will never compute. The model on it must be loaded again.
 */
export class WorkerThreadError extends Error {
  constructor(readonly reason: string) {
    super(`a cpu worker thread exited (${reason}); the model's worker pool cannot run`);
    this.name = 'WorkerThreadError';
  }
}

export class WorkerPool {
  private nextSeq = 0;
  private disposed = false;
  /** Why the pool is broken (a worker exited), once it is. */
  private broken: string | undefined;
  /** Per worker: the last job it was given (it is idle once its `done` reaches this). */
  private readonly given: number[];

  private constructor(
    private readonly workers: Worker[],
    private readonly controls: Int32Array[],
    private readonly claims: Int32Array,
    private readonly module: WebAssembly.Module,
    /** This thread's kernel instance on each shard's memory. */
    private readonly local: MatvecKernels[],
  ) {
    this.given = workers.map(() => 0);
    // A worker that exits while this thread is idle is seen here (one that exits during a job
    // flags CTL.exited itself, which the waits below check: they block this thread, so no event
    // could arrive then). terminate() sets no flag, but only dispose() calls it.
    workers.forEach((w, i) => {
      w.on('error', (e) => { this.broken ??= `worker ${i + 1}: ${e.message}`; });
      w.on('exit', (code) => { if (!this.disposed) this.broken ??= `worker ${i + 1} exited with code ${code}`; });
    });
  }

  /** Starts `threads - 1` workers (the caller is the last thread) on `memory`. */
  static async create(threads: number, memory: WebAssembly.Memory): Promise<WorkerPool> {
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new RangeError(`threads must be an integer in 1..256, got ${threads}`);
    }
    const module = await compileKernels();
    const local = await loadMatvecKernels(memory, module);
    const claims = new Int32Array(new SharedArrayBuffer(CLAIM.size * 4));
    const workers: Worker[] = [];
    const controls: Int32Array[] = [];
    try {
      for (let i = 0; i < threads - 1; i++) {
        const control = new Int32Array(new SharedArrayBuffer(CTL.size * 4));
        const worker = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: { memory, control, claims, module } });
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
    return new WorkerPool(workers, controls, claims, module, [local]);
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
    this.checkUsable();
    const local = instantiateKernels(memory, this.module);
    this.waitIdle('shard set-up');
    const seq = ++this.nextSeq;
    for (let w = 0; w < this.workers.length; w++) {
      this.workers[w]!.postMessage({ memory });
      this.start(w, seq, ADOPT_SHARD, [], BROADCAST_ROWS, 0, 0);
    }
    this.waitIdle('shard set-up');
    this.local.push(local);
    return this.local.length - 1;
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs `kernel(args…, r0, r1)` over rows [0, rows) in chunks (multiples of 4 rows, the kernels'
   * pass width; about four per thread, so a thread that falls behind leaves its chunks to the
   * others) claimed by the idle workers and this thread; blocks until every row is done.
   */
  run(kernel: KernelName, args: readonly number[], rows: number, shard = 0): void {
    this.checkUsable();
    if (args.length > CTL.maxArgs) throw new RangeError(`${kernel}: ${args.length} arguments, at most ${CTL.maxArgs}`);
    if (shard < 0 || shard >= this.local.length) throw new RangeError(`no shard ${shard}`);
    const f = this.local[shard]![kernel] as KernelFn;
    if (rows <= 0) return;
    const id = KERNEL_IDS.get(kernel)!;
    const threads = this.threads;
    const chunk = Math.max(4, Math.ceil(rows / (CHUNKS_PER_THREAD * threads) / 4) * 4, Math.ceil(rows / MAX_CHUNKS));
    if (threads === 1 || chunk >= rows) {
      callKernel(f, args, args.length, 0, rows);
      return;
    }
    const seq = ++this.nextSeq, tag = jobTag(seq);
    const c = this.claims;
    Atomics.store(c, CLAIM.finished, 0);
    Atomics.store(c, CLAIM.next, tag << 16);
    for (let w = 0; w < this.workers.length; w++) {
      const ctl = this.controls[w]!;
      // A worker still on an old job (descheduled) is left out, unless it lags too far.
      if (Atomics.load(ctl, CTL.done) !== this.given[w]) {
        if (seq - this.given[w]! < MAX_LAG) continue;
        this.waitWorker(w, kernel);
      }
      this.start(w, seq, id, args, rows, chunk, shard);
    }
    const error = runChunks(c, tag, rows, chunk, f, args, args.length);
    this.waitFinished(kernel, Math.ceil(rows / chunk));
    if (error !== undefined) throw error;
  }

  /**
   * Runs `kernel(args…, index)` once on every thread (index 0 = the caller, workers 1…): for
   * per-thread set-up such as each thread's scratch.
   */
  broadcast(kernel: KernelName, args: readonly number[], shard = 0): void {
    this.checkUsable();
    if (args.length > CTL.maxArgs) throw new RangeError(`${kernel}: ${args.length} arguments, at most ${CTL.maxArgs}`);
    if (shard < 0 || shard >= this.local.length) throw new RangeError(`no shard ${shard}`);
    const id = KERNEL_IDS.get(kernel)!;
    this.waitIdle(kernel);
    const seq = ++this.nextSeq;
    for (let w = 0; w < this.workers.length; w++) this.start(w, seq, id, args, BROADCAST_ROWS, w + 1, shard);
    (this.local[shard]![kernel] as (...a: number[]) => void)(...args, 0);
    this.waitIdle(kernel);
  }

  private start(w: number, seq: number, id: number, args: readonly number[], rows: number, chunk: number, shard: number): void {
    const c = this.controls[w]!;
    c[CTL.kernel] = id;
    c[CTL.shard] = shard;
    c[CTL.nArgs] = args.length;
    for (let i = 0; i < args.length; i++) c[CTL.args + i] = args[i]!;
    c[CTL.rows] = rows;
    c[CTL.chunk] = chunk;
    this.given[w] = seq;
    Atomics.store(c, CTL.seq, seq);
    if (Atomics.load(c, CTL.sleeping) === 1) Atomics.notify(c, CTL.seq);
  }

  /**
   * Waits until `nChunks` chunks of the current job are done: spins briefly, then sleeps until
   * notified. A worker that exited holding a chunk would never finish it: WorkerThreadError.
   */
  private waitFinished(kernel: string, nChunks: number): void {
    const c = this.claims;
    let spins = 0;
    while (Atomics.load(c, CLAIM.finished) !== nChunks) {
      if (++spins > 16 * SPINS_PER_CHECK) {
        Atomics.store(c, CLAIM.callerWaiting, 1);
        const seen = Atomics.load(c, CLAIM.finished);
        if (seen !== nChunks) Atomics.wait(c, CLAIM.finished, seen, 1);
        Atomics.store(c, CLAIM.callerWaiting, 0);
        this.checkExited(kernel);
      }
    }
    this.checkFailed(kernel);
  }

  /** Waits for worker `w` to finish the last job it was given (WorkerThreadError if it exited instead). */
  private waitWorker(w: number, kernel: string): void {
    const c = this.controls[w]!;
    let spins = 0;
    while (Atomics.load(c, CTL.done) !== this.given[w]) {
      if (++spins > 16 * SPINS_PER_CHECK) {
        Atomics.wait(c, CTL.done, Atomics.load(c, CTL.done), 1);
        this.checkExited(kernel);
      }
    }
    this.checkFailed(kernel);
  }

  /** Throws if the pool was disposed or a worker has exited. */
  private checkUsable(): void {
    if (this.disposed) throw new Error('the worker pool has been disposed');
    if (this.broken === undefined && Atomics.load(this.claims, CLAIM.exited) !== 0) this.broken = `worker ${this.exitedWorker()} exited`;
    if (this.broken !== undefined) throw new WorkerThreadError(this.broken);
  }

  /** Throws WorkerThreadError (and marks the pool broken) if a worker has flagged its exit. */
  private checkExited(kernel: string): void {
    if (Atomics.load(this.claims, CLAIM.exited) === 0) return;
    this.broken ??= `worker ${this.exitedWorker()} exited during ${kernel}`;
    throw new WorkerThreadError(this.broken);
  }

  /** Which worker (1-based) flagged its exit: read only once the shared count says one did. */
  private exitedWorker(): number {
    return this.controls.findIndex((c) => Atomics.load(c, CTL.exited) !== 0) + 1;
  }

  /** Why the pool cannot run jobs (a worker exited), or undefined while it can. */
  get failure(): string | undefined {
    return this.broken;
  }

  /** Waits until every worker has finished every job it was given. */
  private waitIdle(kernel: string): void {
    for (let w = 0; w < this.workers.length; w++) this.waitWorker(w, kernel);
  }

  private checkFailed(kernel: string): void {
    for (const c of this.controls) {
      if (c[CTL.failed] !== 0) {
        c[CTL.failed] = 0;
        throw new Error(`cpu kernel ${kernel} failed in a worker`);
      }
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
