// One thread of the cpu WorkerPool: instantiates the kernels on the shared memory, then loops on
// its control block (see worker-pool.ts for the protocol).
import { parentPort, workerData } from 'node:worker_threads';
import { loadMatvecKernels, type MatvecKernels } from './kernel-module.js';
import { CTL, KERNELS, SPIN_LIMIT } from './worker-pool.js';

const { memory, control, module } = workerData as { memory: WebAssembly.Memory; control: Int32Array; module: WebAssembly.Module };
const kernels: MatvecKernels = await loadMatvecKernels(memory, module);
parentPort!.postMessage('ready');

let seen = 0;
for (;;) {
  let spins = 0;
  while (Atomics.load(control, CTL.seq) === seen) {
    if (++spins > SPIN_LIMIT) {
      Atomics.store(control, CTL.sleeping, 1);
      Atomics.wait(control, CTL.seq, seen);
      Atomics.store(control, CTL.sleeping, 0);
      spins = 0;
    }
  }
  seen = Atomics.load(control, CTL.seq);
  if (seen === -1) break;
  try {
    const name = KERNELS[control[CTL.kernel]!]!;
    const args = Array.from(control.subarray(CTL.args, CTL.args + control[CTL.nArgs]!));
    (kernels[name] as (...a: number[]) => void)(...args, control[CTL.r0]!, control[CTL.r1]!);
  } catch {
    control[CTL.failed] = 1;
  }
  Atomics.store(control, CTL.done, seen);
  Atomics.notify(control, CTL.done);
}
