"""Build of the optional native part: the BLAS forwarding shim (Linux only).

`src/mlxt/_blas_shim.c` becomes ``mlxt/_blas_shim.*.so``; it is a plain shared library loaded
with ctypes by `mlxt._blas`, not a Python extension module. ``optional=True``: without a C
compiler the install still succeeds and mlxt falls back to a system OpenBLAS or to MLX's own
reference BLAS (``mlxt info`` says which).
"""

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

setup(ext_modules=ext_modules)
