"""Decoding's attention kernel (`mlxt.kernels.cached_attention`) against PyTorch on odd head
sizes, with a row table and masks (a fully masked row included), the same bits for every thread
count, clear errors; and the cache that follows beam search through its row table
(`mlxt.decode.cache.KVCache`) holding what a cache that gathers holds."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels  # noqa: F401
from mlxt import kernels
from mlxt.decode.cache import KVCache, LayerCache
from mlxt.model.attention import MultiHeadAttention


def case(B, H, cap, D, length, with_rows, with_mask, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, 1, D)).astype(np.float32)
    k = rng.standard_normal((B, H, cap, D)).astype(np.float32)
    v = rng.standard_normal((B, H, cap, D)).astype(np.float32)
    rows = rng.integers(0, B, (B, cap)).astype(np.int32) if with_rows else None
    mask = None
    if with_mask:
        mask = rng.random((B, length)) < 0.6
        mask[0] = False  # nothing to attend to: uniform over all positions
        mask[-1, -1] = True
    return q, k, v, rows, mask


def reference(q, k, v, length, rows, mask, scale):
    import torch

    B, H, _, D = q.shape
    src = rows[:, :length] if rows is not None else np.repeat(np.arange(B)[:, None], length, axis=1)
    t = np.arange(length)
    ke = k[src[:, None, :], np.arange(H)[None, :, None], t[None, None, :]]  # (B, H, L, D)
    ve = v[src[:, None, :], np.arange(H)[None, :, None], t[None, None, :]]
    scores = torch.tensor(q, dtype=torch.float64) * scale @ torch.tensor(ke, dtype=torch.float64).transpose(-1, -2)
    if mask is not None:
        keep = torch.tensor(mask)[:, None, None, :]
        scores = scores.masked_fill(~keep, float("-inf"))
        scores = torch.where(keep.any(-1, keepdim=True), scores, torch.zeros_like(scores))
    return (torch.softmax(scores, dim=-1) @ torch.tensor(ve, dtype=torch.float64)).numpy()


def native(q, k, v, length, rows, mask, scale):
    return kernels.cached_attention(mx.array(q), mx.array(k), mx.array(v), length,
                                    None if rows is None else mx.array(rows),
                                    None if mask is None else mx.array(mask), scale)


@pytest.mark.parametrize("D", [8, 16, 40, 64, 130])
@pytest.mark.parametrize("length", [1, 5, 17])
@pytest.mark.parametrize("with_rows,with_mask", [(False, False), (True, False), (False, True), (True, True)])
def test_matches_torch(D, length, with_rows, with_mask):
    q, k, v, rows, mask = case(5, 3, 19, D, length, with_rows, with_mask, seed=D + length)
    got = np.array(native(q, k, v, length, rows, mask, D ** -0.5))
    np.testing.assert_allclose(got, reference(q, k, v, length, rows, mask, D ** -0.5), rtol=1e-5, atol=2e-6)


def test_same_bits_for_every_thread_count():
    q, k, v, rows, mask = case(64, 8, 30, 64, 23, True, True, seed=7)
    assert_same_for_thread_counts(lambda: native(q, k, v, 23, rows, mask, 0.125))


def test_errors():
    q, k, v, rows, mask = case(2, 2, 4, 8, 3, True, True)
    with pytest.raises(ValueError, match="len must be in"):
        native(q, k, v, 5, rows, None, 1.0)
    with pytest.raises(ValueError, match="q must have shape"):
        kernels.cached_attention(mx.zeros((2, 2, 3, 8)), mx.array(k), mx.array(v), 3, None, None, 1.0)
    with pytest.raises(ValueError, match="rows must be int32"):
        kernels.cached_attention(mx.array(q), mx.array(k), mx.array(v), 3, mx.zeros((2, 4)), None, 1.0)
    with pytest.raises(ValueError, match="mask must be bool"):
        kernels.cached_attention(mx.array(q), mx.array(k), mx.array(v), 3, None, mx.ones((2, 2), mx.bool_), 1.0)


def beam_like_steps(cache_factory, seed=0, B=6, H=2, D=8, steps=5):
    """Writes ``steps`` tokens with a beam-style reorder after each; returns every fetch."""
    rng = np.random.default_rng(seed)
    cache, fetched = cache_factory(), []
    for _ in range(steps):
        cache.write(mx.array(rng.standard_normal((B, H, 1, D)).astype(np.float32)),
                    mx.array(rng.standard_normal((B, H, 1, D)).astype(np.float32)))
        fetched.append([np.array(a) for a in cache.fetch()])
        cache.reorder(mx.array(rng.integers(0, B, B).astype(np.int32)))
    return fetched, cache


def test_row_table_cache_holds_what_a_gathering_cache_holds(monkeypatch):
    table, cache = beam_like_steps(lambda: KVCache(capacity=8))
    assert cache.rows is not None  # the kernels on: reordered through the table
    monkeypatch.setenv("MLXT_KERNELS", "0")
    gathered, plain = beam_like_steps(lambda: KVCache(capacity=8))
    assert plain.rows is None
    for (k1, v1), (k2, v2) in zip(table, gathered):
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_array_equal(v1, v2)


def test_row_table_survives_growth_and_a_batch_change():
    cache = KVCache()  # grows in blocks of 64 positions
    cache.step = 2
    rng = np.random.default_rng(1)
    want = []
    for i in range(5):
        k = rng.standard_normal((3, 1, 1, 4)).astype(np.float32)
        cache.write(mx.array(k), mx.array(k))
        want = [w[[2, 0, 1]] for w in want] + [k[[2, 0, 1]]] if i < 4 else want + [k]
        if i < 4:
            cache.reorder(mx.array([2, 0, 1], dtype=mx.int32))
    np.testing.assert_array_equal(np.array(cache.fetch()[0]), np.concatenate(want, axis=2))
    cache.reorder(mx.array([0, 0, 1, 2], dtype=mx.int32))  # a new batch size: gathered for real
    assert cache.rows is None and cache.keys.shape[0] == 4
    np.testing.assert_array_equal(np.array(cache.fetch()[0]), np.concatenate(want, axis=2)[[0, 0, 1, 2]])


@pytest.mark.parametrize("cross", [False, True])
def test_attention_module_with_the_kernel_matches_mlx_ops(cross, monkeypatch):
    mx.random.seed(0)
    attn = MultiHeadAttention(32, 4)
    rng = np.random.default_rng(2)
    memory = mx.array(rng.standard_normal((4, 7, 32)).astype(np.float32))
    keep = mx.array(rng.random((4, 7)) < 0.7)
    mask = keep[:, None, None, :] if cross else None

    def run():
        cache, outs = LayerCache(cross=True, capacity=6), []
        c = cache.cross_attn if cross else cache.self_attn
        for step in range(4):
            x = mx.array(rng.standard_normal((4, 1, 32)).astype(np.float32))
            kv = memory if cross else x
            outs.append(np.array(attn(x, kv, kv, mask=mask, cache=c)))
            cache.reorder(mx.array([1, 0, 3, 2], dtype=mx.int32), static=False)
        return outs

    state = rng.bit_generator.state
    with_kernel = run()
    monkeypatch.setenv("MLXT_KERNELS", "0")
    rng.bit_generator.state = state
    for a, b in zip(with_kernel, run()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
