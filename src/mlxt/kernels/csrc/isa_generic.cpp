// Baseline build of the row kernels (SSE2 on x86-64, NEON on arm64: whatever the compiler's
// default target is).
#include "rows.h"
#include "attention.h"
#include "gemm.h"
#include "full_attention.h"

namespace mlxt {
MLXT_DEFINE_TABLE(kGenericTable, "generic")
}
