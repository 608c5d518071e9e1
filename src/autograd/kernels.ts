/**
 * Every replaceable autograd kernel in one place. Each op file owns a small mutable table of the
 * plain-array functions it calls (forward and backward); assigning a native function with the
 * same signature (e.g. `rmsNormKernels.backward = native.rmsNormBackward`) moves that op to
 * native code. GEMMs go through ./compute.ts (the backend's gemm).
 */
export { arithKernels } from './arith.js';
export { attentionKernels } from './attention.js';
export { crossEntropyKernels } from './loss.js';
export { embeddingKernels } from './embedding.js';
export { linearKernels } from './linear.js';
export { rmsNormKernels } from './rmsnorm.js';
export { ropeKernels } from './rope.js';
export { shapeKernels } from './shape.js';
export { softmaxKernels } from './softmax.js';
export { swigluKernels } from './unary.js';
