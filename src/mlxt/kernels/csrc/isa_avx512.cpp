// AVX-512 (F, DQ, BW, VL) build of the row kernels (x86-64 only; chosen at run time).
#if defined(__x86_64__)
#include <cstdint>
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#include "rows.h"
#include "attention.h"
#define MLXT_GEMM_AVX512 1
#include "gemm.h"
#include "full_attention.h"

namespace mlxt {
MLXT_DEFINE_TABLE(kAvx512Table, "avx512")
}
#endif
