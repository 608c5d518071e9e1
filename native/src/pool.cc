// A persistent thread pool: workers are created once, spin briefly after each job and then sleep
// on a condition variable. The calling thread takes part as thread 0. One job runs at a time.
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define FRUGAL_PAUSE() _mm_pause()
#else
#define FRUGAL_PAUSE() std::this_thread::yield()
#endif

namespace frugal {
namespace {

thread_local int tlsThread = 0;

struct Job {
  RangeFn fn;
  void* ctx;
  int64_t n;
  int64_t grain;
  int mode;  // 0 static, 1 dynamic, 2 per-thread
};

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int t = 1; t < threads_; t++) std::thread([this, t] { work(t); }).detach();
  }

  int threads() const { return threads_; }

  void run(const Job& job) {
    std::lock_guard<std::mutex> one(callMutex_);
    if (threads_ == 1) {
      execute(job, 0);
      return;
    }
    job_ = job;
    next_.store(0, std::memory_order_relaxed);
    remaining_.store(threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    execute(job_, 0);
    // Wait for the workers; yield now and then in case one of them was descheduled (shared CPUs).
    for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; spin++) {
      if (spin < 4000) FRUGAL_PAUSE();
      else std::this_thread::yield();
    }
  }

 private:
  void execute(const Job& job, int t) {
    if (job.mode == 2) {
      if (t < job.n) job.fn(job.ctx, 0, 0, t);
    } else if (job.mode == 0) {
      int64_t parts = (job.n + job.grain - 1) / job.grain;
      if (parts > threads_) parts = threads_;
      if (t >= parts) return;
      // Contiguous ranges whose boundaries are multiples of grain.
      int64_t units = (job.n + job.grain - 1) / job.grain;
      int64_t begin = units * t / parts * job.grain;
      int64_t end = units * (t + 1) / parts * job.grain;
      if (end > job.n) end = job.n;
      if (begin < end) job.fn(job.ctx, begin, end, t);
    } else {
      for (;;) {
        int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
        if (i >= job.n) break;
        job.fn(job.ctx, i, i + 1, t);
      }
    }
  }

  void work(int t) {
    tlsThread = t;
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = generation_.load(std::memory_order_acquire);
      for (int spin = 0; g == seen && spin < 4000; spin++) {
        FRUGAL_PAUSE();
        g = generation_.load(std::memory_order_acquire);
      }
      if (g == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      execute(job_, t);
      remaining_.fetch_sub(1, std::memory_order_release);
    }
  }

  const int threads_;
  std::mutex callMutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int64_t> next_{0};
  Job job_{};
};

int configuredThreads() {
  const char* env = std::getenv("FRUGAL_THREADS");
  if (env && *env) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 256) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw > 256 ? 256 : hw);
}

Pool& pool() {
  // Never destroyed: detached workers may still be asleep in it when the process exits.
  static Pool* instance = new Pool(configuredThreads());
  return *instance;
}

struct Scratch {
  float* data[4] = {nullptr, nullptr, nullptr, nullptr};
  size_t size[4] = {0, 0, 0, 0};
  ~Scratch() {
    for (float* p : data) std::free(p);
  }
};
thread_local Scratch tlsScratch;

}  // namespace

void parallelStatic(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || pool().threads() == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  pool().run(Job{fn, ctx, n, grain, 0});
}

void parallelDynamic(int64_t n, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (n == 1 || pool().threads() == 1) {
    for (int64_t i = 0; i < n; i++) fn(ctx, i, i + 1, 0);
    return;
  }
  pool().run(Job{fn, ctx, n, 1, 1});
}

void parallelThreads(int active, RangeFn fn, void* ctx) {
  if (active <= 1 || pool().threads() == 1) {
    fn(ctx, 0, 0, 0);
    return;
  }
  pool().run(Job{fn, ctx, active, 1, 2});
}

int threadCount() { return pool().threads(); }

int currentThread() { return tlsThread; }

float* scratch(int slot, size_t floats) {
  Scratch& s = tlsScratch;
  if (s.size[slot] < floats) {
    std::free(s.data[slot]);
    size_t grown = floats + floats / 4 + 64;
    size_t bytes = (grown * sizeof(float) + 63) / 64 * 64;
    s.data[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!s.data[slot]) std::abort();
    s.size[slot] = grown;
  }
  return s.data[slot];
}

}  // namespace frugal
