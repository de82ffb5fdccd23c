"""Dropout: `nn.Dropout` with its mask drawn by mlxt's native kernel on the CPU.

MLX's dropout draws a Bernoulli array (`mx.random.bernoulli`, one thread, scalar code on x86)
and multiplies by it, and the backward pass multiplies again: in a small model's training step
on the CPU that costs as much as a matrix product. The native kernel (`mlxt.kernels.dropout`)
does it in one vectorised, multi-threaded pass, with the mask a hash of each element's index
and a key drawn from MLX's random state, so `mx.random.seed` still makes runs repeatable and
the backward pass recomputes the mask instead of storing it. Same semantics as `nn.Dropout`
(inverted dropout: kept elements scaled by ``1 / (1 - p)``; identity in eval mode), the same
module tree (no parameters), so checkpoints are unchanged; only the random draws differ.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt import kernels


class Dropout(nn.Dropout):
    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self._p = float(p)  # p itself: nn.Dropout keeps 1 - p, and 1 - (1 - p) is not always p

    def __call__(self, x: mx.array) -> mx.array:
        if self._p == 0.0 or not self.training:
            return x
        if kernels.use_native() and x.dtype == mx.float32:
            return kernels.dropout(x, self._p)
        return super().__call__(x)
