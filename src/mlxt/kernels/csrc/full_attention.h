// Attention over whole sequences, forward and backward: training's attention, and every call
// without a cache. Included by isa_*.cpp only, after gemm.h (which says which instruction set
// this is) and attention.h (fold_sum).
//
// Why: MLX runs attention as a batched product for the scores, a softmax and a batched product
// for the mix, around transposes of q, k and v into (B, H, L, D) and of the output back. On the
// CPU the batched products go one (batch, head) at a time through the BLAS on one thread, and
// the transposes are single-threaded copies; for nanoGPT's baby GPT that is about a sixth of a
// training step. Here each (batch, head) pair is one task on the kernels' pool that reads its
// rows of q, k and v where the projections left them ((B, L, H, D): row stride H * D, or one
// (B, L, 3, H, D) product for self-attention: row stride 3 H D), keeps a
// block of scores in cache, and writes its output rows in the layout the output projection
// reads. The backward pass recomputes the probabilities from the saved log-sum-exp (as
// FlashAttention does) rather than keeping the (B, H, Lq, Lk) probabilities.
//
// Every product below is one fused multiply-add chain per element in a fixed order, on one
// thread: the results do not depend on the thread count, and the AVX-512, AVX2 and portable
// versions round alike.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace {

using mlxt::AttentionArgs;

#if defined(MLXT_GEMM_AVX512)
MLXT_INLINE vf vfma(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }
constexpr int kAttnRows = 4;  // rows of a product tile: 4 x 64 sums in 16 of the 32 registers
#elif defined(MLXT_GEMM_AVX2)
MLXT_INLINE vf vfma(vf a, vf b, vf c) {
  typedef float vf8 __attribute__((vector_size(32)));
  vf8 lo = (vf8)_mm256_fmadd_ps((__m256)(vf8)__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7),
                                (__m256)(vf8)__builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7),
                                (__m256)(vf8)__builtin_shufflevector(c, c, 0, 1, 2, 3, 4, 5, 6, 7));
  vf8 hi = (vf8)_mm256_fmadd_ps((__m256)(vf8)__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15),
                                (__m256)(vf8)__builtin_shufflevector(b, b, 8, 9, 10, 11, 12, 13, 14, 15),
                                (__m256)(vf8)__builtin_shufflevector(c, c, 8, 9, 10, 11, 12, 13, 14, 15));
  return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
constexpr int kAttnRows = 2;  // 16 registers: 2 x 64 sums
#else
MLXT_INLINE vf vfma(vf a, vf b, vf c) {
  for (int i = 0; i < W; ++i) c[i] = std::fma(a[i], b[i], c[i]);
  return c;
}
constexpr int kAttnRows = 2;
#endif

constexpr int64_t kAttnBlock = 32;  // query rows whose scores are kept at a time

// Transposes 16 vectors in place (r[i][l] <-> r[l][i]): at each stage h = 8, 4, 2, 1 the
// off-diagonal h x h blocks of every 2h x 2h block swap.
template <int H>
MLXT_INLINE void transpose_stage(vf r[W]) {
  for (int i = 0; i < W; ++i) {
    if (i & H) continue;
    vf a = r[i], b = r[i + H];
    if constexpr (H == 8) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
      r[i + H] = __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    } else if constexpr (H == 4) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
      r[i + H] = __builtin_shufflevector(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    } else if constexpr (H == 2) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
      r[i + H] = __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    } else {
      r[i] = __builtin_shufflevector(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
      r[i + H] = __builtin_shufflevector(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
  }
}
MLXT_INLINE void transpose16(vf r[W]) {
  transpose_stage<8>(r);
  transpose_stage<4>(r);
  transpose_stage<2>(r);
  transpose_stage<1>(r);
}

// c[r][0 : 16 NV] (= or +=) sum over k < kn of a(r, k) b[k][0 : 16 NV], for r < R, where
// a(r, k) = a[r * ars + k * acs]: a may be read transposed.
template <int R, int NV>
MLXT_INLINE void attn_tile(const float* a, long ars, long acs, const float* b, long ldb, long kn, float* c,
                           long ldc, bool accumulate) {
  vf s[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) s[r][v] = accumulate ? loadu(c + r * ldc + v * W) : splat(0.0f);
  for (long k = 0; k < kn; ++k) {
    vf bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = loadu(b + k * ldb + v * W);
    for (int r = 0; r < R; ++r) {
      vf av = splat(a[r * ars + k * acs]);
      for (int v = 0; v < NV; ++v) s[r][v] = vfma(av, bv[v], s[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) storeu(c + r * ldc + v * W, s[r][v]);
}

template <int R>
MLXT_INLINE void attn_tile_cols(int nv, const float* a, long ars, long acs, const float* b, long ldb, long kn,
                                float* c, long ldc, bool accumulate) {
  switch (nv) {
    case 1: attn_tile<R, 1>(a, ars, acs, b, ldb, kn, c, ldc, accumulate); break;
    case 2: attn_tile<R, 2>(a, ars, acs, b, ldb, kn, c, ldc, accumulate); break;
    case 3: attn_tile<R, 3>(a, ars, acs, b, ldb, kn, c, ldc, accumulate); break;
    default: attn_tile<R, 4>(a, ars, acs, b, ldb, kn, c, ldc, accumulate); break;
  }
}

// c (m, n) (= or +=) a (m, kn) b (kn, n) for n a multiple of 16; b and c have row strides ldb
// and ldc, a(r, k) = a[r * ars + k * acs].
void attn_product(const float* a, long ars, long acs, const float* b, long ldb, long m, long n, long kn, float* c,
                  long ldc, bool accumulate) {
  for (long j = 0; j < n; j += 4 * W) {
    const int nv = int(std::min<long>(4, (n - j) / W));
    long i = 0;
    for (; i + kAttnRows <= m; i += kAttnRows)
      attn_tile_cols<kAttnRows>(nv, a + i * ars, ars, acs, b + j, ldb, kn, c + i * ldc + j, ldc, accumulate);
    for (; i < m; ++i) attn_tile_cols<1>(nv, a + i * ars, ars, acs, b + j, ldb, kn, c + i * ldc + j, ldc, accumulate);
  }
}

// One (batch, head) pair's view of the arguments.
struct AttnPair {
  const AttentionArgs& a;
  int64_t b, h, ld, out_ld, kpad;  // row strides: of q, k, v and their gradients; of o and dout
  const float* q;
  const float* k;
  const float* v;
  const unsigned char* mask;  // this pair's (Lq, Lk) rows, row stride a.mask_i, or null

  AttnPair(const AttentionArgs& args, int64_t pair)
      : a(args), b(pair / args.heads), h(pair % args.heads), ld(args.row_stride), out_ld(args.heads * args.dim),
        kpad((args.k_len + W - 1) / W * W) {
    q = a.q + row(a.q_len, 0);
    k = a.k + row(a.k_len, 0);
    v = a.v + row(a.k_len, 0);
    mask = a.mask ? a.mask + b * a.mask_b + h * a.mask_h : nullptr;
  }
  // Offset of row i of this pair in q, k, v or their gradients, and in o or dout.
  int64_t row(int64_t L, int64_t i) const { return (b * L + i) * ld + h * a.dim; }
  int64_t out_row(int64_t L, int64_t i) const { return (b * L + i) * out_ld + h * a.dim; }
  // Keys the rows [i0, i0 + m) need: under a causal mask, up to the last row's limit (all of
  // them when a row keeps nothing: it attends uniformly to all).
  int64_t keys_for(int64_t i0, int64_t m) const {
    if (!a.causal || i0 + a.causal_offset < 0) return a.k_len;
    return std::min<int64_t>(a.k_len, i0 + m + a.causal_offset);
  }
  // x (D rows of kpad) = the transpose of this pair's rows of src (k or v), zeros past Lk:
  // 16 x 16 blocks through registers, the last keys one by one. (Locals throughout: the build
  // allows float stores to alias the arguments.)
  void transpose(const float* src, float* x) const {
    const int64_t D = a.dim, L = a.k_len, stride = ld, pad = kpad;
    int64_t t = 0;
    for (; t + W <= L; t += W)
      for (int64_t d = 0; d < D; d += W) {
        vf r[W];
        for (int i = 0; i < W; ++i) r[i] = loadu(src + (t + i) * stride + d);
        transpose16(r);
        for (int i = 0; i < W; ++i) storeu(x + (d + i) * pad + t, r[i]);
      }
    for (; t < L; ++t)
      for (int64_t d = 0; d < D; ++d) x[d * pad + t] = src[t * stride + d];
    for (int64_t d = 0; d < D; ++d)
      for (int64_t u = L; u < pad; ++u) x[d * pad + u] = 0.0f;
  }
  // Scales row i's raw scores s[0, kn) and sets the dropped ones to -inf, and those in
  // [kn, kn16) too (kn16: kn rounded up to 16); returns whether any key is kept and, in *top,
  // the largest score.
  bool scale_and_mask(int64_t i, float* s, int64_t kn, int64_t kn16, float* top) const {
    const float ninf = -__builtin_inff();
    const int64_t limit = a.causal ? std::min<int64_t>(kn, std::max<int64_t>(0, i + a.causal_offset + 1)) : kn;
    const unsigned char* keep = mask ? mask + i * a.mask_i : nullptr;
    vi any = vi{} + 0;
    vf best = splat(ninf);
    for (int64_t t = 0; t < kn16; t += W) {
      vi m = below(t, limit);
      if (keep) m &= mask_lanes(keep + t, std::max<int64_t>(0, std::min<int64_t>(W, kn - t)));
      vf x = select(m, loadu(s + t) * a.scale, splat(ninf));
      best = vmax(best, x);
      any |= m;
      storeu(s + t, x);
    }
    float m = ninf;
    for (int l = 0; l < W; ++l) m = best[l] > m ? best[l] : m;
    *top = m;
    return any_lane(any);
  }
};

// Forward, pairs [begin, end).
void full_attention(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t kpad = (a.k_len + W - 1) / W * W;
  std::vector<float> kt(size_t(a.dim * kpad)), scores(size_t(kAttnBlock * kpad));
  float* s = scores.data();
  for (int64_t pair = begin; pair < end; ++pair) {
    const AttnPair p(a, pair);
    p.transpose(p.k, kt.data());
    for (int64_t i0 = 0; i0 < a.q_len; i0 += kAttnBlock) {
      const int64_t m = std::min(kAttnBlock, a.q_len - i0), kn = p.keys_for(i0, m);
      const int64_t kn16 = (kn + W - 1) / W * W;
      attn_product(p.q + i0 * p.ld, p.ld, 1, kt.data(), kpad, m, kn16, a.dim, s, kpad, false);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = i0 + r;
        float* row = s + r * kpad;
        float top;
        float* lse = a.lse_out + (p.b * a.heads + p.h) * a.q_len + i;
        if (!p.scale_and_mask(i, row, kn, kn16, &top)) {  // nothing kept: uniform over all keys
          for (int64_t t = 0; t < kn16; ++t) row[t] = t < a.k_len ? 1.0f / float(a.k_len) : 0.0f;
          *lse = __builtin_inff();
          continue;
        }
        vf sum = splat(0.0f);
        for (int64_t t = 0; t < kn16; t += W) {
          vf x = loadu(row + t);
          vf e = select(less(x, splat(-3.0e38f)), splat(0.0f), vexp(x - top));
          storeu(row + t, e);
          sum += e;
        }
        const float total = fold_sum(sum), inv = 1.0f / total;
        for (int64_t t = 0; t < kn16; t += W) storeu(row + t, loadu(row + t) * inv);
        *lse = top + std::log(total);
      }
      attn_product(s, kpad, 1, p.v, p.ld, m, a.dim, kn, a.o_out + p.out_row(a.q_len, i0), p.out_ld, false);
    }
  }
}

// Backward, pairs [begin, end): dq, dk, dv of this pair's rows.
void full_attention_vjp(const AttentionArgs& a, int64_t begin, int64_t end) {
  const int64_t kpad = (a.k_len + W - 1) / W * W;
  std::vector<float> kt(size_t(a.dim * kpad)), vt(size_t(a.dim * kpad));
  std::vector<float> probs(size_t(kAttnBlock * kpad)), dprobs(size_t(kAttnBlock * kpad));
  float* P = probs.data();
  float* dS = dprobs.data();
  for (int64_t pair = begin; pair < end; ++pair) {
    const AttnPair p(a, pair);
    p.transpose(p.k, kt.data());
    p.transpose(p.v, vt.data());
    float* dk = a.dk + p.row(a.k_len, 0);
    float* dv = a.dv + p.row(a.k_len, 0);
    for (int64_t t = 0, L = a.k_len, D = a.dim, ld = p.ld; t < L; ++t) {
      std::fill_n(dk + t * ld, D, 0.0f);
      std::fill_n(dv + t * ld, D, 0.0f);
    }
    const float* dout = a.dout + p.out_row(a.q_len, 0);
    const float* out = a.o + p.out_row(a.q_len, 0);
    for (int64_t i0 = 0; i0 < a.q_len; i0 += kAttnBlock) {
      const int64_t m = std::min(kAttnBlock, a.q_len - i0), kn = p.keys_for(i0, m);
      const int64_t kn16 = (kn + W - 1) / W * W;
      attn_product(p.q + i0 * p.ld, p.ld, 1, kt.data(), kpad, m, kn16, a.dim, P, kpad, false);
      attn_product(dout + i0 * p.out_ld, p.out_ld, 1, vt.data(), kpad, m, kn16, a.dim, dS, kpad, false);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t i = i0 + r;
        float* prow = P + r * kpad;
        float* drow = dS + r * kpad;
        float top;
        if (!p.scale_and_mask(i, prow, kn, kn16, &top)) {  // uniform weights, no score gradient
          for (int64_t t = 0; t < kn16; t += W) {
            storeu(prow + t, select(below(t, a.k_len), splat(1.0f / float(a.k_len)), splat(0.0f)));
            storeu(drow + t, splat(0.0f));
          }
          continue;
        }
        const float lse = a.lse[(p.b * a.heads + p.h) * a.q_len + i];
        // D_i = dout_i . out_i
        vf acc = splat(0.0f);
        for (int64_t d = 0; d < a.dim; d += W)
          acc = vfma(loadu(dout + i * p.out_ld + d), loadu(out + i * p.out_ld + d), acc);
        const float di = fold_sum(acc);
        for (int64_t t = 0; t < kn16; t += W) {
          vf x = loadu(prow + t);
          vf e = select(less(x, splat(-3.0e38f)), splat(0.0f), vexp(x - lse));
          storeu(prow + t, e);
          storeu(drow + t, (e * (loadu(drow + t) - di)) * a.scale);
        }
      }
      // dq = dS k; dk += dS^T q; dv += P^T dout
      attn_product(dS, kpad, 1, p.k, p.ld, m, a.dim, kn, a.dq + p.row(a.q_len, i0), p.ld, false);
      attn_product(dS, 1, kpad, p.q + i0 * p.ld, p.ld, kn, a.dim, m, dk, p.ld, true);
      attn_product(P, 1, kpad, dout + i0 * p.out_ld, p.out_ld, kn, a.dim, m, dv, p.ld, true);
    }
  }
}

}  // namespace
