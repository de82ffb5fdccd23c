"""Training losses, returned as (sum, count) so callers normalise over whatever they accumulate.

`label_smoothed_cross_entropy` matches PyTorch's ``F.cross_entropy(logits, targets,
label_smoothing=eps, ignore_index=pad, reduction="sum")``: each target keeps ``1 - eps`` of the
probability mass and ``eps`` is spread uniformly over all ``V`` classes, so the per-token loss is
``(1 - eps) * nll + eps * mean_c(-log p_c)``. Positions whose label is ``pad`` contribute nothing.

Its gradient is written by hand (`mx.custom_function`): ``d loss / d logits = softmax - (1 - eps)
* onehot(target) - eps / V``, reusing the softmax of the forward pass. Automatic differentiation
would compute the exponentials of the (tokens x vocabulary) logits a second time, and on CPU
those exponentials are the most expensive part of a small model's training step.
"""

from __future__ import annotations

import mlx.core as mx

from mlxt import kernels


def _token_losses(logits: mx.array, targets: mx.array, smoothing: float) -> mx.array:
    """Per-position label-smoothed cross-entropy ``(...)`` of float32 ``logits (..., V)``."""
    if kernels.use_native():  # one vectorised, multi-threaded pass each way (`mlxt.kernels`)
        return kernels.cross_entropy(logits, targets, smoothing)

    @mx.custom_function
    def loss_and_probs(x, t):
        top = mx.max(x, axis=-1, keepdims=True)
        e = mx.exp(x - top)
        total = mx.sum(e, axis=-1, keepdims=True)
        lse = (mx.log(total) + top).squeeze(-1)
        picked = mx.take_along_axis(x, t[..., None], axis=-1).squeeze(-1)
        loss = lse - picked
        if smoothing:
            loss = loss - smoothing * (mx.mean(x, axis=-1) - picked)
        return loss, e / total

    @loss_and_probs.vjp
    def loss_vjp(primals, cotangents, outputs):
        x, t = primals
        probs = outputs[1]  # the second output is internal: its cotangent is ignored
        onehot = mx.arange(x.shape[-1], dtype=t.dtype) == t[..., None]
        grad = probs - (1.0 - smoothing) * onehot.astype(x.dtype)
        if smoothing:
            grad = grad - smoothing / x.shape[-1]
        return cotangents[0][..., None] * grad, mx.zeros_like(t)

    return loss_and_probs(logits, targets)[0]


def label_smoothed_cross_entropy(logits: mx.array, targets: mx.array, smoothing: float = 0.0,
                                 pad_id: int | None = 0) -> tuple[mx.array, mx.array]:
    """``logits (..., V)``, ``targets (...)`` -> (summed loss, number of non-pad targets), float32."""
    loss = _token_losses(logits.astype(mx.float32), targets, float(smoothing))
    if pad_id is None:
        return loss.sum(), mx.array(loss.size, mx.float32)
    keep = (targets != pad_id).astype(mx.float32)
    return (loss * keep).sum(), keep.sum()


def squared_error(predictions: mx.array, targets: mx.array) -> tuple[mx.array, mx.array]:
    """Regression: (summed squared error, number of target values)."""
    diff = predictions.astype(mx.float32) - targets.astype(mx.float32)
    return (diff * diff).sum(), mx.array(diff.size, mx.float32)
