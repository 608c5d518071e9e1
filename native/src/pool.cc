// A persistent thread pool: workers are created once, spin briefly after each job and then sleep
// on a condition variable. The calling thread takes part as thread 0. One job runs at a time;
// its chunks go to whichever threads are running (see Pool).
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

/**
 * Static and dynamic jobs are cut into chunks that any thread claims from a shared counter, and
 * the caller returns as soon as every chunk is done: a worker that is asleep or descheduled (a
 * busy machine) never holds the caller up; the caller simply runs more chunks itself. The counter
 * carries the job's generation in its high 32 bits, so a worker that wakes up late can never
 * claim a chunk of a job that has already finished. Per-thread jobs (the probes) still wait for
 * every worker.
 */
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int t = 1; t < threads_; t++) std::thread([this, t] { work(t); }).detach();
  }

  int threads() const { return threads_; }

  void run(const Job& job) {
    std::lock_guard<std::mutex> one(callMutex_);
    runLocked(job);
  }

  /** Runs the job when no other thread is using the pool; false (nothing run) when one is. */
  bool tryRun(const Job& job) {
    std::unique_lock<std::mutex> one(callMutex_, std::try_to_lock);
    if (!one.owns_lock()) return false;
    runLocked(job);
    return true;
  }

 private:
  void runLocked(const Job& job) {
    if (threads_ == 1) {
      if (job.mode == 2) {
        if (0 < job.n) job.fn(job.ctx, 0, 0, 0);
        return;
      }
      for (int64_t c = 0, chunks = chunkCount(job); c < chunks; c++) runChunk(job, c, chunks, 0);
      return;
    }
    const uint64_t gen = (generation_.load(std::memory_order_relaxed) + 1) & 0xffffffffu;
    const int64_t chunks = job.mode == 2 ? 0 : chunkCount(job);
    remaining_.store(threads_ - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    state_.store(gen << 32, std::memory_order_release);  // before the fields: whoever sees them can claim
    publish(job, gen, chunks);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    if (job.mode == 2) {
      if (0 < job.n) job.fn(job.ctx, 0, 0, 0);
      waitFor([&] { return remaining_.load(std::memory_order_acquire) == 0; });
      return;
    }
    claimChunks(job, gen, chunks, 0);
    waitFor([&] { return done_.load(std::memory_order_acquire) == chunks; });
  }

  struct Snapshot {
    Job job;
    uint64_t gen;
    int64_t chunks;
  };

  template <class Done>
  static void waitFor(Done done) {
    // Yield now and then in case a worker holding a chunk was descheduled (shared CPUs).
    for (int spin = 0; !done(); spin++) {
      if (spin < 4000) FRUGAL_PAUSE();
      else std::this_thread::yield();
    }
  }

  /** Chunks of a static job: up to 4 per thread, contiguous, boundaries at multiples of grain. */
  int64_t chunkCount(const Job& job) const {
    if (job.mode == 1) return job.n;
    const int64_t units = (job.n + job.grain - 1) / job.grain;
    const int64_t most = 4 * static_cast<int64_t>(threads_);
    return units < most ? units : most;
  }

  static void runChunk(const Job& job, int64_t c, int64_t chunks, int t) {
    if (job.mode == 1) {
      job.fn(job.ctx, c, c + 1, t);
      return;
    }
    const int64_t units = (job.n + job.grain - 1) / job.grain;
    const int64_t begin = units * c / chunks * job.grain;
    int64_t end = units * (c + 1) / chunks * job.grain;
    if (end > job.n) end = job.n;
    if (begin < end) job.fn(job.ctx, begin, end, t);
  }

  void claimChunks(const Job& job, uint64_t gen, int64_t chunks, int t) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((s >> 32) != gen) return;
      const int64_t c = static_cast<int64_t>(s & 0xffffffffu);
      if (c >= chunks) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      runChunk(job, c, chunks, t);
      done_.fetch_add(1, std::memory_order_release);
      s = state_.load(std::memory_order_acquire);
    }
  }

  // The job's fields behind a sequence lock: a worker reads a consistent copy, tagged with its generation.
  void publish(const Job& job, uint64_t gen, int64_t chunks) {
    seq_.fetch_add(1, std::memory_order_acq_rel);  // odd: being written
    fn_.store(job.fn, std::memory_order_relaxed);
    ctx_.store(job.ctx, std::memory_order_relaxed);
    n_.store(job.n, std::memory_order_relaxed);
    grain_.store(job.grain, std::memory_order_relaxed);
    mode_.store(job.mode, std::memory_order_relaxed);
    gen_.store(gen, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    seq_.fetch_add(1, std::memory_order_release);  // even: complete
  }

  Snapshot snapshot() {
    for (;;) {
      const uint64_t before = seq_.load(std::memory_order_acquire);
      if (before & 1) {
        FRUGAL_PAUSE();
        continue;
      }
      Snapshot s{Job{fn_.load(std::memory_order_relaxed), ctx_.load(std::memory_order_relaxed), n_.load(std::memory_order_relaxed),
                     grain_.load(std::memory_order_relaxed), mode_.load(std::memory_order_relaxed)},
                 gen_.load(std::memory_order_relaxed), chunks_.load(std::memory_order_relaxed)};
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == before) return s;
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
      }
      // The newest published job (possibly newer than the generation that woke us).
      const Snapshot s = snapshot();
      seen = s.gen;
      if (s.job.mode == 2) {
        if (t < s.job.n) s.job.fn(s.job.ctx, 0, 0, t);
        remaining_.fetch_sub(1, std::memory_order_release);
      } else {
        claimChunks(s.job, s.gen, s.chunks, t);
      }
    }
  }

  const int threads_;
  std::mutex callMutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<uint64_t> state_{0};
  std::atomic<uint64_t> seq_{0};
  std::atomic<RangeFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int64_t> n_{0}, grain_{1}, chunks_{0};
  std::atomic<int> mode_{0};
  std::atomic<uint64_t> gen_{0};
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

/** > 0 while some caller asked for serial kernels (setSerial): every job then runs on its calling thread. */
std::atomic<int> serialDepth{0};

bool serial() { return serialDepth.load(std::memory_order_relaxed) > 0; }

}  // namespace

void setSerial(bool on) {
  if (on) serialDepth.fetch_add(1, std::memory_order_relaxed);
  else if (serialDepth.load(std::memory_order_relaxed) > 0) serialDepth.fetch_sub(1, std::memory_order_relaxed);
}

void parallelStatic(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || serial() || pool().threads() == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  pool().run(Job{fn, ctx, n, grain, 0});
}

void parallelDynamic(int64_t n, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (n == 1 || serial() || pool().threads() == 1) {
    for (int64_t i = 0; i < n; i++) fn(ctx, i, i + 1, 0);
    return;
  }
  pool().run(Job{fn, ctx, n, 1, 1});
}

void parallelStaticShared(int64_t n, int64_t grain, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || serial() || pool().threads() == 1 || !pool().tryRun(Job{fn, ctx, n, grain, 0})) fn(ctx, 0, n, 0);
}

void parallelDynamicShared(int64_t n, RangeFn fn, void* ctx) {
  if (n <= 0) return;
  if (n == 1 || serial() || pool().threads() == 1 || !pool().tryRun(Job{fn, ctx, n, 1, 1})) {
    for (int64_t i = 0; i < n; i++) fn(ctx, i, i + 1, 0);
  }
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
