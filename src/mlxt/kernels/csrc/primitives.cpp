#include "primitives.h"

#include <algorithm>
#include <optional>
#include <cstring>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "mlx/allocator.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/ops.h"
#include "parallel.h"

namespace mlxt {

namespace {

// Rows per block of layer_norm_vjp's weight/bias partial sums (fixed, so the summation order,
// and with it the result, does not depend on the thread count).
constexpr int64_t kNormBlock = 64;

int64_t rows_of(const mx::array& a) { return a.ndim() == 0 ? 1 : int64_t(a.size() / a.shape(-1)); }

// dst (rows, cols) = src^T for src (cols, rows) row-major with row stride ld, in cache-sized
// square blocks.
template <class T>
void transpose_copy(const T* src, T* dst, int64_t rows, int64_t cols, int64_t ld) {
  constexpr int64_t kBlock = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
      for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c) dst[r * cols + c] = src[c * ld + r];
}

template <class T>
void strided_copy(const T* src, T* dst, const mx::Shape& shape, const mx::Strides& strides) {
  const int nd = int(shape.size());
  int64_t total = 1;
  for (auto d : shape) total *= d;
  if (total == 0) return;
  if (nd == 0) {
    *dst = *src;
    return;
  }
  // a transposed matrix, or rows of one (a weight's gradient from a product's backward pass)
  if (nd == 2 && strides[0] == 1 && strides[1] >= shape[0])
    return transpose_copy(src, dst, shape[0], shape[1], strides[1]);
  const int64_t inner = shape[nd - 1], step = strides[nd - 1];
  std::vector<int64_t> index(nd, 0);
  for (int64_t done = 0; done < total; done += inner, dst += inner) {
    int64_t offset = 0;
    for (int d = 0; d < nd - 1; ++d) offset += index[d] * strides[d];
    const T* from = src + offset;
    for (int64_t j = 0; j < inner; ++j) dst[j] = from[j * step];
    for (int d = nd - 2; d >= 0 && ++index[d] == shape[d]; --d) index[d] = 0;
  }
}

// A strided array's elements (of `item` bytes) copied in row-major order to dst.
void strided_copy(const char* src, char* dst, const mx::Shape& shape, const mx::Strides& strides, size_t item) {
  switch (item) {
    case 1: return strided_copy(reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst), shape, strides);
    case 2: return strided_copy(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst), shape, strides);
    case 4: return strided_copy(reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst), shape, strides);
    case 8: return strided_copy(reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst), shape, strides);
    default: throw std::runtime_error("mlxt kernels: unsupported element size");
  }
}

// Whether a's elements fill a.size() consecutive places from a.data() (in some order of the axes).
bool dense(const mx::array& a) {
  for (auto st : a.strides())
    if (st < 0) return false;
  return a.flags().contiguous && a.data_size() == a.size();
}

// A primitive's inputs as its kernel reads them: row-contiguous. Inputs that already are (almost
// all) are used as they are; the others are copied on the stream, into temporaries, before the
// kernel's task runs. Done here rather than with mx::contiguous in the ops, which would add a
// graph node per input to every call, contiguous or not.
class Inputs {
 public:
  // any_order: dense arrays in any order of their axes are read as they are (for kernels whose
  // result does not depend on where each element sits, such as a sum of squares).
  Inputs(const std::vector<mx::array>& in, mx::Stream s, bool any_order = false) : in_(in) {
    for (size_t i = 0; i < in.size(); ++i) {
      const mx::array& a = in[i];
      if (a.flags().row_contiguous || (any_order && dense(a))) continue;
      if (copies_.empty()) copies_.resize(in.size());  // only when something is copied: kernels run per node
      mx::array copy(a.shape(), a.dtype(), nullptr, {});
      copy.set_data(mx::allocator::malloc(copy.nbytes()));
      auto& enc = mx::cpu::get_command_encoder(s);
      enc.dispatch([src = a.data<char>(), dst = copy.data<char>(), shape = a.shape(), strides = a.strides(),
                    item = a.itemsize()]() { strided_copy(src, dst, shape, strides, item); });
      enc.add_temporary(copy);
      copies_[i] = std::move(copy);
    }
  }
  const mx::array& operator[](size_t i) const { return !copies_.empty() && copies_[i] ? *copies_[i] : in_[i]; }
  size_t size() const { return in_.size(); }
  const std::vector<mx::array>& originals() const { return in_; }

 private:
  const std::vector<mx::array>& in_;
  std::vector<std::optional<mx::array>> copies_;
};

void allocate(mx::array& a) { a.set_data(mx::allocator::malloc(a.nbytes())); }

// Enqueues fn on the primitive's CPU stream, after registering the arrays with the encoder.
template <class F>
void enqueue(mx::Stream s, const Inputs& in, std::vector<mx::array>& out, F fn) {
  auto& enc = mx::cpu::get_command_encoder(s);
  for (auto& a : in.originals()) enc.set_input_array(a);
  for (auto& a : out) enc.set_output_array(a);
  enc.dispatch(std::move(fn));
}

mx::array as_f32(const mx::array& a) { return mx::astype(a, mx::float32); }

// The vjp of a primitive differentiable only in its first input: dx for input 0, zeros for
// the others (masks, targets, keys) among those asked for.
std::vector<mx::array> grad_of_first(const mx::array& dx, const std::vector<mx::array>& primals,
                                     const std::vector<int>& argnums) {
  std::vector<mx::array> result;
  for (int i : argnums) result.push_back(i == 0 ? dx : mx::zeros_like(primals[i]));
  return result;
}

}  // namespace

// ---- layer norm ----

void LayerNorm::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  LayerNormArgs a{in[0].data<float>(), in[1].data<float>(), in[2].data<float>(), nullptr,
                  out[0].data<float>(), nullptr, nullptr, in[0].shape(-1), eps_};
  int64_t rows = rows_of(in[0]);
  enqueue(stream(), in, out, [a, rows]() {
    const auto& k = kernels();
    over_rows(rows, a.dim, [&](int64_t b, int64_t e) { k.layer_norm(a, b, e); });
  });
}

std::vector<mx::array> LayerNorm::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                      const std::vector<int>& argnums, const std::vector<mx::array>&) {
  auto grads = mx::array::make_arrays(
      {primals[0].shape(), primals[1].shape(), primals[1].shape()}, {mx::float32, mx::float32, mx::float32},
      std::make_shared<LayerNormVJP>(stream(), eps_), {primals[0], primals[1], as_f32(cot[0])});
  std::vector<mx::array> result;
  for (int i : argnums) result.push_back(grads[i]);
  return result;
}

bool LayerNorm::is_equivalent(const mx::Primitive& other) const {
  return eps_ == static_cast<const LayerNorm&>(other).eps_;
}

void LayerNormVJP::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  for (auto& o : out) allocate(o);
  const int64_t d = in[0].shape(-1), rows = rows_of(in[0]);
  LayerNormArgs a{in[0].data<float>(), in[1].data<float>(), nullptr, in[2].data<float>(),
                  out[0].data<float>(), nullptr, nullptr, d, eps_};
  float* dw = out[1].data<float>();
  float* db = out[2].data<float>();
  enqueue(stream(), in, out, [a, rows, d, dw, db]() {
    const auto& k = kernels();
    const int64_t blocks = (rows + kNormBlock - 1) / kNormBlock;
    std::vector<float> partial(size_t(std::max<int64_t>(blocks, 1) * 2 * d), 0.0f);
    parallel_for(blocks, [&](int64_t blk) {
      LayerNormArgs mine = a;
      mine.dweight = partial.data() + blk * 2 * d;
      mine.dbias = mine.dweight + d;
      k.layer_norm_vjp(mine, blk * kNormBlock, std::min(rows, (blk + 1) * kNormBlock));
    });
    for (int64_t j = 0; j < d; ++j) dw[j] = db[j] = 0.0f;
    for (int64_t blk = 0; blk < blocks; ++blk) {  // fixed order
      const float* p = partial.data() + blk * 2 * d;
      for (int64_t j = 0; j < d; ++j) {
        dw[j] += p[j];
        db[j] += p[d + j];
      }
    }
  });
}

bool LayerNormVJP::is_equivalent(const mx::Primitive& other) const {
  return eps_ == static_cast<const LayerNormVJP&>(other).eps_;
}

// ---- softmax ----

namespace {
SoftmaxArgs softmax_args(const mx::array& x, const mx::array* mask, int mode, int64_t offset) {
  int64_t len = x.ndim() ? x.shape(-1) : 1;
  int64_t q_len = x.ndim() >= 2 ? x.shape(-2) : 1;
  return SoftmaxArgs{nullptr, nullptr, mask ? mask->data<unsigned char>() : nullptr, nullptr,
                     len, std::max<int64_t>(q_len, 1), offset, mode};
}
}  // namespace

void Softmax::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  SoftmaxArgs a = softmax_args(in[0], mode_ == 1 ? &in[1] : nullptr, mode_, offset_);
  a.x = in[0].data<float>();
  a.out = out[0].data<float>();
  int64_t rows = rows_of(in[0]);
  enqueue(stream(), in, out, [a, rows]() {
    const auto& k = kernels();
    over_rows(rows, a.len, [&](int64_t b, int64_t e) { k.softmax(a, b, e); });
  });
}

std::vector<mx::array> Softmax::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                    const std::vector<int>& argnums, const std::vector<mx::array>& outputs) {
  std::vector<mx::array> inputs = {outputs[0], as_f32(cot[0])};
  if (mode_ == 1) inputs.push_back(primals[1]);
  auto dx = mx::array(primals[0].shape(), mx::float32, std::make_shared<SoftmaxVJP>(stream(), mode_, offset_), inputs);
  return grad_of_first(dx, primals, argnums);
}

std::vector<mx::array> Softmax::jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                                    const std::vector<int>& argnums) {
  if (argnums.size() != 1 || argnums[0] != 0) throw std::invalid_argument("MlxtSoftmax: jvp only for the scores");
  auto y = mx::array(primals[0].shape(), mx::float32, std::make_shared<Softmax>(stream(), mode_, offset_), primals);
  std::vector<mx::array> inputs = {y, as_f32(tangents[0])};
  if (mode_ == 1) inputs.push_back(primals[1]);
  // The softmax Jacobian diag(y) - y y^T is symmetric: its jvp is the vjp formula.
  return {mx::array(primals[0].shape(), mx::float32, std::make_shared<SoftmaxVJP>(stream(), mode_, offset_), inputs)};
}

bool Softmax::is_equivalent(const mx::Primitive& other) const {
  auto& o = static_cast<const Softmax&>(other);
  return mode_ == o.mode_ && offset_ == o.offset_;
}

void SoftmaxVJP::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  SoftmaxArgs a = softmax_args(in[0], mode_ == 1 ? &in[2] : nullptr, mode_, offset_);
  a.x = in[0].data<float>();
  a.cot = in[1].data<float>();
  a.out = out[0].data<float>();
  int64_t rows = rows_of(in[0]);
  enqueue(stream(), in, out, [a, rows]() {
    const auto& k = kernels();
    over_rows(rows, a.len, [&](int64_t b, int64_t e) { k.softmax_vjp(a, b, e); });
  });
}

bool SoftmaxVJP::is_equivalent(const mx::Primitive& other) const {
  auto& o = static_cast<const SoftmaxVJP&>(other);
  return mode_ == o.mode_ && offset_ == o.offset_;
}

// ---- activations ----

void Activation::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  UnaryArgs a{in[0].data<float>(), nullptr, out[0].data<float>()};
  int64_t n = int64_t(in[0].size());
  int kind = kind_;
  enqueue(stream(), in, out, [a, n, kind]() {
    const auto& k = kernels();
    over_rows(n, 1, [&](int64_t b, int64_t e) { k.activation(kind, a, b, e); });
  });
}

std::vector<mx::array> Activation::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                       const std::vector<int>&, const std::vector<mx::array>&) {
  return {mx::array(primals[0].shape(), mx::float32, std::make_shared<ActivationVJP>(stream(), kind_),
                    {primals[0], as_f32(cot[0])})};
}

std::vector<mx::array> Activation::jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                                       const std::vector<int>&) {
  return {mx::array(primals[0].shape(), mx::float32, std::make_shared<ActivationVJP>(stream(), kind_),
                    {primals[0], as_f32(tangents[0])})};
}

bool Activation::is_equivalent(const mx::Primitive& other) const {
  return kind_ == static_cast<const Activation&>(other).kind_;
}

void ActivationVJP::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  UnaryArgs a{in[0].data<float>(), in[1].data<float>(), out[0].data<float>()};
  int64_t n = int64_t(in[0].size());
  int kind = kind_;
  enqueue(stream(), in, out, [a, n, kind]() {
    const auto& k = kernels();
    over_rows(n, 1, [&](int64_t b, int64_t e) { k.activation_vjp(kind, a, b, e); });
  });
}

bool ActivationVJP::is_equivalent(const mx::Primitive& other) const {
  return kind_ == static_cast<const ActivationVJP&>(other).kind_;
}

// ---- cross-entropy ----

void CrossEntropy::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  CrossEntropyArgs a{in[0].data<float>(), in[1].data<int32_t>(), nullptr, out[0].data<float>(),
                     in[0].shape(-1), smoothing_};
  int64_t rows = int64_t(in[1].size());
  enqueue(stream(), in, out, [a, rows]() {
    const auto& k = kernels();
    over_rows(rows, a.vocab, [&](int64_t b, int64_t e) { k.cross_entropy(a, b, e); });
  });
}

std::vector<mx::array> CrossEntropy::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                         const std::vector<int>& argnums, const std::vector<mx::array>&) {
  auto dx = mx::array(primals[0].shape(), mx::float32, std::make_shared<CrossEntropyVJP>(stream(), smoothing_),
                      {primals[0], primals[1], as_f32(cot[0])});
  return grad_of_first(dx, primals, argnums);
}

bool CrossEntropy::is_equivalent(const mx::Primitive& other) const {
  return smoothing_ == static_cast<const CrossEntropy&>(other).smoothing_;
}

void CrossEntropyVJP::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  CrossEntropyArgs a{in[0].data<float>(), in[1].data<int32_t>(), in[2].data<float>(), out[0].data<float>(),
                     in[0].shape(-1), smoothing_};
  int64_t rows = int64_t(in[1].size());
  enqueue(stream(), in, out, [a, rows]() {
    const auto& k = kernels();
    over_rows(rows, a.vocab, [&](int64_t b, int64_t e) { k.cross_entropy_vjp(a, b, e); });
  });
}

bool CrossEntropyVJP::is_equivalent(const mx::Primitive& other) const {
  return smoothing_ == static_cast<const CrossEntropyVJP&>(other).smoothing_;
}

// ---- dropout ----

void Dropout::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  DropoutArgs a{in[0].data<float>(), out[0].data<float>(), 0, 0,
                uint32_t(double(p_) * 2147483648.0 + 0.5), 1.0f / (1.0f - p_)};
  const uint32_t* key = in[1].data<uint32_t>();
  int64_t n = int64_t(in[0].size());
  enqueue(stream(), in, out, [a, key, n]() mutable {
    a.key0 = key[0];  // read in the task: the key is computed earlier on the same stream
    a.key1 = key[1];
    const auto& k = kernels();
    over_rows(n, 1, [&](int64_t b, int64_t e) { k.dropout(a, b, e); });
  });
}

std::vector<mx::array> Dropout::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                    const std::vector<int>& argnums, const std::vector<mx::array>&) {
  auto dx = mx::array(primals[0].shape(), mx::float32, std::make_shared<Dropout>(stream(), p_),
                      {as_f32(cot[0]), primals[1]});
  return grad_of_first(dx, primals, argnums);
}

std::vector<mx::array> Dropout::jvp(const std::vector<mx::array>& primals, const std::vector<mx::array>& tangents,
                                    const std::vector<int>& argnums) {
  if (argnums.size() != 1 || argnums[0] != 0) throw std::invalid_argument("MlxtDropout: jvp only for x");
  return {mx::array(primals[0].shape(), mx::float32, std::make_shared<Dropout>(stream(), p_),
                    {as_f32(tangents[0]), primals[1]})};
}

bool Dropout::is_equivalent(const mx::Primitive& other) const {
  return p_ == static_cast<const Dropout&>(other).p_;
}

// ---- the update: gradient norm and AdamW ----

namespace {

// Parameter `param`'s floats [begin, end): each parameter in chunks of at most kTaskElems, so
// the chunks, and with them the norm's partial sums and their order, do not depend on the
// thread count.
struct Chunk {
  int64_t param, begin, end;
};

std::vector<Chunk> chunks_of(const std::vector<mx::array>& in, int64_t n) {
  std::vector<Chunk> chunks;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t size = int64_t(in[i].size());
    for (int64_t b = 0; b < size; b += kTaskElems) chunks.push_back({i, b, std::min(size, b + kTaskElems)});
  }
  return chunks;
}

}  // namespace

void GradNorm::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream(), /*any_order=*/true);  // a weight's gradient is often transposed
  const int64_t n = int64_t(in.size()) - 1;
  allocate(out[0]);
  std::vector<const float*> grads;
  for (int64_t i = 0; i < n; ++i) grads.push_back(in[i].data<float>());
  enqueue(stream(), in, out,
          [grads = std::move(grads), chunks = chunks_of(inputs, n), count = in[n].data<float>(),
           norm = out[0].data<float>()]() {
            const auto& k = kernels();
            const float divisor = std::max(count[0], 1.0f);
            std::vector<float> partial(chunks.size());
            parallel_for(int64_t(chunks.size()), [&](int64_t c) {
              const Chunk& ch = chunks[c];
              partial[c] = k.sum_squares(grads[ch.param] + ch.begin, ch.end - ch.begin, divisor);
            });
            double total = 0.0;
            for (float x : partial) total += x;
            *norm = std::sqrt(float(total));
          });
}

std::vector<mx::Shape> AdamW::output_shapes(const std::vector<mx::array>& in) {
  const size_t n = (in.size() - 3) / 4;
  std::vector<mx::Shape> shapes;
  for (int part = 0; part < 3; ++part)
    for (size_t i = 0; i < n; ++i) shapes.push_back(in[i].shape());
  return shapes;
}

void AdamW::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  const int64_t n = int64_t(in.size() - 3) / 4;
  // p -> p', m -> m', v -> v': an output takes over its input's buffer when nothing else holds it
  for (int64_t i = 0; i < 3 * n; ++i) {
    const int64_t part = i / n;
    const mx::array& src = in[(part == 0 ? 0 : part + 1) * n + i % n];
    if (src.is_donatable() && src.itemsize() == out[i].itemsize())
      out[i].copy_shared_buffer(src);
    else
      allocate(out[i]);
  }
  std::vector<AdamWArgs> params;
  for (int64_t i = 0; i < n; ++i)
    params.push_back({in[i].data<float>(), in[n + i].data<float>(), in[2 * n + i].data<float>(),
                      in[3 * n + i].data<float>(), out[i].data<float>(), out[n + i].data<float>(),
                      out[2 * n + i].data<float>(), 0, 0, 0, 0, 0, 0, 0, 0, 1, 1});
  const float* hyper = in[4 * n].data<float>();
  const float* count = in[4 * n + 1].data<float>();
  const float* norm = in[4 * n + 2].data<float>();
  enqueue(stream(), in, out,
          [params = std::move(params), chunks = chunks_of(inputs, n), hyper, count, norm,
           max_norm = max_norm_]() mutable {
            // read in the task: hyper-parameters, count and norm are computed earlier on the same stream
            const float clip = max_norm > 0.0f ? std::min(max_norm / (norm[0] + 1e-6f), 1.0f) : 1.0f;
            for (AdamWArgs& a : params) {
              a.decay = hyper[0], a.b1 = hyper[1], a.one_minus_b1 = hyper[2], a.b2 = hyper[3];
              a.one_minus_b2 = hyper[4], a.c1 = hyper[5], a.c2 = hyper[6], a.eps = hyper[7];
              a.g_divisor = std::max(count[0], 1.0f), a.g_scale = clip;
            }
            const auto& k = kernels();
            parallel_for(int64_t(chunks.size()), [&](int64_t c) {
              const Chunk& ch = chunks[c];
              k.adamw(params[ch.param], ch.begin, ch.end);
            });
          });
}

// ---- linear layer with a prepacked weight ----

void PackedLinear::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  PackedGemmArgs a{in[0].data<float>(), in[1].data<float>(), in.size() > 2 ? in[2].data<float>() : nullptr,
                   out[0].data<float>(), int64_t(in[0].shape(0)), n_, int64_t(in[0].shape(1))};
  enqueue(stream(), in, out, [a]() {
    const auto& k = kernels();
    const int64_t panels = (a.n + kPanel - 1) / kPanel;
    if (a.m == 0 || panels == 0) return;
    // Small products run on the calling thread; larger ones split into blocks of rows (whose
    // part of `a` stays in cache) times ranges of panels, about four tasks per thread.
    constexpr int64_t kRowBlock = 240;  // a multiple of the tile's 6 rows
    const int64_t threads = num_threads();
    if (threads == 1 || a.m * a.n * a.k < (int64_t(1) << 20)) {
      k.packed_gemm(a, 0, a.m, 0, panels);
      return;
    }
    const int64_t row_blocks = (a.m + kRowBlock - 1) / kRowBlock;
    const int64_t chunks = std::clamp<int64_t>((4 * threads + row_blocks - 1) / row_blocks, 1, panels);
    parallel_for(row_blocks * chunks, [&](int64_t t) {
      int64_t rb = t / chunks, ch = t % chunks;
      k.packed_gemm(a, rb * kRowBlock, std::min(a.m, (rb + 1) * kRowBlock), ch * panels / chunks,
                    (ch + 1) * panels / chunks);
    });
  });
}

void PackWeight::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  const float* w = in[0].data<float>();
  float* packed = out[0].data<float>();
  const int64_t n = in[0].shape(0), k = in[0].shape(1), panels = out[0].shape(0);
  enqueue(stream(), in, out, [w, packed, n, k, panels]() {
    parallel_for(panels, [&](int64_t p) {
      float* dst = packed + p * k * kPanel;
      for (int64_t j = 0; j < kPanel; ++j) {
        const int64_t row = p * kPanel + j;
        if (row < n)
          for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + j] = w[row * k + kk];
        else
          for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + j] = 0.0f;
      }
    });
  });
}

// ---- attention of one query over a cache ----

void CachedAttention::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  allocate(out[0]);
  const auto& q = in[0];
  const auto& keys = in[1];
  size_t next = 3;
  const mx::array* rows = has_rows_ ? &in[next++] : nullptr;
  const mx::array* mask = has_mask_ ? &in[next++] : nullptr;
  CachedAttentionArgs a{q.data<float>(), keys.data<float>(), in[2].data<float>(),
                        rows ? rows->data<int32_t>() : nullptr, mask ? mask->data<unsigned char>() : nullptr,
                        out[0].data<float>(), keys.shape(1), keys.shape(2), keys.shape(3), len_,
                        rows ? rows->shape(1) : 0, mask ? mask->shape(1) : 0, scale_};
  const int64_t pairs = int64_t(q.shape(0)) * q.shape(1);
  enqueue(stream(), in, out, [a, pairs]() {
    const auto& k = kernels();
    over_rows(pairs, std::max<int64_t>(1, 2 * a.len * a.dim), [&](int64_t b, int64_t e) { k.cached_attention(a, b, e); });
  });
}

// ---- attention over whole sequences ----

namespace {

// The arguments common to both directions: shapes, the mask's strides (0 along its broadcast
// axes) and the causal limit.
// The arguments common to both passes, from q, k, v (or qkv) and the mask (if any) at
// in[mask_at]; v, the outputs and the backward pass's inputs are filled in by the caller.
AttentionArgs attention_args(const Inputs& in, int mask_at, const AttentionSettings& st) {
  AttentionArgs a{};
  const mx::array& q = in[0];
  if (st.packed) {  // (B, L, 3, H, D)
    const int64_t hd = int64_t(q.shape(3)) * q.shape(4);
    a.q = q.data<float>();
    a.k = a.q + hd;
    a.v = a.q + 2 * hd;
    a.heads = q.shape(3);
    a.q_len = a.k_len = q.shape(1);
    a.dim = q.shape(4);
    a.row_stride = 3 * hd;
  } else {  // (B, L, H, D) each
    a.q = q.data<float>();
    a.k = in[1].data<float>();
    a.v = in[2].data<float>();
    a.heads = q.shape(2);
    a.q_len = q.shape(1);
    a.k_len = in[1].shape(1);
    a.dim = q.shape(3);
    a.row_stride = a.heads * a.dim;
  }
  if (st.has_mask) {
    const mx::array& mask = in[mask_at];
    a.mask = mask.data<unsigned char>();
    const int64_t lk = mask.shape(3), mi = mask.shape(2), mh = mask.shape(1);
    a.mask_i = mi == 1 ? 0 : lk;
    a.mask_h = mh == 1 ? 0 : mi * lk;
    a.mask_b = mask.shape(0) == 1 ? 0 : mh * mi * lk;
  }
  a.causal = st.causal;
  a.causal_offset = st.causal_offset;
  a.scale = st.scale;
  return a;
}

// Work per pair for the pool's task size: the two (Lq, Lk, D) products.
int64_t attention_work(const AttentionArgs& a) { return std::max<int64_t>(1, 2 * a.q_len * a.k_len * a.dim / 16); }

}  // namespace

std::vector<mx::Shape> Attention::output_shapes(const std::vector<mx::array>& in) {
  const mx::Shape& q = in[0].shape();
  if (settings_.packed) return {{q[0], q[1], q[3], q[4]}, {q[0], q[3], q[1]}};
  return {q, {q[0], q[2], q[1]}};
}

void Attention::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  for (auto& o : out) allocate(o);
  AttentionArgs a = attention_args(in, settings_.qkv_inputs(), settings_);
  a.o_out = out[0].data<float>();
  a.lse_out = out[1].data<float>();
  const int64_t pairs = int64_t(in[0].shape(0)) * a.heads;
  enqueue(stream(), in, out, [a, pairs]() {
    const auto& k = kernels();
    over_rows(pairs, attention_work(a), [&](int64_t b, int64_t e) { k.attention(a, b, e); });
  });
}

std::vector<mx::array> Attention::vjp(const std::vector<mx::array>& primals, const std::vector<mx::array>& cot,
                                      const std::vector<int>& argnums, const std::vector<mx::array>& outputs) {
  const int n = settings_.qkv_inputs();
  std::vector<mx::array> in(primals.begin(), primals.begin() + n);
  in.insert(in.end(), {outputs[0], outputs[1], as_f32(cot[0])});
  if (settings_.has_mask) in.push_back(primals[n]);
  std::vector<mx::Shape> shapes;
  for (int i = 0; i < n; ++i) shapes.push_back(primals[i].shape());
  auto grads = mx::array::make_arrays(std::move(shapes), std::vector<mx::Dtype>(n, mx::float32),
                                      std::make_shared<AttentionVJP>(stream(), settings_), std::move(in));
  std::vector<mx::array> result;
  for (int i : argnums) result.push_back(i < n ? grads[i] : mx::zeros_like(primals[i]));
  return result;
}

void AttentionVJP::eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& out) {
  const Inputs in(inputs, stream());
  for (auto& o : out) allocate(o);
  const int n = settings_.qkv_inputs();
  AttentionArgs a = attention_args(in, n + 3, settings_);
  a.o = in[n].data<float>();
  a.lse = in[n + 1].data<float>();
  a.dout = in[n + 2].data<float>();
  a.dq = out[0].data<float>();
  if (settings_.packed) {
    const int64_t hd = a.heads * a.dim;
    a.dk = a.dq + hd;
    a.dv = a.dq + 2 * hd;
  } else {
    a.dk = out[1].data<float>();
    a.dv = out[2].data<float>();
  }
  const int64_t pairs = int64_t(in[0].shape(0)) * a.heads;
  enqueue(stream(), in, out, [a, pairs]() {
    const auto& k = kernels();
    over_rows(pairs, 2 * attention_work(a), [&](int64_t b, int64_t e) { k.attention_vjp(a, b, e); });
  });
}

}  // namespace mlxt
