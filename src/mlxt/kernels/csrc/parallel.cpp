#include "parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace mlxt {
namespace {

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return int(workers_.size()) + 1; }

  void run(int64_t tasks, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> serial(run_mutex_);  // one parallel_for at a time
    job_ = &fn;
    tasks_ = tasks;
    next_.store(0);
    busy_.store(int(workers_.size()));
    generation_.fetch_add(1);  // publishes the job to spinning workers, no lock taken
    if (sleepers_.load() > 0) {  // a worker that stopped spinning waits on wake_
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    work();
    if (!spin_until([this] { return busy_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      waiting_.store(true);
      done_.wait(lock, [this] { return busy_.load() == 0; });
      waiting_.store(false);
    }
    job_ = nullptr;
  }

 private:
  // Waiting threads spin this long before sleeping: decoding and a training step run many
  // small kernels and products back to back, with MLX's own single-threaded ops between them,
  // and waking a sleeping thread costs about as much as one of them. Spinning and the
  // hand-over take no lock, so a busy pool makes no system calls.
  static constexpr auto kSpin = std::chrono::microseconds(200);

  // True when ready() held within kSpin.
  template <class Ready>
  static bool spin_until(Ready ready) {
    auto until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0; !ready(); ++i) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      if ((i & 31) == 31 && std::chrono::steady_clock::now() > until) return ready();
    }
    return true;
  }

  void work() {
    for (int64_t i; (i = next_.fetch_add(1)) < tasks_;) (*job_)(i);
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      auto ready = [&] { return stop_.load() || generation_.load() != seen; };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, ready);
        sleepers_.fetch_sub(1);
      }
      if (stop_.load()) return;
      seen = generation_.load();
      work();
      if (busy_.fetch_sub(1) == 1 && waiting_.load()) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> busy_{0}, sleepers_{0};
  std::atomic<bool> waiting_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

std::mutex g_mutex;
Pool* g_pool = nullptr;
int g_threads = 0;

int default_threads() {
  if (const char* env = std::getenv("MLXT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// A forked child has none of the parent's threads: forget the pool (leaking it, since its
// mutexes may be held) and start a new one on first use.
void after_fork_in_child() {
  new (&g_mutex) std::mutex();
  g_pool = nullptr;
}

Pool& pool() {
  static bool registered = (pthread_atfork(nullptr, nullptr, after_fork_in_child), true);
  (void)registered;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_threads == 0) g_threads = default_threads();
  if (g_pool == nullptr || g_pool->threads() != g_threads) {
    delete g_pool;
    g_pool = new Pool(g_threads);
  }
  return *g_pool;
}

}  // namespace

int num_threads() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_threads == 0) g_threads = default_threads();
  return g_threads;
}

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_threads = std::max(1, n);
}

void parallel_for(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (tasks == 1 || num_threads() == 1) {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  pool().run(tasks, fn);
}

}  // namespace mlxt
