"""What extra compiler flags would buy `mx.compile`'s JIT-built CPU kernels.

MLX builds them with a fixed ``g++ -std=c++17 -O3 ...`` command through ``std::system``; a
``g++`` wrapper first on ``PATH`` adds ``-mavx2 -mfma -ffp-contract=off`` (results unchanged).
Each variant runs in a child process with its own fresh ``TMPDIR`` (MLX's kernel cache), and
the table gives the best CPU time of 15 calls of a compiled AdamW-style update and of a compiled
GELU forward+backward over 2^20 floats, and the ratio.

    .venv/bin/python benchmarks/bench_jit_flags.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, time
import mlxt, mlx.core as mx, mlx.nn as nn
x = mx.random.normal((1 << 20,)); m = mx.random.normal(x.shape)
v = mx.abs(mx.random.normal(x.shape)); g = mx.random.normal(x.shape)
def adam(x, m, v, g):
    m = 0.9 * m + 0.1 * g; v = 0.99 * v + 0.01 * g * g
    return x - 1e-3 * (m / (mx.sqrt(v) + 1e-8) + 0.1 * x), m, v
def gelu(x, g):
    return mx.grad(lambda a: (nn.gelu(a) * g).sum())(x)
out = {}
for name, f, args in [("AdamW-style update", adam, (x, m, v, g)), ("GELU forward+backward", gelu, (x, g))]:
    c = mx.compile(f); mx.eval(c(*args))
    best = 1e9
    for _ in range(15):
        t = time.process_time(); mx.eval(c(*args)); best = min(best, time.process_time() - t)
    out[name] = best * 1e3
print(json.dumps(out))
"""


def child(extra_flags: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        if extra_flags:
            wrapper = Path(tmp) / "bin" / "g++"
            wrapper.parent.mkdir()
            path = env["PATH"].split(os.pathsep)
            # the wrapper calls the real g++ by its full path, so it cannot find itself again
            wrapper.write_text("#!/bin/sh\nexec " + _real_gxx(path) + ' -mavx2 -mfma -ffp-contract=off "$@"\n')
            wrapper.chmod(0o755)
            env["PATH"] = os.pathsep.join([str(wrapper.parent)] + path)
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def _real_gxx(path: list[str]) -> str:
    for d in path:
        p = Path(d) / "g++"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise SystemExit("g++ not found on PATH")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    print(common.machine())
    plain, flagged = child(False), child(True)
    rows = [[name, plain[name], flagged[name], f"{plain[name] / flagged[name]:.2f}x"] for name in plain]
    print(common.table(["compiled kernel", "g++ -O3 (MLX) CPU ms", "+ -mavx2 -mfma CPU ms", "speed-up"], rows))
