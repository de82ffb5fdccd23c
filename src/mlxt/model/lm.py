"""`TransformerLM`: a decoder-only language model (GPT-style) for text generation.

Each position attends only to itself and earlier positions (a causal mask), so one forward pass
trains on every next-token prediction of a block; generation feeds tokens one at a time
through a `KVCache`. Its layers are `EncoderLayer`s with a causal mask: self-attention and
feed-forward, no cross-attention. Depth is ``config.num_decoder_layers``.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt.model.config import ModelConfig
from mlxt.model.dropout import Dropout
from mlxt.model.layers import EncoderLayer, LayerNorm
from mlxt.model.positional import build_positions
from mlxt.model.transformer import TokenEmbedding, output_logits, self_attention_mask


class TransformerLM(nn.Module):
    """Token ids ``(B, L)`` -> next-token logits ``(B, L, V)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "lm":
            raise ValueError(f"TransformerLM needs kind='lm', got {config.kind!r}")
        self.config = config
        self.embed = TokenEmbedding(config.vocab_size, config.d_model, config.scale_embedding)
        self.positions = build_positions(config)
        self.dropout = Dropout(config.dropout)
        self.layers = [EncoderLayer(config) for _ in range(config.num_decoder_layers)]
        self.norm = LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.use_final_norm else None
        if not config.tie_output:
            self.out_proj = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.logits_bias:
            self.final_logits_bias = mx.zeros((config.vocab_size,))

    def __call__(self, tokens: mx.array, cache=None, mask=None) -> mx.array:
        """``cache``: list of `LayerCache` (from `mlxt.decode.make_cache`); ``mask``: optional
        ``(B, L)`` key-padding mask (True at real tokens), for left-padded prompts."""
        L = tokens.shape[1]
        offset = cache[0].offset if cache else 0
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions(L, offset).astype(x.dtype)
        x = self.dropout(x)
        attn_mask = self_attention_mask(L, cache, mask)
        for i, layer in enumerate(self.layers):
            x = layer(x, attn_mask, cache[i].self_attn if cache is not None else None)
        if self.norm is not None:
            x = self.norm(x)
        return output_logits(self, self.embed, x)
