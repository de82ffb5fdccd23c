// A small thread pool for the kernels: `parallel_for(tasks, fn)` runs fn(0..tasks-1) on the
// pool and the calling thread and returns when all are done. Called from inside a
// primitive's CPU task (the MLX stream's worker thread); the workers only run plain C++ on
// raw pointers, never the MLX API. Which thread runs a task does not change its result.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace mlxt {

// Threads used (the caller included): MLXT_NUM_THREADS if set, else the CPU count.
int num_threads();
// Resize the pool (n >= 1); the next parallel_for uses n threads.
void set_num_threads(int n);

void parallel_for(int64_t tasks, const std::function<void(int64_t)>& fn);

// About this many floats per task: enough to amortise waking a thread.
constexpr int64_t kTaskElems = 16384;

// Runs f(begin, end) over `rows` rows of `row_len` floats, in tasks of about kTaskElems floats.
template <class F>
void over_rows(int64_t rows, int64_t row_len, F f) {
  int64_t per = std::max<int64_t>(1, kTaskElems / std::max<int64_t>(1, row_len));
  int64_t tasks = (rows + per - 1) / per;
  parallel_for(tasks, [&](int64_t t) { f(t * per, std::min(rows, (t + 1) * per)); });
}

}  // namespace mlxt
