// The Python module mlxt.kernels._ext (nanobind; shares mlx.core's array type).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "kernels.h"
#include "mlx/version.h"
#include "ops.h"
#include "parallel.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using RowsIn = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
template <typename T>
using RowsOut = nb::ndarray<nb::numpy, T, nb::ndim<2>>;

template <typename T>
RowsOut<T> new_rows(size_t rows, size_t cols, T** data) {
  T* p = new T[rows * cols > 0 ? rows * cols : 1];
  nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<T*>(q); });
  *data = p;
  return RowsOut<T>(p, {rows, cols}, owner);
}

// numpy in, numpy out: beam search's host step works on numpy rows (mlxt.decode.beam).
std::pair<RowsOut<float>, RowsOut<int32_t>> top_k(RowsIn x, int64_t k) {
  const size_t rows = x.shape(0), len = x.shape(1);
  if (k < 1 || size_t(k) > len) throw nb::value_error("top_k: k must be between 1 and the row length");
  float* values;
  int32_t* indices;
  auto v = new_rows<float>(rows, size_t(k), &values);
  auto i = new_rows<int32_t>(rows, size_t(k), &indices);
  mlxt::TopKArgs a{x.data(), values, indices, int64_t(len), k};
  {
    nb::gil_scoped_release release;
    const auto& table = mlxt::kernels();
    mlxt::over_rows(int64_t(rows), int64_t(len), [&](int64_t begin, int64_t end) { table.top_k(a, begin, end); });
  }
  return {v, i};
}

std::pair<RowsOut<float>, RowsOut<float>> log_norm(RowsIn x) {
  const size_t rows = x.shape(0), len = x.shape(1);
  if (len < 1) throw nb::value_error("log_norm: rows must not be empty");
  float *top, *lse;
  auto t = new_rows<float>(rows, 1, &top);
  auto l = new_rows<float>(rows, 1, &lse);
  mlxt::LogNormArgs a{x.data(), top, lse, int64_t(len)};
  {
    nb::gil_scoped_release release;
    const auto& table = mlxt::kernels();
    mlxt::over_rows(int64_t(rows), int64_t(len), [&](int64_t begin, int64_t end) { table.log_norm(a, begin, end); });
  }
  return {t, l};
}

}  // namespace

NB_MODULE(_ext, m) {
  nb::module_::import_("mlx.core");
  m.doc() = "mlxt's native CPU kernels (MLX primitives)";
  m.def("layer_norm", &mlxt::layer_norm, "x"_a, "weight"_a, "bias"_a, "eps"_a);
  m.def("softmax", &mlxt::softmax, "x"_a, "mask"_a = nb::none(), "causal"_a = false, "causal_offset"_a = 0);
  m.def("activation", &mlxt::activation, "x"_a, "kind"_a);
  m.def("cross_entropy", &mlxt::cross_entropy, "logits"_a, "targets"_a, "smoothing"_a);
  m.def("dropout", &mlxt::dropout, "x"_a, "key"_a, "p"_a);
  m.def("grad_norm", &mlxt::grad_norm, "grads"_a, "count"_a,
        "The global L2 norm of float32 gradients (a list) divided by max(count, 1).");
  m.def("adamw", &mlxt::adamw, "params"_a, "grads"_a, "m"_a, "v"_a, "hyper"_a, "count"_a, "norm"_a, "max_norm"_a,
        "One AdamW step of float32 parameters (lists params, grads, m, v) with the gradients divided by "
        "max(count, 1) and, when max_norm > 0, scaled by min(max_norm / (norm + 1e-6), 1); hyper = "
        "[1 - lr wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), eps]. Returns params', m', v'.");
  m.def("packed_linear", &mlxt::packed_linear, "x"_a, "packed"_a, "bias"_a = nb::none(), "n"_a,
        "x (..., k) @ w^T + bias for a weight w (n, k) packed as (ceil(n / 64), k, 64); inference only.");
  m.def("cached_attention", &mlxt::cached_attention, "q"_a, "keys"_a, "values"_a, "len"_a, "rows"_a = nb::none(),
        "mask"_a = nb::none(), "scale"_a,
        "One query per row over the first len positions of a (Bk, H, cap, D) key/value cache; rows (B, >= len) "
        "int32 names the batch row holding each position; mask (B, len) bool, true = keep. Inference only.");
  m.def("attention", &mlxt::attention, "q"_a, "k"_a, "v"_a, "scale"_a, "mask"_a = nb::none(), "causal"_a = false,
        "causal_offset"_a = 0,
        "softmax(scale q k^T) v for q (B, Lq, H, D), k, v (B, Lk, H, D) float32 (D a multiple of 16); mask bool "
        "broadcastable to (B, H, Lq, Lk), true = keep, or causal (key t for query i when t <= i + causal_offset). "
        "Differentiable in q, k and v.");
  m.def("attention_qkv", &mlxt::attention_qkv, "qkv"_a, "scale"_a, "mask"_a = nb::none(), "causal"_a = false,
        "causal_offset"_a = 0,
        "attention of float32 qkv (B, L, 3, H, D) (q, k and v of self-attention from one projection) -> (B, L, H, D); "
        "mask and causal as for attention. Differentiable in qkv.");
  m.def("pack_weight", &mlxt::pack_weight, "w"_a, "w (n, k) float32 -> the (ceil(n / 64), k, 64) layout of packed_linear.");
  m.def("panel", [] { return mlxt::kPanel; });
  m.def("top_k", &top_k, "x"_a, "k"_a,
        "The k largest of each row of a C-contiguous float32 (rows, len) numpy array, best first "
        "(ties: lower index first; NaN ranks lowest): (values (rows, k) float32, indices (rows, k) int32).");
  m.def("log_norm", &log_norm, "x"_a,
        "Each row's max and log(sum(exp(x - max))) of a C-contiguous float32 (rows, len) numpy array: "
        "(top (rows, 1), log_norm (rows, 1)).");
  m.def("sgemm_address", [] { return reinterpret_cast<uintptr_t>(&mlxt::sgemm); },
        "Address of mlxt's cblas_sgemm (returning 1 when it did the product), for the BLAS shim's hook.");
  m.def("num_threads", &mlxt::num_threads);
  m.def("set_num_threads", &mlxt::set_num_threads, "n"_a);
  m.def("isa", [] { return std::string(mlxt::kernels().isa); });
  m.def("built_mlx_version", [] {
    return std::to_string(MLX_VERSION_MAJOR) + "." + std::to_string(MLX_VERSION_MINOR) + "." +
           std::to_string(MLX_VERSION_PATCH);
  });
}
