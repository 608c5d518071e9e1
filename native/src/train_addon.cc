// N-API glue for the training kernels (train_impl.h). Each function takes the same arguments as
// the TypeScript kernel it replaces (src/autograd: crossEntropyKernels, rmsNormKernels,
// swigluKernels, softmaxKernels, ropeKernels, attentionKernels, shapeKernels), so src/autograd/native-kernels.ts
// can put it into the kernel table as is. Every buffer's length is checked against the sizes
// before the kernel runs, so a wrong size throws instead of touching memory out of bounds.
#include <cstring>
#include <string>

#include "napi_args.h"

namespace frugal {
namespace {

/** Args plus length checks: each buffer must hold at least `need` elements. */
struct TrainArgs : Args {
  TrainArgs(napi_env e, napi_callback_info info, size_t expected) : Args(e, info, expected) {}

  size_t length(size_t i) {
    size_t len = 0;
    napi_valuetype vt;
    if (!ok || napi_typeof(env, argv[i], &vt) != napi_ok || vt == napi_undefined || vt == napi_null) return 0;
    napi_get_typedarray_info(env, argv[i], nullptr, &len, nullptr, nullptr, nullptr);
    return len;
  }
  template <typename T>
  T* sized(T* p, size_t i, int64_t need) {
    if (ok && p != nullptr && static_cast<int64_t>(length(i)) < need)
      fail("argument " + std::to_string(i) + " holds " + std::to_string(length(i)) + " elements, needs " + std::to_string(need));
    return ok ? p : nullptr;
  }
  float* f32(size_t i, int64_t need) { return sized(Args::f32(i), i, need); }
  float* f32OrNull(size_t i, int64_t need) { return sized(Args::f32OrNull(i), i, need); }
  double* f64(size_t i, int64_t need) { return sized(Args::f64(i), i, need); }
  int32_t* i32(size_t i, int64_t need) { return sized(Args::i32(i), i, need); }
  int64_t count(size_t i) {
    int64_t v = i64(i);
    if (ok && v < 0) fail("argument " + std::to_string(i) + " must be >= 0");
    return v;
  }
  /** A truthy optional boolean: undefined and null read as false. */
  bool flag(size_t i) {
    napi_valuetype vt = napi_undefined;
    if (ok && i < argc) napi_typeof(env, argv[i], &vt);
    return vt == napi_boolean ? boolean(i) : false;
  }
  double property(size_t i, const char* name) {
    napi_value v;
    double d = 0;
    if (ok && (napi_get_named_property(env, argv[i], name, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok))
      fail(std::string("argument ") + std::to_string(i) + " needs a number ." + name);
    return d;
  }
  bool boolProperty(size_t i, const char* name) {
    napi_value v;
    bool b = false;
    if (ok && (napi_get_named_property(env, argv[i], name, &v) != napi_ok || napi_get_value_bool(env, v, &b) != napi_ok))
      fail(std::string("argument ") + std::to_string(i) + " needs a boolean ." + name);
    return b;
  }
};

const TrainKernels& train() { return activeKernels().train; }

napi_value CrossEntropyForward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 6);
  int64_t rows = a.count(3), vocab = a.count(4);
  int32_t ignoreIndex = static_cast<int32_t>(a.i64(5));
  double* lse = a.f64(0, rows);
  const float* x = a.f32(1, rows * vocab);
  const int32_t* targets = a.i32(2, rows);
  for (int64_t r = 0; a.ok && r < rows; r++) {
    if (targets[r] != ignoreIndex && (targets[r] < 0 || targets[r] >= vocab)) a.fail("target outside the vocabulary");
  }
  if (!a.ok) return undefined(env);
  double total = 0;
  int64_t valid = 0;
  train().crossEntropyForward(lse, x, targets, rows, vocab, ignoreIndex, &total, &valid);
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "total", makeNumber(env, total));
  napi_set_named_property(env, o, "valid", makeNumber(env, static_cast<double>(valid)));
  return o;
}

napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 8);
  int64_t rows = a.count(5), vocab = a.count(6);
  int32_t ignoreIndex = static_cast<int32_t>(a.i64(7));
  float* dx = a.f32(0, rows * vocab);
  double g = a.num(1);
  const float* x = a.f32(2, rows * vocab);
  const double* lse = a.f64(3, rows);
  const int32_t* targets = a.i32(4, rows);
  for (int64_t r = 0; a.ok && r < rows; r++) {
    if (targets[r] != ignoreIndex && (targets[r] < 0 || targets[r] >= vocab)) a.fail("target outside the vocabulary");
  }
  if (a.ok) train().crossEntropyBackward(dx, g, x, lse, targets, rows, vocab, ignoreIndex);
  return undefined(env);
}

napi_value RmsNormForward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 7);
  int64_t rows = a.count(4), dim = a.count(5);
  double eps = a.num(6);
  float* y = a.f32(0, rows * dim);
  float* rstd = a.f32(1, rows);
  const float* x = a.f32(2, rows * dim);
  const float* w = a.f32OrNull(3, dim);
  if (a.ok) train().rmsNormForward(y, rstd, x, w, rows, dim, eps);
  return undefined(env);
}

napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 8);
  int64_t rows = a.count(6), dim = a.count(7);
  float* dx = a.f32OrNull(0, rows * dim);
  float* dw = a.f32OrNull(1, dim);
  const float* dy = a.f32(2, rows * dim);
  const float* x = a.f32(3, rows * dim);
  const float* w = a.f32OrNull(4, dim);
  const float* rstd = a.f32(5, rows);
  if (a.ok) train().rmsNormBackward(dx, dw, dy, x, w, rstd, rows, dim);
  return undefined(env);
}

napi_value SwigluForward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 4);
  int64_t n = a.count(3);
  float* out = a.f32(0, n);
  const float* gate = a.f32(1, n);
  const float* up = a.f32(2, n);
  if (a.ok) train().swigluForward(out, gate, up, n);
  return undefined(env);
}

napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 6);
  int64_t n = a.count(5);
  float* dgate = a.f32OrNull(0, n);
  float* dup = a.f32OrNull(1, n);
  const float* dy = a.f32(2, n);
  const float* gate = a.f32(3, n);
  const float* up = a.f32(4, n);
  if (a.ok) train().swigluBackward(dgate, dup, dy, gate, up, n);
  return undefined(env);
}

napi_value SoftmaxForward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 4);
  int64_t rows = a.count(2), cols = a.count(3);
  float* y = a.f32(0, rows * cols);
  const float* x = a.f32(1, rows * cols);
  if (a.ok) train().softmaxForward(y, x, rows, cols);
  return undefined(env);
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 5);
  int64_t rows = a.count(3), cols = a.count(4);
  float* dx = a.f32(0, rows * cols);
  const float* dy = a.f32(1, rows * cols);
  const float* y = a.f32(2, rows * cols);
  if (a.ok) train().softmaxBackward(dx, dy, y, rows, cols);
  return undefined(env);
}

/** ropeRotate(out, x, cos, sin, tokens, heads, dim, style ('interleaved' | 'neox'), sign, accumulate?). */
napi_value RopeRotate(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 9);
  int64_t tokens = a.count(4), heads = a.count(5), dim = a.count(6);
  char style[16] = {0};
  size_t len = 0;
  if (a.ok && napi_get_value_string_utf8(env, a.argv[7], style, sizeof(style), &len) != napi_ok) a.fail("style must be a string");
  const bool interleaved = std::strcmp(style, "interleaved") == 0;
  if (a.ok && !interleaved && std::strcmp(style, "neox") != 0) a.fail("style must be 'interleaved' or 'neox'");
  if (a.ok && dim % 2 != 0) a.fail("dim must be even");
  float sign = static_cast<float>(a.num(8));
  bool accumulate = a.flag(9);
  float* out = a.f32(0, tokens * heads * dim);
  const float* x = a.f32(1, tokens * heads * dim);
  const float* cs = a.f32(2, tokens * (dim / 2));
  const float* sn = a.f32(3, tokens * (dim / 2));
  if (a.ok) train().ropeRotate(out, x, cs, sn, tokens, heads, dim, interleaved, sign, accumulate);
  return undefined(env);
}

TrainAttentionShape attentionShape(TrainArgs& a, size_t i) {
  TrainAttentionShape s{};
  s.batch = static_cast<int64_t>(a.property(i, "batch"));
  s.seq = static_cast<int64_t>(a.property(i, "seq"));
  s.heads = static_cast<int64_t>(a.property(i, "heads"));
  s.kvHeads = static_cast<int64_t>(a.property(i, "kvHeads"));
  s.headDimK = static_cast<int64_t>(a.property(i, "headDimK"));
  s.headDimV = static_cast<int64_t>(a.property(i, "headDimV"));
  s.scale = static_cast<float>(a.property(i, "scale"));
  s.causal = a.boolProperty(i, "causal");
  if (a.ok && (s.batch < 0 || s.seq < 0 || s.heads < 0 || s.headDimK < 0 || s.headDimV < 0)) a.fail("negative attention size");
  if (a.ok && (s.kvHeads <= 0 || s.heads % s.kvHeads != 0)) a.fail("heads must be a multiple of kvHeads");
  return s;
}

napi_value AttentionForward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 6);
  TrainAttentionShape s = attentionShape(a, 5);
  const int64_t BT = s.batch * s.seq;
  float* out = a.f32(0, BT * s.heads * s.headDimV);
  float* probs = a.f32(1, s.batch * s.heads * s.seq * s.seq);
  const float* q = a.f32(2, BT * s.heads * s.headDimK);
  const float* k = a.f32(3, BT * s.kvHeads * s.headDimK);
  const float* v = a.f32(4, BT * s.kvHeads * s.headDimV);
  if (a.ok) train().attentionForward(out, probs, q, k, v, s);
  return undefined(env);
}

napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 9);
  TrainAttentionShape s = attentionShape(a, 8);
  const int64_t BT = s.batch * s.seq;
  float* dq = a.f32OrNull(0, BT * s.heads * s.headDimK);
  float* dk = a.f32OrNull(1, BT * s.kvHeads * s.headDimK);
  float* dv = a.f32OrNull(2, BT * s.kvHeads * s.headDimV);
  const float* dout = a.f32(3, BT * s.heads * s.headDimV);
  const float* probs = a.f32(4, s.batch * s.heads * s.seq * s.seq);
  const float* q = a.f32(5, BT * s.heads * s.headDimK);
  const float* k = a.f32(6, BT * s.kvHeads * s.headDimK);
  const float* v = a.f32(7, BT * s.kvHeads * s.headDimV);
  if (a.ok) train().attentionBackward(dq, dk, dv, dout, probs, q, k, v, s);
  return undefined(env);
}

/** copyBlocks(dst, dstOffset, dstStride, src, srcOffset, srcStride, blocks, len, accumulate). */
napi_value CopyBlocks(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 9);
  int64_t dstOffset = a.count(1), dstStride = a.count(2), srcOffset = a.count(4), srcStride = a.count(5);
  int64_t blocks = a.count(6), len = a.count(7);
  bool accumulate = a.flag(8);
  const int64_t dstNeed = blocks == 0 ? 0 : dstOffset + (blocks - 1) * dstStride + len;
  const int64_t srcNeed = blocks == 0 ? 0 : srcOffset + (blocks - 1) * srcStride + len;
  float* dst = a.f32(0, dstNeed);
  const float* src = a.f32(3, srcNeed);
  if (a.ok && blocks > 0 && len > 0) train().copyBlocks(dst, dstOffset, dstStride, src, srcOffset, srcStride, blocks, len, accumulate);
  return undefined(env);
}

/** adamw(p, g, m, v, lr, beta1, beta2, eps, weightDecay, c1, c2): n = p.length; g, m, v hold n. */
napi_value Adamw(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 11);
  const int64_t n = static_cast<int64_t>(a.length(0));
  float* p = a.f32(0, n);
  const float* g = a.f32(1, n);
  float* m = a.f32(2, n);
  float* v = a.f32(3, n);
  const double lr = a.num(4), beta1 = a.num(5), beta2 = a.num(6), eps = a.num(7);
  const double weightDecay = a.num(8), c1 = a.num(9), c2 = a.num(10);
  if (a.ok && n > 0) train().adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, c1, c2);
  return undefined(env);
}

/** sumSquares(x): Σ x² in float64. */
napi_value SumSquares(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 1);
  const int64_t n = static_cast<int64_t>(a.length(0));
  const float* x = a.f32(0, n);
  return a.ok ? makeNumber(env, train().sumSquares(x, n)) : undefined(env);
}

/** scaleValues(x, factor): x *= factor. */
napi_value ScaleValues(napi_env env, napi_callback_info info) {
  TrainArgs a(env, info, 2);
  const int64_t n = static_cast<int64_t>(a.length(0));
  float* x = a.f32(0, n);
  const double factor = a.num(1);
  if (a.ok && n > 0) train().scale(x, n, factor);
  return undefined(env);
}

}  // namespace

void registerTrainFunctions(napi_env env, napi_value exports) {
  struct Entry {
    const char* name;
    napi_callback fn;
  } entries[] = {
      {"crossEntropyForward", CrossEntropyForward}, {"crossEntropyBackward", CrossEntropyBackward},
      {"rmsNormForward", RmsNormForward}, {"rmsNormBackward", RmsNormBackward},
      {"swigluForward", SwigluForward}, {"swigluBackward", SwigluBackward},
      {"softmaxForward", SoftmaxForward}, {"softmaxBackward", SoftmaxBackward},
      {"ropeRotate", RopeRotate}, {"attentionForward", AttentionForward}, {"attentionBackward", AttentionBackward},
      {"copyBlocks", CopyBlocks}, {"adamw", Adamw}, {"sumSquares", SumSquares}, {"scaleValues", ScaleValues},
  };
  for (const Entry& e : entries) {
    napi_value fn;
    napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &fn);
    napi_set_named_property(env, exports, e.name, fn);
  }
}

}  // namespace frugal
