// Recording a forward pass: every op appends a dispatch to one compute pass of one command
// encoder; nothing reaches the GPU until the host needs a result (read, which also appends the
// copy into the read-back buffer). Per-dispatch sizes go into 256-byte slots of one uniform buffer (bound with a dynamic
// offset, so a kernel's bind group is made once per set of buffers and reused for every token),
// per-step data (token ids, positions, slots, rope angles) into an arena; both are written with
// one writeBuffer each just before the single submit.
import { BufferUsage, MapMode, ShaderStage } from './gpu.js';

/** A GPU buffer with an id (bind groups are cached by the ids of what they bind). */
export class GpuBuffer {
  private static nextId = 1;
  readonly id = GpuBuffer.nextId++;
  constructor(readonly buffer: GPUBuffer, readonly size: number) {}
}

export type BindingKind = 'read' | 'rw';

/** A compute pipeline and the bindings it declares: 0 = uniform, 1 = arena (if used), 2.. = buffers. */
export interface Kernel {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly usesArena: boolean;
  /** Binding number and access of each buffer passed to dispatch(), in order. */
  readonly buffers: readonly { binding: number; kind: BindingKind }[];
  /** Its bind groups, by the ids of the arena (if used) and the buffers, one map level per id (no key to build per dispatch). */
  readonly groups: Map<number, unknown>;
}

const SLOT_BYTES = 256;
const SLOT_WORDS = SLOT_BYTES / 4;
const SLOTS = 4096;
/** The dynamic offset of each slot, handed to setBindGroup as a typed-array range (no array per dispatch). */
const SLOT_OFFSETS = Uint32Array.from({ length: SLOTS }, (_, i) => i * SLOT_BYTES);
const ARENA_WORDS = 1 << 18; // 1 MiB

// (a type alias, not an interface: it must fit Backend.profile's Record<string, number>)
export type RecorderStats = {
  dispatches: number;
  submits: number;
  /** Milliseconds of JS spent recording ops (host time per step, beside the GPU's). */
  encodeMs: number;
  /** Milliseconds the GPU spent in compute passes (timestamp queries; 0 unless timing is on). */
  gpuMs: number;
  /** Compute passes whose GPU time is not in gpuMs (the timestamp read-back was still busy, or over 64 in a submit). */
  untimedPasses: number;
};

/** Most compute passes timed per submit (a step has one, plus one after each copy). */
const TIMED_PASSES = 64;

export class Recorder {
  private readonly params: GPUBuffer;
  private readonly paramWords = new Uint32Array(SLOTS * SLOT_WORDS);
  private slots = 0;
  private arena: GpuBuffer;
  private arenaWords = new Uint32Array(ARENA_WORDS);
  private arenaFloats = new Float32Array(this.arenaWords.buffer);
  private arenaUsed = 0;
  /** Counts submits: arena offsets handed out are valid until it changes. */
  generation = 0;
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  readonly stats: RecorderStats = { dispatches: 0, submits: 0, encodeMs: 0, gpuMs: 0, untimedPasses: 0 };
  /** GPU timing: a timestamp pair per compute pass, resolved at submit and read back after it. */
  private readonly timing: { queries: GPUQuerySet; resolve: GPUBuffer; readback: GPUBuffer; busy: boolean } | undefined;
  private passes = 0;

  constructor(private readonly device: GPUDevice, private readonly dummy: GpuBuffer, timestamps: boolean) {
    this.params = device.createBuffer({ size: SLOTS * SLOT_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, label: 'op parameters' });
    this.arena = this.createArena(ARENA_WORDS);
    if (timestamps) {
      const bytes = 2 * TIMED_PASSES * 8;
      this.timing = {
        queries: device.createQuerySet({ type: 'timestamp', count: 2 * TIMED_PASSES }),
        resolve: device.createBuffer({ size: bytes, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC }),
        readback: device.createBuffer({ size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST }),
        busy: false,
      };
    }
  }

  private createArena(words: number): GpuBuffer {
    const size = words * 4;
    return new GpuBuffer(this.device.createBuffer({ size, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST, label: 'step arena' }), size);
  }

  /** A kernel from WGSL with its bindings; `buffers` lists (binding, access) of what dispatch() passes. */
  kernel(name: string, code: string, buffers: readonly { binding: number; kind: BindingKind }[], usesArena: boolean): Kernel {
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: ShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
    ];
    if (usesArena) entries.push({ binding: 1, visibility: ShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } });
    for (const b of buffers) {
      entries.push({ binding: b.binding, visibility: ShaderStage.COMPUTE, buffer: { type: b.kind === 'rw' ? 'storage' : 'read-only-storage' } });
    }
    const key = JSON.stringify(entries);
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.device.createBindGroupLayout({ entries, label: name });
      this.layouts.set(key, layout);
    }
    const module = this.device.createShaderModule({ code, label: name });
    const pipeline = this.device.createComputePipeline({
      label: name, layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    return { name, pipeline, layout, usesArena, buffers, groups: new Map() };
  }

  /**
   * Makes room for `dispatches` more dispatches without a submit in between (a submit resets the
   * arena): ops call this before they put data in the arena.
   */
  ensureRoom(dispatches: number): void {
    if (this.slots + dispatches > SLOTS) this.flush();
  }

  /**
   * Copies `data` into this step's arena and returns its word offset, valid while `generation`
   * stays the same (a put that does not fit submits what was recorded first).
   */
  put(data: ArrayLike<number>, kind: 'u32' | 'f32'): number {
    const n = data.length;
    if (this.arenaUsed + n > this.arenaWords.length) {
      this.flush();
      if (n > this.arenaWords.length) {
        const words = Math.max(n, 2 * this.arenaWords.length);
        this.arena.buffer.destroy();
        this.arena = this.createArena(words);
        this.arenaWords = new Uint32Array(words);
        this.arenaFloats = new Float32Array(this.arenaWords.buffer);
      }
    }
    const offset = this.arenaUsed;
    if (kind === 'u32') this.arenaWords.set(data, offset);
    else this.arenaFloats.set(data, offset);
    this.arenaUsed += n;
    return offset;
  }

  /**
   * Appends one dispatch of `kernel` over `buffers` with uniform fields `fields` (u32, or f32
   * given as their bits), on a grid of `grid` workgroups.
   */
  dispatch(kernel: Kernel, buffers: readonly GpuBuffer[], fields: readonly number[], grid: readonly [number, number, number]): void {
    if (buffers.length !== kernel.buffers.length) throw new Error(`${kernel.name}: ${buffers.length} buffers for ${kernel.buffers.length} bindings`);
    if (this.slots === SLOTS) this.flush();
    const slot = this.slots++;
    this.paramWords.set(fields, slot * SLOT_WORDS);
    const pass = this.computePass();
    if (this.lastPipeline !== kernel.pipeline) {
      pass.setPipeline(kernel.pipeline);
      this.lastPipeline = kernel.pipeline;
    }
    pass.setBindGroup(0, this.bindGroup(kernel, buffers), SLOT_OFFSETS, slot, 1);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.stats.dispatches++;
  }

  /** The pipeline set last in the current pass (setting it again is skipped). */
  private lastPipeline: GPUComputePipeline | undefined;

  private bindGroup(kernel: Kernel, buffers: readonly GpuBuffer[]): GPUBindGroup {
    // Walk the kernel's map by the arena's id (0 when unused), then each buffer's id.
    let level = kernel.groups;
    for (let i = 0; i < buffers.length; i++) {
      const id = i === 0 ? (kernel.usesArena ? this.arena.id : 0) : buffers[i - 1]!.id;
      let next = level.get(id) as Map<number, unknown> | undefined;
      if (!next) level.set(id, (next = new Map()));
      level = next;
    }
    const last = buffers[buffers.length - 1]!.id;
    let group = level.get(last) as GPUBindGroup | undefined;
    if (!group) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.params, offset: 0, size: SLOT_BYTES } }];
      if (kernel.usesArena) entries.push({ binding: 1, resource: { buffer: this.arena.buffer } });
      kernel.buffers.forEach((b, j) => entries.push({ binding: b.binding, resource: { buffer: buffers[j]!.buffer } }));
      group = this.device.createBindGroup({ layout: kernel.layout, entries, label: kernel.name });
      level.set(last, group);
    }
    return group;
  }

  /** A dummy buffer for optional bindings (a matmul without bias). */
  get none(): GpuBuffer {
    return this.dummy;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.lastPipeline = undefined;
      const t = this.timing && !this.timing.busy && this.passes < TIMED_PASSES ? this.timing : undefined;
      this.pass = this.commandEncoder().beginComputePass(t ? {
        timestampWrites: { querySet: t.queries, beginningOfPassWriteIndex: 2 * this.passes, endOfPassWriteIndex: 2 * this.passes + 1 },
      } : {});
      if (t) this.passes++;
      else if (this.timing) this.stats.untimedPasses++;
    }
    return this.pass;
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Appends a buffer-to-buffer copy (after the dispatches recorded so far). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.pass?.end();
    this.pass = undefined;
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Uploads this step's parameters and arena and submits everything recorded. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    this.pass = undefined;
    const q = this.device.queue;
    if (this.slots > 0) q.writeBuffer(this.params, 0, this.paramWords.buffer, 0, this.slots * SLOT_BYTES);
    if (this.arenaUsed > 0) q.writeBuffer(this.arena.buffer, 0, this.arenaWords.buffer, 0, this.arenaUsed * 4);
    const timed = this.passes;
    if (this.timing && timed > 0) {
      this.encoder.resolveQuerySet(this.timing.queries, 0, 2 * timed, this.timing.resolve, 0);
      this.encoder.copyBufferToBuffer(this.timing.resolve, 0, this.timing.readback, 0, 16 * timed);
    }
    q.submit([this.encoder.finish()]);
    if (this.timing && timed > 0) void this.readTimes(this.timing, timed);
    this.passes = 0;
    this.encoder = undefined;
    this.slots = 0;
    this.arenaUsed = 0;
    this.generation++;
    this.stats.submits++;
  }

  /** Adds the GPU time of the `passes` timed passes just submitted to stats.gpuMs. */
  private async readTimes(t: NonNullable<Recorder['timing']>, passes: number): Promise<void> {
    t.busy = true;
    try {
      await t.readback.mapAsync(MapMode.READ, 0, 16 * passes);
      const ns = new BigInt64Array(t.readback.getMappedRange(0, 16 * passes).slice(0));
      t.readback.unmap();
      for (let i = 0; i < passes; i++) this.stats.gpuMs += Number(ns[2 * i + 1]! - ns[2 * i]!) / 1e6;
    } catch {
      // (the device was destroyed while the times were on their way)
    } finally {
      t.busy = false;
    }
  }

  /** Resolves once the GPU times of what was submitted so far are in stats.gpuMs. */
  async settled(): Promise<void> {
    while (this.timing?.busy) await new Promise((r) => setTimeout(r, 1));
  }

  dispose(): void {
    this.timing?.queries.destroy();
    this.timing?.resolve.destroy();
    this.timing?.readback.destroy();
    this.params.destroy();
    this.arena.buffer.destroy();
  }
}
