// Baseline kernels: no SIMD flags beyond the compiler's defaults, so they run on any CPU.
#define FRUGAL_NS scalar
#include "kernels_impl.h"

namespace frugal {
Kernels kernelsScalar() { return scalar::table("scalar"); }
}  // namespace frugal
