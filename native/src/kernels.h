// The kernel table: one instance per SIMD level (scalar, avx2, avx512), each compiled in its own
// translation unit with its own target flags, chosen at run time from CPUID (see cpu.cc).
// Everything here works on raw buffers; argument checking happens in TypeScript before the call.
#pragma once
#include <cstddef>
#include <cstdint>

namespace frugal {

enum DTypeCode : int {
  DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8_0 = 3, DT_Q4_0 = 4, DT_Q4_1 = 5, DT_Q5_0 = 6,
  DT_Q4_K = 7, DT_Q5_K = 8, DT_Q6_K = 9, DT_FP8 = 10, DT_IQ4_NL = 11, DT_IQ4_XS = 12,
  DT_Q2_K = 13, DT_Q3_K = 14, DT_Q5_1 = 15,
};
/** The highest DTypeCode this build knows (reported by the addon's info(), so TypeScript can refuse newer codes on an old build). */
constexpr int DT_LAST = DT_Q5_1;

struct Weight {
  int dtype;
  int64_t rows;
  int64_t cols;
  const uint8_t* data;
  const float* blockScales;  // fp8 only: [ceil(rows/128), ceil(cols/128)]
};

struct RopeArgs {
  int64_t tokens, heads, tokenStride, headStride, offset, ropeDim;
  const int32_t* positions;
  const float* invFreq;
  bool neox;
  float attentionFactor;
};

struct AttentionArgs {
  int64_t queries, heads, kvHeads, headDimK, headDimV, startPos;
  float scale;
  int64_t kTokenStride, kHeadStride, vTokenStride, vHeadStride;
};

/** Shape of a training attention call (src/autograd/attention.ts AttentionShape): q [B,T,H,Dk], k [B,T,Hkv,Dk], v [B,T,Hkv,Dv]. */
struct TrainAttentionShape {
  int64_t batch, seq, heads, kvHeads, headDimK, headDimV;
  float scale;
  bool causal;
};

/**
 * The autograd (training) kernels: forward and backward of the ops whose TypeScript kernel tables
 * live in src/autograd (same arguments, same accumulation rules: backward kernels add into
 * gradients, null gradient pointers are skipped). See train_impl.h.
 */
struct TrainKernels {
  void (*crossEntropyForward)(double* lse, const float* x, const int32_t* targets, int64_t rows, int64_t vocab,
                              int32_t ignoreIndex, double* total, int64_t* valid);
  void (*crossEntropyBackward)(float* dx, double g, const float* x, const double* lse, const int32_t* targets,
                               int64_t rows, int64_t vocab, int32_t ignoreIndex);
  void (*rmsNormForward)(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, double eps);
  void (*rmsNormBackward)(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                          int64_t rows, int64_t dim);
  void (*swigluForward)(float* out, const float* gate, const float* up, int64_t n);
  void (*swigluBackward)(float* dgate, float* dup, const float* dy, const float* gate, const float* up, int64_t n);
  void (*softmaxForward)(float* y, const float* x, int64_t rows, int64_t cols);
  void (*softmaxBackward)(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols);
  void (*ropeRotate)(float* out, const float* x, const float* cos, const float* sin, int64_t tokens, int64_t heads,
                     int64_t dim, bool interleaved, float sign, bool accumulate);
  void (*attentionForward)(float* out, float* probs, const float* q, const float* k, const float* v,
                           const TrainAttentionShape& s);
  void (*attentionBackward)(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                            const float* k, const float* v, const TrainAttentionShape& s);
  /** dst[dstOffset + b·dstStride + i] (+)= src[srcOffset + b·srcStride + i], b < blocks, i < len (narrow, concat). */
  void (*copyBlocks)(float* dst, int64_t dstOffset, int64_t dstStride, const float* src, int64_t srcOffset,
                     int64_t srcStride, int64_t blocks, int64_t len, bool accumulate);
  /** AdamW on n values in place (src/train/optimizer.ts adamWUpdate; c1, c2: the bias corrections). */
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weightDecay, double c1, double c2);
  /** Σ x² in float64 on the calling thread (gradient norms: the same sum whatever the thread count). */
  double (*sumSquares)(const float* x, int64_t n);
  /** x *= factor, each product in float64 then rounded (gradient clipping). */
  void (*scale)(float* x, int64_t n, double factor);
};

/** The common shape of a batched attention call (batch_kernels.h attentionSegments). */
struct BatchAttentionArgs {
  int64_t heads, headDimK, headDimV, stride;
  float scale;
};

struct MoeExpertsArgs {
  int64_t tokens, hidden, topK, experts, width;
};

/** Kernels of a batched decode step of several sequences (batch_kernels.h). */
struct BatchKernels {
  void (*attentionSegments)(float* out, const float* q, const float* const* caches, const int32_t* segs, int64_t segments,
                            const BatchAttentionArgs& args);
  void (*moeExperts)(float* out, const float* x, const int32_t* experts, const float* weights, const float* gateUp,
                     const float* down, const MoeExpertsArgs& args);
  /** out [m, n] = x [m, k] · wt, wt a weight transposed to [k, n rounded up to 16] (AVX-512 only, else nullptr). */
  void (*matmulKMajor)(float* out, const float* x, int64_t m, const float* wt, int64_t n, int64_t k);
};

struct Kernels {
  const char* name;
  void (*gemm)(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void (*matmul)(float* out, const float* x, int64_t m, const Weight& w);
  /**
   * matmul that quantizes the activations to int8 where that is faster (AVX-512 VNNI: Q4_K, Q6_K,
   * Q2_K, Q3_K, IQ4_XS, Q4_0, Q8_0, IQ4_NL and Q5_1 with m <= 16 in matvec_vnni.h; all of those and Q5_0 with larger m in
   * gemm_int8.h), or nullptr. Opt-in (FRUGAL_INT8=1): results then differ from ref by the
   * rounding of x to 8 bits, not just by f32 rounding.
   */
  void (*matmulInt8)(float* out, const float* x, int64_t m, const Weight& w);
  /**
   * matmul with int8 activations as llama.cpp rounds them (x per 32 values with an f16 scale for
   * Q4_0, Q5_0, Q8_0, IQ4_NL and Q5_1, per 256 with an f32 scale for the K-quants and IQ4_XS):
   * Q4_0, Q5_0, Q8_0, IQ4_NL, Q5_1, Q4_K, Q6_K, Q3_K, Q2_K and IQ4_XS with m > 16, and the m <= 16 kernels of matmulInt8 except Q4_0
   * with an odd block count (despite the name); or nullptr.
   * The default on levels that have it (FRUGAL_INT8=0 turns it off).
   */
  void (*matmulInt8Prefill)(float* out, const float* x, int64_t m, const Weight& w);
  void (*dequantizeRows)(float* out, const Weight& w, int64_t rowStart, int64_t rowCount);
  void (*embeddingGather)(float* out, const Weight& w, const int32_t* ids, int64_t count);
  void (*rmsNorm)(float* out, const float* x, const float* weight, int64_t rows, int64_t dim, float eps);
  void (*softmax)(float* x, int64_t rows, int64_t cols);
  void (*rope)(float* x, const RopeArgs& args);
  void (*siluMul)(float* out, const float* gate, const float* up, int64_t n);
  void (*add)(float* out, const float* a, const float* b, int64_t n);
  void (*mul)(float* out, const float* a, const float* b, int64_t n);
  void (*axpy)(float* out, float alpha, const float* x, int64_t n);
  void (*topK)(int32_t* outIndices, float* outValues, const float* x, int64_t rows, int64_t cols, int64_t k);
  void (*attention)(float* out, const float* q, const float* k, const float* v, const AttentionArgs& args);
  /** Register-only FMA loop: returns the flops done by this thread in `iterations` rounds. */
  double (*fmaProbe)(int64_t iterations);
  TrainKernels train;
  BatchKernels batch;
};

Kernels kernelsScalar();
Kernels kernelsAvx2();
Kernels kernelsAvx512(bool vnni);

// Shared services implemented in the baseline translation units (pool.cc), called through plain
// functions so that no inline code is shared between translation units built for different CPUs.
typedef void (*RangeFn)(void* ctx, int64_t begin, int64_t end, int thread);
/** Split [0, n) into one contiguous range per thread (at most ceil(n / grain) ranges). */
void parallelStatic(int64_t n, int64_t grain, RangeFn fn, void* ctx);
/** Hand out items of [0, n) one at a time to whichever thread is free. */
void parallelDynamic(int64_t n, RangeFn fn, void* ctx);
/**
 * parallelStatic / parallelDynamic when no other thread is using the pool, else everything on the
 * calling thread at once (no waiting): for kernels that several JavaScript threads call at the same
 * time (data-parallel training's workers), so each keeps its own core busy instead of queueing.
 */
void parallelStaticShared(int64_t n, int64_t grain, RangeFn fn, void* ctx);
void parallelDynamicShared(int64_t n, RangeFn fn, void* ctx);
/** Run fn(ctx, 0, 0, t) on threads t < active (the probes). */
void parallelThreads(int active, RangeFn fn, void* ctx);
int threadCount();
/**
 * Serial mode (nesting count): while on, every parallel job runs on its calling thread only. For
 * callers that are themselves parallel (data-parallel training threads, one per core), so that
 * they do not queue on the one pool and oversubscribe the cores.
 */
void setSerial(bool on);
int currentThread();
/** A per-thread scratch buffer of at least `floats` floats (slot 0..3), 64-byte aligned, grown as needed. */
float* scratch(int slot, size_t floats);

}  // namespace frugal
