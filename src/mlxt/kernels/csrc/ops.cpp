#include "ops.h"

#include <stdexcept>

#include "mlx/ops.h"
#include "mlx/utils.h"
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
  std::vector<mx::array> in = {mx::contiguous(x, false, s), mx::contiguous(mx::astype(weight, mx::float32, s), false, s),
                               mx::contiguous(mx::astype(bias, mx::float32, s), false, s)};
  return mx::array(x.shape(), mx::float32, std::make_shared<LayerNorm>(s, eps), std::move(in));
}

mx::array softmax(const mx::array& x, const std::optional<mx::array>& mask, bool causal, int64_t causal_offset) {
  require_f32(x, "softmax x");
  if (mask && causal) throw std::invalid_argument("softmax: give a mask or causal, not both");
  auto s = cpu_stream();
  std::vector<mx::array> in = {mx::contiguous(x, false, s)};
  int mode = causal ? 2 : 0;
  if (mask) {
    if (mask->dtype() != mx::bool_) throw std::invalid_argument("softmax: the mask must be boolean");
    in.push_back(mx::contiguous(mx::broadcast_to(*mask, x.shape(), s), false, s));
    mode = 1;
  }
  if (causal && x.ndim() < 2) throw std::invalid_argument("softmax: a causal mask needs (..., queries, keys)");
  return mx::array(x.shape(), mx::float32, std::make_shared<Softmax>(s, mode, causal_offset), std::move(in));
}

mx::array activation(const mx::array& x, int kind) {
  require_f32(x, "activation x");
  if (kind < 0 || kind > 2) throw std::invalid_argument("activation: unknown kind");
  auto s = cpu_stream();
  return mx::array(x.shape(), mx::float32, std::make_shared<Activation>(s, kind), {mx::contiguous(x, false, s)});
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
  auto x = mx::contiguous(mx::reshape(logits, {rows, vocab}, s), false, s);
  auto t = mx::contiguous(mx::reshape(mx::astype(targets, mx::int32, s), {rows}, s), false, s);
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
                   {mx::contiguous(x, false, s), mx::contiguous(key, false, s)});
}

std::vector<mx::array> adamw(const mx::array& p, const mx::array& g, const mx::array& m, const mx::array& v,
                             const mx::array& hyper) {
  for (auto* a : {&p, &g, &m, &v}) {
    require_f32(*a, "adamw");
    if (a->shape() != p.shape()) throw std::invalid_argument("adamw: p, g, m and v must have the same shape");
  }
  if (hyper.ndim() != 1 || hyper.shape(0) != 8) throw std::invalid_argument("adamw: hyper must have shape (8,)");
  auto s = cpu_stream();
  std::vector<mx::array> in = {mx::contiguous(p, false, s), mx::contiguous(g, false, s), mx::contiguous(m, false, s),
                               mx::contiguous(v, false, s), mx::contiguous(mx::astype(hyper, mx::float32, s), false, s)};
  return mx::array::make_arrays({p.shape(), p.shape(), p.shape()}, {mx::float32, mx::float32, mx::float32},
                                std::make_shared<AdamW>(s), std::move(in));
}

}  // namespace mlxt
