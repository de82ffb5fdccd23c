// The Python module mlxt.kernels._ext (nanobind; shares mlx.core's array type).
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include "kernels.h"
#include "mlx/version.h"
#include "ops.h"
#include "parallel.h"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_ext, m) {
  nb::module_::import_("mlx.core");
  m.doc() = "mlxt's native CPU kernels (MLX primitives)";
  m.def("layer_norm", &mlxt::layer_norm, "x"_a, "weight"_a, "bias"_a, "eps"_a);
  m.def("softmax", &mlxt::softmax, "x"_a, "mask"_a = nb::none(), "causal"_a = false, "causal_offset"_a = 0);
  m.def("activation", &mlxt::activation, "x"_a, "kind"_a);
  m.def("cross_entropy", &mlxt::cross_entropy, "logits"_a, "targets"_a, "smoothing"_a);
  m.def("num_threads", &mlxt::num_threads);
  m.def("set_num_threads", &mlxt::set_num_threads, "n"_a);
  m.def("isa", [] { return std::string(mlxt::kernels().isa); });
  m.def("built_mlx_version", [] {
    return std::to_string(MLX_VERSION_MAJOR) + "." + std::to_string(MLX_VERSION_MINOR) + "." +
           std::to_string(MLX_VERSION_PATCH);
  });
}
