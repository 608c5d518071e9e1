// AVX-512 (F/BW/DQ/VL) kernels; only called when CPUID and XGETBV say the CPU and OS support them.
#define FRUGAL_NS avx512
#ifndef FRUGAL_MR
#define FRUGAL_MR 8
#endif
#include "kernels_impl.h"

namespace frugal {
Kernels kernelsAvx512(bool vnni) {
#if defined(__AVX512F__)
  Kernels t = avx512::table(vnni ? "avx512-vnni" : "avx512");
  if (vnni) {
    t.matmulInt8 = avx512::matmulVnniEntry();
    t.matmulInt8Prefill = avx512::matmulVnniPrefillEntry();
  }
  return t;
#else
  (void)vnni;
  return kernelsScalar();
#endif
}
}  // namespace frugal
