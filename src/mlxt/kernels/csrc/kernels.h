// The row kernels' arguments and the table of one instruction set's implementations.
//
// Each entry computes rows [begin, end) of its operation; the primitives (primitives.cpp)
// split the rows over threads. A row is always computed by exactly one call, with no state
// shared between rows except the per-block partial sums of layer_norm_vjp, so results do not
// depend on the thread count.
#pragma once

#include <cstdint>

namespace mlxt {

struct LayerNormArgs {
  const float* x;      // (rows, dim)
  const float* weight; // (dim)
  const float* bias;   // (dim) (forward only)
  const float* cot;    // (rows, dim) cotangent (backward only)
  float* out;          // y (forward) or dx (backward)
  float* dweight;      // (dim) partial sum of this call's rows (backward only, overwritten)
  float* dbias;        // (dim) likewise
  int64_t dim;
  float eps;
};

// Softmax over the last axis of rows of length `len`; mode 0: no mask, 1: boolean mask
// (rows, len) with true = keep, 2: causal, where row r (query r % q_len) keeps the keys
// k <= r % q_len + causal_offset. A row with nothing to keep comes out uniform (1 / len), as a
// softmax over scores all set to the most negative float would, and gets a zero gradient.
struct SoftmaxArgs {
  const float* x;           // scores (forward) or the forward output y (backward)
  const float* cot;         // cotangent (backward only)
  const unsigned char* mask;
  float* out;
  int64_t len;
  int64_t q_len;
  int64_t causal_offset;
  int mode;
};

// Elementwise over `count` elements: y = act(x) or dx = cot * act'(x).
struct UnaryArgs {
  const float* x;
  const float* cot;
  float* out;
};

// Label-smoothed cross-entropy of rows of `vocab` logits: loss[r] = logsumexp(x) - x[t] -
// smoothing * (mean(x) - x[t]); backward: dx = cot[r] * (softmax(x) - (1 - smoothing) onehot(t)
// - smoothing / vocab).
struct CrossEntropyArgs {
  const float* x;
  const int32_t* targets;
  const float* cot;
  float* out;  // loss (rows) or dx (rows, vocab)
  int64_t vocab;
  float smoothing;
};

// The k largest of each row of `len` floats, best first; ties go to the lower index and NaN
// ranks below every number (so it is picked only when a row has fewer than k numbers).
// Used by beam search to cut each row of next-token scores to its candidates.
struct TopKArgs {
  const float* x;      // (rows, len)
  float* values;       // (rows, k)
  int32_t* indices;    // (rows, k)
  int64_t len;
  int64_t k;           // 1 <= k <= len
};

// Each row's max and log(sum(exp(x - max))), so log_softmax(x) = (x - top) - log_norm: beam
// search's host step normalises only its candidates with them.
struct LogNormArgs {
  const float* x;  // (rows, len)
  float* top;      // (rows)
  float* log_norm; // (rows)
  int64_t len;
};

// Inverted dropout over `count` elements: out[i] = x[i] * scale where the element is kept, 0
// where it is dropped. Whether element i is dropped depends only on (i, key): the 32-bit hash
// h = fmix32(fmix32(lo(i) * 0x9E3779B1 + key0) ^ key1 ^ hi(i) * 0x85EBCA77) (fmix32: MurmurHash3's
// finalizer), dropped when h >> 1 < threshold = p * 2^31. The same call on the cotangent is the
// backward pass, and results do not depend on the thread count or the instruction set.
struct DropoutArgs {
  const float* x;
  float* out;
  uint32_t key0, key1;
  uint32_t threshold;  // < 2^31
  float scale;         // 1 / (1 - p)
};

// One AdamW step (decoupled weight decay, bias-corrected), elementwise over `count` floats, in
// the order of operations of MLX's `optim.AdamW` (bias_correction=True), so results match it:
//   p1 = p * decay;  m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;
//   p' = p1 - (c1 m') / (sqrt(v') c2 + eps)
// with decay = 1 - lr wd, c1 = lr / (1 - b1^t), c2 = 1 / sqrt(1 - b2^t) computed by the caller,
// and g = (raw g / g_divisor) * g_scale: the train step's per-token normalisation and gradient
// clipping (1 and 1 leave g exactly as it is).
struct AdamWArgs {
  const float* p;
  const float* g;
  const float* m;
  const float* v;
  float* p_out;
  float* m_out;
  float* v_out;
  float decay, b1, one_minus_b1, b2, one_minus_b2, c1, c2, eps;
  float g_divisor, g_scale;
};

// c (m, n) = a (m, k) @ w^T + bias for a weight w (n, k) prepacked into ceil(n / kPanel) panels
// of kPanel output columns: packed[p][kk][j] = w[p * kPanel + j][kk], zero past n (gemm.h).
constexpr int64_t kPanel = 64;
struct PackedGemmArgs {
  const float* a;       // (m, k) row-major
  const float* packed;  // (ceil(n / kPanel), k, kPanel)
  const float* bias;    // (n) or null
  float* c;             // (m, n) row-major
  int64_t m, n, k;      // k >= 1
};

// The general product (sgemm.cpp): c (m, n) = alpha op(a) b [+ c], where op(a) is a (m, k) or,
// with trans_a, the transpose of a (k, m), read in place, and panel p of b (k, n), its columns
// p * kPanel ..., has row kk at bpack + p * panel_stride + kk * ldb: either b itself (ldb its
// row stride, panel_stride = kPanel; n a multiple of kPanel) or b copied per call into panels,
// bpack[p][kk][j] = b[kk][p * kPanel + j] (ldb = kPanel, panel_stride = k * kPanel, zeros past n).
struct GemmArgs {
  const float* a;
  int64_t lda;
  bool trans_a;
  const float* bpack;
  int64_t ldb, panel_stride;
  float* c;            // (m, n), row stride ldc
  int64_t ldc, m, n, k;  // k >= 1
  float alpha;
  bool accumulate;     // add to c (otherwise c is overwritten and not read)
};

// cblas_sgemm's arguments and meaning (sgemm.cpp); returns 1, or 0 for an order it does not
// take (the caller then uses another BLAS).
int sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc);

// Attention of one query per (row b, head h) over `len` cached positions: out = softmax(scale
// q.k_t) v_t over the kept t, where k_t, v_t of row b sit in batch row rows[b][t] (b when rows
// is null) of the (Bk, heads, cap, dim) caches. A row with nothing kept attends uniformly to all
// positions (as the masked softmax does). (attention.h)
struct CachedAttentionArgs {
  const float* q;              // (B, heads, dim)
  const float* keys;           // (Bk, heads, cap, dim)
  const float* values;         // (Bk, heads, cap, dim)
  const int32_t* rows;         // (B, rows_stride) or null
  const unsigned char* mask;   // (B, mask_stride) true = keep, or null
  float* out;                  // (B, heads, dim)
  int64_t heads, cap, dim, len, rows_stride, mask_stride;
  float scale;
};

// Attention over whole sequences (training, and every call without a cache), one (batch b,
// head h) pair per call of the kernel, in the projections' layout: q (B, Lq, H, D), k and v
// (B, Lk, H, D), the output (B, Lq, H, D), so no head transposes are needed. Query i keeps key t
// when t <= i + causal_offset (causal) and mask[b * mask_b + h * mask_h + i * mask_i + t] is
// true (when there is a mask); a row with nothing kept attends uniformly to all Lk keys and
// gets no score gradient, as the masked softmax. Forward: o = softmax(scale q k^T) v and
// lse = log(sum(exp(scale q k^T))) over the kept keys, (B, H, Lq). Backward: the
// probabilities recomputed from lse, then dq, dk, dv. D is a multiple of 16; each pair is
// computed by one thread in a fixed order, so results do not depend on the thread count.
// (full_attention.h)
struct AttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  const unsigned char* mask;  // or null
  int64_t mask_b, mask_h, mask_i;
  const float* o;     // forward: written; backward: the forward output
  const float* lse;   // backward: the forward's lse
  const float* dout;  // backward: the output's cotangent (B, Lq, H, D)
  float* o_out;       // forward
  float* lse_out;     // forward
  float* dq;          // backward outputs, in q's, k's and v's shapes
  float* dk;
  float* dv;
  int64_t heads, q_len, k_len, dim;
  int64_t row_stride;  // floats from one position to the next in q, k, v, dq, dk, dv (o, dout: heads * dim)
  int64_t causal_offset;
  bool causal;
  float scale;
};

enum ActivationKind { kGeluExact = 0, kGeluTanh = 1, kSilu = 2 };

struct KernelTable {
  const char* isa;
  void (*layer_norm)(const LayerNormArgs&, int64_t begin, int64_t end);
  void (*layer_norm_vjp)(const LayerNormArgs&, int64_t begin, int64_t end);
  void (*softmax)(const SoftmaxArgs&, int64_t begin, int64_t end);
  void (*softmax_vjp)(const SoftmaxArgs&, int64_t begin, int64_t end);
  void (*activation)(int kind, const UnaryArgs&, int64_t begin, int64_t end);
  void (*activation_vjp)(int kind, const UnaryArgs&, int64_t begin, int64_t end);
  void (*cross_entropy)(const CrossEntropyArgs&, int64_t begin, int64_t end);
  void (*cross_entropy_vjp)(const CrossEntropyArgs&, int64_t begin, int64_t end);
  void (*top_k)(const TopKArgs&, int64_t begin, int64_t end);
  void (*log_norm)(const LogNormArgs&, int64_t begin, int64_t end);
  void (*dropout)(const DropoutArgs&, int64_t begin, int64_t end);  // begin: a multiple of 16
  void (*adamw)(const AdamWArgs&, int64_t begin, int64_t end);
  float (*sum_squares)(const float* x, int64_t count, float divisor);  // sum of (x / divisor)^2
  void (*cached_attention)(const CachedAttentionArgs&, int64_t begin, int64_t end);  // (b, h) pairs
  void (*attention)(const AttentionArgs&, int64_t begin, int64_t end);      // (b, h) pairs
  void (*attention_vjp)(const AttentionArgs&, int64_t begin, int64_t end);  // (b, h) pairs
  // rows [row_begin, row_end) x panels [panel_begin, panel_end) of c
  void (*packed_gemm)(const PackedGemmArgs&, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                      int64_t panel_end);
  // rows [row_begin, row_end) x panels [panel_begin, panel_end) of c
  void (*general_gemm)(const GemmArgs&, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                       int64_t panel_end);
};

// The best table this CPU supports (chosen once); MLXT_KERNELS_ISA=avx512|avx2|generic
// forces a lower one (for tests and measurements).
const KernelTable& kernels();

extern const KernelTable kGenericTable;
#if defined(__x86_64__)
extern const KernelTable kAvx2Table;
extern const KernelTable kAvx512Table;
#endif

}  // namespace mlxt
