"""mlxt's CPU attention (explicit softmax with a hand-written gradient) against MLX's own
`mx.fast.scaled_dot_product_attention`: outputs and gradients, for every mask kind mlxt uses.
(PyTorch parity of the attention layers is in test_model_parity.py.)"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlxt.model.attention import scaled_dot_product_attention, softmax
from mlxt.model.masks import causal_mask, key_mask

B, H, D = 2, 3, 8


def qkv(lq: int, lk: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [mx.array(rng.standard_normal(shape).astype(np.float32))
            for shape in ((B, H, lq, D), (B, H, lk, D), (B, H, lk, D))]


def masks(lq: int, lk: int):
    keep = mx.array(np.arange(lk)[None, :] < np.array([[lk], [lk - 3]]))  # second row: 3 pads
    return {
        "none": None,
        "causal": "causal",
        "causal array": causal_mask(lq, lk),
        "padding": key_mask(keep),
        "padding and causal": mx.logical_and(key_mask(keep), causal_mask(lq, lk)),
    }


def reference(q, k, v, scale, mask):
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)


@pytest.mark.parametrize("lq,lk", [(7, 7), (1, 6), (4, 9)])
@pytest.mark.parametrize("name", ["none", "causal", "causal array", "padding", "padding and causal"])
def test_matches_mlx_attention_and_its_gradient(lq, lk, name):
    mask = masks(lq, lk)[name]
    q, k, v = qkv(lq, lk)
    cot = mx.array(np.random.default_rng(1).standard_normal((B, H, lq, D)).astype(np.float32))
    scale = D ** -0.5

    def loss(fn):
        return lambda q, k, v: (fn(q, k, v, scale, mask) * cot).sum()

    with mx.stream(mx.cpu):
        out = scaled_dot_product_attention(q, k, v, scale, mask)
        ref = reference(q, k, v, scale, mask)
        grads = mx.grad(loss(scaled_dot_product_attention), argnums=(0, 1, 2))(q, k, v)
        ref_grads = mx.grad(loss(reference), argnums=(0, 1, 2))(q, k, v)
    np.testing.assert_allclose(np.array(out), np.array(ref), atol=1e-5)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(np.array(g), np.array(r), atol=1e-5)


def test_fully_masked_row_stays_finite():
    q, k, v = qkv(3, 4)
    mask = mx.zeros((3, 4), dtype=mx.bool_)
    out, grads = mx.value_and_grad(lambda q: scaled_dot_product_attention(q, k, v, 0.5, mask).sum())(q)
    assert np.isfinite(np.array(out)).all() and np.isfinite(np.array(grads)).all()


def test_softmax_gradient_is_autodiff_gradient():
    x = mx.array(np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32) * 4)
    w = mx.array(np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32))
    ours = mx.grad(lambda x: (softmax(x) * w).sum())(x)
    auto = mx.grad(lambda x: (mx.softmax(x, axis=-1) * w).sum())(x)
    np.testing.assert_allclose(np.array(softmax(x)), np.array(mx.softmax(x, axis=-1)), atol=1e-6)
    np.testing.assert_allclose(np.array(ours), np.array(auto), atol=1e-6)
