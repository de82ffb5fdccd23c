"""mlxt's native activations (`mlxt.kernels.gelu`, `gelu_tanh`, `silu`) against MLX's
`nn.gelu`, `nn.gelu_approx`, `nn.silu` and PyTorch: values over a wide range (tails
included), gradients, odd and empty sizes, mx.compile, the feed-forward block, bitwise equal
across thread counts."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, np32, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.model.feedforward import FeedForward

ACTS = {"gelu": (kernels.gelu, nn.gelu, {}), "gelu_tanh": (kernels.gelu_tanh, nn.gelu_approx, {"approximate": "tanh"}),
        "silu": (kernels.silu, nn.silu, None)}


def torch_act(name, x: np.ndarray, g: np.ndarray):
    import torch.nn.functional as F

    t = torch_tensor(x, grad=True)
    kw = ACTS[name][2]
    y = F.silu(t) if kw is None else F.gelu(t, **kw)
    (y * torch_tensor(g)).sum().backward()
    return y.detach().numpy(), t.grad.numpy()


def values(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32) * 3
    edges = np.array([0.0, -0.0, 1e-8, -1e-8, 5.0, -5.0, 9.0, -9.0, 30.0, -30.0, 87.0, -87.0, 100.0, -100.0],
                     np.float32)
    return np.concatenate([x, edges[: max(0, min(len(edges), n - len(x)))]]) if n >= len(edges) else x


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("n", [0, 1, 17, 1000])
def test_matches_mlx_and_torch(name, n):
    ours_fn, mlx_fn, _ = ACTS[name]
    x = values(n) if n < 1000 else np.concatenate([values(986), values(14) * 0 + np.linspace(-100, 100, 14)]).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    X, G = mx.array(x), mx.array(g)
    y, dx = ours_fn(X), mx.grad(lambda a: (ours_fn(a) * G).sum())(X)
    ry, rdx = mlx_fn(X), mx.grad(lambda a: (mlx_fn(a) * G).sum())(X)
    np.testing.assert_allclose(np32(y), np32(ry), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(np32(dx), np32(rdx), rtol=2e-5, atol=2e-6)
    if n:
        ty, tdx = torch_act(name, x, g)
        np.testing.assert_allclose(np32(y), ty, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(np32(dx), tdx, rtol=2e-5, atol=2e-6)


def test_non_contiguous_and_shaped_input():
    x = mx.array(np.random.default_rng(2).standard_normal((7, 5, 3)).astype(np.float32)).transpose(2, 0, 1)
    y = kernels.gelu(x)
    assert y.shape == (3, 7, 5)
    np.testing.assert_allclose(np32(y), np32(nn.gelu(x)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_feedforward_compiled_matches_pure_mlx(activation, monkeypatch):
    mx.random.seed(0)
    ff = FeedForward(16, 40, activation=activation)
    x = mx.array(np.random.default_rng(3).standard_normal((3, 5, 16)).astype(np.float32))
    loss = lambda x: (ff(x) ** 2).sum()  # noqa: E731
    ours = mx.compile(nn.value_and_grad(ff, loss), inputs=[ff.state], outputs=[ff.state])(x)
    mx.eval(ours)
    monkeypatch.setenv("MLXT_KERNELS", "0")
    theirs = nn.value_and_grad(ff, loss)(x)
    np.testing.assert_allclose(ours[0].item(), theirs[0].item(), rtol=1e-5)
    for key in ("linear1", "linear2"):
        np.testing.assert_allclose(np32(ours[1][key]["weight"]), np32(theirs[1][key]["weight"]), rtol=1e-4, atol=1e-5)


def test_jvp_matches_mlx():
    x = mx.array(values(100))
    t = mx.array(np.random.default_rng(4).standard_normal(x.shape).astype(np.float32))
    ours = mx.jvp(kernels.gelu, [x], [t])[1][0]
    theirs = mx.jvp(nn.gelu, [x], [t])[1][0]
    np.testing.assert_allclose(np32(ours), np32(theirs), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", list(ACTS))
def test_bitwise_equal_across_thread_counts(name):
    fn = ACTS[name][0]
    x = mx.array(values(100_003, seed=5))
    g = mx.array(np.random.default_rng(6).standard_normal(x.shape).astype(np.float32))
    assert_same_for_thread_counts(lambda: fn(x))
    assert_same_for_thread_counts(lambda: mx.grad(lambda a: (fn(a) * g).sum())(x))
