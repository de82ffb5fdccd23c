"""``mlxt info``: MLX version, device, which BLAS MLX uses, threads and a quick matmul speed."""

from __future__ import annotations

import json
import os
import platform
import sys

from mlxt.errors import MlxtError
from mlxt.schema import number_flag


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="show MLX, device, BLAS, threads and native kernels, and measure matmul speed",
        description="Show the MLX version and device, the BLAS MLX's CPU matmuls use (see "
        "MLXT_BLAS, OPENBLAS_NUM_THREADS, MLXT_NUM_THREADS) and a quick fp32 matmul GFLOP/s "
        "of MLX next to numpy's.",
    )
    p.add_argument("--size", type=number_flag("--size", int, 1, 8192, expected="a positive integer (at most 8192)"),
                   default=1024, help="matmul size N (N x N x N), default 1024")
    p.add_argument("--no-bench", action="store_true", help="skip the matmul measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def collect(size: int = 1024, bench: bool = True) -> dict:
    """The facts `mlxt info` prints, as a JSON-able dict."""
    import mlx.core as mx
    import numpy as np

    import mlxt
    from mlxt import _blas, kernels

    state = _blas.state()
    backends = [name for name in ("metal", "cuda") if getattr(mx, name).is_available()] or ["cpu"]
    info = {
        "mlxt": mlxt.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "mlx": mx.__version__,
        "backend": "+".join(backends),
        "default_device": str(mx.default_device()),
        "blas": {
            "mode": state.mode,
            "active": state.active,
            "source": state.source,
            "library": state.library,
            "shim": state.shim,
            "config": state.config(),
            "reason": state.reason or None,
            "fastmath": state.fastmath,
        },
        "threads": {
            "openblas": state.num_threads(),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "MLXT_NUM_THREADS": os.environ.get("MLXT_NUM_THREADS"),
        },
        "numpy": np.__version__,
        "kernels": kernels.status(),
    }
    if bench:
        info["matmul"] = {
            "size": size,
            "mlx_gflops": round(_blas.matmul_gflops(size, library="mlx"), 1),
            "numpy_gflops": round(_blas.matmul_gflops(size, library="numpy"), 1),
        }
    info["blas"]["forwarded_calls"] = state.forwarded_calls()
    return info


def format_text(info: dict) -> str:
    blas = info["blas"]
    if blas["active"]:
        used = f"{blas['source']}: {blas['library']}"
        if blas["config"]:
            used += f"\n                {blas['config']}"
        if blas["shim"]:
            used += f"\n                via shim {blas['shim']}"
            if blas["forwarded_calls"]:
                used += f" ({blas['forwarded_calls']} calls forwarded)"
        used += "\n                FMA exp/erf for compiled kernels: " + (
            blas["fastmath"] or "off (MLXT_FASTMATH=0, no FMA CPU, or not built)")
    else:
        used = f"{blas['source']} ({blas['reason']})"
    threads = info["threads"]
    env = ", ".join(f"{k}={threads[k] if threads[k] is not None else 'unset'}"
                    for k in ("OPENBLAS_NUM_THREADS", "MLXT_NUM_THREADS"))
    lines = [
        f"mlxt            {info['mlxt']} (python {info['python']}, {info['platform']}, "
        f"{info['cpus']} CPUs)",
        f"mlx             {info['mlx']}",
        f"backend         {info['backend']} (default device {info['default_device']})",
        f"BLAS            {used}",
        f"threads         {threads['openblas'] if threads['openblas'] else 'n/a'} ({env})",
        f"kernels         {_kernels_line(info['kernels'])}",
    ]
    if "matmul" in info:
        mm = info["matmul"]
        ratio = mm["mlx_gflops"] / mm["numpy_gflops"] if mm["numpy_gflops"] else float("nan")
        n = mm["size"]
        lines.append(
            f"{f'matmul {n}^3':<16}mlx {mm['mlx_gflops']:.1f} GFLOP/s, numpy {mm['numpy_gflops']:.1f} "
            f"GFLOP/s (fp32, mlx/numpy {ratio:.2f})"
        )
    return "\n".join(lines)


def _kernels_line(k: dict) -> str:
    """mlxt's native CPU kernels: which are active, on what instruction set, or why not."""
    if k["active"]:
        threads = f"{k['threads']} thread{'s' if k['threads'] != 1 else ''}"
        line = f"native ({k['isa']}, {threads}): {', '.join(k['kernels'])}"
        if "gemm" not in k["kernels"] and k.get("gemm"):
            line += f"; float32 products: {k['gemm']}"
        return line
    return f"off, MLX's ops ({k['reason']})"


def run(args) -> int:
    if args.size <= 0:
        raise MlxtError(f"--size: expected a positive integer, got {args.size}")
    info = collect(args.size, bench=not args.no_bench)
    print(json.dumps(info, indent=2) if args.json else format_text(info))
    sys.stdout.flush()
    return 0
