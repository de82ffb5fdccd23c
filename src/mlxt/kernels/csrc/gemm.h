// Matrix products against a prepacked weight: c (m, n) = a (m, k) @ w^T + bias, the linear
// layers of decoding. Included by isa_*.cpp only, after MLXT_GEMM_AVX512 or MLXT_GEMM_AVX2 is
// defined (or neither: portable loops).
//
// Why: decoding multiplies a few rows (beams x sentences) by the same weights at every step.
// A general GEMM (OpenBLAS) copies the weight into its panel layout on every call, which for the
// 58k x 512 output projection costs as much as a quarter of the product itself and makes small-m
// products bandwidth-bound. Here the weight is copied once, at load (`mlxt.kernels.pack_weight`),
// into panels of kPanel output columns, packed[p][kk][j] = w[p * kPanel + j][kk] (zeros past n),
// so a panel is read sequentially and the tile below keeps MR x kPanel sums in registers. The
// general product (sgemm.cpp: MLX's float32 products) uses the same tile.
//
// Every element of c is one fused multiply-add chain over k in order (restarted every kKBlock,
// the blocks then added in order, the bias added to the first), computed by one thread: results
// do not depend on the thread count, and the AVX-512, AVX2 and portable (std::fma) versions give
// bitwise the same result.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels.h"

#if defined(MLXT_GEMM_AVX512) || defined(MLXT_GEMM_AVX2)
#include <immintrin.h>
#endif

namespace {

using mlxt::kPanel;
using mlxt::GemmArgs;
using mlxt::PackedGemmArgs;

constexpr int kTileRows = 6;        // rows of a tile (6 x 64 sums: 24 AVX-512 registers)
constexpr int64_t kKBlock = 512;    // k per pass: a tile's rows of a (12 KB) stay in L1

#define MLXT_UNROLL _Pragma("GCC unroll 32")

#if defined(MLXT_GEMM_AVX512)

MLXT_INLINE __mmask16 cols_mask(int left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

#elif defined(MLXT_GEMM_AVX2)

MLXT_INLINE __m256i cols_mask(int left) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);  // lane < left
}

#endif

// The tile of both products: MR rows x 64 columns of c from MR rows of op(a) and a 64-column
// panel of b (row stride ldb). Row i, column k of op(a) is a[i * lda + k], or a[k * lda + i]
// when a is transposed (TRANS): the tile broadcasts its MR rows' elements from either layout
// without copying a. The sums of a k block are scaled by alpha, the bias added (when given) and
// then stored or added to c: every element of c is alpha * (one fma chain over a k block) [+
// bias], the blocks added in order, on one thread, in every build.

#if defined(MLXT_GEMM_AVX512)

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha, const float* bias) {
  __m512 acc[MR][4];
  MLXT_UNROLL for (int i = 0; i < MR; ++i)
    MLXT_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[4];
    MLXT_UNROLL for (int j = 0; j < 4; ++j) bv[j] = _mm512_loadu_ps(b + k * ldb + 16 * j);
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      __m512 av = _mm512_set1_ps(TRANS ? a[k * lda + i] : a[i * lda + k]);
      MLXT_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  const __m512 al = _mm512_set1_ps(alpha);
  MLXT_UNROLL for (int j = 0; j < 4; ++j) {
    __mmask16 m = cols_mask(ncols - 16 * j);
    __m512 bb = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * j) : _mm512_setzero_ps();
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * j;
      __m512 v = alpha == 1.0f ? acc[i][j] : _mm512_mul_ps(acc[i][j], al);
      if (bias) v = _mm512_add_ps(v, bb);
      if (add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), v);
      _mm512_mask_storeu_ps(out, m, v);
    }
  }
}

#elif defined(MLXT_GEMM_AVX2)

template <int MR, bool TRANS>
MLXT_INLINE void general_tile16(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                                int64_t ldc, int ncols, bool add, float alpha, const float* bias) {
  __m256 acc[MR][2];
  MLXT_UNROLL for (int i = 0; i < MR; ++i)
    MLXT_UNROLL for (int j = 0; j < 2; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * ldb), b1 = _mm256_loadu_ps(b + k * ldb + 8);
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      __m256 av = _mm256_broadcast_ss(TRANS ? a + k * lda + i : a + i * lda + k);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  const __m256 al = _mm256_set1_ps(alpha);
  MLXT_UNROLL for (int j = 0; j < 2; ++j) {
    __m256i m = cols_mask(ncols - 8 * j);
    __m256 bb = bias ? _mm256_maskload_ps(bias + 8 * j, m) : _mm256_setzero_ps();
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 8 * j;
      __m256 v = alpha == 1.0f ? acc[i][j] : _mm256_mul_ps(acc[i][j], al);
      if (bias) v = _mm256_add_ps(v, bb);
      if (add) v = _mm256_add_ps(_mm256_maskload_ps(out, m), v);
      _mm256_maskstore_ps(out, m, v);
    }
  }
}

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha, const float* bias) {
  for (int g = 0; g < kPanel / 16 && 16 * g < ncols; ++g)
    general_tile16<MR, TRANS>(a, lda, b + 16 * g, ldb, kc, c + 16 * g, ldc, ncols - 16 * g, add, alpha,
                              bias ? bias + 16 * g : nullptr);
}

#else

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha, const float* bias) {
  float acc[MR][kPanel] = {};
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i) {
      float av = TRANS ? a[k * lda + i] : a[i * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[i][j] = std::fma(av, b[k * ldb + j], acc[i][j]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < ncols; ++j) {
      float v = alpha == 1.0f ? acc[i][j] : acc[i][j] * alpha;
      if (bias) v = v + bias[j];
      c[i * ldc + j] = add ? c[i * ldc + j] + v : v;
    }
}

#endif

// Rows [row_begin, row_end) of one panel's columns of c for one k block: whole tiles of
// kTileRows rows, then one tile of the rows left. a points at this k block's first column of
// op(a); row i starts at a + i * rs (rs: lda, or 1 when a is transposed).
template <bool TRANS>
MLXT_INLINE void panel_rows(const float* a, int64_t lda, int64_t rs, const float* b, int64_t ldb, int64_t kc,
                            float* c, int64_t ldc, int64_t row_begin, int64_t row_end, int ncols, bool add,
                            float alpha, const float* bias) {
  int64_t i = row_begin;
  for (; i + kTileRows <= row_end; i += kTileRows)
    general_tile<kTileRows, TRANS>(a + i * rs, lda, b, ldb, kc, c + i * ldc, ldc, ncols, add, alpha, bias);
  const float* ai = a + i * rs;
  float* ci = c + i * ldc;
  switch (row_end - i) {
    case 1: general_tile<1, TRANS>(ai, lda, b, ldb, kc, ci, ldc, ncols, add, alpha, bias); break;
    case 2: general_tile<2, TRANS>(ai, lda, b, ldb, kc, ci, ldc, ncols, add, alpha, bias); break;
    case 3: general_tile<3, TRANS>(ai, lda, b, ldb, kc, ci, ldc, ncols, add, alpha, bias); break;
    case 4: general_tile<4, TRANS>(ai, lda, b, ldb, kc, ci, ldc, ncols, add, alpha, bias); break;
    case 5: general_tile<5, TRANS>(ai, lda, b, ldb, kc, ci, ldc, ncols, add, alpha, bias); break;
    default: break;
  }
}

// Rows [row_begin, row_end) x panels [panel_begin, panel_end) of c.
void packed_gemm(const PackedGemmArgs& g, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                 int64_t panel_end) {
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kc = std::min(kKBlock, g.k - k0);
    const bool first = k0 == 0;
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      const int ncols = int(std::min<int64_t>(kPanel, g.n - p * kPanel));
      const float* bias = g.bias && first ? g.bias + p * kPanel : nullptr;  // added once, to the first block
      panel_rows<false>(g.a + k0, g.k, g.k, g.packed + p * g.k * kPanel + k0 * kPanel, kPanel, kc, g.c + p * kPanel,
                        g.n, row_begin, row_end, ncols, !first, 1.0f, bias);
    }
  }
}

template <bool TRANS>
void general_gemm_rows(const GemmArgs& g, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                       int64_t panel_end) {
  // element (i, k) of op(a) at a + i * rs + k * ks
  const int64_t rs = TRANS ? 1 : g.lda, ks = TRANS ? g.lda : 1;
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kc = std::min(kKBlock, g.k - k0);
    const bool add = g.accumulate || k0 > 0;
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      const int ncols = int(std::min<int64_t>(kPanel, g.n - p * kPanel));
      panel_rows<TRANS>(g.a + k0 * ks, g.lda, rs, g.bpack + p * g.panel_stride + k0 * g.ldb, g.ldb, kc,
                        g.c + p * kPanel, g.ldc, row_begin, row_end, ncols, add, g.alpha, nullptr);
    }
  }
}

void general_gemm(const GemmArgs& g, int64_t row_begin, int64_t row_end, int64_t panel_begin, int64_t panel_end) {
  if (g.trans_a)
    general_gemm_rows<true>(g, row_begin, row_end, panel_begin, panel_end);
  else
    general_gemm_rows<false>(g, row_begin, row_end, panel_begin, panel_end);
}

#undef MLXT_UNROLL

}  // namespace
