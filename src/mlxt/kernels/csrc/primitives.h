// MLX primitives for mlxt's CPU kernels: each forward with its own backward primitive.
//
// The ops (ops.cpp) hand the primitives row-contiguous float32 inputs; eval_cpu allocates the
// outputs and enqueues one task on the CPU stream that splits the rows over mlxt's thread pool.
#pragma once

#include "mlx/array.h"
#include "mlx/primitives.h"

#include "kernels.h"

namespace mlxt {

namespace mx = mlx::core;

#define MLXT_NO_GPU                                                               \
  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override { \
    throw std::runtime_error(std::string(name()) + " has no GPU implementation");  \
  }

// An inference-only primitive: asking for its gradient is an error that says why.
#define MLXT_NO_VJP(MESSAGE)                                                                   \
  std::vector<mx::array> vjp(const std::vector<mx::array>&, const std::vector<mx::array>&,    \
                             const std::vector<int>&, const std::vector<mx::array>&) override { \
    throw std::invalid_argument(MESSAGE);                                                     \
  }

class LayerNorm : public mx::Primitive {
 public:
  LayerNorm(mx::Stream s, float eps) : mx::Primitive(s), eps_(eps) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  const char* name() const override { return "MlxtLayerNorm"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  float eps_;
};

// inputs x, weight, cotangent -> dx, dweight, dbias
class LayerNormVJP : public mx::Primitive {
 public:
  LayerNormVJP(mx::Stream s, float eps) : mx::Primitive(s), eps_(eps) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtLayerNormVJP"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    return {in[0].shape(), in[1].shape(), in[1].shape()};
  }
  float eps_;
};

// mode 0: inputs scores; 1: scores, bool mask (same shape); 2: scores, causal.
class Softmax : public mx::Primitive {
 public:
  Softmax(mx::Stream s, int mode, int64_t causal_offset) : mx::Primitive(s), mode_(mode), offset_(causal_offset) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override;
  const char* name() const override { return "MlxtSoftmax"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  int mode_;
  int64_t offset_;
};

// inputs y, cotangent [, mask] -> dx
class SoftmaxVJP : public mx::Primitive {
 public:
  SoftmaxVJP(mx::Stream s, int mode, int64_t causal_offset) : mx::Primitive(s), mode_(mode), offset_(causal_offset) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtSoftmaxVJP"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  int mode_;
  int64_t offset_;
};

class Activation : public mx::Primitive {
 public:
  Activation(mx::Stream s, int kind) : mx::Primitive(s), kind_(kind) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override;
  const char* name() const override { return "MlxtActivation"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  int kind_;
};

// inputs x, cotangent -> cotangent * act'(x)
class ActivationVJP : public mx::Primitive {
 public:
  ActivationVJP(mx::Stream s, int kind) : mx::Primitive(s), kind_(kind) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtActivationVJP"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  int kind_;
};

// inputs logits (rows, vocab), int32 targets (rows) -> per-row loss (rows)
class CrossEntropy : public mx::Primitive {
 public:
  CrossEntropy(mx::Stream s, float smoothing) : mx::Primitive(s), smoothing_(smoothing) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  const char* name() const override { return "MlxtCrossEntropy"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[1].shape()}; }
  float smoothing_;
};

// inputs logits, targets, cotangent (rows) -> dlogits
class CrossEntropyVJP : public mx::Primitive {
 public:
  CrossEntropyVJP(mx::Stream s, float smoothing) : mx::Primitive(s), smoothing_(smoothing) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtCrossEntropyVJP"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  float smoothing_;
};

// inputs x, uint32 key (2,) -> x with elements dropped and the rest scaled (kernels.h,
// DropoutArgs). Its own vjp and jvp: the same mask applied to the cotangent or tangent.
class Dropout : public mx::Primitive {
 public:
  Dropout(mx::Stream s, float p) : mx::Primitive(s), p_(p) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  std::vector<mx::array> jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                             const std::vector<int>& argnums) override;
  const char* name() const override { return "MlxtDropout"; }
  bool is_equivalent(const mx::Primitive& other) const override;
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  float p_;
};

// The train step's update, as a few graph nodes for the whole model rather than several per
// parameter (a primitive with n outputs costs MLX O(n^2) bookkeeping: each output lists its
// siblings, so parameters go to AdamW in small groups).
//
// GradNorm: inputs g_1..g_n (float32) and count () float32 -> the global L2 norm () of the
// g_i / max(count, 1). Not differentiable.
class GradNorm : public mx::Primitive {
 public:
  explicit GradNorm(mx::Stream s) : mx::Primitive(s) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtGradNorm"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>&) override { return {{}}; }
};

// AdamW: one step of n parameters. Inputs p_1..p_n, g_1..g_n, m_1..m_n, v_1..v_n (float32;
// g_i, m_i, v_i shaped as p_i), hyper (8,) = [decay, b1, 1 - b1, b2, 1 - b2, c1, c2, eps]
// (kernels.h, AdamWArgs), count () and norm () float32. Each parameter steps with gradient
// (g_i / max(count, 1)) * clip, clip = min(max_norm / (norm + 1e-6), 1), or 1 when max_norm is
// 0. Outputs p_i', m_i', v_i' (n each), reusing the inputs' buffers when those are donatable.
// Not differentiable: it is an update.
class AdamW : public mx::Primitive {
 public:
  AdamW(mx::Stream s, float max_norm) : mx::Primitive(s), max_norm_(max_norm) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtAdamW"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return max_norm_ == static_cast<const AdamW&>(other).max_norm_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override;

 private:
  float max_norm_;
};

// inputs x (rows, k), packed weight (panels, k, kPanel) [, bias (n)] -> x @ w^T + bias (rows, n).
// Inference only: it has no gradient (training uses nn.Linear).
class PackedLinear : public mx::Primitive {
 public:
  PackedLinear(mx::Stream s, int64_t n) : mx::Primitive(s), n_(n) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  MLXT_NO_VJP("packed_linear is for inference and has no gradient (train with nn.Linear)")
  const char* name() const override { return "MlxtPackedLinear"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return n_ == static_cast<const PackedLinear&>(other).n_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    return {{in[0].shape(0), int(n_)}};
  }
  int64_t n_;
};

// inputs q (B, H, 1, D), keys, values (Bk, H, cap, D) [, rows (B, >= len) int32] [, mask (B, len)
// bool] -> (B, H, 1, D): one query per row over the first `len` cached positions (kernels.h).
// Inference only: no gradient.
class CachedAttention : public mx::Primitive {
 public:
  CachedAttention(mx::Stream s, int64_t len, float scale, bool has_rows, bool has_mask)
      : mx::Primitive(s), len_(len), scale_(scale), has_rows_(has_rows), has_mask_(has_mask) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  MLXT_NO_VJP("cached_attention is for decoding and has no gradient")
  const char* name() const override { return "MlxtCachedAttention"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    auto& o = static_cast<const CachedAttention&>(other);
    return len_ == o.len_ && scale_ == o.scale_ && has_rows_ == o.has_rows_ && has_mask_ == o.has_mask_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override { return {in[0].shape()}; }
  int64_t len_;
  float scale_;
  bool has_rows_, has_mask_;
};

// What both attention primitives are built with (and compared by).
struct AttentionSettings {
  float scale;
  bool causal;
  int64_t causal_offset;
  bool has_mask;
  bool packed;  // self-attention's q, k and v as one (B, L, 3, H, D) input (one projection)
  bool operator==(const AttentionSettings&) const = default;
  int qkv_inputs() const { return packed ? 1 : 3; }
};

// inputs q (B, Lq, H, D), k, v (B, Lk, H, D), or packed: qkv (B, L, 3, H, D) [, mask (1 or B,
// 1 or H, 1 or Lq, Lk) bool] -> o (B, Lq, H, D), lse (B, H, Lq): attention over whole sequences
// (kernels.h, AttentionArgs). lse is kept for the backward pass and has no gradient of its own.
class Attention : public mx::Primitive {
 public:
  Attention(mx::Stream s, AttentionSettings settings) : mx::Primitive(s), settings_(settings) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  std::vector<mx::array> vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cotangents,
                             const std::vector<int>& argnums, const std::vector<mx::array>& outputs) override;
  const char* name() const override { return "MlxtAttention"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return settings_ == static_cast<const Attention&>(other).settings_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override;
  AttentionSettings settings_;
};

// inputs q, k, v (or qkv), o, lse, cotangent of o [, mask] -> dq, dk, dv (or dqkv)
class AttentionVJP : public mx::Primitive {
 public:
  AttentionVJP(mx::Stream s, AttentionSettings settings) : mx::Primitive(s), settings_(settings) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtAttentionVJP"; }
  bool is_equivalent(const mx::Primitive& other) const override {
    return settings_ == static_cast<const AttentionVJP&>(other).settings_;
  }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    std::vector<mx::Shape> shapes;
    for (int i = 0; i < settings_.qkv_inputs(); ++i) shapes.push_back(in[i].shape());
    return shapes;
  }
  AttentionSettings settings_;
};

// input w (n, k) -> packed (ceil(n / kPanel), k, kPanel): the layout PackedLinear reads.
class PackWeight : public mx::Primitive {
 public:
  explicit PackWeight(mx::Stream s) : mx::Primitive(s) {}
  void eval_cpu(const std::vector<mx::array>& in, std::vector<mx::array>& out) override;
  MLXT_NO_GPU
  const char* name() const override { return "MlxtPackWeight"; }
  bool is_equivalent(const mx::Primitive&) const override { return true; }
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& in) override {
    return {{int((in[0].shape(0) + kPanel - 1) / kPanel), in[0].shape(1), int(kPanel)}};
  }
};

}  // namespace mlxt
