#pragma once
#include "kernels.h"

namespace frugal {

struct ProbeResult {
  double seconds;
  double amount;  // flops or bytes
};

ProbeResult probeFma(const Kernels& kernels, int threads, int64_t iterations);
/** Best of `repeats` timed parallel sums over a freshly allocated `bytes` buffer. */
ProbeResult probeRead(int64_t bytes, int threads, int repeats);

}  // namespace frugal
