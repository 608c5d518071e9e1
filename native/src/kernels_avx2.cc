// AVX2 + FMA + F16C kernels (built with -mavx2 -mfma -mf16c; only called when CPUID says so).
#define FRUGAL_NS avx2
#include "kernels_impl.h"

namespace frugal {
Kernels kernelsAvx2() {
#if defined(__AVX2__)
  Kernels t = avx2::table("avx2");
  t.matmulInt8Prefill = avx2::matmulInt8Avx2Entry();
  return t;
#else
  return kernelsScalar();
#endif
}
}  // namespace frugal
