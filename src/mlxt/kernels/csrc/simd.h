// 16-lane float vectors (GCC vector extensions) and the vector math the kernels need.
//
// Included by each instruction-set translation unit (isa_*.cpp) after a `#pragma GCC target`,
// so the same source becomes AVX-512, AVX2+FMA or baseline SSE2 code. Everything here has
// internal linkage: no inline function compiled for one instruction set may be shared with
// another translation unit. The lane count is 16 for every instruction set and the build uses
// -ffp-contract=off, so each variant performs the same float operations in the same order and
// gives bitwise the same results.
#pragma once

// Every helper is forced inline: a 64-byte vector passed to or returned from a call that is
// not inlined goes through memory on AVX2 and SSE2.
#define MLXT_INLINE inline __attribute__((always_inline))

namespace {

typedef float vf __attribute__((vector_size(64)));
typedef int vi __attribute__((vector_size(64)));
typedef unsigned vu __attribute__((vector_size(64)));
typedef unsigned char vb __attribute__((vector_size(16)));
constexpr long W = 16;

MLXT_INLINE vf splat(float x) { return vf{} + x; }
MLXT_INLINE vf loadu(const float* p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
MLXT_INLINE void storeu(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

// The first n (< W) lanes from p, the others set to fill.
MLXT_INLINE vf load_tail(const float* p, long n, float fill) {
  float buf[W];
  for (long i = 0; i < W; ++i) buf[i] = i < n ? p[i] : fill;
  return loadu(buf);
}
MLXT_INLINE void store_tail(float* p, vf v, long n) {
  float buf[W];
  storeu(buf, v);
  for (long i = 0; i < n; ++i) p[i] = buf[i];
}

// Lanes where the bytes at p are non-zero (n valid bytes; the rest count as false).
MLXT_INLINE vi mask_lanes(const unsigned char* p, long n) {
  unsigned char buf[W];
  for (long i = 0; i < W; ++i) buf[i] = i < n ? p[i] : 0;
  vb b;
  __builtin_memcpy(&b, buf, sizeof b);
  return -__builtin_convertvector(b, vi);  // MLX booleans are bytes 0 / 1
}
// Lanes whose index (first + lane) is below limit.
MLXT_INLINE vi below(long first, long limit) {
  const vi lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  long room = limit - first;
  int r = room < 0 ? 0 : (room > W ? int(W) : int(room));
  return (lane - r) >> 31;
}

// Lane masks (all ones / all zeros) come from sign bits, selections are bit operations: GCC
// turns vector comparisons and ?: into per-lane scalar code when the vector is wider than the
// instruction set's registers, while shifts, subtractions and bit operations stay vectorised.
MLXT_INLINE vi negative(vf a) { return (vi)a >> 31; }          // sign bit set (-0.0 included)
MLXT_INLINE vi less(vf a, vf b) { return negative(a - b); }     // a < b for finite or infinite a != b
MLXT_INLINE vf select(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
MLXT_INLINE vf vmax(vf a, vf b) { return select(less(a, b), b, a); }
MLXT_INLINE vf vmin(vf a, vf b) { return select(less(a, b), a, b); }
MLXT_INLINE vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }

// Whether any lane of a mask is set (folded in halves, so it stays in vector registers).
MLXT_INLINE bool any_lane(vi m) {
  typedef int vi8 __attribute__((vector_size(32)));
  typedef int vi4 __attribute__((vector_size(16)));
  vi8 a = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7) | __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
  vi4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) | __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] | b[1] | b[2] | b[3]) != 0;
}

// MurmurHash3's 32-bit finalizer on each lane: a bijection that mixes every input bit into
// every output bit (the dropout kernel's hash; integer operations, so exact on every target).
MLXT_INLINE vu fmix32(vu h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// Fixed-order horizontal reductions (the same on every instruction set).
MLXT_INLINE float hsum(vf v) {
  float s = 0.0f;
  for (long i = 0; i < W; ++i) s += v[i];
  return s;
}
MLXT_INLINE float hmax(vf v) {
  float m = v[0];
  for (long i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// exp(x): range reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial for e^r (the
// Cephes single-precision coefficients), then scaling by 2^n through the exponent bits.
// Inputs below -87.3 give 2^-126 (~1.2e-38) rather than a denormal; callers that need exact
// zeros (masked positions) set them themselves. NaN stays NaN.
MLXT_INLINE vf vexp(vf x) {
  x = vmin(x, splat(88.3762626647949f));
  x = vmax(x, splat(-87.3365447504f));
  vf t = x * 1.44269504088896341f;
  // round to nearest: adding and subtracting 1.5 * 2^23 (valid for |t| < 2^22)
  vf n = (t + 12582912.0f) - 12582912.0f;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = splat(1.9875691500E-4f);
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  vf y = p * (r * r) + r + 1.0f;
  vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  return y * (vf)e;
}

// erfc(z) for z >= 0 (Numerical Recipes' Chebyshev fit, fractional error below 1.2e-7).
MLXT_INLINE vf verfc_pos(vf z) {
  vf t = 1.0f / (1.0f + 0.5f * z);
  vf p = splat(0.17087277f);
  p = p * t + -0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t + -1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t + -0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t + -1.26551223f;
  return t * vexp(p - z * z);
}

// Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF, from erfc of |x| / sqrt 2.
MLXT_INLINE vf vnormal_cdf(vf x) {
  vf z = x * 0.70710678118654752f;
  vf half_erfc = 0.5f * verfc_pos(vabs(z));
  return select(negative(x), half_erfc, 1.0f - half_erfc);
}

// tanh(u) = sign(u) (1 - 2 / (e^{2|u|} + 1)), exact enough in float32 for all u.
MLXT_INLINE vf vtanh(vf u) {
  vf t = 1.0f - 2.0f / (vexp(2.0f * vabs(u)) + 1.0f);
  return select(negative(u), -t, t);
}

}  // namespace
