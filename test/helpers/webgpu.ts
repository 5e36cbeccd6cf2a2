// A webgpu backend for tests, on whatever adapter Dawn finds (lavapipe in CI). Tests that need one
// skip with the reason when none can be had.
import { WebGpuBackend, type WebGpuOptions } from '../../src/backends/webgpu/webgpu-backend.js';

let probe: string | false | undefined;

/** false when a webgpu backend can be created here, else why not (for `test(name, { skip })`). */
export async function webgpuSkip(): Promise<string | false> {
  if (probe === undefined) {
    try {
      (await WebGpuBackend.create()).dispose();
      probe = false;
    } catch (e) {
      probe = `no WebGPU adapter: ${(e as Error).message}`;
    }
  }
  return probe;
}

export function createWebGpu(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  return WebGpuBackend.create(opts);
}
