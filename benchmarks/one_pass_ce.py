"""A proposed faster cross-entropy for MLX on Linux CPU (measured by `bench_train`, not yet
used by mlxt's trainer).

Profiling the seq2seq training step (vocabulary 8000) shows the loss, not the matmuls, as the
largest cost: MLX's CPU ``exp`` is scalar code calling libm's ``fmaf`` six times per element
(~30 ns/element here, against ~1 ns for PyTorch's vectorised exp), and
``logits - logsumexp(logits)`` runs it twice over the ``(B, L, V)`` logits, once in
``logsumexp`` and once more in its gradient. This version:

- computes ``exp`` once, as ``power(2, z * log2(e))`` (libm ``powf``: about 2.5x faster than
  MLX's ``exp`` on this CPU and as accurate in fp32), and keeps the softmax for the backward;
- has a hand-written gradient, ``softmax - (1 - eps) * onehot - eps / V``, with no second
  ``exp`` pass.

Same result as `mlxt.train.losses.label_smoothed_cross_entropy` (sum, count) within fp32
rounding; `bench_train` checks that before timing it.
"""

from __future__ import annotations

import math

import mlx.core as mx

LOG2E = 1.0 / math.log(2.0)


def _make(smoothing: float):
    @mx.custom_function
    def token_loss(logits, targets):
        z = logits - mx.stop_gradient(mx.max(logits, axis=-1, keepdims=True))
        e = mx.power(2.0, z * LOG2E)
        total = e.sum(axis=-1, keepdims=True)
        lse = mx.log(total)
        nll = (lse - mx.take_along_axis(z, targets[..., None], axis=-1))[..., 0]
        loss = nll if smoothing == 0.0 else (1.0 - smoothing) * nll + smoothing * (lse[..., 0] - z.mean(axis=-1))
        return loss, e / total

    @token_loss.vjp
    def token_loss_vjp(primals, cotangents, outputs):
        logits, targets = primals
        probs = outputs[1]
        V = logits.shape[-1]
        onehot = mx.arange(V, dtype=targets.dtype) == targets[..., None]
        grad = probs - (1.0 - smoothing) * onehot.astype(probs.dtype) - smoothing / V
        return grad * cotangents[0][..., None], mx.zeros_like(targets)

    return token_loss


_cache: dict = {}


def one_pass_cross_entropy(logits: mx.array, targets: mx.array, smoothing: float = 0.0,
                           pad_id: int | None = 0) -> tuple[mx.array, mx.array]:
    """Drop-in for `label_smoothed_cross_entropy`: (summed loss, number of non-pad targets)."""
    fn = _cache.setdefault(smoothing, _make(smoothing))
    loss, _ = fn(logits.astype(mx.float32), targets)
    if pad_id is None:
        return loss.sum(), mx.array(loss.size, mx.float32)
    keep = (targets != pad_id).astype(mx.float32)
    return (loss * keep).sum(), keep.sum()
