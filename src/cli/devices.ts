// minerva devices: the GPU adapters Dawn finds, what they offer, what --backend auto picks, and
// which build of the wasm kernels the cpu backend runs on this runtime.
import { kernelChoice } from '../backends/cpu/kernel-module.js';
import { probeAdapters } from '../backends/webgpu/gpu.js';

export async function devicesCommand(o: { json?: boolean }): Promise<void> {
  const { adapters: list, error } = await probeAdapters(); // (in a child process: Dawn's driver warnings stay out of the output)
  const auto = list.some((a) => !a.software) ? 'webgpu' : 'cpu';
  // (a bad MINERVA_CPU_SIMD is reported here rather than failing the listing)
  const cpuKernels = await kernelChoice().catch((e: unknown) => ({ error: (e as Error).message }));
  if (o.json) {
    process.stdout.write(JSON.stringify({ adapters: list, auto, cpuKernels, error: error ?? null }, null, 2) + '\n');
    return;
  }
  if (error) process.stdout.write(`${error}\n`);
  for (const a of list) {
    process.stdout.write(`${a.description}${a.software ? ' (software: used only with --backend webgpu)' : ''}\n`
      + `  vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}\n`
      + `  features: ${a.features.join(' ')}\n`
      + `  limits: largest buffer ${mib(a.limits.maxBufferSize)}, storage binding ${mib(a.limits.maxStorageBufferBindingSize)}, `
      + `workgroup memory ${a.limits.maxComputeWorkgroupStorageSize} B, ${a.limits.maxComputeInvocationsPerWorkgroup} invocations per workgroup\n`);
  }
  process.stdout.write(`cpu backend kernels: ${'error' in cpuKernels ? `none: ${cpuKernels.error}` : cpuKernels.description}\n`);
  process.stdout.write(`--backend auto picks: ${auto}${auto === 'cpu' ? (list.length ? ' (only software adapters)' : ' (no GPU adapter)') : ` (${list.find((a) => !a.software)!.description})`}\n`);
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
