"""The training step: forward, loss, gradients, clipping and the AdamW update.

With ``grad_accumulation == 1`` the whole step is one function, compiled by `mx.compile` with the
model, optimizer and random state as implicit inputs and outputs (the MLX "compiling training
graphs" recipe), so dropout masks and parameter updates live inside the compiled graph. With
accumulation, a compiled gradient function runs once per micro-batch, the summed gradients are
evaluated between micro-batches (bounding memory), and a compiled update applies them.

Losses are sums over target tokens (or regression values); gradients of the sums are divided by
the total count of the accumulated batches, so the update is per-token normalised no matter how
the tokens were split into micro-batches. ``reduce_grads(grads, loss, count) -> (grads, loss,
count)`` is the hook where data-parallel training sums gradients, losses and counts over the
ranks before normalising (`mlxt.train.distributed`), so the returned loss and count are global.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_map

from mlxt.train.adamw import AdamW
from mlxt.train.losses import label_smoothed_cross_entropy, squared_error


def batch_loss(model, batch: dict, smoothing: float = 0.0) -> tuple[mx.array, mx.array]:
    """(summed loss, number of targets) of one batch for any model kind."""
    cfg = model.config
    if cfg.kind == "seq2seq":
        logits = model(batch["src"], batch["tgt_in"])
        return label_smoothed_cross_entropy(logits, batch["tgt_out"], smoothing, cfg.pad_id)
    if cfg.kind == "lm":
        logits = model(batch["inputs"])
        return label_smoothed_cross_entropy(logits, batch["targets"], smoothing, cfg.pad_id)
    return squared_error(model(batch["inputs"]), batch["targets"])


def to_mx(batch: dict) -> dict:
    return {k: mx.array(v) for k, v in batch.items()}


class TrainStep:
    """``step(micro_batches) -> (loss_sum, count, grad_norm)`` (lazy arrays) updating the model.

    ``state`` lists what must be evaluated at a step boundary (model, optimizer, random state).
    """

    def __init__(self, model: nn.Module, optimizer: optim.Optimizer, smoothing: float = 0.0,
                 clip_norm: float = 0.0, compile: bool = True,
                 reduce_grads: Callable | None = None):
        self.model, self.optimizer = model, optimizer
        self.state = [model.state, optimizer.state, mx.random.state]
        value_and_grad = nn.value_and_grad(model, lambda b: batch_loss(model, b, smoothing))

        def apply(grads, loss, count):
            if reduce_grads is not None:
                grads, loss, count = reduce_grads(grads, loss, count)
            return loss, count, normalise_clip_update(optimizer, model, grads, count, clip_norm)

        def fused(batch):
            (loss, count), grads = value_and_grad(batch)
            return apply(grads, loss, count)

        def grads_of(batch):
            (loss, count), grads = value_and_grad(batch)
            return loss, count, grads

        if compile:
            fused = partial(mx.compile, inputs=self.state, outputs=self.state)(fused)
            # model.state is an output too: value_and_grad swaps the parameters while tracing.
            grads_of = partial(mx.compile, inputs=[model.state, mx.random.state],
                               outputs=[model.state, mx.random.state])(grads_of)
            apply = partial(mx.compile, inputs=self.state, outputs=self.state)(apply)
        self._fused, self._grads_of, self._apply = fused, grads_of, apply

    def __call__(self, micro_batches: list[dict]):
        if len(micro_batches) == 1:
            return self._fused(to_mx(micro_batches[0]))
        total_loss = total_count = total_grads = None
        for batch in micro_batches:
            loss, count, grads = self._grads_of(to_mx(batch))
            if total_grads is None:
                total_loss, total_count, total_grads = loss, count, grads
            else:
                total_loss, total_count = total_loss + loss, total_count + count
                total_grads = tree_map(mx.add, total_grads, grads)
            mx.eval(total_loss, total_count, total_grads)
        return self._apply(total_grads, total_loss, total_count)


def normalise_clip_update(optimizer: optim.Optimizer, model: nn.Module, grads: dict, count: mx.array,
                          clip_norm: float) -> mx.array:
    """Update ``model`` with ``grads / max(count, 1)``, clipped to global norm ``clip_norm`` when
    that is > 0; returns the norm of the divided gradients. mlxt's `AdamW` does it in one native
    node on the CPU (`AdamW.update_clipped`); otherwise MLX's ops do."""
    fused = getattr(optimizer, "update_clipped", None)
    norm = fused(model, grads, count, clip_norm) if fused is not None else None
    if norm is not None:
        return norm
    grads = tree_map(lambda g: g / mx.maximum(count, 1.0), grads)
    if clip_norm > 0:
        grads, norm = optim.clip_grad_norm(grads, clip_norm)
    else:
        norm = mx.sqrt(sum(mx.sum(g * g) for g in _leaves(grads)))
    optimizer.update(model, grads)
    return norm


def _leaves(tree):
    from mlx.utils import tree_flatten

    return [v for _, v in tree_flatten(tree)]


def make_optimizer(train_config, schedule) -> AdamW:
    return AdamW(learning_rate=schedule, betas=train_config.betas, eps=train_config.eps,
                 weight_decay=train_config.weight_decay)
