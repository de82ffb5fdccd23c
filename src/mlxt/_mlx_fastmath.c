/*
 * FMA builds of MLX's scalar `exp` and `erf` for the kernels `mx.compile` generates on CPU.
 *
 * On Linux x86-64 MLX computes `exp` and `erf` with polynomial code (mlx/backend/cpu/simd/math.h)
 * whose `fma` steps become calls to libm's `fmaf`, because neither libmlx nor the kernels that
 * `mx.compile` JIT-builds with `g++ -O3` are compiled for a CPU with FMA instructions: one
 * `exp` is about ten function calls. The JIT kernels call their own out-of-line copies of
 * `mlx::core::simd::exp<float, 1>` / `erf<float, 1>` through the PLT, so a definition loaded
 * with RTLD_GLOBAL before them takes their place (libmlx's internal calls are not affected).
 *
 * These are the same algorithms, constants and operation order as MLX's (contraction off, so
 * every rounding is the same); `fmaf` on an FMA CPU is the same correctly rounded operation, so
 * the results are bitwise identical, only 3-4x faster. `mlxt._blas` loads this library only on
 * x86-64 CPUs with FMA (or on AArch64, where FMA is part of the base architecture).
 * `Simd<float, 1>` is a struct holding one float, passed and returned like a float.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static inline float exp_cephes(float in) {
    float x = in * 1.442695f; /* log2(e) */
    float ipart = floorf(x + 0.5f);
    float fpart = x - ipart;
    x = 1.535336188319500e-4f;
    x = fmaf(x, fpart, 1.339887440266574e-3f);
    x = fmaf(x, fpart, 9.618437357674640e-3f);
    x = fmaf(x, fpart, 5.550332471162809e-2f);
    x = fmaf(x, fpart, 2.402264791363012e-1f);
    x = fmaf(x, fpart, 6.931472028550421e-1f);
    x = fmaf(x, fpart, 1.000000000000000f);
    int32_t bits = ((int32_t)ipart + 127) << 23; /* 2**ipart */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float result = isnan(in) ? in : scale * x;
    result = in > 88.0f ? INFINITY : result;
    result = in < -88.0f ? 0.0f : result;
    return result;
}

EXPORT float mlx_simd_exp_f32(float in) __asm__("_ZN3mlx4core4simd3expIfLi1EEENS1_4SimdIT_XT0_EEES5_");
EXPORT float mlx_simd_exp_f32(float in) { return exp_cephes(in); }

EXPORT float mlx_simd_erf_f32(float v) __asm__("_ZN3mlx4core4simd3erfIfLi1EEENS1_4SimdIT_XT0_EEES5_");
EXPORT float mlx_simd_erf_f32(float v) {
    float t = 1.0f / fmaf(0.3275911f, fabsf(v), 1.0f);
    float r = fmaf(1.061405429f, t, -1.453152027f);
    r = fmaf(r, t, 1.421413741f);
    r = fmaf(r, t, -0.284496736f);
    r = fmaf(r, t, 0.254829592f);
    float e = -exp_cephes(-v * v);
    float result = fmaf(e * t, r, 1.0f);
    return v > 0 ? result : -result;
}
