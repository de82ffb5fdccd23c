"""`mlxt.decode.buffers.step_buffers`: MLX's buffer cache holds a search's logits-sized buffers
while it runs, and the user's cache limit is back afterwards (raised only, never lowered)."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mlxt.decode.buffers import BUFFERS_KEPT, step_buffers


@pytest.fixture
def cache_limit():
    previous = mx.set_cache_limit(32 << 20)
    yield
    mx.set_cache_limit(previous)


def limit_now() -> int:
    current = mx.set_cache_limit(0)
    mx.set_cache_limit(current)
    return current


def test_raises_the_limit_for_the_search_and_restores_it(cache_limit):
    with step_buffers(128, 58101):
        assert limit_now() == BUFFERS_KEPT * 128 * 58101 * 4
    assert limit_now() == 32 << 20


def test_a_higher_limit_of_the_user_is_left_alone(cache_limit):
    mx.set_cache_limit(1 << 30)
    with step_buffers(4, 1000):
        assert limit_now() == 1 << 30
    assert limit_now() == 1 << 30


def test_restored_when_the_search_fails(cache_limit):
    with pytest.raises(RuntimeError):
        with step_buffers(128, 58101):
            raise RuntimeError("boom")
    assert limit_now() == 32 << 20
