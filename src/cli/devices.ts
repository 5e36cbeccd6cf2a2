// minerva devices: the GPU adapters Dawn finds, what they offer, and what --backend auto picks.
import { probeAdapters } from '../backends/webgpu/gpu.js';

export async function devicesCommand(o: { json?: boolean }): Promise<void> {
  const { adapters: list, error } = await probeAdapters(); // (in a child process: Dawn's driver warnings stay out of the output)
  const auto = list.some((a) => !a.software) ? 'webgpu' : 'cpu';
  if (o.json) {
    process.stdout.write(JSON.stringify({ adapters: list, auto, error: error ?? null }, null, 2) + '\n');
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
  process.stdout.write(`--backend auto picks: ${auto}${auto === 'cpu' ? (list.length ? ' (only software adapters)' : ' (no GPU adapter)') : ` (${list.find((a) => !a.software)!.description})`}\n`);
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
