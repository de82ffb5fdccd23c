// The ops the Python module exposes: checks, then one primitive (see primitives.h).
#pragma once

#include <optional>

#include "mlx/array.h"

namespace mlxt {

namespace mx = mlx::core;

// Over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, weight and bias (dim,).
mx::array layer_norm(const mx::array& x, const mx::array& weight, const mx::array& bias, float eps);
// Softmax over the last axis; `mask` (bool, broadcastable to x: true = keep) or `causal`
// (key k kept for query i when k <= i + causal_offset), not both.
mx::array softmax(const mx::array& x, const std::optional<mx::array>& mask, bool causal, int64_t causal_offset);
// kind: 0 exact (erf) GELU, 1 tanh GELU, 2 SiLU.
mx::array activation(const mx::array& x, int kind);
// Per-position label-smoothed cross-entropy of logits (..., vocab) and int targets (...).
mx::array cross_entropy(const mx::array& logits, const mx::array& targets, float smoothing);

// Inverted dropout of float32 x with probability p in [0, 1): the mask comes from `key`
// (uint32, shape (2,)) and each element's index (kernels.h, DropoutArgs).
mx::array dropout(const mx::array& x, const mx::array& key, float p);

// The global L2 norm () of the float32 gradients g divided by max(count, 1).
mx::array grad_norm(const std::vector<mx::array>& g, const mx::array& count);

// One AdamW step of the float32 parameters p with gradients g and moments m, v (lists of the
// same length, each g[i], m[i], v[i] shaped as p[i]); hyper: float32 (8,) = [1 - lr wd, b1,
// 1 - b1, b2, 1 - b2, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), eps]. The gradients are divided by
// max(count, 1) and, when max_norm > 0, scaled by min(max_norm / (norm + 1e-6), 1) (norm: the
// grad_norm of all the model's gradients). Returns p', then m', then v' (n each).
std::vector<mx::array> adamw(const std::vector<mx::array>& p, const std::vector<mx::array>& g,
                             const std::vector<mx::array>& m, const std::vector<mx::array>& v, const mx::array& hyper,
                             const mx::array& count, const mx::array& norm, float max_norm);

// Decoding's attention: q (B, H, 1, D) over the first `len` positions of the caches keys, values
// (Bk, H, cap, D); rows (B, >= len) int32: the batch row holding each position of row b's
// history (null: row b, and Bk == B); mask (B, len) bool, true = keep. -> (B, H, 1, D).
mx::array cached_attention(const mx::array& q, const mx::array& keys, const mx::array& values, int64_t len,
                           const std::optional<mx::array>& rows, const std::optional<mx::array>& mask, float scale);

// Attention over whole sequences in the projections' layout: q (B, Lq, H, D), k, v (B, Lk, H, D)
// float32, D a multiple of 16, Lk >= 1 -> softmax(scale q k^T) v as (B, Lq, H, D). mask: bool,
// broadcastable to (B, H, Lq, Lk), true = keep; causal: key t kept for query i when
// t <= i + causal_offset (a mask or causal, not both). Differentiable in q, k and v.
mx::array attention(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
                    const std::optional<mx::array>& mask, bool causal, int64_t causal_offset);
// The same for self-attention with q, k and v as one (B, L, 3, H, D) array (one projection
// of the input to 3 H D features); the gradient is one array of that shape.
mx::array attention_qkv(const mx::array& qkv, float scale, const std::optional<mx::array>& mask, bool causal,
                        int64_t causal_offset);

// w (n, k) float32 -> (ceil(n / 64), k, 64), the layout packed_linear reads.
mx::array pack_weight(const mx::array& w);
// x (..., k) @ w^T + bias -> (..., n) for a weight w (n, k) packed as (ceil(n / 64), k, 64)
// (kernels.h, PackedGemmArgs); bias (n) optional. Inference only (no gradient).
mx::array packed_linear(const mx::array& x, const mx::array& packed, const std::optional<mx::array>& bias, int64_t n);

}  // namespace mlxt
