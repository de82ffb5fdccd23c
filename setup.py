"""Build of the optional native parts (Linux only): the BLAS forwarding shim and the FMA builds
of MLX's scalar exp/erf.

`src/mlxt/_blas_shim.c` becomes ``mlxt/_blas_shim.*.so`` (and `_mlx_fastmath.c` likewise);
they are plain shared libraries loaded with ctypes by `mlxt._blas`, not Python extension modules. ``optional=True``: without a C
compiler the install still succeeds and mlxt falls back to a system OpenBLAS or to MLX's own
reference BLAS (``mlxt info`` says which).
"""

import platform
import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "mlxt._blas_shim",
            sources=["src/mlxt/_blas_shim.c"],
            extra_compile_args=["-O2", "-fvisibility=hidden"],
            optional=True,
        )
    )
    # FMA builds of MLX's scalar exp/erf for mx.compile's kernels (loaded only on FMA CPUs).
    # -ffp-contract=off keeps every rounding as in MLX's code, so results stay bitwise equal.
    is_x86 = platform.machine().lower() in ("x86_64", "amd64")
    ext_modules.append(
        Extension(
            "mlxt._mlx_fastmath",
            sources=["src/mlxt/_mlx_fastmath.c"],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-fno-math-errno", "-ffp-contract=off"]
            + (["-mfma", "-mavx"] if is_x86 else []),
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
