"""Attention masks. Convention: boolean, ``True`` means "may attend".

Boolean masks go straight into `mx.fast.scaled_dot_product_attention`, which keeps a fully
masked row finite; an additive ``-inf`` mask would turn such a row into NaN.
"""

from __future__ import annotations

import mlx.core as mx


def padding_mask(tokens: mx.array, pad_id: int) -> mx.array:
    """``(B, L)`` tokens -> ``(B, L)`` bool, True at real (non-pad) positions."""
    return tokens != pad_id


def key_mask(keep: mx.array) -> mx.array:
    """``(B, Lk)`` keep-mask -> ``(B, 1, 1, Lk)``, broadcastable over heads and queries."""
    return keep[:, None, None, :]


def causal_mask(q_len: int, k_len: int | None = None) -> mx.array:
    """``(Lq, Lk)`` bool lower-triangular mask, aligned so the last query sees the last key."""
    k_len = q_len if k_len is None else k_len
    q = mx.arange(k_len - q_len, k_len)[:, None]
    k = mx.arange(k_len)[None, :]
    return k <= q


def combine(*masks):
    """AND together the masks that are not None (``None`` if all are)."""
    out = None
    for m in masks:
        if m is None:
            continue
        out = m if out is None else mx.logical_and(out, m)
    return out
