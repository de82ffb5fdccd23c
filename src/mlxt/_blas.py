"""Route MLX's CPU matrix products to an optimized BLAS on Linux (called by ``import mlxt``).

The ``mlx[cpu]`` wheel links libmlx against the reference Netlib BLAS/LAPACK it bundles in
``mlx_cpu.libs`` (a 1024^3 fp32 matmul runs at a few GFLOP/s). libmlx imports the standard
symbols (``cblas_sgemm``, ``sgesdd_``, ...) and Python loads it with ``RTLD_NOW``, so they are
bound once, when ``mlx.core`` is imported. The dynamic linker looks symbols up in the global
scope (the program and every library loaded with ``RTLD_GLOBAL``) *before* a library's own
dependencies, so loading an OpenBLAS that exports those names with ``RTLD_GLOBAL`` first makes
libmlx bind to it. That is why this must run before ``mlx.core`` is imported, and why it cannot
help afterwards (we warn instead).

Sources, in the order ``MLXT_BLAS=auto`` (the default) tries them:

* ``scipy-openblas`` - OpenBLAS from the ``scipy-openblas32`` wheel (a dependency of mlxt on
  Linux). Its symbols carry a ``scipy_`` prefix, so a small forwarding shim built with the
  package (``_blas_shim.c``) exports the standard names and forwards them.
* ``system`` - a system ``libopenblas`` (exports the standard names itself).

The shim can also hand float32 products (``cblas_sgemm``) to another function first:
`mlxt.kernels` installs its own product there (`BlasState.set_sgemm`), which runs on the
kernels' thread pool; OpenBLAS then does the rest.

With the fast BLAS, FMA builds of MLX's scalar ``exp``/``erf`` (``_mlx_fastmath.c``) are loaded
the same way: the kernels ``mx.compile`` generates call them instead of MLX's own copies, which
call libm's ``fmaf`` for every step of the polynomial (same results bit for bit, 3-4x faster;
``MLXT_FASTMATH=0`` turns this part off).

``MLXT_BLAS=reference`` leaves MLX untouched. Threads: OpenBLAS reads ``OPENBLAS_NUM_THREADS``
when it loads; ``MLXT_NUM_THREADS`` overrides it. On macOS (Accelerate) and on CUDA builds of MLX
nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("auto", "scipy-openblas", "system", "reference")


class BlasWarning(RuntimeWarning):
    """The fast BLAS could not be put in place (MLX runs on its slow reference BLAS)."""


@dataclass
class BlasState:
    """What `activate` did; ``mlxt info`` prints it."""

    mode: str = "auto"
    active: bool = False
    source: str = "reference"  # "scipy-openblas", "system", "reference" or "not applicable"
    library: str | None = None  # path of the loaded OpenBLAS
    shim: str | None = None  # path of the forwarding shim (scipy-openblas only)
    reason: str = ""  # why the fast BLAS is not active
    fastmath: str | None = None  # path of the FMA exp/erf library, when loaded
    threads: int | None = None
    _lib: ctypes.CDLL | None = field(default=None, repr=False)
    _shim: ctypes.CDLL | None = field(default=None, repr=False)
    _prefix: str = field(default="", repr=False)

    def num_threads(self) -> int | None:
        """OpenBLAS's current thread count (None when no OpenBLAS is loaded)."""
        if self._lib is None:
            return None
        return int(getattr(self._lib, self._prefix + "openblas_get_num_threads")())

    def set_num_threads(self, n: int) -> None:
        if self._lib is not None:
            getattr(self._lib, self._prefix + "openblas_set_num_threads")(int(n))
            self.threads = self.num_threads()

    def config(self) -> str | None:
        """OpenBLAS's build description, e.g. ``OpenBLAS 0.3.30 DYNAMIC_ARCH ... Haswell MAX_THREADS=64``."""
        if self._lib is None:
            return None
        get_config = getattr(self._lib, self._prefix + "openblas_get_config")
        get_config.restype = ctypes.c_char_p
        get_core = getattr(self._lib, self._prefix + "openblas_get_corename", None)
        text = get_config().decode(errors="replace").strip()
        if get_core is not None:
            get_core.restype = ctypes.c_char_p
            text += f" (core: {get_core().decode(errors='replace')})"
        return text

    def forwarded_calls(self) -> int | None:
        """Calls MLX made through the shim so far (proof that the routing is in effect)."""
        if self._shim is None:
            return None
        fn = self._shim.mlxt_blas_shim_calls
        fn.restype = ctypes.c_uint64
        return int(fn())

    def set_sgemm(self, address: int | None) -> bool:
        """Route float32 products to the function at ``address`` (cblas_sgemm's arguments,
        returning 1 when it did the product), or back to OpenBLAS with None. False when there
        is no shim to route through (a system OpenBLAS, the reference BLAS, not Linux)."""
        if self._shim is None:
            return False
        fn = self._shim.mlxt_blas_set_sgemm
        fn.argtypes = [ctypes.c_void_p]
        fn(address)
        return True

    def sgemm_calls(self) -> int | None:
        """Float32 products the installed `set_sgemm` function did so far."""
        if self._shim is None:
            return None
        fn = self._shim.mlxt_blas_sgemm_hooked_calls
        fn.restype = ctypes.c_uint64
        return int(fn())


_state: BlasState | None = None


def state() -> BlasState:
    """The result of `activate` (running it if it has not run)."""
    return activate()


def activate() -> BlasState:
    """Load the optimized BLAS into the process, once; returns what was done."""
    global _state
    if _state is None:
        _state = _activate()
    return _state


def _activate() -> BlasState:
    mode = os.environ.get("MLXT_BLAS", "auto").strip().lower() or "auto"
    if mode in ("off", "none", "netlib"):
        mode = "reference"
    if mode not in MODES:
        _warn(f"MLXT_BLAS={mode!r} is not one of {', '.join(MODES)}; using 'auto'")
        mode = "auto"
    if not sys.platform.startswith("linux"):
        return BlasState(mode, source="not applicable", reason="not Linux (MLX uses its own BLAS)")
    if mode == "reference":
        return BlasState(mode, reason="disabled by MLXT_BLAS=reference")
    skip = _mlx_build_reason()
    if skip:
        return BlasState(mode, source="not applicable", reason=skip)
    if "mlx.core" in sys.modules:
        reason = "mlx.core was imported before mlxt"
        _warn(
            f"{reason}, so MLX keeps its slow reference BLAS on this CPU "
            "(matmuls ~30x slower). Import mlxt before mlx (or set MLXT_BLAS=reference to "
            "silence this)."
        )
        return BlasState(mode, reason=reason)
    loaders = {"scipy-openblas": [_load_scipy_openblas], "system": [_load_system_openblas]}
    reasons = []
    for loader in loaders.get(mode, [_load_scipy_openblas, _load_system_openblas]):
        result = loader(mode)
        if isinstance(result, BlasState):
            _apply_threads(result)
            result.fastmath = _load_fastmath()
            return result
        reasons.append(result)
    reason = "; ".join(reasons)
    _warn(f"no optimized BLAS could be loaded ({reason}); MLX matmuls stay slow on this CPU")
    return BlasState(mode, reason=reason)


def _warn(message: str) -> None:
    warnings.warn(f"mlxt: {message}", BlasWarning, stacklevel=4)


def _mlx_build_reason() -> str:
    """Why this MLX build needs no routing ('' when it runs on the bundled reference BLAS)."""
    # Locate mlx.core without running it (``mlx`` is a namespace package: other folders
    # named mlx on sys.path, such as MLX's compile cache in $TMPDIR, can come first).
    try:
        spec = importlib.util.find_spec("mlx.core")
    except ImportError:
        spec = None
    if spec is None or not spec.origin:
        return "mlx is not installed"
    site = Path(spec.origin).resolve().parent.parent
    if any(site.glob("mlx_cuda*")):
        return "CUDA build of MLX"
    if not any(site.glob("mlx_cpu.libs/libblas*")):
        return "this MLX build does not bundle the reference BLAS"
    return ""


def _load_scipy_openblas(mode: str) -> BlasState | str:
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        return "scipy-openblas32 is not installed"
    libs = sorted(Path(list(spec.submodule_search_locations)[0], "lib").glob("libscipy_openblas*.so*"))
    shims = sorted(Path(__file__).parent.glob("_blas_shim*.so"))
    if not libs:
        return "scipy-openblas32 has no libscipy_openblas"
    if not shims:
        return "the BLAS shim was not built (reinstall mlxt with a C compiler)"
    try:
        lib = ctypes.CDLL(str(libs[0]), mode=ctypes.RTLD_GLOBAL)
        shim = ctypes.CDLL(str(shims[0]), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        return f"loading scipy-openblas failed: {exc}"
    return BlasState(mode, True, "scipy-openblas", str(libs[0]), str(shims[0]), _lib=lib,
                     _shim=shim, _prefix="scipy_")


def _load_system_openblas(mode: str) -> BlasState | str:
    name = ctypes.util.find_library("openblas")
    if name is None:
        return "no system libopenblas"
    try:
        lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        return f"loading {name} failed: {exc}"
    if not hasattr(lib, "cblas_sgemm"):
        return f"{name} does not export cblas_sgemm"
    return BlasState(mode, True, "system", _mapped_path(name) or name, _lib=lib)


def _load_fastmath() -> str | None:
    """Load the FMA builds of MLX's exp/erf when the CPU has FMA; their path, or None."""
    if os.environ.get("MLXT_FASTMATH", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    if not _cpu_has_fma():
        return None
    libs = sorted(Path(__file__).parent.glob("_mlx_fastmath*.so"))
    if not libs:
        return None
    try:
        ctypes.CDLL(str(libs[0]), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    return str(libs[0])


def _cpu_has_fma() -> bool:
    import platform

    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return True
    if machine not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"fma", "avx"} <= flags
    except OSError:
        pass
    return False


def _mapped_path(fragment: str) -> str | None:
    """Full path of the first library mapped into this process whose path contains ``fragment``."""
    stem = fragment.split(".so")[0]
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if stem in os.path.basename(path):
                    return path
    except OSError:
        pass
    return None


def _apply_threads(state: BlasState) -> None:
    value = os.environ.get("MLXT_NUM_THREADS", "").strip()
    if value:
        try:
            n = int(value)
            if n <= 0:
                raise ValueError
        except ValueError:
            _warn(f"MLXT_NUM_THREADS={value!r} is not a positive integer; ignored")
        else:
            state.set_num_threads(n)
    state.threads = state.num_threads()


def matmul_gflops(n: int = 1024, repeats: int = 5, library: str = "mlx", min_seconds: float = 0.2) -> float:
    """Best GFLOP/s of an ``n``x``n``x``n`` fp32 matmul in MLX (CPU) or numpy, over at least
    ``repeats`` runs and ``min_seconds`` of running (small sizes get more tries)."""
    import time

    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if library == "numpy":
        run = lambda: a @ b  # noqa: E731
    elif library == "mlx":
        import mlx.core as mx

        am, bm = mx.array(a), mx.array(b)
        run = lambda: mx.eval(mx.matmul(am, bm, stream=mx.cpu))  # noqa: E731
    else:
        raise ValueError(f"library must be 'mlx' or 'numpy', got {library!r}")
    run()  # warm-up: thread pools, allocations
    best, spent, tries = float("inf"), 0.0, 0
    while tries < repeats or (spent < min_seconds and tries < 1000):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        best, spent, tries = min(best, elapsed), spent + elapsed, tries + 1
    return 2.0 * n**3 / best / 1e9
