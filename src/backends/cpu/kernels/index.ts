// Entry point of the kernel modules (build/kernels.wasm, and build/kernels-relaxed.wasm built with relaxed SIMD): every kernel file's exports.
export * from './matvec';
export * from './gemm';
export * from './ops';
export * from './kquants';
export * from './nonlinear';
export * from './kquants-235';
export { setScratch, staticDataEnd } from './scratch';
export * from './legacy';
export * from './batched';
export * from './bandwidth';
export * from './rows';
export { relaxedSelfTest } from './selftest';
