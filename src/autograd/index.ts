/** Reverse-mode autograd: Var, backward, and the ops (one concept per file). */
export { Var, parameter, constant, detach, backward, noGrad, isGradEnabled, topologicalOrder } from './var.js';
export { gemm, useBackend, gemmBackend, loopGemm } from './compute.js';
export { add, sub, mul, div, minimum, maximum, addN } from './arith.js';
export { scale, addScalar, neg, exp, log, square, sqrt, sigmoid, silu, relu, clamp, swiglu } from './unary.js';
export { sum, mean, sumAxis, meanAxis } from './reduce.js';
export { reshape, transpose, narrow, split, concat, expand } from './shape.js';
export { linear, matmul } from './linear.js';
export { embedding } from './embedding.js';
export { rmsNorm } from './rmsnorm.js';
export { softmax, logSoftmax } from './softmax.js';
export { crossEntropy, tokenLogProbs, IGNORE_INDEX } from './loss.js';
export { rope, ropeInvFreq, type RopeStyle } from './rope.js';
export { attention } from './attention.js';
export {
  selectExperts, gatherColumns, routePlan, expertLoad, gatherRows, combineExperts, updateRoutingBias, sequenceBalanceLoss,
  type ExpertSelection, type ExpertRoute, type SelectOptions,
} from './moe.js';
export { fakeQuantTiles, fakeQuantBlocks, FP8_TILE } from './fp8.js';
export { Random } from './random.js';
export * from './kernels.js';
