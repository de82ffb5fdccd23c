// One query per row attending over a key/value cache: decoding's attention. Included by
// isa_*.cpp only, after rows.h (it uses simd.h's vectors).
//
// Why: at a decoding step each row (sentence x beam) has one new query. MLX runs it as two
// batched matrix products over a strided view of the cache (which it first copies), a softmax,
// and, for beam search, a gather of the whole cache to follow each beam's parent. Here each
// (row, head) reads its keys and values where they are, and `rows` says which batch row holds
// position t of row b's history, so beam search reorders a small table of row numbers instead
// of the cache (mlxt.decode.cache).
#pragma once

#include <cstddef>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace {

using mlxt::CachedAttentionArgs;

// Horizontal sum by folding halves: the same operations, in the same order, on every target.
MLXT_INLINE float fold_sum(vf v) {
  typedef float vf8 __attribute__((vector_size(32)));
  typedef float vf4 __attribute__((vector_size(16)));
  vf8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  vf4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// One (row, head) pair with D = 16 * NV (NV >= 1) or, for NV == 0, any D: q and the output in
// registers, the scores kept in `scores` (len floats), exp taken 16 scores at a time.
template <int NV>
MLXT_INLINE void attend_pair(const CachedAttentionArgs& a, int64_t b, int64_t h, float* scores) {
  const long D = long(a.dim), L = long(a.len);
  constexpr int R = NV > 0 ? NV : 1;
  const long chunks = NV > 0 ? NV : (D + W - 1) / W;  // NV == 0: loop over chunks of 16
  const float* q = a.q + (b * a.heads + h) * D;
  float* out = a.out + (b * a.heads + h) * D;
  const unsigned char* keep = a.mask ? a.mask + b * a.mask_stride : nullptr;
  auto at = [&](const float* base, long t) {
    const int64_t src = a.rows ? a.rows[b * a.rows_stride + t] : b;
    return base + ((src * a.heads + h) * a.cap + t) * D;
  };
  auto chunk = [&](const float* p, long c) { return (c + 1) * W <= D ? loadu(p + c * W) : load_tail(p + c * W, D - c * W, 0.0f); };
  vf qv[R];
  if constexpr (NV > 0)
    for (int c = 0; c < NV; ++c) qv[c] = loadu(q + c * W) * a.scale;
  const float ninf = -__builtin_inff();
  float top = ninf;
  bool any = false;
  for (long t = 0; t < L; ++t) {
    if (keep && !keep[t]) {
      scores[t] = ninf;
      continue;
    }
    const float* k = at(a.keys, t);
    vf acc = splat(0.0f);
    if constexpr (NV > 0) {
      for (int c = 0; c < NV; ++c) acc += qv[c] * loadu(k + c * W);
    } else {
      for (long c = 0; c < chunks; ++c) acc += (chunk(q, c) * a.scale) * chunk(k, c);
    }
    float s = fold_sum(acc);
    scores[t] = s;
    top = any && !(s > top) ? top : s;
    any = true;
  }
  // weights: exp(s - top) for kept positions (masked ones are -inf: exp gives ~0, set to 0)
  float total = 0.0f;
  if (!any) {
    for (long t = 0; t < L; ++t) scores[t] = 1.0f;
    total = float(L);
  } else {
    vf sum = splat(0.0f);
    long t = 0;
    for (; t + W <= L; t += W) {
      vf s = loadu(scores + t);
      vf e = select(less(s, splat(-3.0e38f)), splat(0.0f), vexp(s - top));
      storeu(scores + t, e);
      sum += e;
    }
    if (t < L) {
      vf s = load_tail(scores + t, L - t, ninf);
      vf e = select(less(s, splat(-3.0e38f)), splat(0.0f), vexp(s - top));
      store_tail(scores + t, e, L - t);
      sum += e;
    }
    total = fold_sum(sum);
  }
  const float inv = 1.0f / total;
  if constexpr (NV > 0) {
    vf o[NV];
    for (int c = 0; c < NV; ++c) o[c] = splat(0.0f);
    for (long t = 0; t < L; ++t) {
      if (scores[t] == 0.0f) continue;
      const float* v = at(a.values, t);
      vf p = splat(scores[t] * inv);
      for (int c = 0; c < NV; ++c) o[c] += p * loadu(v + c * W);
    }
    for (int c = 0; c < NV; ++c) storeu(out + c * W, o[c]);
  } else {
    for (long j = 0; j < D; ++j) out[j] = 0.0f;
    for (long t = 0; t < L; ++t) {
      if (scores[t] == 0.0f) continue;
      const float* v = at(a.values, t);
      vf p = splat(scores[t] * inv);
      for (long c = 0; c < chunks; ++c) {
        long n = (c + 1) * W <= D ? W : D - c * W;
        vf r = chunk(out, c) + p * chunk(v, c);
        if (n == W) storeu(out + c * W, r); else store_tail(out + c * W, r, n);
      }
    }
  }
}

// Pairs [begin, end) of (row b, head h), pair = b * heads + h.
void cached_attention(const CachedAttentionArgs& a, int64_t begin, int64_t end) {
  std::vector<float> scores(std::size_t(a.len + W));
  for (int64_t pair = begin; pair < end; ++pair) {
    const int64_t b = pair / a.heads, h = pair % a.heads;
    switch (a.dim) {
      case 16: attend_pair<1>(a, b, h, scores.data()); break;
      case 32: attend_pair<2>(a, b, h, scores.data()); break;
      case 64: attend_pair<4>(a, b, h, scores.data()); break;
      case 128: attend_pair<8>(a, b, h, scores.data()); break;
      default: attend_pair<0>(a, b, h, scores.data()); break;
    }
  }
}

}  // namespace
