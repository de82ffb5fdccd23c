"""The position-wise feed-forward block: the same two-layer MLP applied to every position."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt import kernels
from mlxt.model.dropout import Dropout

# gelu/silu: mlxt's native kernels on CPU, MLX's ops elsewhere (`mlxt.kernels`).
ACTIVATIONS = {"relu": nn.relu, "gelu": kernels.gelu, "silu": kernels.silu}


class FeedForward(nn.Module):
    """``linear2(dropout(act(linear1(x))))``: ``(..., d_model) -> (..., d_model)`` via ``d_ff``.

    ``gelu`` is the exact (erf) GELU, as in PyTorch; ``silu`` is Marian's "swish".
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu", bias: bool = True):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = Dropout(dropout)
        self.activation = ACTIVATIONS[activation]

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))
