// AVX2 + FMA build of the row kernels (x86-64 only; chosen at run time, see dispatch.cpp).
#if defined(__x86_64__)
#include <cstdint>
#pragma GCC target("avx2,fma")
#include "rows.h"
#include "attention.h"
#define MLXT_GEMM_AVX2 1
#include "gemm.h"
#include "full_attention.h"

namespace mlxt {
MLXT_DEFINE_TABLE(kAvx2Table, "avx2")
}
#endif
