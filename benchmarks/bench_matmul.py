"""fp32 matmul GFLOP/s: MLX with mlxt's BLAS routing, MLX on its bundled reference BLAS
(``MLXT_BLAS=reference``, measured in a child process), numpy and PyTorch, same run.

    .venv/bin/python benchmarks/bench_matmul.py
"""

from __future__ import annotations

import os
import subprocess
import sys

import common
from mlxt import _blas

SIZES = (256, 512, 1024, 2048)
REFERENCE_SIZES = (256, 512, 1024)  # the reference BLAS needs ~5 s for one 2048^3 product


def torch_gflops(n: int, repeats: int = 5) -> float:
    try:
        torch = common.import_torch()
    except ImportError:
        return float("nan")
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2.0 * n**3 / common.best_time(lambda: a @ b, repeats) / 1e9


def reference_gflops(sizes) -> dict[int, float]:
    """MLX on its reference BLAS: a fresh process, since routing happens at import."""
    code = ("import sys, mlxt; from mlxt import _blas\n"
            "print(' '.join(str(_blas.matmul_gflops(int(n), repeats=2)) for n in sys.argv[1:]))")
    env = dict(os.environ, MLXT_BLAS="reference")
    out = subprocess.run([sys.executable, "-c", code, *map(str, sizes)], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return dict(zip(sizes, map(float, out)))


def peak_gflops() -> float:
    """The matmul peak MFU is measured against: MLX fp32 1024^3 in this process."""
    return _blas.matmul_gflops(1024, repeats=5)


def run() -> tuple[list[str], list[list], dict]:
    sizes = SIZES[:3] if common.quick() else SIZES
    ref = reference_gflops([n for n in REFERENCE_SIZES if n in sizes])
    rows, peak = [], 0.0
    for n in sizes:
        repeats = 5 if n <= 1024 else 3
        mlx = _blas.matmul_gflops(n, repeats=repeats)
        numpy = _blas.matmul_gflops(n, repeats=repeats, library="numpy")
        if n == 1024:
            peak = mlx
        rows.append([f"{n}^3", mlx, ref.get(n, float("nan")), numpy, torch_gflops(n, repeats),
                     f"{mlx / numpy:.2f}"])
    headers = ["fp32 matmul", "mlx+mlxt GFLOP/s", "mlx reference GFLOP/s", "numpy GFLOP/s",
               "torch GFLOP/s", "mlx/numpy"]
    return headers, rows, {"peak_gflops": peak}


if __name__ == "__main__":
    print(common.machine())
    headers, rows, _ = run()
    print(common.table(headers, rows))
