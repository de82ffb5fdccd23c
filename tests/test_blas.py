"""The fast-BLAS routing of `mlxt._blas`: it is loaded, MLX really calls it, results match numpy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlxt import _blas
from mlxt.cli import main

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="BLAS routing is Linux-only")

PROBE = r"""
import json, os, sys
first = sys.argv[1]
if first == "mlx":
    import mlx.core as mx
import mlxt
from mlxt import _blas
import mlx.core as mx
state = _blas.state()
before = state.forwarded_calls()
a = mx.random.normal((256, 256)); b = mx.random.normal((256, 256))
mx.eval(a @ b)
after = state.forwarded_calls()
maps = open("/proc/self/maps").read()
print(json.dumps({
    "active": state.active, "source": state.source, "reason": state.reason,
    "threads": state.num_threads(), "shim_calls": [before, after],
    "openblas_mapped": "libscipy_openblas" in maps, "shim_mapped": "_blas_shim" in maps,
    "gflops": _blas.matmul_gflops(512, repeats=3) if "gflops" in sys.argv else None,
}))
"""


def probe(*args: str, **env: str) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("MLXT_BLAS", "MLXT_NUM_THREADS")}
    environ.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=environ, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_import_loads_openblas_and_mlx_calls_it_fast():
    # One BLAS thread each: a busy machine then slows both alike (a multi-threaded OpenBLAS
    # sharing cores with other processes can lose far more than its thread count).
    fast, _ = probe("mlxt", "gflops", MLXT_NUM_THREADS="1")
    slow, _ = probe("mlxt", "gflops", MLXT_BLAS="reference")
    assert fast["active"] and fast["source"] == "scipy-openblas"
    assert fast["openblas_mapped"] and fast["shim_mapped"]
    before, after = fast["shim_calls"]
    assert after > before, "MLX's matmul did not go through the forwarding shim"
    # Same machine, same moment: OpenBLAS is ~50x faster than the reference BLAS; 5x is a wide margin.
    assert fast["gflops"] > 5 * slow["gflops"], (fast["gflops"], slow["gflops"])


def test_reference_mode_turns_it_off():
    out, _ = probe("mlxt", MLXT_BLAS="reference")
    assert not out["active"] and out["source"] == "reference"
    assert "MLXT_BLAS=reference" in out["reason"]
    assert not out["openblas_mapped"] and not out["shim_mapped"]
    assert out["shim_calls"] == [None, None]


def test_unknown_mode_warns_and_falls_back_to_auto():
    out, stderr = probe("mlxt", MLXT_BLAS="fastest")
    assert "MLXT_BLAS='fastest' is not one of" in stderr
    assert out["active"] and out["shim_mapped"]


def test_explicit_source_that_is_missing_warns():
    """``MLXT_BLAS=system`` without a system OpenBLAS: a warning, MLX left as it was."""
    import ctypes.util

    if ctypes.util.find_library("openblas"):
        pytest.skip("this machine has a system OpenBLAS")
    out, stderr = probe("mlxt", MLXT_BLAS="system")
    assert not out["active"] and "no system libopenblas" in out["reason"]
    assert "no optimized BLAS could be loaded" in stderr
    assert not out["shim_mapped"]


def test_warns_when_mlx_was_imported_first():
    out, stderr = probe("mlx")
    assert not out["active"]
    assert "mlx.core was imported before mlxt" in stderr
    assert stderr.count("BlasWarning") == 1
    assert not out["shim_mapped"]


def test_thread_count_follows_mlxt_num_threads():
    out, _ = probe("mlxt", MLXT_NUM_THREADS="1")
    assert out["threads"] == 1
    out, _ = probe("mlxt", MLXT_NUM_THREADS="1", OPENBLAS_NUM_THREADS="2")
    assert out["threads"] == 1


def test_shim_covers_every_blas_symbol_libmlx_imports():
    """A newer mlx importing another BLAS/LAPACK symbol would silently bypass the shim."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("binutils `nm` not installed")
    spec_origin = Path(mx.__file__).resolve().parent
    libmlx = next(spec_origin.glob("lib/libmlx.so*"))
    listing = subprocess.run([nm, "-D", "--undefined-only", str(libmlx)], capture_output=True,
                             text=True, check=True).stdout
    imported = {line.split()[-1].split("@")[0] for line in listing.splitlines() if line.strip()}
    blas_like = {s for s in imported if s.startswith("cblas_") or
                 (s.endswith("_") and s[:1] in "sdcz" and s[:-1].isalpha() and s[:-1].islower())}
    assert "cblas_sgemm" in blas_like
    shim = ctypes_exports(Path(_blas.state().shim))
    assert blas_like <= shim, sorted(blas_like - shim)


def ctypes_exports(path: Path) -> set[str]:
    listing = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True,
                             text=True, check=True).stdout
    return {line.split()[-1] for line in listing.splitlines() if line.strip()}


FASTMATH_PROBE = r"""
import sys
import mlxt, mlx.core as mx, mlx.nn as nn, numpy as np
from mlxt import _blas
x = np.concatenate([np.linspace(-100, 100, 200_001, dtype=np.float32),
                    np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-40, 88.0, 88.1, -88.0, -88.1],
                             dtype=np.float32)])
xm = mx.array(x)
fused = [mx.compile(lambda a: mx.exp(a * 1.0) + 0.0), mx.compile(lambda a: mx.erf(a * 1.0) + 0.0),
         mx.compile(mx.grad(lambda a: nn.gelu(a).sum())), mx.compile(lambda a: mx.sigmoid(a * 2.0))]
out = np.stack([np.array(f(xm)) for f in fused])
np.save(sys.argv[1], out)
print(_blas.state().fastmath is not None, "_mlx_fastmath" in open("/proc/self/maps").read())
"""


def test_fastmath_kernels_are_bitwise_identical_to_mlx(tmp_path):
    """Compiled kernels calling the FMA exp/erf give exactly MLX's own results."""
    outputs = []
    for flag in ("1", "0"):
        env = {k: v for k, v in os.environ.items() if k not in ("MLXT_BLAS", "MLXT_FASTMATH")}
        env["MLXT_FASTMATH"] = flag
        path = tmp_path / f"out{flag}.npy"
        proc = subprocess.run([sys.executable, "-c", FASTMATH_PROBE, str(path)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        loaded, mapped = proc.stdout.split()
        fma_cpu = _blas._cpu_has_fma()
        assert loaded == mapped == str(flag == "1" and fma_cpu)
        outputs.append(np.load(path))
    fast, plain = outputs
    assert np.isnan(fast).sum() > 0 and np.isinf(fast).sum() > 0  # special values were covered
    np.testing.assert_array_equal(fast.view(np.uint32), plain.view(np.uint32))


# -- correctness in this process (conftest imports mlxt first, so the fast BLAS is live) -----

def test_this_process_uses_the_fast_blas():
    state = _blas.state()
    assert state.active, state.reason
    before = state.forwarded_calls()
    mx.eval(mx.ones((8, 8)) @ mx.ones((8, 8)))
    assert state.forwarded_calls() > before


MATMUL_CASES = [
    # (shape of a, shape of b, transpose a, transpose b)
    ((1, 1), (1, 1), False, False),
    ((7, 13), (13, 5), False, False),
    ((64, 300), (300, 129), False, False),
    ((300, 64), (300, 129), True, False),
    ((64, 300), (129, 300), False, True),
    ((300, 64), (129, 300), True, True),
    ((4, 33, 17), (4, 17, 9), False, False),  # batched
    ((3, 1, 20, 16), (5, 16, 8), False, False),  # broadcast batch
    ((2, 3, 16, 20), (2, 3, 8, 16), True, True),  # batched, both transposed
]


@pytest.mark.parametrize("a_shape,b_shape,ta,tb", MATMUL_CASES)
def test_matmul_matches_numpy(rng, a_shape, b_shape, ta, tb):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    xa, xb = mx.array(a), mx.array(b)
    if ta:
        a, xa = np.swapaxes(a, -1, -2), mx.swapaxes(xa, -1, -2)
    if tb:
        b, xb = np.swapaxes(b, -1, -2), mx.swapaxes(xb, -1, -2)
    got = np.array(xa @ xb)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(a.shape[-1]))


def test_vector_and_noncontiguous_products(rng):
    m = rng.standard_normal((40, 30)).astype(np.float32)
    v = rng.standard_normal(30).astype(np.float32)
    w = rng.standard_normal(40).astype(np.float32)
    xm = mx.array(m)
    np.testing.assert_allclose(np.array(xm @ mx.array(v)), m @ v, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(mx.array(w) @ xm), w @ m, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(mx.inner(mx.array(v), mx.array(v))), v @ v, rtol=1e-4)
    big = rng.standard_normal((50, 60)).astype(np.float32)
    xbig = mx.array(big)
    got = np.array(xbig[::2, 1::3] @ xbig[1::2, ::3][:20])  # strided views
    np.testing.assert_allclose(got, big[::2, 1::3] @ big[1::2, ::3][:20], rtol=1e-4, atol=1e-4)
    x = rng.standard_normal((8, 10)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    wt = rng.standard_normal((6, 10)).astype(np.float32)
    got = np.array(mx.addmm(mx.array(bias), mx.array(x), mx.array(wt).T, alpha=0.5, beta=2.0))
    np.testing.assert_allclose(got, 2.0 * bias + 0.5 * x @ wt.T, rtol=1e-4, atol=1e-4)


def test_float64_and_complex_gemm(rng):
    a = rng.standard_normal((9, 7))
    b = rng.standard_normal((7, 4))
    got = np.array(mx.matmul(mx.array(a, dtype=mx.float64), mx.array(b, dtype=mx.float64), stream=mx.cpu))
    np.testing.assert_allclose(got, a @ b, rtol=1e-12)
    ca = (a + 1j * rng.standard_normal(a.shape)).astype(np.complex64)
    cb = (b + 1j * rng.standard_normal(b.shape)).astype(np.complex64)
    got = np.array(mx.array(ca) @ mx.array(cb))
    np.testing.assert_allclose(got, ca.astype(np.complex128) @ cb, rtol=1e-4, atol=1e-4)


def test_lapack_routines_match_numpy(rng):
    state = _blas.state()
    before = state.forwarded_calls()
    a = rng.standard_normal((12, 9)).astype(np.float32)
    s = np.array(mx.linalg.svd(mx.array(a), compute_uv=False, stream=mx.cpu))
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), rtol=1e-4, atol=1e-5)
    q, r = mx.linalg.qr(mx.array(a), stream=mx.cpu)
    np.testing.assert_allclose(np.array(q @ r), a, atol=1e-5)
    spd = (a.T @ a + 9 * np.eye(9)).astype(np.float32)
    inv = np.array(mx.linalg.inv(mx.array(spd), stream=mx.cpu))
    np.testing.assert_allclose(inv, np.linalg.inv(spd), rtol=1e-4, atol=1e-6)
    chol = np.array(mx.linalg.cholesky(mx.array(spd), stream=mx.cpu))
    np.testing.assert_allclose(chol, np.linalg.cholesky(spd), rtol=1e-4, atol=1e-5)
    w = np.array(mx.linalg.eigvalsh(mx.array(spd), stream=mx.cpu))
    np.testing.assert_allclose(w, np.linalg.eigvalsh(spd), rtol=1e-4)
    assert state.forwarded_calls() >= before + 5  # each routine went through the shim


def test_info_command_reports_the_blas(capsys):
    assert main(["info", "--size", "64", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mlx"] == mx.__version__
    assert info["blas"]["active"] and info["blas"]["source"] == "scipy-openblas"
    assert "OpenBLAS" in info["blas"]["config"]
    assert info["matmul"]["mlx_gflops"] > 0 and info["matmul"]["numpy_gflops"] > 0
    assert main(["info", "--no-bench"]) == 0
    text = capsys.readouterr().out
    assert "libscipy_openblas" in text and "matmul" not in text
    assert main(["info", "--size", "-3"]) == 2
    assert "--size" in capsys.readouterr().err
