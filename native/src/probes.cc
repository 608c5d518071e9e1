// Machine probes for the benchmark: FMA peak (register-only loop) and memory read bandwidth.
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "probes.h"

namespace frugal {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct FmaJob {
  const Kernels* kernels;
  int64_t iterations;
  double flops[256];
};

void fmaThread(void* ctx, int64_t, int64_t, int t) {
  FmaJob& j = *static_cast<FmaJob*>(ctx);
  j.flops[t] = j.kernels->fmaProbe(j.iterations);
}

struct ReadJob {
  const uint64_t* data;
  int64_t words;
  int threads;
  uint64_t sums[256];
};

void readThread(void* ctx, int64_t, int64_t, int t) {
  ReadJob& j = *static_cast<ReadJob*>(ctx);
  const int64_t begin = j.words * t / j.threads, end = j.words * (t + 1) / j.threads;
  uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int l = 0; l < 8; l++) s[l] += j.data[i + l];
  for (; i < end; i++) s[0] += j.data[i];
  j.sums[t] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

}  // namespace

ProbeResult probeFma(const Kernels& kernels, int threads, int64_t iterations) {
  if (threads > threadCount()) threads = threadCount();
  FmaJob job{&kernels, iterations, {}};
  const double start = now();
  parallelThreads(threads, fmaThread, &job);
  const double seconds = now() - start;
  double flops = 0;
  for (int t = 0; t < threads; t++) flops += job.flops[t];
  return {seconds, flops};
}

ProbeResult probeRead(int64_t bytes, int threads, int repeats) {
  if (threads > threadCount()) threads = threadCount();
  const int64_t words = bytes / 8;
  uint64_t* data = static_cast<uint64_t*>(std::aligned_alloc(64, static_cast<size_t>(words * 8)));
  if (!data) return {0, 0};
  std::memset(data, 1, static_cast<size_t>(words * 8));
  ReadJob job{data, words, threads, {}};
  parallelThreads(threads, readThread, &job);  // warm-up (page faults already taken by memset)
  double best = 1e30;
  for (int r = 0; r < repeats; r++) {
    const double start = now();
    parallelThreads(threads, readThread, &job);
    const double seconds = now() - start;
    if (seconds < best) best = seconds;
  }
  uint64_t check = 0;
  for (int t = 0; t < threads; t++) check += job.sums[t];
  std::free(data);
  return {best, static_cast<double>(words * 8) + static_cast<double>(check & 0)};
}

}  // namespace frugal
