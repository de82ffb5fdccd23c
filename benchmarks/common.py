"""Shared helpers of the benchmarks: timing, the machine description, FLOP counts, tables.

Each ``bench_*.py`` imports this module by path (``benchmarks/`` is not a package), so every
file runs alone: ``.venv/bin/python benchmarks/bench_matmul.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# MLXT_NUM_THREADS also limits numpy's own OpenBLAS (read when numpy loads), so every library
# in a table runs with the same number of threads.
if os.environ.get("MLXT_NUM_THREADS", "").strip():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["MLXT_NUM_THREADS"].strip())

import mlxt  # noqa: E402,F401  (first: routes MLX to the fast BLAS before mlx.core loads)
from mlxt import _blas  # noqa: E402


def quick() -> bool:
    """``MLXT_BENCH_QUICK=1``: fewer steps (a smoke run, numbers less stable)."""
    return os.environ.get("MLXT_BENCH_QUICK", "") not in ("", "0")


def best_time(fn, repeats: int, warmup: int = 1, min_seconds: float = 0.2) -> float:
    """Best seconds of one ``fn()`` call over at least ``repeats`` calls and ``min_seconds``."""
    for _ in range(warmup):
        fn()
    best, spent, tries = float("inf"), 0.0, 0
    while tries < repeats or (spent < min_seconds and tries < 1000):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, tries = min(best, elapsed), spent + elapsed, tries + 1
    return best


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median seconds of one ``fn()`` call (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def threads() -> int | None:
    """``MLXT_NUM_THREADS`` (also applied to PyTorch, so both use the same number of threads)."""
    value = os.environ.get("MLXT_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def import_torch():
    """PyTorch, with ``MLXT_NUM_THREADS`` threads when set."""
    import torch

    if threads():
        torch.set_num_threads(threads())
    return torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line saying where the numbers come from."""
    import mlx.core as mx

    state = _blas.state()
    blas = f"{state.source} ({state.config()})" if state.active else f"reference ({state.reason})"
    parts = [f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}",
             f"python {platform.python_version()}, mlx {mx.__version__}"]
    try:  # not imported here: PyTorch's thread pool must stay out of the MLX process
        from importlib.metadata import version

        parts.append(f"torch {version('torch')} ({threads() or 'default'} threads)")
    except ImportError:
        pass
    parts.append(f"BLAS {blas}, {state.num_threads()} threads")
    try:
        parts.append("load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    except OSError:
        pass
    return "; ".join(parts)


def table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-markdown table (readable in a terminal too)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
    return str(value)
