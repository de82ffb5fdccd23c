"""How many tokens a translation may have: ``max_len_a * source_length + max_len_b``.

Source length counts the real source tokens (end-of-sentence included). The limit counts
generated tokens including the final end-of-sentence, and never exceeds what the model's
positions allow (``config.max_len``: the decoder input is the start token plus all but the
last generated token).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def target_limits(src_mask: mx.array, model_max_len: int, max_len_a: float = 1.5, max_len_b: int = 10,
                  max_len: int | None = None) -> np.ndarray:
    """``(B,)`` int limits. A fixed ``max_len`` overrides the ``a * len + b`` rule."""
    src_len = np.array(src_mask.sum(axis=1)).astype(np.int64)
    if max_len is not None:
        limits = np.full_like(src_len, int(max_len))
    else:
        limits = np.floor(max_len_a * src_len + max_len_b).astype(np.int64)
    return np.clip(limits, 1, model_max_len)
