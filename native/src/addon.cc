// N-API glue: unpacks typed arrays and numbers and calls the kernel table of the current SIMD
// level. Shapes are validated in TypeScript (src/tensor/native.ts) before every call; here we
// only check that each argument has the expected JavaScript type.
#define NAPI_VERSION 8
#include <node_api.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cpu.h"
#include "fdlibm_exp.h"
#include "kernels.h"
#include "mmap.h"
#include "napi_args.h"
#include "probes.h"

namespace frugal {
namespace {

/** Where activations may be rounded to int8: nowhere, in prefill-shaped matmuls (default), or in every matmul. */
enum Int8Mode : int { INT8_OFF = 0, INT8_PREFILL = 1, INT8_ALL = 2 };
const char* const INT8_NAMES[] = {"off", "prefill", "all"};

SimdLevel currentLevel = SIMD_SCALAR;
Int8Mode int8Wanted = INT8_PREFILL;
Kernels current;

/** The int8 mode in effect at a level (off where the level has no int8 kernels). */
Int8Mode int8InEffect(const Kernels& k) {
  if (int8Wanted == INT8_ALL && k.matmulInt8) return INT8_ALL;
  if (int8Wanted != INT8_OFF && k.matmulInt8Prefill) return INT8_PREFILL;
  return INT8_OFF;
}

void selectLevel(SimdLevel wanted) {
  SimdLevel best = detectedSimd();
  if (wanted > best) wanted = best;
  currentLevel = wanted;
  current = kernelsFor(wanted);
  const Int8Mode mode = int8InEffect(current);
  if (mode == INT8_ALL) current.matmul = current.matmulInt8;
  else if (mode == INT8_PREFILL) current.matmul = current.matmulInt8Prefill;
}

/** FRUGAL_INT8 / setInt8 values: 0 | off, prefill, 1 | all; anything else keeps the fallback. */
Int8Mode parseInt8(const char* name, Int8Mode fallback) {
  if (!name || !*name) return fallback;
  if (std::strcmp(name, "0") == 0 || std::strcmp(name, "off") == 0) return INT8_OFF;
  if (std::strcmp(name, "prefill") == 0) return INT8_PREFILL;
  if (std::strcmp(name, "1") == 0 || std::strcmp(name, "all") == 0) return INT8_ALL;
  return fallback;
}

napi_value Gemm(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  bool ta = a.boolean(0), tb = a.boolean(1);
  int64_t m = a.i64(2), n = a.i64(3), k = a.i64(4);
  float alpha = static_cast<float>(a.num(5));
  const float* A = a.f32(6);
  int64_t lda = a.i64(7);
  const float* B = a.f32(8);
  int64_t ldb = a.i64(9);
  float beta = static_cast<float>(a.num(10));
  float* C = a.f32(11);
  int64_t ldc = a.i64(12);
  if (a.ok) current.gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  return undefined(env);
}

napi_value Matmul(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  float* out = a.f32(0);
  const float* x = a.f32(1);
  int64_t m = a.i64(2);
  Weight w = a.weight(3);
  if (a.ok) current.matmul(out, x, m, w);
  return undefined(env);
}

napi_value DequantizeRows(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  float* out = a.f32(0);
  Weight w = a.weight(1);
  int64_t start = a.i64(6), count = a.i64(7);
  if (a.ok) current.dequantizeRows(out, w, start, count);
  return undefined(env);
}

napi_value EmbeddingGather(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  float* out = a.f32(0);
  Weight w = a.weight(1);
  const int32_t* ids = a.i32(6);
  int64_t count = a.i64(7);
  if (a.ok) current.embeddingGather(out, w, ids, count);
  return undefined(env);
}

napi_value RmsNorm(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float* out = a.f32(0);
  const float* x = a.f32(1);
  const float* weight = a.f32(2);
  int64_t rows = a.i64(3), dim = a.i64(4);
  float eps = static_cast<float>(a.num(5));
  if (a.ok) current.rmsNorm(out, x, weight, rows, dim, eps);
  return undefined(env);
}

napi_value Softmax(napi_env env, napi_callback_info info) {
  Args a(env, info, 3);
  float* x = a.f32(0);
  int64_t rows = a.i64(1), cols = a.i64(2);
  if (a.ok) current.softmax(x, rows, cols);
  return undefined(env);
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  float* x = a.f32(0);
  RopeArgs r{};
  r.tokens = a.i64(1);
  r.heads = a.i64(2);
  r.tokenStride = a.i64(3);
  r.headStride = a.i64(4);
  r.offset = a.i64(5);
  r.ropeDim = a.i64(6);
  r.positions = a.i32(7);
  r.invFreq = a.f32(8);
  r.neox = a.boolean(9);
  r.attentionFactor = static_cast<float>(a.num(10));
  if (a.ok) current.rope(x, r);
  return undefined(env);
}

napi_value Elementwise(napi_env env, napi_callback_info info, int op) {
  Args a(env, info, 4);
  float* out = a.f32(0);
  if (op == 3) {
    float alpha = static_cast<float>(a.num(1));
    const float* x = a.f32(2);
    int64_t n = a.i64(3);
    if (a.ok) current.axpy(out, alpha, x, n);
    return undefined(env);
  }
  const float* x = a.f32(1);
  const float* y = a.f32(2);
  int64_t n = a.i64(3);
  if (!a.ok) return undefined(env);
  if (op == 0) current.siluMul(out, x, y, n);
  if (op == 1) current.add(out, x, y, n);
  if (op == 2) current.mul(out, x, y, n);
  return undefined(env);
}
napi_value SiluMul(napi_env env, napi_callback_info info) { return Elementwise(env, info, 0); }
napi_value Add(napi_env env, napi_callback_info info) { return Elementwise(env, info, 1); }
napi_value Mul(napi_env env, napi_callback_info info) { return Elementwise(env, info, 2); }
napi_value Axpy(napi_env env, napi_callback_info info) { return Elementwise(env, info, 3); }

napi_value TopK(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  int32_t* idx = a.i32(0);
  float* val = a.f32(1);
  const float* x = a.f32(2);
  int64_t rows = a.i64(3), cols = a.i64(4), k = a.i64(5);
  if (a.ok) current.topK(idx, val, x, rows, cols, k);
  return undefined(env);
}

napi_value Attention(napi_env env, napi_callback_info info) {
  Args a(env, info, 15);
  float* out = a.f32(0);
  const float* q = a.f32(1);
  const float* k = a.f32(2);
  const float* v = a.f32(3);
  AttentionArgs p{};
  p.queries = a.i64(4);
  p.heads = a.i64(5);
  p.kvHeads = a.i64(6);
  p.headDimK = a.i64(7);
  p.headDimV = a.i64(8);
  p.startPos = a.i64(9);
  p.scale = static_cast<float>(a.num(10));
  p.kTokenStride = a.i64(11);
  p.kHeadStride = a.i64(12);
  p.vTokenStride = a.i64(13);
  p.vHeadStride = a.i64(14);
  if (a.ok) current.attention(out, q, k, v, p);
  return undefined(env);
}

napi_value makeString(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "simd", makeString(env, simdName(currentLevel)));
  napi_set_named_property(env, o, "detected", makeString(env, simdName(detectedSimd())));
  napi_set_named_property(env, o, "threads", makeNumber(env, threadCount()));
  napi_set_named_property(env, o, "lastDtype", makeNumber(env, DT_LAST));
  napi_set_named_property(env, o, "int8", makeString(env, INT8_NAMES[int8InEffect(kernelsFor(currentLevel))]));
  return o;
}

/**
 * setInt8(mode): where int8 activations may be used ('off' | 'prefill' | 'all', see
 * Kernels::matmulInt8Prefill and matmulInt8); returns the mode in effect at the current level.
 */
napi_value SetInt8(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  char name[16] = {0};
  size_t len = 0;
  if (a.ok && napi_get_value_string_utf8(env, a.argv[0], name, sizeof(name), &len) != napi_ok) a.fail("setInt8 needs a string");
  if (!a.ok) return undefined(env);
  const int unknown = -1;
  const int mode = parseInt8(name, static_cast<Int8Mode>(unknown));
  if (mode == unknown || std::strcmp(name, INT8_NAMES[mode]) != 0) {
    a.fail(std::string("unknown int8 mode '") + name + "' (off | prefill | all)");
    return undefined(env);
  }
  int8Wanted = static_cast<Int8Mode>(mode);
  selectLevel(currentLevel);
  return makeString(env, INT8_NAMES[int8InEffect(current)]);
}

/**
 * attentionSegments(out, q, caches, segs, segments, heads, headDimK, headDimV, stride, scale):
 * caches is an Array of one Float32Array per segment (batch_kernels.h).
 */
napi_value AttentionSegments(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  float* out = a.f32(0);
  const float* q = a.f32(1);
  const int32_t* segs = a.i32(3);
  const int64_t segments = a.i64(4);
  BatchAttentionArgs p{a.i64(5), a.i64(6), a.i64(7), a.i64(8), static_cast<float>(a.num(9))};
  if (!a.ok) return undefined(env);
  std::vector<const float*> caches(static_cast<size_t>(segments < 0 ? 0 : segments));
  for (int64_t i = 0; i < segments && a.ok; i++) {
    napi_value element;
    napi_get_element(env, a.argv[2], static_cast<uint32_t>(i), &element);
    napi_typedarray_type type;
    size_t length;
    void* data = nullptr;
    bool isTyped = false;
    napi_is_typedarray(env, element, &isTyped);
    if (!isTyped || napi_get_typedarray_info(env, element, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
      a.fail("argument 2 must be an Array of Float32Array");
    }
    caches[static_cast<size_t>(i)] = static_cast<const float*>(data);
  }
  if (a.ok) current.batch.attentionSegments(out, q, caches.data(), segs, segments, p);
  return undefined(env);
}

/** Doubles at a time for the sampler's exponentials at the active SIMD level (fdlibm_exp.h expShifted). */
int expLanes() { return currentLevel >= SIMD_AVX512 ? 8 : currentLevel == SIMD_AVX2 ? 4 : 1; }

/** The arguments expShifted and softmaxBuckets begin with: the weights out, the logits, their count, the shift and the scale. */
struct ExpArgs {
  double* out;
  const float* z;
  int64_t n;
  double shift, scale;
};
ExpArgs expArgs(Args& a) { return ExpArgs{a.f64(0), a.f32(1), a.i64(2), a.num(3), a.num(4)}; }

/**
 * expShifted(out, z, n, shift, scale, prefix?): out[i] = Math.exp((z[i] - shift) * scale), bit for
 * bit; returns their sum in index order, and fills prefix with the running sum at each 64-entry
 * block's end when given (fdlibm_exp.h expShiftedSum).
 */
napi_value ExpShifted(napi_env env, napi_callback_info info) {
  Args a(env, info, 5);
  const ExpArgs e = expArgs(a);
  double* prefix = a.argc > 5 ? static_cast<double*>(a.typed(5, napi_float64_array, "Float64Array or undefined", true)) : nullptr;
  return makeNumber(env, a.ok ? expShiftedSum(e.out, e.z, e.n, e.shift, e.scale, expLanes(), prefix) : 0.0);
}

/** softmaxBuckets(full, z, n, m, invT, buckets, bucket, mass): top-p's weights and buckets (fdlibm_exp.h); returns the total. */
napi_value SoftmaxBuckets(napi_env env, napi_callback_info info) {
  Args a(env, info, 8);
  const ExpArgs e = expArgs(a);
  const int64_t buckets = a.i64(5);
  uint16_t* bucket = a.u16(6);
  double* mass = a.f64(7);
  return makeNumber(env, a.ok ? softmaxBuckets(e.z, e.out, e.n, e.shift, e.scale, expLanes(), bucket, mass, buckets) : 0.0);
}

/** argmaxLogits(z, n): the first largest index, -1 for none, -2 - i for a NaN at i (fdlibm_exp.h). */
napi_value ArgmaxLogits(napi_env env, napi_callback_info info) {
  Args a(env, info, 2);
  const float* z = a.f32(0);
  const int64_t n = a.i64(1);
  return makeNumber(env, static_cast<double>(a.ok ? argmaxLogits(z, n) : -1));
}

/** matmulKMajor(out, x, m, wt, n, k) (batch_kernels.h); false where the SIMD level has no such kernel. */
napi_value MatmulKMajor(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  float* out = a.f32(0);
  const float* x = a.f32(1);
  const int64_t m = a.i64(2);
  const float* wt = a.f32(3);
  const int64_t n = a.i64(4), k = a.i64(5);
  const bool has = current.batch.matmulKMajor != nullptr;
  if (a.ok && has) current.batch.matmulKMajor(out, x, m, wt, n, k);
  napi_value result;
  napi_get_boolean(env, has, &result);
  return result;
}

/** moeExperts(out, x, experts, weights, gateUp, down, tokens, hidden, topK, nExperts, width) (batch_kernels.h). */
napi_value MoeExperts(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  float* out = a.f32(0);
  const float* x = a.f32(1);
  const int32_t* experts = a.i32(2);
  const float* weights = a.f32(3);
  const float* gateUp = a.f32(4);
  const float* down = a.f32(5);
  MoeExpertsArgs p{a.i64(6), a.i64(7), a.i64(8), a.i64(9), a.i64(10)};
  if (a.ok) current.batch.moeExperts(out, x, experts, weights, gateUp, down, p);
  return undefined(env);
}

/** setSerial(on): nested on/off of serial mode (every kernel on its calling thread; see kernels.h). */
napi_value SetSerial(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  bool on = a.boolean(0);
  if (!a.ok) return undefined(env);
  setSerial(on);
  return undefined(env);
}

/** setSimd(name): switch to that level (capped at what the CPU supports); returns the level now in use. */
napi_value SetSimd(napi_env env, napi_callback_info info) {
  Args a(env, info, 1);
  char name[32] = {0};
  size_t len = 0;
  if (a.ok && napi_get_value_string_utf8(env, a.argv[0], name, sizeof(name), &len) != napi_ok) a.fail("setSimd needs a string");
  if (!a.ok) return undefined(env);
  SimdLevel wanted = parseSimd(name, SIMD_AVX512_VNNI);
  if (std::strcmp(name, simdName(wanted)) != 0) {
    a.fail(std::string("unknown SIMD level '") + name + "' (scalar | avx2 | avx512 | avx512-vnni)");
    return undefined(env);
  }
  selectLevel(wanted);
  return makeString(env, simdName(currentLevel));
}

napi_value ProbeFma(napi_env env, napi_callback_info info) {
  Args a(env, info, 2);
  int threads = static_cast<int>(a.i64(0));
  int64_t iterations = a.i64(1);
  if (!a.ok) return undefined(env);
  ProbeResult r = probeFma(current, threads, iterations);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "seconds", makeNumber(env, r.seconds));
  napi_set_named_property(env, o, "flops", makeNumber(env, r.amount));
  return o;
}

napi_value ProbeRead(napi_env env, napi_callback_info info) {
  Args a(env, info, 3);
  int64_t bytes = a.i64(0);
  int threads = static_cast<int>(a.i64(1));
  int repeats = static_cast<int>(a.i64(2));
  if (!a.ok) return undefined(env);
  ProbeResult r = probeRead(bytes, threads, repeats);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "seconds", makeNumber(env, r.seconds));
  napi_set_named_property(env, o, "bytes", makeNumber(env, r.amount));
  return o;
}

napi_value Init(napi_env env, napi_value exports) {
  // Once per process: worker threads that load the addon again share the same kernel table and pool.
  static std::once_flag configured;
  std::call_once(configured, [] {
    int8Wanted = parseInt8(std::getenv("FRUGAL_INT8"), INT8_PREFILL);
    selectLevel(parseSimd(std::getenv("FRUGAL_SIMD"), SIMD_AVX512_VNNI));
  });
  struct Entry {
    const char* name;
    napi_callback fn;
  } entries[] = {
      {"gemm", Gemm}, {"matmul", Matmul}, {"dequantizeRows", DequantizeRows}, {"embeddingGather", EmbeddingGather},
      {"rmsNorm", RmsNorm}, {"softmax", Softmax}, {"rope", Rope}, {"siluMul", SiluMul}, {"add", Add}, {"mul", Mul},
      {"axpy", Axpy}, {"topK", TopK}, {"attention", Attention}, {"attentionSegments", AttentionSegments}, {"moeExperts", MoeExperts}, {"expShifted", ExpShifted}, {"softmaxBuckets", SoftmaxBuckets}, {"argmaxLogits", ArgmaxLogits}, {"matmulKMajor", MatmulKMajor}, {"info", Info}, {"setSimd", SetSimd}, {"setInt8", SetInt8}, {"setSerial", SetSerial},
      {"probeFma", ProbeFma}, {"probeRead", ProbeRead}, {"mapFile", MapFile},
  };
  for (const Entry& e : entries) {
    napi_value fn;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &fn);
    napi_set_named_property(env, exports, e.name, fn);
  }
  registerTrainFunctions(env, exports);
  return exports;
}

}  // namespace

const Kernels& activeKernels() { return current; }

}  // namespace frugal

NAPI_MODULE_INIT() { return frugal::Init(env, exports); }
