"""mlxt's native layer norm (`mlxt.kernels.layer_norm`) against MLX's `mx.fast.layer_norm`
and PyTorch: outputs and gradients (x, weight, bias), odd and empty shapes, non-contiguous
input, inside mx.compile and nn.value_and_grad, bitwise equal across thread counts."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, np32, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.model.layers import LayerNorm

EPS = 1e-5


def inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    d = shape[-1]
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    w = rng.standard_normal(d).astype(np.float32)
    b = rng.standard_normal(d).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    return x, w, b, g


def grads(fn, x, w, b, g):
    loss = lambda x, w, b: (fn(x, w, b) * g).sum()  # noqa: E731
    return mx.value_and_grad(loss, argnums=(0, 1, 2))(x, w, b)[1]


def torch_reference(x, w, b, g):
    import torch

    tx, tw, tb = (torch_tensor(a, grad=True) for a in (x, w, b))
    y = torch.nn.functional.layer_norm(tx, (x.shape[-1],), tw, tb, EPS)
    (y * torch_tensor(g)).sum().backward()
    return [t.detach().numpy() for t in (y, tx.grad, tw.grad, tb.grad)]


@pytest.mark.parametrize("shape", [(1, 5), (3, 7, 33), (2, 256), (130, 16), (4, 1), (0, 8)])
def test_matches_mlx_and_torch(shape):
    x, w, b, g = inputs(shape)
    X, W, B, G = map(mx.array, (x, w, b, g))
    y = kernels.layer_norm(X, W, B, EPS)
    dx, dw, db = grads(lambda *a: kernels.layer_norm(*a, EPS), X, W, B, G)
    ry = mx.fast.layer_norm(X, W, B, EPS)
    rdx, rdw, rdb = grads(lambda *a: mx.fast.layer_norm(*a, EPS), X, W, B, G)
    for ours, ref in zip((y, dx, dw, db), (ry, rdx, rdw, rdb)):
        np.testing.assert_allclose(np32(ours), np32(ref), rtol=1e-4, atol=2e-5)
    if x.size:
        for ours, ref in zip((y, dx, dw, db), torch_reference(x, w, b, g)):
            np.testing.assert_allclose(np32(ours), ref, rtol=1e-4, atol=2e-5)


def test_non_contiguous_input():
    x, w, b, _ = inputs((24, 40))
    X = mx.array(x).T  # (40, 24), a transposed view
    W, B = mx.array(w[:24]), mx.array(b[:24])
    np.testing.assert_allclose(np32(kernels.layer_norm(X, W, B, EPS)),
                               np32(mx.fast.layer_norm(X, W, B, EPS)), rtol=1e-5, atol=1e-5)


def test_module_in_compile_and_value_and_grad():
    x, _, _, g = inputs((5, 9, 48))
    norm = LayerNorm(48, eps=EPS)
    norm.update({"weight": mx.array(np.linspace(0.5, 1.5, 48, dtype=np.float32)),
                 "bias": mx.array(np.linspace(-1, 1, 48, dtype=np.float32))})
    ref = nn.LayerNorm(48, eps=EPS)
    ref.update(norm.parameters())
    X, G = mx.array(x), mx.array(g)

    def loss(model, x):
        return (model(x) * G).sum()

    ours = mx.compile(nn.value_and_grad(norm, lambda x: loss(norm, x)), inputs=[norm.state], outputs=[norm.state])(X)
    mx.eval(ours)
    theirs = nn.value_and_grad(ref, lambda x: loss(ref, x))(X)
    np.testing.assert_allclose(ours[0].item(), theirs[0].item(), rtol=1e-5)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(np32(ours[1][k]), np32(theirs[1][k]), rtol=1e-4, atol=1e-4)


def test_bitwise_equal_across_thread_counts():
    x, w, b, g = inputs((517, 129), seed=3)  # many tasks and several 64-row gradient blocks
    X, W, B, G = map(mx.array, (x, w, b, g))
    assert_same_for_thread_counts(lambda: kernels.layer_norm(X, W, B, EPS))
    assert_same_for_thread_counts(lambda: grads(lambda *a: kernels.layer_norm(*a, EPS), X, W, B, G))


def test_falls_back_to_mlx_when_disabled(monkeypatch):
    x, w, b, _ = inputs((3, 10))
    X, W, B = map(mx.array, (x, w, b))
    monkeypatch.setenv("MLXT_KERNELS", "0")
    assert not kernels.use_native()
    y = kernels.layer_norm(X, W, B, EPS)
    assert np.array_equal(np32(y), np32(mx.fast.layer_norm(X, W, B, EPS)))
