"""AdamW with decoupled weight decay and bias correction, its update one native kernel per
parameter on the CPU.

MLX's `optim.AdamW` updates each parameter with a handful of elementwise ops (compiled into one
loop on one thread inside the train step); the native kernel (`mlxt.kernels.adamw`) does the
same arithmetic, in the same order, vectorised and split over the kernels' threads, and writes
the new parameter and moments into the old buffers when nothing else holds them. Off the CPU,
with the kernels disabled or for other dtypes, MLX's own update runs. Its state (``m``, ``v``,
``step``, ``learning_rate``) is MLX's, so checkpoints are the same either way.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import mlx.core as mx
import mlx.optimizers as optim

from mlxt import kernels


class AdamW(optim.AdamW):
    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(learning_rate=learning_rate, betas=list(betas), eps=eps,
                         weight_decay=weight_decay, bias_correction=True)
        self._hyper = None

    def apply_gradients(self, gradients: dict, parameters: dict):
        try:  # this step's scalars are built once, by the first parameter, for all of them
            return super().apply_gradients(gradients, parameters)
        finally:
            self._hyper = None

    def _hyperparameters(self) -> mx.array:
        """[1 - lr wd, b1, 1 - b1, b2, 1 - b2, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), eps], each
        computed as `optim.AdamW.apply_single` computes it."""
        lr = self.learning_rate.astype(mx.float32)
        b1, b2 = self.betas
        step = self.step
        parts = [1 - lr * self.weight_decay, mx.array(b1, mx.float32), mx.array(1 - b1, mx.float32),
                 mx.array(b2, mx.float32), mx.array(1 - b2, mx.float32),
                 (lr / (1 - b1**step)).astype(mx.float32), mx.rsqrt(1 - b2**step).astype(mx.float32),
                 mx.array(self.eps, mx.float32)]
        return mx.stack([mx.reshape(p.astype(mx.float32), ()) for p in parts])

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        m, v = state["m"], state["v"]
        if not (kernels.use_native() and all(a.dtype == mx.float32 for a in (gradient, parameter, m, v))):
            return super().apply_single(gradient, parameter, state)
        if self._hyper is None:
            self._hyper = self._hyperparameters()
        parameter, state["m"], state["v"] = kernels.adamw(parameter, gradient, m, v, self._hyper)
        return parameter
