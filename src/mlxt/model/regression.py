"""`RegressionTransformer`: the Transformer over real-valued features, as in the tutorial.

Inputs are feature vectors ``(B, L, input_dim)`` rather than token ids: a linear layer projects
them to ``d_model`` (the continuous counterpart of an embedding table), positions are added, and
a linear head maps each output position to ``output_dim`` values.

With ``num_decoder_layers == 0`` it is an encoder with a head (set ``causal`` for forecasting, so
position ``t`` sees only ``<= t``). With decoder layers it is the full encoder-decoder: the
encoder reads ``src``, the causal decoder reads ``tgt`` (``src`` when not given).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt.model.config import ModelConfig
from mlxt.model.dropout import Dropout
from mlxt.model.positional import build_positions
from mlxt.model.transformer import Decoder, Encoder


class RegressionTransformer(nn.Module):
    """``(src (B, Ls, input_dim)[, tgt (B, Lt, input_dim)]) -> (B, Lt, output_dim)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "regression":
            raise ValueError(f"RegressionTransformer needs kind='regression', got {config.kind!r}")
        self.config = config
        self.input_proj = nn.Linear(config.input_dim, config.d_model)
        self.positions = build_positions(config)
        self.dropout = Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config) if config.num_decoder_layers > 0 else None
        self.head = nn.Linear(config.d_model, config.output_dim)

    def _inputs(self, x: mx.array) -> mx.array:
        h = self.input_proj(x)
        if self.positions is not None:
            h = h + self.positions(x.shape[1]).astype(h.dtype)
        return self.dropout(h)

    def __call__(self, src: mx.array, tgt: mx.array | None = None) -> mx.array:
        encoder_mask = "causal" if self.config.causal else None
        memory = self.encoder(self._inputs(src), encoder_mask)
        if self.decoder is None:
            return self.head(memory)
        tgt = src if tgt is None else tgt
        return self.head(self.decoder(self._inputs(tgt), memory, "causal"))
