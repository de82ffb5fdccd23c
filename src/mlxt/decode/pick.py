"""Choosing the next token from logits: argmax, or a sample after temperature, top-k and
top-p (nucleus) filtering.

Filtering keeps the ``top_k`` most likely tokens and/or the smallest set of most likely tokens
whose probability reaches ``top_p`` (the most likely token always stays), sets the rest to
``-inf``, and samples from the softmax of what is left divided by the temperature.
"""

from __future__ import annotations

import mlx.core as mx


def filter_logits(logits: mx.array, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> mx.array:
    """``(N, V)`` logits -> temperature-scaled logits with filtered-out tokens at ``-inf``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for sampling, got {temperature}")
    logits = logits.astype(mx.float32) / temperature
    neg_inf = mx.array(-float("inf"), mx.float32)
    V = logits.shape[-1]
    if 0 < top_k < V:
        kth = mx.sort(logits, axis=-1)[:, V - top_k][:, None]
        logits = mx.where(logits < kth, neg_inf, logits)
    if 0.0 < top_p < 1.0:
        order = mx.argsort(-logits, axis=-1)
        sorted_logits = mx.take_along_axis(logits, order, axis=-1)
        probs = mx.softmax(sorted_logits, axis=-1)
        before = mx.cumsum(probs, axis=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = before >= top_p
        inverse = mx.argsort(order, axis=-1)
        drop = mx.take_along_axis(drop_sorted, inverse, axis=-1)
        logits = mx.where(drop, neg_inf, logits)
    return logits


def pick_tokens(logits: mx.array, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                key: mx.array | None = None) -> mx.array:
    """``(N, V)`` -> ``(N,)`` token ids: argmax when ``temperature == 0``, else a sample."""
    if temperature == 0:
        return mx.argmax(logits, axis=-1)
    return mx.random.categorical(filter_logits(logits, temperature, top_k, top_p), key=key)


class KeyStream:
    """Successive PRNG keys from one seed, so sampled output is reproducible."""

    def __init__(self, seed: int | None):
        self.key = mx.random.key(seed) if seed is not None else None

    def next(self) -> mx.array | None:
        if self.key is None:
            return None
        self.key, sub = mx.random.split(self.key)
        return sub
