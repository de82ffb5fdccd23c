"""mlxt's native attention softmax (`mlxt.kernels.softmax`) against mlxt's pure-MLX masked
softmax (``where`` + `mlxt.model.attention.softmax`) and PyTorch: no mask, boolean masks
(broadcast, with fully masked rows), causal (also with more queries than keys), gradients,
mx.compile, the attention layer, bitwise equal across thread counts."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, np32, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.model.attention import scaled_dot_product_attention, softmax as mlx_softmax
from mlxt.model.masks import causal_mask


def pure(scores, mask):
    """mlxt's pure-MLX CPU path: masked positions set to the most negative float."""
    if isinstance(mask, str):
        mask = causal_mask(scores.shape[-2], scores.shape[-1])
    if mask is not None:
        scores = mx.where(mask, scores, mx.array(mx.finfo(mx.float32).min, mx.float32))
    return mlx_softmax(scores)


def torch_softmax(scores: np.ndarray, keep: np.ndarray | None, cot: np.ndarray):
    import torch

    x = torch_tensor(scores, grad=True)
    masked = x if keep is None else x.masked_fill(~torch.tensor(keep), torch.finfo(torch.float32).min)
    y = torch.softmax(masked, dim=-1)
    (y * torch_tensor(cot)).sum().backward()
    return y.detach().numpy(), x.grad.numpy()


def case(lq, lk, kind, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((2, 3, lq, lk)).astype(np.float32) * 4
    cot = rng.standard_normal(scores.shape).astype(np.float32)
    if kind == "none":
        return scores, None, None, cot
    if kind == "causal":
        keep = np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)
        return scores, "causal", np.broadcast_to(keep, scores.shape), cot
    keep = np.ones((2, 1, 1, lk), bool)
    keep[1, 0, 0, max(lk - 3, 0):] = False  # padding in the second batch row
    if kind == "padding, one row fully masked":
        keep = np.broadcast_to(keep, (2, 1, lq, lk)).copy()
        keep[0, 0, 0, :] = False
    return scores, mx.array(keep), np.broadcast_to(keep, scores.shape), cot


KINDS = ["none", "causal", "padding", "padding, one row fully masked"]


@pytest.mark.parametrize("lq,lk", [(1, 1), (5, 5), (1, 7), (4, 37), (9, 4), (3, 70)])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_pure_mlx_and_torch(lq, lk, kind):
    scores, mask, keep, cot = case(lq, lk, kind)
    S, G = mx.array(scores), mx.array(cot)

    def value_and_grad(fn):
        return mx.value_and_grad(lambda s: (fn(s, mask) * G).sum())(S)

    (_, dx), (_, rdx) = value_and_grad(kernels.softmax), value_and_grad(pure)
    y, ry = kernels.softmax(S, mask), pure(S, mask)
    np.testing.assert_allclose(np32(y), np32(ry), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np32(dx), np32(rdx), rtol=1e-4, atol=1e-6)
    ty, tdx = torch_softmax(scores, keep, cot)
    np.testing.assert_allclose(np32(y), ty, rtol=1e-5, atol=1e-7)
    if keep is not None:  # torch's gradient at masked positions of a fully masked row is not 0
        tdx = np.where(keep.any(-1, keepdims=True), tdx, 0.0)
    np.testing.assert_allclose(np32(dx), tdx, rtol=1e-4, atol=1e-6)


def test_empty_and_non_contiguous():
    assert kernels.softmax(mx.zeros((0, 5)), None).shape == (0, 5)
    x = mx.array(np.random.default_rng(1).standard_normal((6, 10)).astype(np.float32)).T
    np.testing.assert_allclose(np32(kernels.softmax(x, None)), np32(mx.softmax(x, axis=-1)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_compiled_matches_pure_path(kind, monkeypatch):
    rng = np.random.default_rng(2)
    q, k, v = (mx.array(rng.standard_normal((2, 3, 6, 8)).astype(np.float32)) for _ in range(3))
    _, mask, _, _ = case(6, 6, kind)

    def loss(q, k, v):
        return (scaled_dot_product_attention(q, k, v, 8 ** -0.5, mask) ** 2).sum()

    ours = mx.compile(mx.value_and_grad(loss, argnums=(0, 1, 2)))(q, k, v)
    monkeypatch.setenv("MLXT_KERNELS", "0")
    theirs = mx.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v)
    np.testing.assert_allclose(ours[0].item(), theirs[0].item(), rtol=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(np32(a), np32(b), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["none", "causal", "padding, one row fully masked"])
def test_bitwise_equal_across_thread_counts(kind):
    scores, mask, _, cot = case(64, 300, kind if kind != "causal" else "none", seed=4)
    if kind == "causal":
        mask = "causal"
    S, G = mx.array(scores), mx.array(cot)
    assert_same_for_thread_counts(lambda: kernels.softmax(S, mask))
    assert_same_for_thread_counts(lambda: mx.grad(lambda s: (kernels.softmax(s, mask) * G).sum())(S))


def test_jvp_matches_pure_mlx():
    scores, mask, _, tangent = case(4, 9, "padding")
    S, T = mx.array(scores), mx.array(tangent)
    ours = mx.jvp(lambda s: kernels.softmax(s, mask), [S], [T])[1][0]
    theirs = mx.jvp(lambda s: mx.softmax(mx.where(mask, s, -1e30), axis=-1), [S], [T])[1][0]
    np.testing.assert_allclose(np32(ours), np32(theirs), rtol=1e-4, atol=1e-6)
