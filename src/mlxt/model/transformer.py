"""The encoder-decoder `Transformer` of "Attention Is All You Need", for translation.

Data flow (shapes for batch ``B``, source length ``Ls``, target length ``Lt``):

    src tokens (B, Ls) -> embed * sqrt(d_model) + positions -> Encoder -> memory (B, Ls, d)
    tgt tokens (B, Lt) -> embed * sqrt(d_model) + positions -> Decoder(memory) -> logits (B, Lt, V)

`encode` and `decode` are separate so that decoding runs the encoder once per sentence and the
decoder once per generated token (with a cache, see `mlxt.decode.cache`).
"""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as nn

from mlxt.model.config import ModelConfig
from mlxt.model.dropout import Dropout
from mlxt.model.layers import DecoderLayer, EncoderLayer, LayerNorm
from mlxt.model.masks import causal_mask, combine, key_mask, padding_mask
from mlxt.model.positional import build_positions


class Encoder(nn.Module):
    """A stack of `EncoderLayer`s (plus a final LayerNorm for pre-norm): ``(B, L, d) -> (B, L, d)``.

    ``mask``: boolean, broadcastable to ``(B, heads, L, L)`` (usually a key-padding mask).
    """

    def __init__(self, config: ModelConfig, num_layers: int | None = None):
        super().__init__()
        n = config.num_encoder_layers if num_layers is None else num_layers
        self.layers = [EncoderLayer(config) for _ in range(n)]
        self.norm = LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.use_final_norm else None

    def __call__(self, x: mx.array, mask=None) -> mx.array:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x) if self.norm is not None else x


class Decoder(nn.Module):
    """A stack of `DecoderLayer`s (plus a final LayerNorm for pre-norm): ``(B, Lt, d) -> (B, Lt, d)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layers = [DecoderLayer(config) for _ in range(config.num_decoder_layers)]
        self.norm = LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.use_final_norm else None

    def __call__(self, x, memory, self_mask="causal", memory_mask=None, cache=None) -> mx.array:
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, self_mask, memory_mask, cache[i] if cache is not None else None)
        return self.norm(x) if self.norm is not None else x


class TokenEmbedding(nn.Module):
    """Token ids -> vectors, scaled by sqrt(d_model) as in the paper (so they are not drowned by
    the unit-scale positional encodings)."""

    def __init__(self, vocab_size: int, d_model: int, scale: bool):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def __call__(self, tokens: mx.array) -> mx.array:
        return self.embedding(tokens) * self.scale

    def as_linear(self, x: mx.array, bias: mx.array | None = None) -> mx.array:
        """The tied output projection ``x @ table.T (+ bias)`` (unscaled)."""
        if type(self.embedding) is nn.Embedding:
            out = self.embedding.as_linear(x)
            return out if bias is None else out + bias
        return self.embedding.as_linear(x, bias)  # a `PackedEmbedding` adds the bias in its product


def output_logits(model, embedding: TokenEmbedding, x: mx.array) -> mx.array:
    """The vocabulary logits of ``model`` (a `Transformer` or `TransformerLM`): the tied
    ``embedding`` or ``model.out_proj``, plus ``model.final_logits_bias`` when configured."""
    bias = model.final_logits_bias if model.config.logits_bias else None
    if model.config.tie_output:
        return embedding.as_linear(x, bias)
    out = model.out_proj(x)
    return out if bias is None else out + bias


def self_attention_mask(length: int, cache=None, keep: mx.array | None = None):
    """Decoder self-attention mask: causal, plus target key padding when ``keep`` is given.

    With a cache and a single new token there is nothing to hide (it may see all the past).
    """
    if keep is not None:
        offset = cache[0].offset if cache else 0
        return combine(causal_mask(length, offset + length), key_mask(keep))
    if cache is not None and length == 1:
        return None
    return "causal"


class Transformer(nn.Module):
    """Encoder-decoder Transformer over token ids: ``(src (B, Ls), tgt (B, Lt)) -> (B, Lt, V)``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != "seq2seq":
            raise ValueError(f"Transformer needs kind='seq2seq', got {config.kind!r}")
        self.config = config
        d = config.d_model
        if config.share_embeddings:
            self.embed = TokenEmbedding(config.vocab_size, d, config.scale_embedding)
        else:
            self.src_embed = TokenEmbedding(config.source_vocab_size, d, config.scale_embedding)
            self.tgt_embed = TokenEmbedding(config.vocab_size, d, config.scale_embedding)
        self.src_positions = build_positions(config)
        self.tgt_positions = build_positions(config)
        self.dropout = Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        if not config.tie_output:
            self.out_proj = nn.Linear(d, config.vocab_size, bias=False)
        if config.logits_bias:
            self.final_logits_bias = mx.zeros((config.vocab_size,))

    # Source and target embeddings are one module when shared (so one set of weights is trained).
    @property
    def source_embedding(self) -> TokenEmbedding:
        return self.embed if self.config.share_embeddings else self.src_embed

    @property
    def target_embedding(self) -> TokenEmbedding:
        return self.embed if self.config.share_embeddings else self.tgt_embed

    def _embed(self, tokens, embedding, positions, offset: int = 0) -> mx.array:
        x = embedding(tokens)
        if positions is not None:
            x = x + positions(tokens.shape[1], offset).astype(x.dtype)
        return self.dropout(x)

    def source_mask(self, src: mx.array) -> mx.array:
        """``(B, Ls)`` True at real source tokens."""
        return padding_mask(src, self.config.pad_id)

    def encode(self, src: mx.array, src_mask: mx.array | None = None) -> mx.array:
        """Source ids ``(B, Ls)`` -> memory ``(B, Ls, d_model)``."""
        src_mask = self.source_mask(src) if src_mask is None else src_mask
        x = self._embed(src, self.source_embedding, self.src_positions)
        return self.encoder(x, key_mask(src_mask))

    def decode(self, tgt, memory, src_mask=None, tgt_mask=None, cache=None) -> mx.array:
        """Target ids ``(B, Lt)`` and memory -> logits ``(B, Lt, V)``.

        ``src_mask``: ``(B, Ls)`` True at real source tokens. ``tgt_mask``: optional ``(B, Lt)``
        target key-padding mask (not needed for right-padded targets: causality hides the pads).
        ``cache``: from `mlxt.decode.make_cache`, for step-by-step decoding.
        """
        offset = cache[0].offset if cache else 0
        x = self._embed(tgt, self.target_embedding, self.tgt_positions, offset)
        self_mask = self_attention_mask(tgt.shape[1], cache, tgt_mask)
        memory_mask = key_mask(src_mask) if src_mask is not None else None
        x = self.decoder(x, memory, self_mask, memory_mask, cache)
        return self.logits(x)

    def logits(self, x: mx.array) -> mx.array:
        return output_logits(self, self.target_embedding, x)

    def __call__(self, src: mx.array, tgt: mx.array, src_mask=None, tgt_mask=None) -> mx.array:
        src_mask = self.source_mask(src) if src_mask is None else src_mask
        memory = self.encode(src, src_mask)
        return self.decode(tgt, memory, src_mask, tgt_mask)
