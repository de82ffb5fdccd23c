"""AdamW with decoupled weight decay and bias correction, its update one native kernel on the CPU.

MLX's `optim.AdamW` updates each parameter with a handful of elementwise ops (compiled into one
loop on one thread inside the train step); the native kernel (`mlxt.kernels.adamw`) does the
same arithmetic, in the same order, vectorised and split over the kernels' threads, and writes
the new parameter and moments into the old buffers when nothing else holds them. Off the CPU,
with the kernels disabled or for other dtypes, MLX's own update runs. Its state (``m``, ``v``,
``step``, ``learning_rate``) is MLX's, so checkpoints are the same either way.

`AdamW.update_clipped` is the train step's end: dividing the summed gradients by the token count,
clipping their global norm and updating every parameter. A model has tens to hundreds of
parameters, and done op by op that is several small graph nodes per parameter, each a task on
MLX's CPU stream; on the kernels it is one node for the whole model.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map

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

    def update_clipped(self, model: nn.Module, gradients: dict, count: mx.array, max_norm: float = 0.0):
        """``update(model, g / max(count, 1))`` with the divided gradients clipped to global L2
        norm ``max_norm`` first (0: not clipped), as `optim.clip_grad_norm` clips; returns their
        norm. A few native nodes for the whole model (`mlxt.kernels.adamw_group`); None, with
        no update done, where the kernels do not apply (the caller then runs MLX's ops)."""
        if not (kernels.use_native() and all(g.dtype == mx.float32 for _, g in tree_flatten(gradients))):
            return None
        leaves = []  # (gradient, parameter, its state), in the order tree_map visits them
        tree_map(lambda g, p, s: leaves.append((g, p, s)), gradients, model, self._state_for(gradients))
        if not leaves or any(a.dtype != mx.float32 for _, p, s in leaves for a in (p, s["m"], s["v"])):
            return None
        self._advance()
        params, ms, vs, norm = kernels.adamw_group(
            [p for _, p, _ in leaves], [g for g, _, _ in leaves], [s["m"] for _, _, s in leaves],
            [s["v"] for _, _, s in leaves], self._hyperparameters(), count, max_norm)
        for (_, _, state), m, v in zip(leaves, ms, vs):
            state["m"], state["v"] = m, v
        new = iter(params)
        model.update(tree_map(lambda _: next(new), gradients))
        return norm

    def _state_for(self, gradients: dict) -> dict:
        """The state, with the moments created on the first update (as `apply_gradients` does)."""
        if not self._initialized:
            self.init(gradients)
        return self.state

    def _advance(self) -> None:
        """What `optim.Optimizer.apply_gradients` does before updating: scheduled values, step + 1."""
        for param, scheduler in self._schedulers.items():
            self.state[param] = scheduler(self.step)
        self.state["step"] = self.step + 1
