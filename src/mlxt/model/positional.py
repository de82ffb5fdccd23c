"""Positional information: attention alone cannot tell token order apart.

Three options, chosen by ``ModelConfig.positional``:
- `positional_encoding` / `SinusoidalPositions`: the fixed sin/cos table of "Attention Is All You
  Need", added to the scaled token embeddings. Nothing to train; extends to any length.
- `LearnedPositions`: a trained table, one row per position up to ``max_len`` (GPT-2, nanoGPT).
- rotary embeddings (RoPE): applied inside attention to queries and keys (see `attention.py`).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from mlxt.errors import MlxtError


def sinusoidal_table(positions: mx.array, d_model: int, layout: str = "interleaved") -> mx.array:
    """Sinusoidal encodings for the given integer positions, shape ``(len(positions), d_model)``.

    Dimension pair ``i`` uses frequency ``1 / 10000^(2i / d_model)``. ``interleaved`` puts
    ``sin`` on even and ``cos`` on odd dimensions (the paper); ``concat`` puts all sines first,
    then all cosines (Marian, fairseq).
    """
    half = d_model // 2
    freqs = mx.exp(mx.arange(half, dtype=mx.float32) * (-2.0 * math.log(10000.0) / d_model))
    angles = positions.astype(mx.float32)[:, None] * freqs[None, :]
    sin, cos = mx.sin(angles), mx.cos(angles)
    if layout == "concat":
        return mx.concatenate([sin, cos], axis=-1)
    return mx.stack([sin, cos], axis=-1).reshape(positions.shape[0], 2 * half)


def positional_encoding(seq_len: int, d_model: int, layout: str = "interleaved") -> mx.array:
    """The paper's sinusoidal table for positions ``0..seq_len-1``: shape ``(seq_len, d_model)``.

    >>> positional_encoding(10, 512).shape
    (10, 512)
    """
    return sinusoidal_table(mx.arange(seq_len), d_model, layout)


class SinusoidalPositions(nn.Module):
    """Adds nothing trainable: returns the table rows for positions ``offset..offset+L-1``."""

    def __init__(self, d_model: int, layout: str = "interleaved"):
        super().__init__()
        self.d_model = d_model
        self.layout = layout

    def __call__(self, length: int, offset: int = 0) -> mx.array:
        return sinusoidal_table(mx.arange(offset, offset + length), self.d_model, self.layout)


class LearnedPositions(nn.Module):
    """A trained embedding per position, ``max_len`` rows.

    Positions past the table are an error: MLX does not bounds-check gathers, so reading row
    ``max_len`` would silently return whatever memory follows the table.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)

    def __call__(self, length: int, offset: int = 0) -> mx.array:
        if offset + length > self.max_len:
            raise MlxtError(
                f"model.max_len: positions up to {offset + length} exceed the learned table of "
                f"max_len={self.max_len} positions"
            )
        return self.embedding(mx.arange(offset, offset + length))


def build_positions(config) -> nn.Module | None:
    """The additive position module for ``config`` (``None`` for RoPE or no positions)."""
    if config.positional == "sinusoidal":
        return SinusoidalPositions(config.d_model, config.sinusoidal_layout)
    if config.positional == "learned":
        return LearnedPositions(config.max_len, config.d_model)
    return None
