"""Encoder and decoder layers: attention and feed-forward sub-blocks, each wrapped in a residual
connection, dropout and LayerNorm.

Post-norm (the paper, the tutorial): ``x = norm(x + dropout(sublayer(x)))``.
Pre-norm (``norm_first``; GPT-2, most modern models): ``x = x + dropout(sublayer(norm(x)))``,
which trains more stably in deep stacks and needs a final LayerNorm after the last layer.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt import kernels
from mlxt.model.attention import MultiHeadAttention
from mlxt.model.dropout import Dropout
from mlxt.model.feedforward import FeedForward


def _rope(config) -> nn.Module | None:
    if config.positional == "rope":
        return nn.RoPE(config.head_dim, traditional=False, base=config.rope_base)
    return None


class LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` (same parameters and checkpoints) that runs mlxt's native kernel on CPU."""

    def __call__(self, x: mx.array) -> mx.array:
        if "weight" in self and "bias" in self:
            return kernels.layer_norm(x, self.weight, self.bias, self.eps)
        return super().__call__(x)


class _Residual(nn.Module):
    """Applies the residual/dropout/norm pattern around one sub-block."""

    def __init__(self, config):
        super().__init__()
        self.norm_first = config.norm_first
        self.dropout = Dropout(config.dropout)

    def residual(self, x, norm, sublayer):
        if self.norm_first:
            return x + self.dropout(sublayer(norm(x)))
        return norm(x + self.dropout(sublayer(x)))


class EncoderLayer(_Residual):
    """Self-attention then feed-forward: ``(B, L, d_model) -> (B, L, d_model)``.

    Also the block of the decoder-only LM, where ``mask`` is causal and ``cache`` a `KVCache`.
    """

    def __init__(self, config):
        super().__init__(config)
        self.self_attn = MultiHeadAttention(config.d_model, config.num_heads, config.attention_bias, _rope(config))
        self.ff = FeedForward(config.d_model, config.d_ff, config.dropout, config.activation, config.ffn_bias)
        self.norm1 = LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm2 = LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def __call__(self, x: mx.array, mask=None, cache=None) -> mx.array:
        x = self.residual(x, self.norm1, lambda h: self.self_attn(h, h, h, mask, cache))
        return self.residual(x, self.norm2, self.ff)


class DecoderLayer(_Residual):
    """Masked self-attention, cross-attention over the encoder output ``memory``, feed-forward.

    ``x``: ``(B, Lt, d_model)``; ``memory``: ``(B, Ls, d_model)``; ``self_mask`` is usually
    ``"causal"`` (a position may not look ahead); ``memory_mask`` hides source padding.
    ``cache``: a `LayerCache` for incremental decoding.
    """

    def __init__(self, config):
        super().__init__(config)
        self.self_attn = MultiHeadAttention(config.d_model, config.num_heads, config.attention_bias, _rope(config))
        self.cross_attn = MultiHeadAttention(config.d_model, config.num_heads, config.attention_bias)
        self.ff = FeedForward(config.d_model, config.d_ff, config.dropout, config.activation, config.ffn_bias)
        self.norm1 = LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm2 = LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm3 = LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def __call__(self, x, memory, self_mask=None, memory_mask=None, cache=None) -> mx.array:
        self_cache = cache.self_attn if cache is not None else None
        cross_cache = cache.cross_attn if cache is not None else None
        x = self.residual(x, self.norm1, lambda h: self.self_attn(h, h, h, self_mask, self_cache))
        x = self.residual(x, self.norm2, lambda h: self.cross_attn(h, memory, memory, memory_mask, cross_cache))
        return self.residual(x, self.norm3, self.ff)
