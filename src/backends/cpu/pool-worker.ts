// One thread of the cpu WorkerPool: instantiates the kernels on the shared memory, then loops on
// its control block (see worker-pool.ts for the protocol).
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { instantiateKernels, type MatvecKernels } from './kernel-module.js';
import { ADOPT_SHARD, CTL, KERNELS, SPIN_MS, SPINS_PER_CHECK } from './worker-pool.js';

const { memory, control, module } = workerData as { memory: WebAssembly.Memory; control: Int32Array; module: WebAssembly.Module };
/** One kernel instance per shard memory. */
const kernels: MatvecKernels[] = [instantiateKernels(memory, module)];
parentPort!.postMessage('ready');

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
    if (control[CTL.kernel] === ADOPT_SHARD) {
      // The memory was posted before the job started; it is waiting on the port.
      const posted = receiveMessageOnPort(parentPort!)?.message as { memory: WebAssembly.Memory } | undefined;
      if (!posted) throw new Error('no memory was posted for the new shard');
      kernels.push(instantiateKernels(posted.memory, module));
    } else {
      const name = KERNELS[control[CTL.kernel]!]!;
      const args = Array.from(control.subarray(CTL.args, CTL.args + control[CTL.nArgs]!));
      (kernels[control[CTL.shard]!]![name] as (...a: number[]) => void)(...args, control[CTL.r0]!, control[CTL.r1]!);
    }
  } catch {
    control[CTL.failed] = 1;
  }
  Atomics.store(control, CTL.done, seen);
  Atomics.notify(control, CTL.done);
}
