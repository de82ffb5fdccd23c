"""Keeping a decoding step's large buffers for the next step.

Each step of a batched search allocates the logits over the vocabulary, ``rows x vocab``
floats: 30 MB for beam 4 x 32 sentences x 58k words. MLX's CPU allocator keeps freed buffers
for reuse only up to its cache limit (32 MB by default), so such a buffer goes back to the
system every step and the next one arrives as fresh pages that the kernel must zero (7% of a
translation's time at one thread). `step_buffers` raises the limit to a few steps' worth for
the length of a search, and puts the user's limit back afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager

import mlx.core as mx

BUFFERS_KEPT = 4  # logits-sized buffers a step allocates (logits, log-probabilities, scores)


@contextmanager
def step_buffers(rows: int, vocab: int):
    """Cache at least ``BUFFERS_KEPT`` float32 ``(rows, vocab)`` buffers while the block runs."""
    want = BUFFERS_KEPT * rows * vocab * 4
    previous = mx.set_cache_limit(want)
    if previous >= want:  # already enough: leave the user's setting alone
        mx.set_cache_limit(previous)
    try:
        yield
    finally:
        mx.set_cache_limit(previous)
