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

// One AdamW step of float32 parameter p with gradient g and moments m, v (all the same shape);
// hyper: float32 (8,) = [1 - lr wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), eps].
// Returns (p', m', v').
std::vector<mx::array> adamw(const mx::array& p, const mx::array& g, const mx::array& m, const mx::array& v,
                             const mx::array& hyper);

}  // namespace mlxt
