"""Learning-rate schedules, as functions of the optimizer's update counter.

MLX evaluates a schedule with the number of updates done *before* the current one (0 for the
first), so every formula here uses ``n = step + 1``, the 1-based index of the update:

- ``constant``: ``lr`` (after an optional linear warmup).
- ``noam`` ("Attention Is All You Need", with the peak set to ``lr``): linear warmup to ``lr`` over
  ``warmup`` updates, then decay ``lr * sqrt(warmup / n)``.
- ``cosine``: linear warmup to ``lr``, then half a cosine from ``lr`` down to ``min_lr`` at update
  ``total``; ``min_lr`` afterwards.
"""

from __future__ import annotations

import math
from typing import Callable

import mlx.core as mx

SCHEDULES = ("constant", "noam", "cosine")


def _warmup_factor(n: mx.array, warmup: int) -> mx.array:
    return mx.minimum(n / warmup, 1.0) if warmup > 0 else mx.array(1.0)


def make_schedule(name: str, lr: float, warmup: int = 0, total: int = 0,
                  min_lr: float = 0.0) -> Callable[[mx.array], mx.array]:
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}")

    def schedule(step: mx.array) -> mx.array:
        n = mx.array(step).astype(mx.float32) + 1.0
        if name == "constant":
            return lr * _warmup_factor(n, warmup)
        if name == "noam":
            w = max(warmup, 1)
            return lr * mx.minimum(n / w, mx.sqrt(w / n))
        decay_len = max(total - warmup, 1)
        progress = mx.clip((n - warmup) / decay_len, 0.0, 1.0)
        cosine = min_lr + 0.5 * (lr - min_lr) * (1.0 + mx.cos(math.pi * progress))
        return mx.where(n < warmup, lr * n / max(warmup, 1), cosine)

    return schedule
