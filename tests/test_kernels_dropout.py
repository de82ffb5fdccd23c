"""mlxt's native dropout kernel: the mask against an independent numpy implementation of its
hash, the statistics of the mask, the backward pass (the same mask on the cotangent), seeds
and compiled steps, thread counts, and the `Dropout` module's modes and fallback."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels  # noqa: F401
from mlxt import kernels
from mlxt.model.dropout import Dropout

M32 = np.uint64(0xFFFFFFFF)


def fmix32(h: np.ndarray) -> np.ndarray:
    h = h.astype(np.uint64)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & M32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & M32
    h ^= h >> np.uint64(16)
    return h


def reference_kept(n: int, key: tuple[int, int], p: float) -> np.ndarray:
    """Which of n elements the kernel keeps (kernels.h, DropoutArgs), in 64-bit numpy."""
    i = np.arange(n, dtype=np.uint64)
    lo, hi = i & M32, i >> np.uint64(32)
    h = fmix32((lo * np.uint64(0x9E3779B1) + np.uint64(key[0])) & M32)
    h = fmix32(h ^ np.uint64(key[1]) ^ ((hi * np.uint64(0x85EBCA77)) & M32))
    threshold = np.uint64(int(float(np.float32(p)) * 2**31 + 0.5))  # p as the kernel holds it
    return (h >> np.uint64(1)) >= threshold


def native(x: np.ndarray, key: tuple[int, int], p: float) -> np.ndarray:
    out = kernels._lib.dropout(mx.array(x), mx.array(np.array(key, dtype=np.uint32)), p)
    return np.array(out)


@pytest.mark.parametrize("shape", [(1,), (15,), (16,), (17,), (3, 7, 33), (40000,), (12, 128, 768)])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_mask_and_scale_match_the_reference(shape, p):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32) + 2.0  # no exact zeros
    key = (0xDEADBEEF, 12345)
    y = native(x, key, p)
    kept = reference_kept(x.size, key, p).reshape(shape)
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(p))
    want = np.where(kept, x * scale, np.float32(0.0)).astype(np.float32)
    assert y.dtype == np.float32 and y.shape == shape
    assert np.array_equal(y, want)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_mask_statistics(p):
    n = 1 << 20
    kept = native(np.ones(n, np.float32), (7, 11), p) != 0
    # keep rate: 4 standard deviations of a binomial over n elements
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)
    # neighbours are independent: P(both kept) = (1 - p)^2
    both = (kept[1:] & kept[:-1]).mean()
    assert abs(both - (1 - p) ** 2) < 4 * np.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)
    # no structure along 16-lane blocks or rows: each lane position keeps at the same rate
    lanes = kept.reshape(-1, 16).mean(axis=0)
    assert np.all(np.abs(lanes - (1 - p)) < 4 * np.sqrt(p * (1 - p) / (n / 16)))
    # another key gives an unrelated mask
    other = native(np.ones(n, np.float32), (8, 11), p) != 0
    assert abs((kept == other).mean() - ((1 - p) ** 2 + p ** 2)) < 0.005


def test_p_zero_keeps_everything_and_bad_arguments_are_refused():
    x = np.arange(1, 50, dtype=np.float32)
    assert np.array_equal(native(x, (1, 2), 0.0), x)
    with pytest.raises(ValueError, match="p must be in"):
        kernels._lib.dropout(mx.array(x), mx.array(np.zeros(2, np.uint32)), 1.0)
    with pytest.raises(ValueError, match="key must be"):
        kernels._lib.dropout(mx.array(x), mx.array(np.zeros(3, np.uint32)), 0.1)


def test_backward_applies_the_same_mask_to_the_cotangent():
    rng = np.random.default_rng(1)
    x = mx.array(rng.standard_normal((33, 50)).astype(np.float32))
    w = mx.array(rng.standard_normal((33, 50)).astype(np.float32))
    key = mx.array(np.array([3, 4], dtype=np.uint32))
    y, grad = mx.value_and_grad(lambda a: (kernels._lib.dropout(a, key, 0.25) * w).sum())(x)
    y_out = np.array(kernels._lib.dropout(x, key, 0.25))
    kept = y_out != 0
    want = np.where(kept, np.array(w) * (np.float32(1.0) / np.float32(0.75)), np.float32(0.0)).astype(np.float32)
    assert np.array_equal(np.array(grad), want)
    # jvp: the same mask on the tangent
    _, (tangent,) = mx.jvp(lambda a: kernels._lib.dropout(a, key, 0.25), [x], [w])
    assert np.array_equal(np.array(tangent), want)


def test_seeded_repeatable_and_compiled_like_eager():
    x = mx.ones((8, 64, 96))
    layer = Dropout(0.2)
    mx.random.seed(5)
    a = np.array(layer(x))
    mx.random.seed(5)
    b = np.array(layer(x))
    c = np.array(layer(x))  # the random state moved on
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    state = [mx.random.state]
    step = mx.compile(lambda v: layer(v) * 2.0, inputs=state, outputs=state)
    mx.random.seed(5)
    d = np.array(step(x))
    assert np.array_equal(d, 2.0 * a)
    assert not np.array_equal(np.array(step(x)), d)


def test_same_bits_for_any_thread_count():
    x = mx.array(np.random.default_rng(2).standard_normal((5, 300, 97)).astype(np.float32))
    key = mx.array(np.array([99, 100], dtype=np.uint32))
    assert_same_for_thread_counts(lambda: kernels._lib.dropout(x, key, 0.1))
    assert_same_for_thread_counts(
        lambda: mx.grad(lambda a: (kernels._lib.dropout(a, key, 0.1) * x).sum())(x))


def test_module_modes_and_fallback(monkeypatch):
    x = mx.ones((64, 256))
    layer = Dropout(0.5)
    assert isinstance(layer, nn.Dropout) and layer.parameters() == {}
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert Dropout(0.0)(x) is x
    for env in ("1", "0"):  # native kernel, then MLX's bernoulli
        monkeypatch.setenv("MLXT_KERNELS", env)
        y = np.array(layer(x))
        assert set(np.unique(y)) == {0.0, 2.0}
        assert abs((y == 0).mean() - 0.5) < 0.02
    with pytest.raises(ValueError):
        Dropout(1.0)
