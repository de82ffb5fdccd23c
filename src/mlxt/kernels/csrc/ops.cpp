#include <cmath>
#include "ops.h"

#include <stdexcept>

#include "mlx/ops.h"
#include "mlx/utils.h"
#include "kernels.h"
#include "primitives.h"

namespace mlxt {

namespace {

mx::Stream cpu_stream() {
  mx::Stream s = mx::to_stream({});
  if (s.device != mx::Device::cpu) throw std::invalid_argument("mlxt kernels run on the CPU only");
  return s;
}

void require_f32(const mx::array& a, const char* what) {
  if (a.dtype() != mx::float32) throw std::invalid_argument(std::string(what) + ": expected float32");
}

}  // namespace

mx::array layer_norm(const mx::array& x, const mx::array& weight, const mx::array& bias, float eps) {
  require_f32(x, "layer_norm x");
  if (x.ndim() < 1) throw std::invalid_argument("layer_norm: x needs at least one axis");
  int d = x.shape(-1);
  for (auto* p : {&weight, &bias})
    if (p->ndim() != 1 || p->shape(0) != d)
      throw std::invalid_argument("layer_norm: weight and bias must have shape (" + std::to_string(d) + ",)");
  auto s = cpu_stream();
  std::vector<mx::array> in = {x, mx::astype(weight, mx::float32, s),
                               mx::astype(bias, mx::float32, s)};
  return mx::array(x.shape(), mx::float32, std::make_shared<LayerNorm>(s, eps), std::move(in));
}

mx::array softmax(const mx::array& x, const std::optional<mx::array>& mask, bool causal, int64_t causal_offset) {
  require_f32(x, "softmax x");
  if (mask && causal) throw std::invalid_argument("softmax: give a mask or causal, not both");
  auto s = cpu_stream();
  std::vector<mx::array> in = {x};
  int mode = causal ? 2 : 0;
  if (mask) {
    if (mask->dtype() != mx::bool_) throw std::invalid_argument("softmax: the mask must be boolean");
    in.push_back(mx::broadcast_to(*mask, x.shape(), s));
    mode = 1;
  }
  if (causal && x.ndim() < 2) throw std::invalid_argument("softmax: a causal mask needs (..., queries, keys)");
  return mx::array(x.shape(), mx::float32, std::make_shared<Softmax>(s, mode, causal_offset), std::move(in));
}

mx::array activation(const mx::array& x, int kind) {
  require_f32(x, "activation x");
  if (kind < 0 || kind > 2) throw std::invalid_argument("activation: unknown kind");
  auto s = cpu_stream();
  return mx::array(x.shape(), mx::float32, std::make_shared<Activation>(s, kind), {x});
}

mx::array cross_entropy(const mx::array& logits, const mx::array& targets, float smoothing) {
  require_f32(logits, "cross_entropy logits");
  if (logits.ndim() < 1) throw std::invalid_argument("cross_entropy: logits need a vocabulary axis");
  auto lead = logits.shape();
  int vocab = lead.back();
  lead.pop_back();
  if (targets.shape() != lead) throw std::invalid_argument("cross_entropy: targets must have the logits' shape without the last axis");
  auto s = cpu_stream();
  int rows = 1;
  for (int n : lead) rows *= n;
  auto x = mx::reshape(logits, {rows, vocab}, s);
  auto t = mx::reshape(mx::astype(targets, mx::int32, s), {rows}, s);
  auto loss = mx::array({rows}, mx::float32, std::make_shared<CrossEntropy>(s, smoothing), {x, t});
  return mx::reshape(loss, lead, s);
}

mx::array dropout(const mx::array& x, const mx::array& key, float p) {
  require_f32(x, "dropout x");
  if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("dropout: p must be in [0, 1)");
  if (key.dtype() != mx::uint32 || key.ndim() != 1 || key.shape(0) != 2)
    throw std::invalid_argument("dropout: key must be a uint32 array of shape (2,)");
  auto s = cpu_stream();
  return mx::array(x.shape(), mx::float32, std::make_shared<Dropout>(s, p),
                   {x, key});
}

namespace {

mx::array scalar_f32(const mx::array& a, const char* what, mx::Stream s) {
  if (a.size() != 1) throw std::invalid_argument(std::string(what) + " must be a single number");
  return mx::reshape(mx::astype(a, mx::float32, s), {}, s);
}

}  // namespace

mx::array grad_norm(const std::vector<mx::array>& g, const mx::array& count) {
  if (g.empty()) throw std::invalid_argument("grad_norm: no gradients");
  auto s = cpu_stream();
  std::vector<mx::array> in;
  for (const auto& a : g) {
    require_f32(a, "grad_norm");
    in.push_back(a);
  }
  in.push_back(scalar_f32(count, "grad_norm: count", s));
  return mx::array({}, mx::float32, std::make_shared<GradNorm>(s), std::move(in));
}

std::vector<mx::array> adamw(const std::vector<mx::array>& p, const std::vector<mx::array>& g,
                             const std::vector<mx::array>& m, const std::vector<mx::array>& v, const mx::array& hyper,
                             const mx::array& count, const mx::array& norm, float max_norm) {
  if (p.empty()) throw std::invalid_argument("adamw: no parameters");
  if (g.size() != p.size() || m.size() != p.size() || v.size() != p.size())
    throw std::invalid_argument("adamw: params, grads, m and v must be lists of the same length");
  if (hyper.ndim() != 1 || hyper.shape(0) != 8) throw std::invalid_argument("adamw: hyper must have shape (8,)");
  if (!(max_norm >= 0.0f) || std::isinf(max_norm)) throw std::invalid_argument("adamw: max_norm must be >= 0");
  auto s = cpu_stream();
  std::vector<mx::array> in;
  for (const auto* list : {&p, &g, &m, &v})
    for (size_t i = 0; i < p.size(); ++i) {
      const mx::array& a = (*list)[i];
      require_f32(a, "adamw");
      if (a.shape() != p[i].shape())
        throw std::invalid_argument("adamw: each gradient and moment must have its parameter's shape");
      in.push_back(a);
    }
  in.push_back(mx::astype(hyper, mx::float32, s));
  in.push_back(scalar_f32(count, "adamw: count", s));
  in.push_back(scalar_f32(norm, "adamw: norm", s));
  std::vector<mx::Shape> shapes;
  for (int part = 0; part < 3; ++part)
    for (const auto& a : p) shapes.push_back(a.shape());
  std::vector<mx::Dtype> dtypes(shapes.size(), mx::float32);
  return mx::array::make_arrays(std::move(shapes), std::move(dtypes), std::make_shared<AdamW>(s, max_norm),
                                std::move(in));
}

mx::array packed_linear(const mx::array& x, const mx::array& packed, const std::optional<mx::array>& bias,
                        int64_t n) {
  require_f32(x, "packed_linear x");
  require_f32(packed, "packed_linear packed");
  if (x.ndim() < 1) throw std::invalid_argument("packed_linear: x needs a feature axis");
  if (packed.ndim() != 3 || packed.shape(2) != kPanel || packed.shape(1) < 1)
    throw std::invalid_argument("packed_linear: packed must have shape (panels, k >= 1, 64)");
  const int k = packed.shape(1);
  if (x.shape(-1) != k)
    throw std::invalid_argument("packed_linear: x has " + std::to_string(x.shape(-1)) + " features, the weight " +
                                std::to_string(k));
  if (n < 1 || packed.shape(0) != (n + kPanel - 1) / kPanel)
    throw std::invalid_argument("packed_linear: n does not match the packed weight's panels");
  auto lead = x.shape();
  lead.pop_back();
  int rows = 1;
  for (int d : lead) rows *= d;
  auto s = cpu_stream();
  std::vector<mx::array> in = {mx::reshape(x, {rows, k}, s), packed};
  if (bias) {
    require_f32(*bias, "packed_linear bias");
    if (bias->ndim() != 1 || bias->shape(0) != n)
      throw std::invalid_argument("packed_linear: bias must have shape (" + std::to_string(n) + ",)");
    in.push_back(*bias);
  }
  auto out = mx::array({rows, int(n)}, mx::float32, std::make_shared<PackedLinear>(s, n), std::move(in));
  lead.push_back(int(n));
  return mx::reshape(out, lead, s);
}

mx::array pack_weight(const mx::array& w) {
  require_f32(w, "pack_weight w");
  if (w.ndim() != 2 || w.shape(0) < 1 || w.shape(1) < 1)
    throw std::invalid_argument("pack_weight: w must have shape (n >= 1, k >= 1)");
  auto s = cpu_stream();
  const int panels = int((w.shape(0) + kPanel - 1) / kPanel);
  return mx::array({panels, w.shape(1), int(kPanel)}, mx::float32, std::make_shared<PackWeight>(s),
                   {w});
}

mx::array cached_attention(const mx::array& q, const mx::array& keys, const mx::array& values, int64_t len,
                           const std::optional<mx::array>& rows, const std::optional<mx::array>& mask, float scale) {
  require_f32(q, "cached_attention q");
  require_f32(keys, "cached_attention keys");
  require_f32(values, "cached_attention values");
  if (q.ndim() != 4 || q.shape(2) != 1) throw std::invalid_argument("cached_attention: q must have shape (B, H, 1, D)");
  if (keys.ndim() != 4 || keys.shape() != values.shape() || keys.shape(1) != q.shape(1) || keys.shape(3) != q.shape(3))
    throw std::invalid_argument("cached_attention: keys and values must have shape (Bk, H, cap, D) like q's H and D");
  if (len < 1 || len > keys.shape(2)) throw std::invalid_argument("cached_attention: len must be in [1, cap]");
  const int B = q.shape(0);
  auto s = cpu_stream();
  std::vector<mx::array> in = {q, keys, values};
  if (rows) {
    if (rows->dtype() != mx::int32 || rows->ndim() != 2 || rows->shape(0) != B || rows->shape(1) < len)
      throw std::invalid_argument("cached_attention: rows must be int32 of shape (B, >= len)");
    in.push_back(*rows);
  } else if (keys.shape(0) != B) {
    throw std::invalid_argument("cached_attention: without rows, keys must have q's batch size");
  }
  if (mask) {
    if (mask->dtype() != mx::bool_ || mask->ndim() != 2 || mask->shape(0) != B || mask->shape(1) != len)
      throw std::invalid_argument("cached_attention: mask must be bool of shape (B, len)");
    in.push_back(*mask);
  }
  return mx::array(q.shape(), mx::float32, std::make_shared<CachedAttention>(s, len, scale, bool(rows), bool(mask)),
                   std::move(in));
}

namespace {

// The mask as the kernel reads it: (B, H, Lq, Lk) with its size-1 axes kept (read with stride 0).
mx::array attention_mask(const mx::array& mask, int B, int H, int Lq, int Lk, mx::Stream s) {
  if (mask.dtype() != mx::bool_ || mask.ndim() > 4)
    throw std::invalid_argument("attention: the mask must be boolean with at most 4 axes");
  mx::Shape full = {B, H, Lq, Lk};
  mx::Shape shape(4 - mask.ndim(), 1);
  for (int d : mask.shape()) shape.push_back(d);
  for (int i = 0; i < 4; ++i)
    if (shape[i] != 1 && shape[i] != full[i])
      throw std::invalid_argument("attention: the mask does not broadcast to (B, H, Lq, Lk)");
  auto m = mx::reshape(mask, shape, s);
  shape[3] = full[3];
  return mx::broadcast_to(m, shape, s);
}

void check_attention(int64_t dim, int64_t keys, const std::optional<mx::array>& mask, bool causal) {
  if (dim % 16 != 0) throw std::invalid_argument("attention: D must be a multiple of 16");
  if (keys < 1) throw std::invalid_argument("attention: there must be at least one key");
  if (mask && causal) throw std::invalid_argument("attention: give a mask or causal, not both");
}

}  // namespace

mx::array attention(const mx::array& q, const mx::array& k, const mx::array& v, float scale,
                    const std::optional<mx::array>& mask, bool causal, int64_t causal_offset) {
  for (auto [a, what] : {std::pair{&q, "q"}, std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    require_f32(*a, (std::string("attention ") + what).c_str());
    if (a->ndim() != 4) throw std::invalid_argument(std::string("attention: ") + what + " must have shape (B, L, H, D)");
  }
  if (k.shape() != v.shape() || k.shape(0) != q.shape(0) || k.shape(2) != q.shape(2) || k.shape(3) != q.shape(3))
    throw std::invalid_argument("attention: k and v must have shape (B, Lk, H, D) with q's B, H and D");
  check_attention(q.shape(3), k.shape(1), mask, causal);
  auto s = cpu_stream();
  std::vector<mx::array> in = {q, k, v};
  if (mask) in.push_back(attention_mask(*mask, q.shape(0), q.shape(2), q.shape(1), k.shape(1), s));
  AttentionSettings settings{scale, causal, causal_offset, bool(mask), false};
  auto outs = mx::array::make_arrays({q.shape(), {q.shape(0), q.shape(2), q.shape(1)}}, {mx::float32, mx::float32},
                                     std::make_shared<Attention>(s, settings), std::move(in));
  return outs[0];
}

mx::array attention_qkv(const mx::array& qkv, float scale, const std::optional<mx::array>& mask, bool causal,
                        int64_t causal_offset) {
  require_f32(qkv, "attention qkv");
  if (qkv.ndim() != 5 || qkv.shape(2) != 3) throw std::invalid_argument("attention: qkv must have shape (B, L, 3, H, D)");
  const int B = qkv.shape(0), L = qkv.shape(1), H = qkv.shape(3);
  check_attention(qkv.shape(4), L, mask, causal);
  auto s = cpu_stream();
  std::vector<mx::array> in = {qkv};
  if (mask) in.push_back(attention_mask(*mask, B, H, L, L, s));
  AttentionSettings settings{scale, causal, causal_offset, bool(mask), true};
  auto outs = mx::array::make_arrays({{B, L, H, qkv.shape(4)}, {B, H, L}}, {mx::float32, mx::float32},
                                     std::make_shared<Attention>(s, settings), std::move(in));
  return outs[0];
}

}  // namespace mlxt
