"""Padded sequence lengths: every sequence is padded up to one of a few bucket sizes, so a
compiled training step sees only a handful of shapes."""

from __future__ import annotations

import numpy as np

from mlxt.errors import MlxtError


def bucket_sizes(max_len: int, buckets: list[int] | None = None, multiple: int = 8) -> np.ndarray:
    """The sorted padded lengths: ``buckets`` (plus ``max_len`` when needed to cover it) or
    multiples of ``multiple`` up to ``max_len`` rounded up."""
    if buckets:
        sizes = sorted(set(int(b) for b in buckets))
        if sizes[-1] < max_len:
            sizes.append(int(max_len))
        return np.asarray(sizes, dtype=np.int64)
    top = -(-int(max_len) // multiple) * multiple
    return np.arange(multiple, top + 1, multiple, dtype=np.int64)


def bucket_of(lengths: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Smallest bucket size >= each length."""
    lengths = np.asarray(lengths)
    idx = np.searchsorted(sizes, lengths, side="left")
    if lengths.size and idx.max() >= len(sizes):
        raise MlxtError(f"sequence of length {int(lengths.max())} is longer than the largest bucket {int(sizes[-1])}")
    return sizes[idx]
