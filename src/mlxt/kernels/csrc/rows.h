// Row kernels, compiled once per instruction set (see simd.h). Included by isa_*.cpp only.
#pragma once

#include "kernels.h"
#include "simd.h"

namespace {

using mlxt::AdamWArgs;
using mlxt::CrossEntropyArgs;
using mlxt::DropoutArgs;
using mlxt::LayerNormArgs;
using mlxt::SoftmaxArgs;
using mlxt::TopKArgs;
using mlxt::UnaryArgs;

// Sum of p[0:n] with 16 lane accumulators, reduced in a fixed order.
MLXT_INLINE float row_sum(const float* p, long n) {
  vf acc = splat(0.0f);
  long j = 0;
  for (; j + W <= n; j += W) acc += loadu(p + j);
  if (j < n) acc += load_tail(p + j, n - j, 0.0f);
  return hsum(acc);
}

MLXT_INLINE void layer_norm_stats(const float* x, long d, float eps, float* mean_out, float* rstd_out) {
  float mean = row_sum(x, d) / float(d);
  vf acc = splat(0.0f);
  long j = 0;
  for (; j + W <= d; j += W) {
    vf c = loadu(x + j) - mean;
    acc += c * c;
  }
  if (j < d) {
    vf c = load_tail(x + j, d - j, mean) - mean;
    acc += c * c;
  }
  float var = hsum(acc) / float(d);
  *mean_out = mean;
  *rstd_out = 1.0f / __builtin_sqrtf(var + eps);
}

void layer_norm(const LayerNormArgs& a, int64_t begin, int64_t end) {
  const long d = a.dim;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * d;
    float* y = a.out + r * d;
    float mean, rstd;
    layer_norm_stats(x, d, a.eps, &mean, &rstd);
    long j = 0;
    for (; j + W <= d; j += W)
      storeu(y + j, (loadu(x + j) - mean) * rstd * loadu(a.weight + j) + loadu(a.bias + j));
    if (j < d) {
      long n = d - j;
      store_tail(y + j, (load_tail(x + j, n, 0.0f) - mean) * rstd * load_tail(a.weight + j, n, 0.0f) +
                            load_tail(a.bias + j, n, 0.0f), n);
    }
  }
}

// dx = rstd (g w - mean(g w) - xhat mean(g w xhat)); dweight/dbias get the sums over the rows.
void layer_norm_vjp(const LayerNormArgs& a, int64_t begin, int64_t end) {
  const long d = a.dim;
  for (long j = 0; j < d; ++j) a.dweight[j] = a.dbias[j] = 0.0f;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * d;
    const float* g = a.cot + r * d;
    float* dx = a.out + r * d;
    float mean, rstd;
    layer_norm_stats(x, d, a.eps, &mean, &rstd);
    vf s1 = splat(0.0f), s2 = splat(0.0f);
    long j = 0;
    for (; j + W <= d; j += W) {
      vf xhat = (loadu(x + j) - mean) * rstd;
      vf gv = loadu(g + j);
      vf gw = gv * loadu(a.weight + j);
      s1 += gw;
      s2 += gw * xhat;
      storeu(a.dweight + j, loadu(a.dweight + j) + gv * xhat);
      storeu(a.dbias + j, loadu(a.dbias + j) + gv);
    }
    for (; j < d; ++j) {  // the tail, lane by lane into the same accumulators
      float xhat = (x[j] - mean) * rstd;
      float gw = g[j] * a.weight[j];
      s1[j % W] += gw;
      s2[j % W] += gw * xhat;
      a.dweight[j] += g[j] * xhat;
      a.dbias[j] += g[j];
    }
    float m1 = hsum(s1) / float(d), m2 = hsum(s2) / float(d);
    j = 0;
    for (; j + W <= d; j += W) {
      vf xhat = (loadu(x + j) - mean) * rstd;
      vf gw = loadu(g + j) * loadu(a.weight + j);
      storeu(dx + j, (gw - m1 - xhat * m2) * rstd);
    }
    for (; j < d; ++j) {
      float xhat = (x[j] - mean) * rstd;
      float gw = g[j] * a.weight[j];
      dx[j] = (gw - m1 - xhat * m2) * rstd;
    }
  }
}

// Lanes of row r kept by the mask, chunk starting at column j (n valid columns).
MLXT_INLINE vi kept(const SoftmaxArgs& a, int64_t r, long j, long n) {
  if (a.mode == 1) return mask_lanes(a.mask + r * a.len + j, n);
  long limit = a.mode == 2 ? long(r % a.q_len + a.causal_offset + 1) : a.len;
  if (limit > a.len) limit = a.len;
  return below(j, j + n < limit ? j + n : limit);
}

MLXT_INLINE bool row_has_keys(const SoftmaxArgs& a, int64_t r) {
  if (a.mode == 0) return a.len > 0;
  if (a.mode == 2) return r % a.q_len + a.causal_offset >= 0 && a.len > 0;
  const unsigned char* m = a.mask + r * a.len;
  for (long j = 0; j < a.len; ++j)
    if (m[j]) return true;
  return false;
}

void softmax(const SoftmaxArgs& a, int64_t begin, int64_t end) {
  const long L = a.len;
  const float ninf = -__builtin_inff();
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * L;
    float* y = a.out + r * L;
    if (!row_has_keys(a, r)) {
      for (long j = 0; j < L; ++j) y[j] = 1.0f / float(L);
      continue;
    }
    vf mx = splat(ninf);
    long j = 0;
    for (; j < L; j += W) {
      long n = L - j < W ? L - j : W;
      vf v = n == W ? loadu(x + j) : load_tail(x + j, n, ninf);
      mx = vmax(mx, select(kept(a, r, j, n), v, splat(ninf)));
    }
    float top = hmax(mx);
    vf acc = splat(0.0f);
    for (j = 0; j < L; j += W) {
      long n = L - j < W ? L - j : W;
      vf v = n == W ? loadu(x + j) : load_tail(x + j, n, top);
      vf e = select(kept(a, r, j, n), vexp(v - top), splat(0.0f));
      acc += e;
      if (n == W) storeu(y + j, e); else store_tail(y + j, e, n);
    }
    float total = hsum(acc);
    for (j = 0; j + W <= L; j += W) storeu(y + j, loadu(y + j) / total);
    for (; j < L; ++j) y[j] = y[j] / total;
  }
}

// dx = y (g - sum(g y)); zero for rows with nothing kept.
void softmax_vjp(const SoftmaxArgs& a, int64_t begin, int64_t end) {
  const long L = a.len;
  for (int64_t r = begin; r < end; ++r) {
    const float* y = a.x + r * L;
    const float* g = a.cot + r * L;
    float* dx = a.out + r * L;
    if (!row_has_keys(a, r)) {
      for (long j = 0; j < L; ++j) dx[j] = 0.0f;
      continue;
    }
    vf acc = splat(0.0f);
    long j = 0;
    for (; j + W <= L; j += W) acc += loadu(g + j) * loadu(y + j);
    if (j < L) acc += load_tail(g + j, L - j, 0.0f) * load_tail(y + j, L - j, 0.0f);
    float s = hsum(acc);
    for (j = 0; j + W <= L; j += W) storeu(dx + j, loadu(y + j) * (loadu(g + j) - s));
    for (; j < L; ++j) dx[j] = y[j] * (g[j] - s);
  }
}

constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

MLXT_INLINE vf act(int kind, vf x) {
  if (kind == mlxt::kGeluExact) return x * vnormal_cdf(x);
  if (kind == mlxt::kGeluTanh)
    return 0.5f * x * (1.0f + vtanh(kSqrt2OverPi * (x + 0.044715f * (x * x * x))));
  return x / (1.0f + vexp(-x));  // silu
}

MLXT_INLINE vf act_grad(int kind, vf x) {
  if (kind == mlxt::kGeluExact) return vnormal_cdf(x) + x * kInvSqrt2Pi * vexp(-0.5f * (x * x));
  if (kind == mlxt::kGeluTanh) {
    vf x2 = x * x;
    vf t = vtanh(kSqrt2OverPi * (x + 0.044715f * (x2 * x)));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * (kSqrt2OverPi * (1.0f + 0.134145f * x2));
  }
  vf s = 1.0f / (1.0f + vexp(-x));
  return s * (1.0f + x * (1.0f - s));
}

void activation(int kind, const UnaryArgs& a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + W <= end; i += W) storeu(a.out + i, act(kind, loadu(a.x + i)));
  if (i < end) store_tail(a.out + i, act(kind, load_tail(a.x + i, end - i, 0.0f)), end - i);
}

void activation_vjp(int kind, const UnaryArgs& a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + W <= end; i += W) storeu(a.out + i, loadu(a.cot + i) * act_grad(kind, loadu(a.x + i)));
  if (i < end) {
    long n = end - i;
    store_tail(a.out + i, load_tail(a.cot + i, n, 0.0f) * act_grad(kind, load_tail(a.x + i, n, 0.0f)), n);
  }
}

// max, log-sum-exp and (for smoothing) the mean of one row of logits.
MLXT_INLINE void logit_stats(const float* x, long V, float* top_out, float* total_out) {
  const float ninf = -__builtin_inff();
  vf mx = splat(ninf);
  long j = 0;
  for (; j + W <= V; j += W) mx = vmax(mx, loadu(x + j));
  if (j < V) mx = vmax(mx, load_tail(x + j, V - j, ninf));
  float top = hmax(mx);
  vf acc = splat(0.0f);
  for (j = 0; j + W <= V; j += W) acc += vexp(loadu(x + j) - top);
  if (j < V) acc += select(below(0, V - j), vexp(load_tail(x + j, V - j, top) - top), splat(0.0f));
  *top_out = top;
  *total_out = hsum(acc);
}

void cross_entropy(const CrossEntropyArgs& a, int64_t begin, int64_t end) {
  const long V = a.vocab;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * V;
    float top, total;
    logit_stats(x, V, &top, &total);
    int32_t t = a.targets[r];
    float picked = (t >= 0 && t < V) ? x[t] : 0.0f;
    float loss = (__builtin_logf(total) + top) - picked;
    if (a.smoothing != 0.0f) loss = loss - a.smoothing * (row_sum(x, V) / float(V) - picked);
    a.out[r] = loss;
  }
}

void cross_entropy_vjp(const CrossEntropyArgs& a, int64_t begin, int64_t end) {
  const long V = a.vocab;
  const float uniform = a.smoothing / float(V);
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * V;
    float* dx = a.out + r * V;
    float top, total;
    logit_stats(x, V, &top, &total);
    float c = a.cot[r];
    long j = 0;
    for (; j + W <= V; j += W) storeu(dx + j, c * (vexp(loadu(x + j) - top) / total - uniform));
    if (j < V) {
      long n = V - j;
      store_tail(dx + j, c * (vexp(load_tail(x + j, n, top) - top) / total - uniform), n);
    }
    int32_t t = a.targets[r];
    if (t >= 0 && t < V) dx[t] = dx[t] - c * (1.0f - a.smoothing);
  }
}

void log_norm(const mlxt::LogNormArgs& a, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    float top, total;
    logit_stats(a.x + r * a.len, long(a.len), &top, &total);
    a.top[r] = top;
    a.log_norm[r] = __builtin_logf(total);
  }
}

// a ranks below b: smaller, or NaN against a number.
MLXT_INLINE bool ranks_below(float a, float b) { return a < b || (a != a && b == b); }

// One row's k best so far, v[0] the best; `insert` places x at index j (j larger than every
// index already held, so an equal value goes after them), dropping the worst when full.
struct TopKRow {
  float* v;
  int32_t* id;
  long k, n = 0;
  MLXT_INLINE void insert(float x, long j) {
    long p = n < k ? n++ : k - 1;
    while (p > 0 && ranks_below(v[p - 1], x)) {
      v[p] = v[p - 1];
      id[p] = id[p - 1];
      --p;
    }
    v[p] = x;
    id[p] = int32_t(j);
  }
};

void top_k(const TopKArgs& a, int64_t begin, int64_t end) {
  const long L = a.len, k = a.k;
  for (int64_t r = begin; r < end; ++r) {
    const float* x = a.x + r * L;
    TopKRow row{a.values + r * k, a.indices + r * k, k};
    long j = 0;
    for (; j < k; ++j) row.insert(x[j], j);
    // Only a value above the current k-th can enter: test 16 at a time against it (a vector
    // filter that may let through a few that fail the exact scalar test, never the reverse).
    for (; j + W <= L; j += W) {
      float worst = row.v[k - 1];
      if (worst == worst && !any_lane(less(splat(worst), loadu(x + j)))) continue;
      for (long i = j; i < j + W; ++i)
        if (ranks_below(row.v[k - 1], x[i])) row.insert(x[i], i);
    }
    for (; j < L; ++j)
      if (ranks_below(row.v[k - 1], x[j])) row.insert(x[j], j);
  }
}

// The keep mask of the 16 elements from `first` (a multiple of 16, so hi(i) is the same for all
// of them): all ones where an element is dropped.
MLXT_INLINE vi dropped(const DropoutArgs& a, int64_t first) {
  const vu lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const unsigned lo = unsigned(uint64_t(first)), hi = unsigned(uint64_t(first) >> 32);
  vu h = fmix32((lane + lo) * 0x9E3779B1u + a.key0);
  h = fmix32(h ^ (a.key1 ^ (hi * 0x85EBCA77u)));
  // h >> 1 and the threshold are below 2^31, so the sign of their difference is h >> 1 < threshold
  return (vi)((h >> 1) - a.threshold) >> 31;
}

void dropout(const DropoutArgs& a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + W <= end; i += W) storeu(a.out + i, select(dropped(a, i), splat(0.0f), loadu(a.x + i) * a.scale));
  if (i < end) {
    long n = end - i;
    store_tail(a.out + i, select(dropped(a, i), splat(0.0f), load_tail(a.x + i, n, 0.0f) * a.scale), n);
  }
}

MLXT_INLINE void adamw_lanes(const AdamWArgs& a, vf p, vf g, vf m, vf v, vf* p_out, vf* m_out, vf* v_out) {
  g = (g / a.g_divisor) * a.g_scale;
  vf p1 = p * a.decay;
  vf m1 = a.b1 * m + a.one_minus_b1 * g;
  vf v1 = a.b2 * v + a.one_minus_b2 * (g * g);
  vf root;
  for (long i = 0; i < W; ++i) root[i] = __builtin_sqrtf(v1[i]);  // vectorised (sqrtps), exact
  *p_out = p1 - (a.c1 * m1) / (root * a.c2 + a.eps);
  *m_out = m1;
  *v_out = v1;
}

void adamw(const AdamWArgs& a, int64_t begin, int64_t end) {
  int64_t i = begin;
  vf p, m, v;
  for (; i + W <= end; i += W) {
    adamw_lanes(a, loadu(a.p + i), loadu(a.g + i), loadu(a.m + i), loadu(a.v + i), &p, &m, &v);
    storeu(a.p_out + i, p);
    storeu(a.m_out + i, m);
    storeu(a.v_out + i, v);
  }
  if (i < end) {
    long n = end - i;
    adamw_lanes(a, load_tail(a.p + i, n, 0.0f), load_tail(a.g + i, n, 0.0f), load_tail(a.m + i, n, 0.0f),
                load_tail(a.v + i, n, 0.0f), &p, &m, &v);
    store_tail(a.p_out + i, p, n);
    store_tail(a.m_out + i, m, n);
    store_tail(a.v_out + i, v, n);
  }
}

// Lanes accumulate separately and are added in a fixed order at the end: the result depends
// only on `count` and the data, not on which thread runs it.
float sum_squares(const float* x, int64_t count, float divisor) {
  vf acc = splat(0.0f);
  int64_t i = 0;
  for (; i + W <= count; i += W) {
    vf y = loadu(x + i) / divisor;
    acc = acc + y * y;
  }
  if (i < count) {
    vf y = load_tail(x + i, long(count - i), 0.0f) / divisor;
    acc = acc + y * y;
  }
  return hsum(acc);
}

}  // namespace

#define MLXT_DEFINE_TABLE(NAME, ISA) \
  const mlxt::KernelTable NAME = {ISA, layer_norm, layer_norm_vjp, softmax, softmax_vjp, \
                                  activation, activation_vjp, cross_entropy, cross_entropy_vjp, top_k, log_norm, dropout, adamw, sum_squares, \
                                  cached_attention, full_attention, full_attention_vjp, packed_gemm, general_gemm};
