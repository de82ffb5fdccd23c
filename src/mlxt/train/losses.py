"""Training losses, returned as (sum, count) so callers normalise over whatever they accumulate.

`label_smoothed_cross_entropy` matches PyTorch's ``F.cross_entropy(logits, targets,
label_smoothing=eps, ignore_index=pad, reduction="sum")``: each target keeps ``1 - eps`` of the
probability mass and ``eps`` is spread uniformly over all ``V`` classes, so the per-token loss is
``(1 - eps) * nll + eps * mean_c(-log p_c)``. Positions whose label is ``pad`` contribute nothing.
"""

from __future__ import annotations

import mlx.core as mx


def label_smoothed_cross_entropy(logits: mx.array, targets: mx.array, smoothing: float = 0.0,
                                 pad_id: int | None = 0) -> tuple[mx.array, mx.array]:
    """``logits (..., V)``, ``targets (...)`` -> (summed loss, number of non-pad targets), float32."""
    # Written with logsumexp only (log p_c = logit_c - lse), never materialising log-probabilities:
    # one exp pass over the (tokens x vocabulary) logits, the dominant cost for large vocabularies.
    logits = logits.astype(mx.float32)
    lse = mx.logsumexp(logits, axis=-1)
    nll = lse - mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
    loss = nll if smoothing == 0.0 else nll - smoothing * (logits.mean(axis=-1) - lse + nll)
    if pad_id is None:
        return loss.sum(), mx.array(loss.size, mx.float32)
    keep = (targets != pad_id).astype(mx.float32)
    return (loss * keep).sum(), keep.sum()


def squared_error(predictions: mx.array, targets: mx.array) -> tuple[mx.array, mx.array]:
    """Regression: (summed squared error, number of target values)."""
    diff = predictions.astype(mx.float32) - targets.astype(mx.float32)
    return (diff * diff).sum(), mx.array(diff.size, mx.float32)
