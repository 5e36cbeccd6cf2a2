// This thread's scratch region of the shared memory (gemm tiles, attention scores). Set once per
// instance: wasm globals belong to the instance, and every thread of the pool has its own
// instance over the one shared memory, so each thread's kernels see their own region.

export let scratch: usize = 0;
export let scratchBytes: usize = 0;

/** Thread `index` of the pool uses [base + index·stride, base + (index+1)·stride) as scratch. */
export function setScratch(base: usize, stride: usize, index: i32): void {
  scratch = base + stride * <usize>index;
  scratchBytes = stride;
}

/**
 * End of the module's static data (the tables Mathf.exp uses). Every instantiation writes it into
 * the shared memory at its fixed low address, so the backend allocates nothing below this.
 */
export function staticDataEnd(): usize {
  return __heap_base;
}
