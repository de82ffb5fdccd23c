"""MLX's float32 products on mlxt's GEMM against OpenBLAS, at a training step's shapes.

Each route runs in its own process (``MLXT_GEMM=mlxt`` / ``openblas``), so one engine's idle
worker threads do not take the cores from the other; each shape is MLX's `a @ b` with the
operand layouts a train step passes (``T`` = transposed view), timed as the best of 5 rounds.

    .venv/bin/python benchmarks/bench_sgemm.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# (transposed a, transposed b, m, n, k): baby GPT's projections forward, dX and dW backward,
# one attention head, seq2seq's output layer
SHAPES = [(False, False, 768, 128, 128), (False, True, 768, 512, 128), (True, False, 128, 128, 768),
          (True, False, 512, 128, 768), (False, False, 64, 64, 32), (False, False, 1024, 8000, 256)]


def child() -> None:
    import mlxt  # noqa: F401  (routes MLX's BLAS before mlx.core loads)
    import mlx.core as mx

    from mlxt import kernels

    kernels.use_native()
    out = {}
    for ta, tb, m, n, k in SHAPES:
        a = mx.random.normal((k, m)).T if ta else mx.random.normal((m, k))
        b = mx.random.normal((n, k)).T if tb else mx.random.normal((k, n))
        mx.eval(a, b)
        reps = max(3, int(3e8 / (m * n * k)))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                mx.eval(a @ b)
            best = min(best, (time.perf_counter() - t0) / reps)
        out[str((ta, tb, m, n, k))] = 2.0 * m * n * k / best / 1e9
    print(json.dumps(out))


def measure(route: str) -> dict:
    env = dict(os.environ, MLXT_GEMM=route)
    res = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run():
    mine, theirs = measure("mlxt"), measure("openblas")
    rows = []
    for s in SHAPES:
        ta, tb, m, n, k = s
        name = f"{'(%dx%d)^T' % (k, m) if ta else '%dx%d' % (m, k)} @ {'(%dx%d)^T' % (n, k) if tb else '%dx%d' % (k, n)}"
        g1, g0 = mine[str(s)], theirs[str(s)]
        rows.append([name, f"{g0:.1f}", f"{g1:.1f}", f"{g1 / g0:.2f}x"])
    return ["product", "OpenBLAS GFLOP/s", "mlxt GFLOP/s", "mlxt / OpenBLAS"], rows


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
    else:
        import common

        headers, rows = run()
        print(common.machine())
        print(common.table(headers, rows))
