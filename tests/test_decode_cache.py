"""Cached incremental decoding gives the same logits as a full forward pass, at every step."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from decode_models import random_sources, tiny_lm, tiny_seq2seq
from mlxt.decode.cache import KVCache, make_cache

VARIANTS = [(pos, nf) for pos in ("sinusoidal", "learned", "rope") for nf in (False, True)]


@pytest.mark.parametrize("positional,norm_first", VARIANTS)
def test_seq2seq_cached_steps_match_full_forward(rng, positional, norm_first):
    model = tiny_seq2seq(seed=1, positional=positional, norm_first=norm_first)
    src = random_sources(rng, [5, 3, 7])
    tgt = mx.array(rng.integers(3, 20, size=(3, 12)), dtype=mx.int32)
    full = np.array(model(src, tgt))
    src_mask = model.source_mask(src)
    memory = model.encode(src, src_mask)
    cache = make_cache(model, capacity=4)  # too small on purpose: the cache must grow
    for t in range(tgt.shape[1]):
        step = np.array(model.decode(tgt[:, t : t + 1], memory, src_mask, cache=cache))
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=1e-5, rtol=1e-5)
    assert cache[0].offset == tgt.shape[1]


@pytest.mark.parametrize("positional,norm_first", VARIANTS)
def test_lm_cached_steps_match_full_forward(rng, positional, norm_first):
    model = tiny_lm(seed=2, positional=positional, norm_first=norm_first)
    tokens = mx.array(rng.integers(3, 20, size=(2, 70 if positional != "learned" else 60)), dtype=mx.int32)
    full = np.array(model(tokens))
    cache = make_cache(model)
    # a multi-token prompt first, then one token at a time (crosses the 64-position block)
    out = np.array(model(tokens[:, :5], cache=cache))
    np.testing.assert_allclose(out, full[:, :5], atol=1e-5, rtol=1e-5)
    for t in range(5, tokens.shape[1]):
        step = np.array(model(tokens[:, t : t + 1], cache=cache))
        np.testing.assert_allclose(step[:, 0], full[:, t], atol=1e-5, rtol=1e-5)


def test_reorder_follows_parents(rng):
    """After reordering the batch rows, decoding continues as if those rows had been decoded."""
    model = tiny_seq2seq(seed=3)
    src = random_sources(rng, [4, 4])
    src = mx.concatenate([src[:1], src[:1]], axis=0)  # two copies of one sentence (two beams)
    tgt = mx.array([[5, 6, 7], [8, 9, 10]], dtype=mx.int32)
    mask = model.source_mask(src)
    memory = model.encode(src, mask)
    cache = make_cache(model)
    model.decode(tgt[:, :2], memory, mask, cache=cache)
    for layer in cache:
        layer.reorder(mx.array([1, 1]), static=False)
    step = np.array(model.decode(tgt[:, 2:3], memory, mask, cache=cache))[:, 0]
    expected = np.array(model(src, mx.array([[8, 9, 7], [8, 9, 10]], dtype=mx.int32)))[:, 2]
    np.testing.assert_allclose(step, expected, atol=1e-5, rtol=1e-5)


def test_kvcache_writes_in_place_within_capacity():
    cache = KVCache(capacity=8)
    k = mx.ones((1, 2, 3, 4))
    cache.update_and_fetch(k, k)
    buffer_len = cache.keys.shape[2]
    keys, _ = cache.update_and_fetch(2 * k, 2 * k)
    assert buffer_len == 8 and cache.keys.shape[2] == 8  # preallocated once, not regrown
    assert keys.shape == (1, 2, 6, 4)
    np.testing.assert_array_equal(np.array(keys[0, 0, :, 0]), [1, 1, 1, 2, 2, 2])
    keys, _ = cache.update_and_fetch(3 * k, 3 * k)  # beyond capacity: grows, keeps the past
    np.testing.assert_array_equal(np.array(keys[0, 0, :, 0]), [1, 1, 1, 2, 2, 2, 3, 3, 3])
