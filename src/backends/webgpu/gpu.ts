// Finding a GPU: Dawn's Node binding (the `webgpu` package), its adapters, and which backend
// `--backend auto` picks. The binding is imported dynamically (by auto, devices and webgpu; not
// by --backend cpu or reference), and a platform with no prebuilt binary for it just has no
// adapter: auto then picks cpu.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** WebGPU's numeric flags (fixed by the spec; Node has no GPUBufferUsage global). */
export const BufferUsage = { MAP_READ: 1, MAP_WRITE: 2, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128, QUERY_RESOLVE: 512 } as const;
export const ShaderStage = { COMPUTE: 4 } as const;
export const MapMode = { READ: 1 } as const;

/**
 * The object Dawn's create() returns. It is kept for the life of the process: when it is
 * garbage-collected while a device lives, the process crashes (measured: `gpu = null; gc()`).
 */
let instance: GPU | undefined;
let instanceError: Error | undefined;

/** Dawn's GPU object, or an error that says in one line why there is none. */
export async function gpuInstance(): Promise<GPU> {
  if (instance) return instance;
  if (instanceError) throw instanceError;
  try {
    const dawn = await import('webgpu');
    instance = dawn.create([]);
    return instance;
  } catch (e) {
    instanceError = new Error(`webgpu: the Dawn binding (npm package "webgpu") could not be loaded: ${(e as Error).message.split('\n')[0]}`);
    throw instanceError;
  }
}

export interface AdapterSummary {
  description: string;
  vendor: string;
  architecture: string;
  /** A software rasterizer (lavapipe, SwiftShader, WARP): used only when asked for by name. */
  software: boolean;
  features: string[];
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number };
}

export function summarize(a: GPUAdapter): AdapterSummary {
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const description = info.description || info.device || info.vendor || 'unknown adapter';
  return {
    description, vendor: info.vendor, architecture: info.architecture,
    software: info.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|warp|software/i.test(description),
    features: [...a.features].map(String).sort(),
    limits: {
      maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.limits.maxComputeInvocationsPerWorkgroup,
    },
  };
}

/**
 * Every distinct adapter Dawn offers (it has no enumeration call: each power preference is asked).
 * Fresh objects each call: an adapter gives out one device only.
 */
export async function listAdapters(): Promise<{ adapters: GPUAdapter[]; error?: string }> {
  let gpu: GPU;
  try {
    gpu = await gpuInstance();
  } catch (e) {
    return { adapters: [], error: (e as Error).message };
  }
  const seen = new Map<string, GPUAdapter>();
  for (const options of [{ powerPreference: 'high-performance' }, { powerPreference: 'low-power' }, {}] as GPURequestAdapterOptions[]) {
    const a = await gpu.requestAdapter(options).catch(() => null);
    if (a && !seen.has(summarize(a).description)) seen.set(summarize(a).description, a);
  }
  if (seen.size === 0) return { adapters: [], error: noAdapterReason() };
  return { adapters: [...seen.values()] };
}

/** Why Dawn found no adapter, as far as can be told from here. */
function noAdapterReason(): string {
  if (process.platform === 'linux') {
    return 'webgpu: no GPU adapter (Dawn needs a Vulkan driver: install your GPU\'s Vulkan driver and the Vulkan loader, '
      + 'e.g. Debian\'s libvulkan1 and mesa-vulkan-drivers, or NVIDIA\'s driver)';
  }
  return 'webgpu: no GPU adapter (Dawn found no Metal, Direct3D 12 or Vulkan device)';
}

/**
 * The adapter the webgpu backend runs on: the first hardware adapter, or — only when
 * `allowSoftware` (the user named the webgpu backend) — a software one.
 */
export async function pickAdapter(allowSoftware: boolean): Promise<GPUAdapter> {
  const { adapters, error } = await listAdapters();
  if (error) throw new Error(error);
  const hardware = adapters.find((a) => !summarize(a).software);
  if (hardware) return hardware;
  if (allowSoftware && adapters[0]) return adapters[0];
  throw new Error(`webgpu: only a software adapter is available (${summarize(adapters[0]!).description})`);
}

/**
 * The adapters' summaries, found in a child process: Dawn writes its drivers' warnings straight to
 * this process's stderr (a machine without Vulkan prints several lines), and a CPU-only run should
 * neither show them nor load Dawn at all. Costs one short-lived process (~0.3 s), once.
 */
export async function probeAdapters(): Promise<{ adapters: AdapterSummary[]; error?: string }> {
  try {
    import.meta.resolve('webgpu');
  } catch (e) {
    return { adapters: [], error: `webgpu: the Dawn binding (npm package "webgpu") is not installed: ${(e as Error).message}` };
  }
  const script = `const { probe } = await import(${JSON.stringify(import.meta.url)});
process.stdout.write(JSON.stringify(await probe()));`;
  try {
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000, maxBuffer: 1 << 20 });
    return JSON.parse(stdout) as { adapters: AdapterSummary[]; error?: string };
  } catch (e) {
    return { adapters: [], error: `webgpu: probing for adapters failed: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** The child side of probeAdapters (exported for it; not for other use). */
export async function probe(): Promise<{ adapters: AdapterSummary[]; error?: string }> {
  const { adapters, error } = await listAdapters();
  return { adapters: adapters.map(summarize), ...(error ? { error } : {}) };
}

let autoChoice: Promise<'webgpu' | 'cpu'> | undefined;

/** What `--backend auto` runs on: webgpu when a hardware adapter exists, else cpu (decided once per process). */
export function autoBackend(): Promise<'webgpu' | 'cpu'> {
  autoChoice ??= probeAdapters().then(({ adapters }) => (adapters.some((a) => !a.software) ? 'webgpu' : 'cpu'));
  return autoChoice;
}
