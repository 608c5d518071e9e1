#pragma once
#include "kernels.h"

namespace frugal {

enum SimdLevel : int { SIMD_SCALAR = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2, SIMD_AVX512_VNNI = 3 };

SimdLevel detectedSimd();
/** The level named by `name` ('scalar' | 'avx2' | 'avx512' | 'avx512-vnni'), or fallback when unknown. */
SimdLevel parseSimd(const char* name, SimdLevel fallback);
const char* simdName(SimdLevel level);
Kernels kernelsFor(SimdLevel level);

}  // namespace frugal
