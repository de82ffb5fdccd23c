// Picks the row kernels' instruction set once, from what the CPU supports.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace mlxt {

static const KernelTable& choose() {
  const char* forced = std::getenv("MLXT_KERNELS_ISA");
  auto allowed = [&](const char* isa) { return !forced || !*forced || std::strcmp(forced, isa) == 0; };
#if defined(__x86_64__)
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && allowed("avx512")) return kAvx512Table;
  if (avx2 && (allowed("avx2") || (forced && std::strcmp(forced, "avx512") == 0))) return kAvx2Table;
#endif
  return kGenericTable;
}

const KernelTable& kernels() {
  static const KernelTable& table = choose();
  return table;
}

}  // namespace mlxt
