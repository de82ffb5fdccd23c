// Matrix products against a prepacked weight: c (m, n) = a (m, k) @ w^T + bias, the linear
// layers of decoding. Included by isa_*.cpp only, after MLXT_GEMM_AVX512 or MLXT_GEMM_AVX2 is
// defined (or neither: portable loops).
//
// Why: decoding multiplies a few rows (beams x sentences) by the same weights at every step.
// A general GEMM (OpenBLAS) copies the weight into its panel layout on every call, which for the
// 58k x 512 output projection costs as much as a quarter of the product itself and makes small-m
// products bandwidth-bound. Here the weight is copied once, at load (`mlxt.kernels.pack_weight`),
// into panels of kPanel output columns, packed[p][kk][j] = w[p * kPanel + j][kk] (zeros past n),
// so a panel is read sequentially and the tile below keeps MR x kPanel sums in registers.
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
using mlxt::PackedGemmArgs;

constexpr int kTileRows = 6;        // rows of a tile (6 x 64 sums: 24 AVX-512 registers)
constexpr int64_t kKBlock = 512;    // k per pass: a tile's rows of a (12 KB) stay in L1

#define MLXT_UNROLL _Pragma("GCC unroll 32")

#if defined(MLXT_GEMM_AVX512)

MLXT_INLINE __mmask16 cols_mask(int left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// MR rows x 64 columns: 4 vectors of 16 per row.
template <int MR>
MLXT_INLINE void gemm_tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                           int ncols, bool first, const float* bias) {
  __m512 acc[MR][4];
  MLXT_UNROLL for (int i = 0; i < MR; ++i)
    MLXT_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[4];
    MLXT_UNROLL for (int j = 0; j < 4; ++j) bv[j] = _mm512_loadu_ps(b + k * kPanel + 16 * j);
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      __m512 av = _mm512_set1_ps(a[i * lda + k]);
      MLXT_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  MLXT_UNROLL for (int j = 0; j < 4; ++j) {
    __mmask16 m = cols_mask(ncols - 16 * j);
    __m512 bb = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * j) : _mm512_setzero_ps();
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * j;
      __m512 v = first ? (bias ? _mm512_add_ps(acc[i][j], bb) : acc[i][j])
                       : _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), acc[i][j]);
      _mm512_mask_storeu_ps(out, m, v);
    }
  }
}

#elif defined(MLXT_GEMM_AVX2)

MLXT_INLINE __m256i cols_mask(int left) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);  // lane < left
}

// MR rows x 16 columns (2 vectors of 8) of a 64-column panel; 16 registers leave room for 12 sums.
template <int MR>
MLXT_INLINE void gemm_tile16(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                             int ncols, bool first, const float* bias) {
  __m256 acc[MR][2];
  MLXT_UNROLL for (int i = 0; i < MR; ++i)
    MLXT_UNROLL for (int j = 0; j < 2; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * kPanel), b1 = _mm256_loadu_ps(b + k * kPanel + 8);
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      __m256 av = _mm256_broadcast_ss(a + i * lda + k);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
  }
  MLXT_UNROLL for (int j = 0; j < 2; ++j) {
    __m256i m = cols_mask(ncols - 8 * j);
    __m256 bb = bias ? _mm256_maskload_ps(bias + 8 * j, m) : _mm256_setzero_ps();
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 8 * j;
      __m256 v = first ? (bias ? _mm256_add_ps(acc[i][j], bb) : acc[i][j])
                       : _mm256_add_ps(_mm256_maskload_ps(out, m), acc[i][j]);
      _mm256_maskstore_ps(out, m, v);
    }
  }
}

template <int MR>
MLXT_INLINE void gemm_tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                           int ncols, bool first, const float* bias) {
  for (int g = 0; g < kPanel / 16 && 16 * g < ncols; ++g)
    gemm_tile16<MR>(a, lda, b + 16 * g, kc, c + 16 * g, ldc, ncols - 16 * g, first, bias ? bias + 16 * g : nullptr);
}

#else

template <int MR>
MLXT_INLINE void gemm_tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                           int ncols, bool first, const float* bias) {
  float acc[MR][kPanel] = {};
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i) {
      float av = a[i * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[i][j] = std::fma(av, b[k * kPanel + j], acc[i][j]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < ncols; ++j) {
      float* out = c + i * ldc + j;
      *out = first ? (bias ? acc[i][j] + bias[j] : acc[i][j]) : *out + acc[i][j];
    }
}

#endif

// Rows [row_begin, row_end) x panels [panel_begin, panel_end) of c.
void packed_gemm(const PackedGemmArgs& g, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                 int64_t panel_end) {
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kc = std::min(kKBlock, g.k - k0);
    const bool first = k0 == 0;
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      const float* b = g.packed + p * g.k * kPanel + k0 * kPanel;
      const int ncols = int(std::min<int64_t>(kPanel, g.n - p * kPanel));
      const float* bias = g.bias ? g.bias + p * kPanel : nullptr;
      float* c = g.c + p * kPanel;
      int64_t i = row_begin;
      for (; i + kTileRows <= row_end; i += kTileRows)
        gemm_tile<kTileRows>(g.a + i * g.k + k0, g.k, b, kc, c + i * g.n, g.n, ncols, first, bias);
      const float* a = g.a + i * g.k + k0;
      float* ci = c + i * g.n;
      switch (row_end - i) {
        case 1: gemm_tile<1>(a, g.k, b, kc, ci, g.n, ncols, first, bias); break;
        case 2: gemm_tile<2>(a, g.k, b, kc, ci, g.n, ncols, first, bias); break;
        case 3: gemm_tile<3>(a, g.k, b, kc, ci, g.n, ncols, first, bias); break;
        case 4: gemm_tile<4>(a, g.k, b, kc, ci, g.n, ncols, first, bias); break;
        case 5: gemm_tile<5>(a, g.k, b, kc, ci, g.n, ncols, first, bias); break;
        default: break;
      }
    }
  }
}

// ---- The general product (sgemm.cpp): a read in place, b packed per call ---------------------
//
// Row i, column k of op(a) is a[i * lda + k], or a[k * lda + i] when a is transposed (TRANS):
// the tile broadcasts its MR rows' elements from either layout without copying a. The sums of
// a k block are scaled by alpha and then stored or added to c: every element of c is
// alpha * (one fma chain over a k block), the blocks added in order, on one thread, in every
// build.

using mlxt::GemmArgs;

#if defined(MLXT_GEMM_AVX512)

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha) {
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
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 16 * j;
      __m512 v = alpha == 1.0f ? acc[i][j] : _mm512_mul_ps(acc[i][j], al);
      if (add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), v);
      _mm512_mask_storeu_ps(out, m, v);
    }
  }
}

#elif defined(MLXT_GEMM_AVX2)

template <int MR, bool TRANS>
MLXT_INLINE void general_tile16(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                                int64_t ldc, int ncols, bool add, float alpha) {
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
    MLXT_UNROLL for (int i = 0; i < MR; ++i) {
      float* out = c + i * ldc + 8 * j;
      __m256 v = alpha == 1.0f ? acc[i][j] : _mm256_mul_ps(acc[i][j], al);
      if (add) v = _mm256_add_ps(_mm256_maskload_ps(out, m), v);
      _mm256_maskstore_ps(out, m, v);
    }
  }
}

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha) {
  for (int g = 0; g < kPanel / 16 && 16 * g < ncols; ++g)
    general_tile16<MR, TRANS>(a, lda, b + 16 * g, ldb, kc, c + 16 * g, ldc, ncols - 16 * g, add, alpha);
}

#else

template <int MR, bool TRANS>
MLXT_INLINE void general_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t kc, float* c,
                              int64_t ldc, int ncols, bool add, float alpha) {
  float acc[MR][kPanel] = {};
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i) {
      float av = TRANS ? a[k * lda + i] : a[i * lda + k];
      for (int j = 0; j < kPanel; ++j) acc[i][j] = std::fma(av, b[k * ldb + j], acc[i][j]);
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < ncols; ++j) {
      float v = alpha == 1.0f ? acc[i][j] : acc[i][j] * alpha;
      c[i * ldc + j] = add ? c[i * ldc + j] + v : v;
    }
}

#endif

template <bool TRANS>
void general_gemm_rows(const GemmArgs& g, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                       int64_t panel_end) {
  // element (i, k) of op(a) at a + i * rs + k * ks
  const int64_t rs = TRANS ? 1 : g.lda, ks = TRANS ? g.lda : 1;
  for (int64_t k0 = 0; k0 < g.k; k0 += kKBlock) {
    const int64_t kc = std::min(kKBlock, g.k - k0);
    const bool add = g.accumulate || k0 > 0;
    for (int64_t p = panel_begin; p < panel_end; ++p) {
      const float* b = g.bpack + p * g.panel_stride + k0 * g.ldb;
      const int ncols = int(std::min<int64_t>(kPanel, g.n - p * kPanel));
      float* c = g.c + p * kPanel;
      int64_t i = row_begin;
      for (; i + kTileRows <= row_end; i += kTileRows)
        general_tile<kTileRows, TRANS>(g.a + i * rs + k0 * ks, g.lda, b, g.ldb, kc, c + i * g.ldc, g.ldc, ncols, add, g.alpha);
      const float* a = g.a + i * rs + k0 * ks;
      float* ci = c + i * g.ldc;
      switch (row_end - i) {
        case 1: general_tile<1, TRANS>(a, g.lda, b, g.ldb, kc, ci, g.ldc, ncols, add, g.alpha); break;
        case 2: general_tile<2, TRANS>(a, g.lda, b, g.ldb, kc, ci, g.ldc, ncols, add, g.alpha); break;
        case 3: general_tile<3, TRANS>(a, g.lda, b, g.ldb, kc, ci, g.ldc, ncols, add, g.alpha); break;
        case 4: general_tile<4, TRANS>(a, g.lda, b, g.ldb, kc, ci, g.ldc, ncols, add, g.alpha); break;
        case 5: general_tile<5, TRANS>(a, g.lda, b, g.ldb, kc, ci, g.ldc, ncols, add, g.alpha); break;
        default: break;
      }
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
