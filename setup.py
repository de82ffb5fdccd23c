"""Build of the optional native parts: the BLAS forwarding shim and the FMA builds of MLX's
scalar exp/erf (Linux only), and mlxt's CPU kernels (an MLX C++ extension).

`src/mlxt/_blas_shim.c` becomes ``mlxt/_blas_shim.*.so`` (and `_mlx_fastmath.c` likewise);
they are plain shared libraries loaded with ctypes by `mlxt._blas`, not Python extension modules.

`src/mlxt/kernels/csrc/` becomes the Python extension ``mlxt.kernels._ext``: custom MLX
primitives compiled against the headers of the MLX installed in the build environment and
linked to its ``libmlx``, with nanobind (whose ABI must match the one ``mlx.core`` was built
with: nanobind 3.x for mlx 0.32). Build it in the environment that will run it (the Makefile
installs mlx first and builds with ``--no-build-isolation``); at run time mlxt uses it only if
the MLX version matches the one it was compiled against (`mlxt.kernels`).

Every part is ``optional=True``: without a compiler (or without nanobind / MLX at build time)
the install still succeeds and mlxt falls back (``mlxt info`` says to what and why).
"""

import importlib.util
import platform
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup

is_x86 = platform.machine().lower() in ("x86_64", "amd64")
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
    ext_modules.append(
        Extension(
            "mlxt._mlx_fastmath",
            sources=["src/mlxt/_mlx_fastmath.c"],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-fno-math-errno", "-ffp-contract=off"]
            + (["-mfma", "-mavx"] if is_x86 else []),
            optional=True,
        )
    )


def kernels_extension():
    """The CPU kernels, or None (with the reason printed) when MLX or nanobind is missing."""
    mlx_spec = importlib.util.find_spec("mlx")
    if mlx_spec is None or not mlx_spec.submodule_search_locations:
        print("mlxt: MLX is not installed in the build environment: CPU kernels not built", file=sys.stderr)
        return None
    mlx_dir = Path(list(mlx_spec.submodule_search_locations)[0])
    if not (mlx_dir / "include" / "mlx" / "primitives.h").exists() or not (mlx_dir / "lib").is_dir():
        print(f"mlxt: no MLX headers/library under {mlx_dir}: CPU kernels not built", file=sys.stderr)
        return None
    try:
        import nanobind
    except ImportError:
        print("mlxt: nanobind is not installed in the build environment: CPU kernels not built", file=sys.stderr)
        return None
    nb_src = Path(nanobind.source_dir())
    macros = [("NB_COMPACT_ASSERTIONS", None), ("NB_DOMAIN", "mlx")]
    # On Python >= 3.12 mlx.core is a stable-ABI (abi3) nanobind module, and nanobind shares
    # types only between modules built the same way.
    limited = sys.version_info >= (3, 12) and not sysconfig.get_config_var("Py_GIL_DISABLED")
    if limited:
        macros.append(("Py_LIMITED_API", "0x030C0000"))
    csrc = sorted(str(p) for p in Path("src/mlxt/kernels/csrc").glob("*.cpp"))
    return Extension(
        "mlxt.kernels._ext",
        sources=csrc,
        depends=sorted(str(p) for p in Path("src/mlxt/kernels/csrc").glob("*.h")),
        include_dirs=[str(mlx_dir / "include"), nanobind.include_dir(), str(nb_src),
                      str(nb_src.parent / "ext" / "robin_map" / "include")],
        library_dirs=[str(mlx_dir / "lib")],
        runtime_library_dirs=[str(mlx_dir / "lib")],
        libraries=["mlx"],
        define_macros=macros,
        py_limited_api=limited,
        # -ffp-contract=off: every instruction-set variant of the kernels rounds alike.
        extra_compile_args=["-std=c++20", "-O3", "-g0", "-fvisibility=hidden", "-fno-math-errno",
                            "-ffp-contract=off", "-fno-strict-aliasing", "-Wno-unused-function", "-Wno-psabi"],
        language="c++",
        optional=True,
    )


if sys.platform.startswith("linux") or sys.platform == "darwin":
    kernels = kernels_extension()
    if kernels is not None:
        ext_modules.append(kernels)

setup(ext_modules=ext_modules)
