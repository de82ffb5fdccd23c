// The general float32 matrix product MLX's CPU matmuls call (`cblas_sgemm`), done by mlxt.
//
// Why: a training step's products (projections forward, both gradients backward, attention
// per head) are many mid-sized calls. OpenBLAS runs them at 60-120 GFLOP/s on two cores here,
// and between calls its worker threads spin, competing with the kernels' own pool for the
// same cores. This product runs on the kernels' pool and the tile of gemm.h (about 100 GFLOP/s
// per core with AVX-512). The BLAS forwarding shim (`mlxt/_blas_shim.c`) calls `sgemm` first
// when `mlxt.kernels` has installed it, and forwards to OpenBLAS when it returns 0.
//
// Each call reads op(a) in place, and op(b) too when it is b untransposed with whole panels of
// kPanel columns; otherwise it copies op(b) into panels (in chunks of columns when it is large,
// so the copy stays a few MB); tasks of rows x one panel run on the
// pool. Every element of c is computed by one task in a fixed order (gemm.h): results do not
// depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace mlxt {
namespace {

constexpr int kRowMajor = 101, kColMajor = 102, kNoTrans = 111;
constexpr int64_t kPackB = int64_t(1) << 21;  // floats of op(b) copied at once (8 MB)
constexpr int64_t kInPlaceLd = 512;          // longest row stride of b read in place
constexpr int64_t kSerial = int64_t(1) << 20; // fewer multiply-adds than this: one thread

// An operand stored row-major with leading dimension ld, used transposed or not.
struct Operand {
  const float* p;
  int64_t ld;
  bool trans;
};

// Panel p (columns p * kPanel ...) of op(b) columns [col0, col0 + cols): dst[kk][j].
void pack_panel(const Operand& b, int64_t col0, int64_t cols, int64_t p, int64_t k, float* dst) {
  const int64_t c0 = p * kPanel, live = std::min<int64_t>(kPanel, cols - c0);
  if (live < kPanel) std::memset(dst, 0, sizeof(float) * k * kPanel);
  if (b.trans) {  // op(b)(kk, j) = p[j * ld + kk]: a transpose, in blocks of 16 k
    for (int64_t k0 = 0; k0 < k; k0 += 16) {
      const int64_t kn = std::min<int64_t>(16, k - k0);
      for (int64_t j = 0; j < live; ++j) {
        const float* src = b.p + (col0 + c0 + j) * b.ld + k0;
        for (int64_t q = 0; q < kn; ++q) dst[(k0 + q) * kPanel + j] = src[q];
      }
    }
  } else {
    for (int64_t kk = 0; kk < k; ++kk)
      std::memcpy(dst + kk * kPanel, b.p + kk * b.ld + col0 + c0, sizeof(float) * live);
  }
}

void run(bool parallel, int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (parallel) {
    parallel_for(tasks, fn);
  } else {
    for (int64_t i = 0; i < tasks; ++i) fn(i);
  }
}

}  // namespace

int sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
          int ldb, float beta, float* c, int ldc) {
  if (order == kColMajor) {  // c^T = op(b)^T op(a)^T, all row-major
    std::swap(m, n);
    std::swap(a, b);
    std::swap(lda, ldb);
    std::swap(ta, tb);
  } else if (order != kRowMajor) {
    return 0;
  }
  if (m <= 0 || n <= 0) return 1;
  if (beta != 0.0f && beta != 1.0f)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= beta;
  if (k <= 0 || alpha == 0.0f) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, sizeof(float) * n);
    return 1;
  }
  const Operand B{b, ldb, tb != kNoTrans};
  const bool parallel = int64_t(m) * n * k >= kSerial && num_threads() > 1;
  const int64_t nc = std::max<int64_t>(kPanel, kPackB / k / kPanel * kPanel);
  thread_local std::vector<float> buffer;
  // b in place when its rows are whole panels (the tile reads 64 columns of a row) and short:
  // measured here, reading b's rows at a stride of up to 512 floats beats copying it (768x128 @
  // 128x512: 160 against 100 GFLOP/s), while at 8,000 floats the copy wins (164 against 109)
  const bool in_place = !B.trans && n % kPanel == 0 && ldb <= kInPlaceLd;
  if (!in_place) buffer.resize(size_t((std::min<int64_t>(nc, n) + kPanel - 1) / kPanel * k * kPanel));
  float* const bpack = buffer.data();  // the workers see this pointer, not their own buffer
  const auto& table = kernels();
  // tasks: blocks of rows (a multiple of the tile's 6, at most 48) x one panel, about 4 per thread
  const int64_t tiles = (m + 5) / 6;

  for (int64_t col0 = 0; col0 < n; col0 += in_place ? n : nc) {
    const int64_t cols = in_place ? n : std::min<int64_t>(nc, n - col0), panels = (cols + kPanel - 1) / kPanel;
    if (!in_place)
      run(parallel && panels > 1, panels, [&](int64_t p) { pack_panel(B, col0, cols, p, k, bpack + p * k * kPanel); });
    GemmArgs g{a, lda, ta != kNoTrans, in_place ? b : bpack, in_place ? int64_t(ldb) : kPanel,
               in_place ? kPanel : k * kPanel, c + col0, ldc, m, cols, k, alpha, beta != 0.0f};
    const int64_t group = parallel ? std::clamp<int64_t>(tiles * panels / (4 * num_threads()), 1, 8) : tiles;
    const int64_t block = 6 * group, blocks = (m + block - 1) / block;
    run(parallel, blocks * panels, [&](int64_t t) {
      const int64_t r = t / panels, p = t % panels;
      table.general_gemm(g, r * block, std::min<int64_t>(m, (r + 1) * block), p, p + 1);
    });
  }
  return 1;
}

}  // namespace mlxt
