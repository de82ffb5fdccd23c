"""MLX's float32 matrix products done by mlxt's own product (sgemm.cpp, through the BLAS shim):
every layout MLX passes (transposed operands, strided views, batches, addmm's alpha and beta)
close to PyTorch's, the same bits for every thread count, gradients through `nn.value_and_grad`
and `mx.compile` matching OpenBLAS's, and the switches (MLXT_GEMM=openblas, MLXT_KERNELS=0)
handing the products back to OpenBLAS."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, torch_tensor  # noqa: F401
from mlxt import _blas, kernels

pytestmark = pytest.mark.skipif(not _blas.state().shim, reason="MLX's products do not go through mlxt's BLAS shim")

# (m, k, n): one row and column, tails of the 6-row tile and the 64-column panel, k past the
# 512 block, shapes large enough for the threaded split
SHAPES = [(1, 1, 1), (1, 7, 5), (5, 33, 64), (7, 65, 3), (13, 100, 130), (64, 32, 64), (96, 600, 70),
          (300, 128, 257), (768, 128, 128)]


def routed_calls() -> int:
    return _blas.state().sgemm_calls()


def operands(m, k, n, ta, tb, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    return a, b


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_matches_torch_for_every_layout(m, k, n, ta, tb):
    import torch

    a, b = operands(m, k, n, ta, tb)
    xa, xb = mx.array(a), mx.array(b)
    before = routed_calls()
    got = np.array((xa.T if ta else xa) @ (xb.T if tb else xb))
    assert routed_calls() > before, "the product did not go through mlxt's sgemm"
    ta_, tb_ = torch_tensor(a), torch_tensor(b)
    want = ((ta_.T if ta else ta_) @ (tb_.T if tb else tb_)).numpy()
    assert got.shape == (m, n)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * k ** 0.5)


def test_strided_views_batches_and_addmm():
    import torch

    rng = np.random.default_rng(1)
    big = rng.standard_normal((40, 90)).astype(np.float32)
    rhs = rng.standard_normal((70, 30)).astype(np.float32)
    got = np.array(mx.array(big)[3:33, 10:80] @ mx.array(rhs))  # a row stride of 90, not 70
    np.testing.assert_allclose(got, big[3:33, 10:80] @ rhs, rtol=1e-5, atol=1e-4)

    q, kk = (rng.standard_normal((3, 4, 17, 8)).astype(np.float32) for _ in range(2))
    got = np.array(mx.array(q) @ mx.array(kk).swapaxes(-1, -2))
    want = (torch_tensor(q) @ torch_tensor(kk).transpose(-1, -2)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    c, x, w = (rng.standard_normal(s).astype(np.float32) for s in ((9, 11), (9, 5), (5, 11)))
    got = np.array(mx.addmm(mx.array(c), mx.array(x), mx.array(w), alpha=0.5, beta=2.0))
    np.testing.assert_allclose(got, 2.0 * c + 0.5 * (x @ w), rtol=1e-5, atol=1e-5)
    got = np.array(mx.addmm(mx.array(c), mx.array(x), mx.array(w), alpha=1.0, beta=1.0))
    np.testing.assert_allclose(got, c + x @ w, rtol=1e-5, atol=1e-5)


def test_empty_inner_dimension_gives_zeros():
    got = np.array(mx.zeros((4, 0)) @ mx.zeros((0, 3)))
    assert got.shape == (4, 3) and not got.any()


@pytest.mark.parametrize("m,k,n", [(768, 128, 512), (130, 700, 65), (64, 32, 64)])
def test_same_bits_for_every_thread_count(m, k, n):
    a, b = operands(m, k, n, True, False, seed=2)
    xa, xb = mx.array(a), mx.array(b)
    assert_same_for_thread_counts(lambda: (xa.T @ xb, xa.T @ xb.T[:, :k].T if n >= k else xa.T @ xb))


def test_gradients_in_a_compiled_step_match_openblas(monkeypatch):
    def grads(route: str):
        monkeypatch.setenv("MLXT_GEMM", route)
        kernels.use_native()  # the switches are read when mlxt is next consulted
        mx.random.seed(3)
        model = nn.Sequential(nn.Linear(48, 96), nn.GELU(), nn.Linear(96, 10))
        x, y = mx.random.normal((64, 48)), mx.random.normal((64, 10))
        loss_and_grad = nn.value_and_grad(model, lambda x, y: mx.mean((model(x) - y) ** 2))
        before = routed_calls()
        loss, g = mx.compile(loss_and_grad)(x, y)
        mx.eval(loss, g)
        return float(loss), g, routed_calls() - before

    loss, g, calls = grads("mlxt")
    ref_loss, ref_g, ref_calls = grads("openblas")
    assert calls > 0 and ref_calls == 0
    assert abs(loss - ref_loss) <= 1e-5 * abs(ref_loss)
    for got, want in zip(nn.utils.tree_flatten(g), nn.utils.tree_flatten(ref_g)):
        np.testing.assert_allclose(np.array(got[1]), np.array(want[1]), rtol=1e-4, atol=1e-6)


def test_switches_hand_the_products_back_to_openblas(monkeypatch):
    a = mx.ones((32, 32))
    for env, value in (("MLXT_GEMM", "openblas"), ("MLXT_KERNELS", "0")):
        monkeypatch.setenv(env, value)
        kernels.use_native()
        before = routed_calls()
        mx.eval(a @ a)
        assert routed_calls() == before, env
        status = kernels.status()
        assert "gemm" not in status["kernels"] and status["gemm"].startswith("OpenBLAS"), status
        monkeypatch.delenv(env)
        kernels.use_native()
        before = routed_calls()
        mx.eval(a @ a + 1)
        assert routed_calls() > before and "gemm" in kernels.status()["kernels"]


PRODUCTS = """
import hashlib
import mlxt, mlx.core as mx, numpy as np
from mlxt import kernels
kernels.use_native()
assert "gemm" in kernels.status()["kernels"], kernels.status()
rng = np.random.default_rng(0)
a, b = (mx.array(rng.standard_normal(s).astype(np.float32)) for s in ((130, 700), (700, 65)))
outs = [a @ b, a.T[:65] @ a[:, :9], b.T @ a.T, mx.addmm(b[:130 % 65 + 1], a[:66], b, alpha=0.25, beta=1.5)]
mx.eval(outs)
print(kernels.status()["isa"], hashlib.sha256(b"".join(np.array(o).tobytes() for o in outs)).hexdigest())
"""


def test_avx2_and_avx512_builds_give_the_same_bits():
    import os
    import subprocess
    import sys

    if kernels.status()["isa"] != "avx512":
        pytest.skip("this CPU has no AVX-512 build to compare the AVX2 one with")
    digests = {}
    for isa in ("avx512", "avx2"):
        env = dict(os.environ, MLXT_KERNELS_ISA=isa)
        out = subprocess.run([sys.executable, "-c", PRODUCTS], env=env, capture_output=True, text=True, check=True)
        used, digests[isa] = out.stdout.split()
        assert used == isa
    assert digests["avx512"] == digests["avx2"]
