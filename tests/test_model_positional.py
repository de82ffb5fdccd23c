"""Positional encodings against their closed forms, computed independently in numpy."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from mlxt import MlxtError
from mlxt.model import (
    LearnedPositions,
    ModelConfig,
    MultiHeadAttention,
    SinusoidalPositions,
    Transformer,
    positional_encoding,
)


def closed_form(seq_len: int, d_model: int, layout: str) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)), in float64."""
    table = np.zeros((seq_len, d_model))
    for pos in range(seq_len):
        for i in range(d_model // 2):
            angle = pos / 10000.0 ** (2 * i / d_model)
            if layout == "interleaved":
                table[pos, 2 * i], table[pos, 2 * i + 1] = np.sin(angle), np.cos(angle)
            else:  # concat: all sines, then all cosines
                table[pos, i], table[pos, d_model // 2 + i] = np.sin(angle), np.cos(angle)
    return table


def test_tutorial_shape():
    pe = positional_encoding(10, 512)
    assert pe.shape == (10, 512)
    assert pe.dtype == mx.float32


@pytest.mark.parametrize("layout", ["interleaved", "concat"])
@pytest.mark.parametrize(("seq_len", "d_model"), [(10, 512), (50, 16), (1, 2)])
def test_positional_encoding_matches_closed_form(layout, seq_len, d_model):
    ours = np.array(positional_encoding(seq_len, d_model, layout))
    expected = closed_form(seq_len, d_model, layout)
    # fp32 angles up to pos=49 rad: a few ulps of the angle, ~1e-5 in sin/cos
    assert np.abs(ours - expected).max() <= 2e-5


def test_interleaved_is_sin_on_even_cos_on_odd():
    pe = np.array(positional_encoding(10, 512))
    assert np.allclose(pe[0, 0::2], 0.0) and np.allclose(pe[0, 1::2], 1.0)
    assert np.allclose(pe[:, 0], np.sin(np.arange(10)), atol=1e-6)
    assert np.allclose(pe[:, 1], np.cos(np.arange(10)), atol=1e-6)


@pytest.mark.parametrize("layout", ["interleaved", "concat"])
def test_sinusoidal_positions_with_offset_are_later_rows(layout):
    table = np.array(positional_encoding(20, 32, layout))
    rows = np.array(SinusoidalPositions(32, layout)(5, offset=7))
    assert np.abs(rows - table[7:12]).max() <= 1e-5


def test_learned_positions_are_table_rows():
    learned = LearnedPositions(16, 8)
    rows = np.array(learned(4, offset=3))
    assert rows.shape == (4, 8)
    assert np.array_equal(rows, np.array(learned.embedding.weight)[3:7])


def test_transformer_adds_the_encoding_to_scaled_embeddings():
    """The tutorial computed the encoding but never added it; mlxt must add it."""
    config = ModelConfig(vocab_size=11, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                         num_decoder_layers=1, dropout=0.0)
    model = Transformer(config)
    tokens = mx.array([[4, 5, 6, 4]])
    x = np.array(model._embed(tokens, model.source_embedding, model.src_positions))
    table = np.array(model.source_embedding.embedding.weight)
    expected = table[[4, 5, 6, 4]] * np.sqrt(16) + closed_form(4, 16, "interleaved")
    assert np.abs(x[0] - expected).max() <= 1e-5


def rotate_half_rope(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """RoPE in the "rotate half" layout: dims (j, j + d/2) form the rotated pair j."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2) / d)
    angle = positions[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(angle)] * 2, axis=-1)
    sin = np.concatenate([np.sin(angle)] * 2, axis=-1)
    rotated = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], axis=-1)
    return x * cos + rotated * sin


def test_rope_attention_matches_numpy(rng):
    d, heads, length = 16, 2, 6
    attn = MultiHeadAttention(d, heads, rope=nn.RoPE(d // heads, traditional=False, base=10000.0))
    x = rng.standard_normal((1, length, d)).astype(np.float32)
    out = np.array(attn(mx.array(x), mx.array(x), mx.array(x), "causal"))

    def proj(linear, h):
        return h @ np.array(linear.weight).T + np.array(linear.bias)

    def heads_of(h):
        return h.reshape(length, heads, -1).transpose(1, 0, 2)

    pos = np.arange(length, dtype=np.float64)
    q = rotate_half_rope(heads_of(proj(attn.query_proj, x[0])), pos, 10000.0)
    k = rotate_half_rope(heads_of(proj(attn.key_proj, x[0])), pos, 10000.0)
    v = heads_of(proj(attn.value_proj, x[0]))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d // heads)
    scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ctx = (p @ v).transpose(1, 0, 2).reshape(length, d)
    expected = proj(attn.out_proj, ctx)
    assert np.abs(out[0] - expected).max() <= 1e-4



def test_learned_positions_past_max_len_raise():
    learned = LearnedPositions(8, 4)
    assert learned(8).shape == (8, 4)
    with pytest.raises(MlxtError, match="max_len"):
        learned(9)
    with pytest.raises(MlxtError, match="max_len"):
        learned(1, offset=8)
