// One thread of the cpu WorkerPool: instantiates the kernels on the shared memory, then loops on
// its control block (see worker-pool.ts for the protocol).
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { instantiateKernels, type MatvecKernels } from './kernel-module.js';
import { ADOPT_SHARD, BROADCAST_ROWS, CLAIM, CTL, KERNELS, SPIN_MS, SPINS_PER_CHECK, jobTag, runChunks } from './worker-pool.js';

const { memory, control, claims, module } = workerData as {
  memory: WebAssembly.Memory; control: Int32Array; claims: Int32Array; module: WebAssembly.Module;
};
/** One kernel instance per shard memory. */
const kernels: MatvecKernels[] = [instantiateKernels(memory, module)];
// However this thread ends (an uncaught error, process.exit, the pool's exit request), the caller
// must learn it without waiting for an event: it may be blocked in Atomics.wait on this thread.
process.on('exit', () => {
  Atomics.store(control, CTL.exited, 1);
  Atomics.add(claims, CLAIM.exited, 1);
  Atomics.notify(control, CTL.done);
  Atomics.notify(claims, CLAIM.finished);
});
parentPort!.postMessage('ready');

/** The current job's arguments (copied from the control block, which the caller may rewrite once the job is done). */
const args: number[] = new Array<number>(CTL.maxArgs).fill(0);
let seen = 0;
for (;;) {
  let spins = 0;
  let spinUntil = performance.now() + SPIN_MS;
  while (Atomics.load(control, CTL.seq) === seen) {
    if (++spins % SPINS_PER_CHECK === 0 && performance.now() > spinUntil) {
      Atomics.store(control, CTL.sleeping, 1);
      Atomics.wait(control, CTL.seq, seen);
      Atomics.store(control, CTL.sleeping, 0);
      spinUntil = performance.now() + SPIN_MS;
    }
  }
  seen = Atomics.load(control, CTL.seq);
  if (seen === -1) break;
  try {
    const id = control[CTL.kernel]!, rows = control[CTL.rows]!;
    if (id === ADOPT_SHARD) {
      // The memory was posted before the job started; it is waiting on the port.
      const posted = receiveMessageOnPort(parentPort!)?.message as { memory: WebAssembly.Memory } | undefined;
      if (!posted) throw new Error('no memory was posted for the new shard');
      kernels.push(instantiateKernels(posted.memory, module));
    } else {
      const f = kernels[control[CTL.shard]!]![KERNELS[id]!] as (...a: number[]) => void;
      const nArgs = control[CTL.nArgs]!;
      for (let i = 0; i < nArgs; i++) args[i] = control[CTL.args + i]!;
      if (rows === BROADCAST_ROWS) f(...args.slice(0, nArgs), control[CTL.chunk]!);
      else if (runChunks(claims, jobTag(seen), rows, control[CTL.chunk]!, f, args, nArgs) !== undefined) control[CTL.failed] = 1;
    }
  } catch {
    control[CTL.failed] = 1;
  }
  Atomics.store(control, CTL.done, seen);
  Atomics.notify(control, CTL.done);
}
