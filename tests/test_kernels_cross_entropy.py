"""mlxt's native label-smoothed cross-entropy (`mlxt.kernels.cross_entropy`, used by
`mlxt.train.losses` on CPU) against mlxt's pure-MLX loss and PyTorch's ``F.cross_entropy``:
per-position losses and logit gradients, with and without smoothing and padding, odd
vocabularies, mx.compile, bitwise equal across thread counts."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, np32, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.train.losses import label_smoothed_cross_entropy


def case(shape, vocab, seed=0):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((*shape, vocab)) * 3).astype(np.float32)
    targets = rng.integers(0, vocab, size=shape).astype(np.int32)
    if targets.size:
        targets.flat[0], targets.flat[-1] = 0, vocab - 1  # first and last class, pad (0) included
    return logits, targets


def loss_and_grad(logits, targets, smoothing, pad_id):
    def f(x):
        total, count = label_smoothed_cross_entropy(x, mx.array(targets), smoothing, pad_id)
        return total / mx.maximum(count, 1.0)

    return mx.value_and_grad(f)(mx.array(logits))


def torch_loss_and_grad(logits, targets, smoothing, pad_id):
    import torch
    import torch.nn.functional as F

    x = torch_tensor(logits, grad=True)
    t = torch.tensor(targets.astype(np.int64))
    V = logits.shape[-1]
    total = F.cross_entropy(x.reshape(-1, V), t.reshape(-1), label_smoothing=smoothing,
                            ignore_index=-100 if pad_id is None else pad_id, reduction="sum")
    count = t.numel() if pad_id is None else int((t != pad_id).sum())
    (total / max(count, 1)).backward()
    return (total / max(count, 1)).item(), x.grad.numpy()


@pytest.mark.parametrize("shape,vocab", [((1,), 1), ((3,), 7), ((2, 5), 65), ((4, 9), 1000), ((0,), 10)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("pad_id", [None, 0])
def test_matches_pure_mlx_and_torch(shape, vocab, smoothing, pad_id, monkeypatch):
    logits, targets = case(shape, vocab)
    loss, grad = loss_and_grad(logits, targets, smoothing, pad_id)
    monkeypatch.setenv("MLXT_KERNELS", "0")
    ref_loss, ref_grad = loss_and_grad(logits, targets, smoothing, pad_id)
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np32(grad), np32(ref_grad), rtol=1e-4, atol=1e-7)
    if targets.size:
        t_loss, t_grad = torch_loss_and_grad(logits, targets, smoothing, pad_id)
        np.testing.assert_allclose(loss.item(), t_loss, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np32(grad), t_grad, rtol=1e-4, atol=1e-7)


def test_per_position_losses_and_compile():
    logits, targets = case((6, 11), 300, seed=1)
    X, T = mx.array(logits), mx.array(targets)
    ours = mx.compile(lambda x, t: kernels.cross_entropy(x, t, 0.1))(X, T)
    lse = mx.logsumexp(X, axis=-1)
    picked = mx.take_along_axis(X, T[..., None], axis=-1)[..., 0]
    ref = (lse - picked) - 0.1 * (X.mean(-1) - picked)
    assert ours.shape == (6, 11)
    np.testing.assert_allclose(np32(ours), np32(ref), rtol=1e-5, atol=1e-5)


def test_non_contiguous_logits():
    logits, targets = case((5,), 40, seed=2)
    X = mx.array(np.ascontiguousarray(logits.T)).T  # a transposed view of the same values
    np.testing.assert_array_equal(np32(kernels.cross_entropy(X, mx.array(targets), 0.0)),
                                  np32(kernels.cross_entropy(mx.array(logits), mx.array(targets), 0.0)))


def test_bitwise_equal_across_thread_counts():
    logits, targets = case((8, 32), 2000, seed=3)
    X, T = mx.array(logits), mx.array(targets)
    assert_same_for_thread_counts(lambda: kernels.cross_entropy(X, T, 0.1))
    assert_same_for_thread_counts(lambda: mx.grad(lambda x: kernels.cross_entropy(x, T, 0.1).sum())(X))
