// The argument reader shared by the N-API glue files (addon.cc, train_addon.cc): unpacks typed
// arrays and numbers, throwing a TypeError (once) when an argument has the wrong JavaScript type.
#pragma once
#define NAPI_VERSION 8
#include <node_api.h>

#include <cstdint>
#include <string>

#include "kernels.h"

namespace frugal {

/** The kernel table of the SIMD level in use (addon.cc). */
const Kernels& activeKernels();

/** Adds the training kernels (train_addon.cc) to the addon's exports. */
void registerTrainFunctions(napi_env env, napi_value exports);

namespace {

struct Args {
  napi_env env;
  napi_value argv[16];
  size_t argc = 16;
  bool ok = true;

  Args(napi_env e, napi_callback_info info, size_t expected) : env(e) {
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < expected) {
      fail("expected " + std::to_string(expected) + " arguments");
    }
  }

  void fail(const std::string& message) {
    if (ok) napi_throw_type_error(env, nullptr, ("frugal native: " + message).c_str());
    ok = false;
  }

  double num(size_t i) {
    double v = 0;
    if (ok && napi_get_value_double(env, argv[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a number");
    return v;
  }
  int64_t i64(size_t i) { return static_cast<int64_t>(num(i)); }
  bool boolean(size_t i) {
    bool v = false;
    if (ok && napi_get_value_bool(env, argv[i], &v) != napi_ok) fail("argument " + std::to_string(i) + " must be a boolean");
    return v;
  }
  void* typed(size_t i, napi_typedarray_type want, const char* what, bool optional = false) {
    if (!ok) return nullptr;
    napi_valuetype vt;
    napi_typeof(env, argv[i], &vt);
    if (optional && (vt == napi_undefined || vt == napi_null)) return nullptr;
    bool isTyped = false;
    napi_is_typedarray(env, argv[i], &isTyped);
    napi_typedarray_type type;
    size_t length;
    void* data = nullptr;
    if (!isTyped || napi_get_typedarray_info(env, argv[i], &type, &length, &data, nullptr, nullptr) != napi_ok || type != want) {
      fail("argument " + std::to_string(i) + " must be a " + what);
      return nullptr;
    }
    return data;
  }
  float* f32(size_t i) { return static_cast<float*>(typed(i, napi_float32_array, "Float32Array")); }
  float* f32OrNull(size_t i) { return static_cast<float*>(typed(i, napi_float32_array, "Float32Array or null", true)); }
  double* f64(size_t i) { return static_cast<double*>(typed(i, napi_float64_array, "Float64Array")); }
  const uint8_t* u8(size_t i) { return static_cast<const uint8_t*>(typed(i, napi_uint8_array, "Uint8Array")); }
  int32_t* i32(size_t i) { return static_cast<int32_t*>(typed(i, napi_int32_array, "Int32Array")); }
  uint16_t* u16(size_t i) { return static_cast<uint16_t*>(typed(i, napi_uint16_array, "Uint16Array")); }

  /** A weight from (dtype, rows, cols, data, blockScales) at argv[i..i+4]. */
  Weight weight(size_t i) {
    Weight w{};
    w.dtype = static_cast<int>(i64(i));
    w.rows = i64(i + 1);
    w.cols = i64(i + 2);
    w.data = u8(i + 3);
    w.blockScales = static_cast<const float*>(typed(i + 4, napi_float32_array, "Float32Array or undefined", true));
    if (ok && (w.dtype < 0 || w.dtype > DT_LAST)) fail("unknown weight dtype code " + std::to_string(w.dtype));
    if (ok && w.dtype == DT_FP8 && !w.blockScales) fail("fp8 weights need block scales");
    return w;
  }
};

napi_value makeNumber(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

}  // namespace
}  // namespace frugal
