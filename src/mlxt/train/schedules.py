"""Learning-rate schedules, as functions of the optimizer's update counter.

MLX evaluates a schedule with the number of updates done *before* the current one (0 for the
first), so every formula here uses ``n = step + 1``, the 1-based index of the update:

- ``constant``: ``lr`` (after an optional linear warmup).
- ``noam`` ("Attention Is All You Need", with the peak set to ``lr``): linear warmup to ``lr`` over
  ``warmup`` updates, then decay ``lr * sqrt(warmup / n)``.
- ``cosine``: linear warmup to ``lr``, then half a cosine from ``lr`` down to ``min_lr`` at update
  ``total``; ``min_lr`` afterwards.

With ``[train] schedule_unit = "time"`` the same shapes follow ``f``, the fraction of the time
budget (``max_minutes``) already trained, in [0, 1], instead of the update counter
(`make_time_schedule`); warmup is ``warmup_fraction`` of the budget (linear from 0):

- ``constant``: ``lr`` after the warmup;
- ``cosine``: half a cosine from ``lr`` at ``f = warmup`` to ``min_lr`` at ``f = 1``;
- ``noam``: the inverse square root ``sqrt(warmup / f)``, shifted and scaled to go from ``lr``
  at ``f = warmup`` to ``min_lr`` at ``f = 1`` (needs ``warmup_fraction > 0``).

The fraction is read from the optimizer state (``PROGRESS_KEY``), which the training loop sets
before every step; it is an input of the compiled step like the rest of the optimizer state, so
changing it never recompiles.
"""

from __future__ import annotations

import math
from typing import Callable

import mlx.core as mx

SCHEDULES = ("constant", "noam", "cosine")
UNITS = ("steps", "time")
PROGRESS_KEY = "schedule_progress"


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


def lr_at_fraction(name: str, f: mx.array, lr: float, warmup: float = 0.0, min_lr: float = 0.0) -> mx.array:
    """The learning rate when the fraction ``f`` of the time budget is done (see the module doc)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}")
    f = mx.clip(mx.array(f).astype(mx.float32), 0.0, 1.0)
    if name == "noam" and warmup <= 0:
        raise ValueError("the time-based noam schedule needs a warmup fraction > 0")
    if name == "constant":
        decayed = mx.array(lr, dtype=mx.float32)
    elif name == "cosine":
        progress = mx.clip((f - warmup) / max(1.0 - warmup, 1e-9), 0.0, 1.0)
        decayed = min_lr + 0.5 * (lr - min_lr) * (1.0 + mx.cos(math.pi * progress))
    else:
        root = math.sqrt(warmup)
        inverse_sqrt = mx.sqrt(warmup / mx.maximum(f, warmup))
        decayed = min_lr + (lr - min_lr) * (inverse_sqrt - root) / max(1.0 - root, 1e-9)
    if warmup <= 0:
        return decayed
    return mx.where(f < warmup, lr * f / warmup, decayed)


def make_time_schedule(name: str, lr: float, warmup: float, min_lr: float,
                       fraction: Callable[[], mx.array]) -> Callable[[mx.array], mx.array]:
    """A schedule with the optimizer's signature (it is given the update counter, and ignores
    it) following ``fraction()``: the share of the time budget done, read when the step runs."""
    lr_at_fraction(name, mx.array(0.0), lr, warmup, min_lr)  # check the settings now

    def schedule(step: mx.array) -> mx.array:
        return lr_at_fraction(name, fraction(), lr, warmup, min_lr)

    return schedule


class BudgetFraction:
    """The fraction of the time budget done, as an entry of ``optimizer``'s state (``PROGRESS_KEY``).

    Called by the time schedule inside the (compiled) step, where the optimizer state holds the
    step's inputs; `set` writes the next step's value. Until `bind`, and in a state without the
    entry (a checkpoint of a step-based run), the fraction is 0.
    """

    def __init__(self):
        self.optimizer = None

    def bind(self, optimizer) -> None:
        self.optimizer = optimizer
        if PROGRESS_KEY not in optimizer.state:
            self.set(0.0)

    def set(self, fraction: float) -> None:
        self.optimizer.state[PROGRESS_KEY] = mx.array(min(max(fraction, 0.0), 1.0), dtype=mx.float32)

    def __call__(self) -> mx.array:
        if self.optimizer is None or PROGRESS_KEY not in self.optimizer.state:
            return mx.array(0.0)
        return self.optimizer.state[PROGRESS_KEY]
