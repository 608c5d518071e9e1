// Picks the kernel table: the best level the CPU (and OS) supports, lowered by FRUGAL_SIMD.
#include <cstdlib>
#include <cstring>

#include "cpu.h"
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

namespace frugal {
namespace {

SimdLevel detect() {
#if defined(FRUGAL_EMULATED_AVX512)
  return SIMD_AVX512_VNNI;  // every level runs: AVX-512 through SIMDe (scripts/emulated-avx512.mjs)
#elif defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SIMD_SCALAR;
  bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
  if (!osxsave || !avx) return SIMD_SCALAR;
  unsigned xlo, xhi;
  __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  bool ymmOs = (xlo & 0x6) == 0x6, zmmOs = (xlo & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return SIMD_SCALAR;
  bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  bool vnni = c & (1u << 11);
  if (!(ymmOs && avx2 && fma && f16c && bmi2)) return SIMD_SCALAR;
  if (zmmOs && avx512f && avx512dq && avx512bw && avx512vl) return vnni ? SIMD_AVX512_VNNI : SIMD_AVX512;
  return SIMD_AVX2;
#else
  return SIMD_SCALAR;
#endif
}

}  // namespace

SimdLevel detectedSimd() {
  static SimdLevel level = detect();
  return level;
}

SimdLevel parseSimd(const char* name, SimdLevel fallback) {
  if (!name || !*name) return fallback;
  if (!std::strcmp(name, "scalar")) return SIMD_SCALAR;
  if (!std::strcmp(name, "avx2")) return SIMD_AVX2;
  if (!std::strcmp(name, "avx512")) return SIMD_AVX512;
  if (!std::strcmp(name, "avx512-vnni")) return SIMD_AVX512_VNNI;
  return fallback;
}

const char* simdName(SimdLevel level) {
  switch (level) {
    case SIMD_AVX512_VNNI: return "avx512-vnni";
    case SIMD_AVX512: return "avx512";
    case SIMD_AVX2: return "avx2";
    default: return "scalar";
  }
}

Kernels kernelsFor(SimdLevel level) {
  switch (level) {
    case SIMD_AVX512_VNNI: return kernelsAvx512(true);
    case SIMD_AVX512: return kernelsAvx512(false);
    case SIMD_AVX2: return kernelsAvx2();
    default: return kernelsScalar();
  }
}

}  // namespace frugal
