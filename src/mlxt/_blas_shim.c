/*
 * Forwarding shim: exports the standard BLAS/LAPACK symbols that libmlx imports and forwards
 * them to the `scipy_`-prefixed symbols of libscipy_openblas (the `scipy-openblas32` wheel).
 *
 * `mlxt._blas` loads libscipy_openblas and then this library with RTLD_GLOBAL before
 * `mlx.core` is imported. The dynamic linker searches the global scope before a library's own
 * dependencies, so libmlx binds `cblas_sgemm` etc. to the definitions below instead of to the
 * reference Netlib BLAS/LAPACK bundled in `mlx_cpu.libs`.
 *
 * The `scipy_*` symbols are left undefined here: they resolve against libscipy_openblas when
 * this library is loaded, so building the package needs neither OpenBLAS headers nor the wheel.
 *
 * The symbol list is what `nm -D --undefined-only mlx/lib/libmlx.so` reports for mlx 0.32
 * (tests/test_blas.py checks that it still covers every BLAS/LAPACK import of the installed mlx).
 * LAPACK routines take only pointers plus trailing hidden string lengths (size_t); every one of
 * them is passed in an integer register or an 8-byte stack slot, so forwarding each argument as
 * a `uintptr_t` is ABI-exact on x86-64 and AArch64.
 */

#include <stddef.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

/* Number of forwarded calls; lets `mlxt info` and the tests prove MLX really calls through. */
static volatile uint64_t forwarded_calls = 0;

EXPORT uint64_t mlxt_blas_shim_calls(void) { return __atomic_load_n(&forwarded_calls, __ATOMIC_RELAXED); }

static inline void count_call(void) { __atomic_fetch_add(&forwarded_calls, 1, __ATOMIC_RELAXED); }

/* ---- CBLAS ------------------------------------------------------------------------------ */

/* CBLAS enums are plain ints in the C ABI. */
extern void scipy_cblas_sgemm(int, int, int, int, int, int, float, const float *, int,
                              const float *, int, float, float *, int);
extern void scipy_cblas_dgemm(int, int, int, int, int, int, double, const double *, int,
                              const double *, int, double, double *, int);
extern void scipy_cblas_cgemm(int, int, int, int, int, int, const void *, const void *, int,
                              const void *, int, const void *, void *, int);

/* mlxt's own float32 product (`mlxt.kernels`, sgemm.cpp), installed at run time with
 * `mlxt_blas_set_sgemm`: called first, it returns 1 when it did the product, 0 to leave it to
 * OpenBLAS. NULL (the default, and MLXT_KERNELS=0): everything goes to OpenBLAS. */
typedef int (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);
static sgemm_fn sgemm_hook = 0;
static volatile uint64_t hooked_calls = 0;

EXPORT void mlxt_blas_set_sgemm(sgemm_fn fn) { __atomic_store_n(&sgemm_hook, fn, __ATOMIC_RELEASE); }

EXPORT uint64_t mlxt_blas_sgemm_hooked_calls(void) { return __atomic_load_n(&hooked_calls, __ATOMIC_RELAXED); }

EXPORT void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                        const float *a, int lda, const float *b, int ldb, float beta, float *c,
                        int ldc) {
    count_call();
    sgemm_fn hook = __atomic_load_n(&sgemm_hook, __ATOMIC_ACQUIRE);
    if (hook && hook(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) {
        __atomic_fetch_add(&hooked_calls, 1, __ATOMIC_RELAXED);
        return;
    }
    scipy_cblas_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

EXPORT void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha,
                        const double *a, int lda, const double *b, int ldb, double beta,
                        double *c, int ldc) {
    count_call();
    scipy_cblas_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

EXPORT void cblas_cgemm(int order, int ta, int tb, int m, int n, int k, const void *alpha,
                        const void *a, int lda, const void *b, int ldb, const void *beta,
                        void *c, int ldc) {
    count_call();
    scipy_cblas_cgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- LAPACK (Fortran ABI) ---------------------------------------------------------------- */

typedef uintptr_t W; /* one pointer or hidden string length */

#define P6 W a1, W a2, W a3, W a4, W a5, W a6
#define A6 a1, a2, a3, a4, a5, a6
#define P7 P6, W a7
#define A7 A6, a7
#define P8 P7, W a8
#define A8 A7, a8
#define P9 P8, W a9
#define A9 A8, a9
#define P13 P9, W a10, W a11, W a12, W a13
#define A13 A9, a10, a11, a12, a13
#define P15 P13, W a14, W a15
#define A15 A13, a14, a15
#define P16 P15, W a16
#define A16 A15, a16

/* FORWARD(name, N): `name_` with N word arguments (hidden string lengths included). */
#define FORWARD(name, N)                                  \
    extern void scipy_##name##_(P##N);                    \
    EXPORT void name##_(P##N) {                           \
        count_call();                                     \
        scipy_##name##_(A##N);                            \
    }

FORWARD(sgeev, 16)
FORWARD(dgeev, 16)
FORWARD(cgeev, 16)
FORWARD(sgesdd, 15)
FORWARD(dgesdd, 15)
FORWARD(cgesdd, 16)
FORWARD(cheevd, 15)
FORWARD(ssyevd, 13)
FORWARD(dsyevd, 13)
FORWARD(sgeqrf, 8)
FORWARD(dgeqrf, 8)
FORWARD(sorgqr, 9)
FORWARD(dorgqr, 9)
FORWARD(sgetrf, 6)
FORWARD(dgetrf, 6)
FORWARD(sgetri, 7)
FORWARD(dgetri, 7)
FORWARD(spotrf, 6)
FORWARD(dpotrf, 6)
FORWARD(strtri, 8)
FORWARD(dtrtri, 8)
