"""Bookkeeping between log lines: the `Interval` accumulator and the training `Clock`.

`Interval` sums losses and counts on the device (lazy arrays, read back only when a line is
logged) and a health value that becomes non-finite as soon as any loss or gradient norm of the
interval is NaN/inf. `Clock` measures training time: evaluation and checkpoint writes can be
excluded (`Clock.paused`), which is what the time-based learning-rate schedule follows.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import mlx.core as mx

monotonic = time.monotonic  # module attribute, so tests can drive the clock


class Interval:
    """The steps since the last log line: ``first`` is the first step of the interval."""

    def __init__(self, step: int):
        self.health = mx.array(0.0)
        self.reset(step)

    def reset(self, step: int) -> None:
        self.first = step + 1
        self.loss = self.count = mx.array(0.0)
        self.tokens, self.started = 0, time.time()

    def add(self, loss: mx.array, count: mx.array, norm: mx.array, tokens: int) -> list[mx.array]:
        """Add one step; returns the arrays to evaluate at the step boundary."""
        self.loss, self.count = self.loss + loss, self.count + count
        self.health = self.health + 0.0 * loss + 0.0 * norm  # NaN/inf anywhere makes it non-finite
        self.tokens += tokens
        return [self.loss, self.count, self.health]

    def finite(self) -> bool:
        return math.isfinite(self.health.item())

    def where(self, step: int) -> str:
        return f"step {step}" if self.first >= step else f"steps {self.first}-{step}"

    def mean_loss(self) -> float:
        return self.loss.item() / max(self.count.item(), 1.0)

    def seconds(self) -> float:
        return max(time.time() - self.started, 1e-9)


class Clock:
    """Seconds of training so far (``offset``: carried over from the checkpoint resumed).

    While `paused` (evaluation, checkpoints) time does not count unless ``count_pauses``.
    """

    def __init__(self, offset: float = 0.0, count_pauses: bool = False):
        self.offset, self.count_pauses = float(offset), count_pauses
        self._start, self._excluded = monotonic(), 0.0

    def seconds(self) -> float:
        return self.offset + monotonic() - self._start - self._excluded

    @contextmanager
    def paused(self):
        t0 = monotonic()
        try:
            yield
        finally:
            if not self.count_pauses:
                self._excluded += monotonic() - t0
