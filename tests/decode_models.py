"""Small random models shared by the decoding tests."""

from __future__ import annotations

import mlx.core as mx

from mlxt import ModelConfig, build_model


def tiny_seq2seq(seed: int = 0, vocab: int = 20, positional: str = "sinusoidal", norm_first: bool = False,
                 max_len: int = 64, **overrides):
    config = ModelConfig(kind="seq2seq", vocab_size=vocab, d_model=16, num_heads=2, num_encoder_layers=2,
                         num_decoder_layers=2, d_ff=32, dropout=0.0, max_len=max_len, positional=positional,
                         norm_first=norm_first, **overrides)
    mx.random.seed(seed)
    model = build_model(config)
    model.eval()
    mx.eval(model.parameters())
    return model


def tiny_lm(seed: int = 0, vocab: int = 20, positional: str = "sinusoidal", norm_first: bool = False,
            max_len: int = 64, **overrides):
    config = ModelConfig(kind="lm", vocab_size=vocab, d_model=16, num_heads=2, num_decoder_layers=2, d_ff=32,
                         dropout=0.0, max_len=max_len, positional=positional, norm_first=norm_first, **overrides)
    mx.random.seed(seed)
    model = build_model(config)
    model.eval()
    mx.eval(model.parameters())
    return model


def random_sources(rng, lengths, vocab: int = 20, eos: int = 2, pad: int = 0) -> mx.array:
    """Right-padded source ids with ``eos`` appended: one row per length (tokens from 4..vocab-1)."""
    width = max(lengths) + 1
    rows = []
    for n in lengths:
        ids = rng.integers(4, vocab, size=n).tolist() + [eos]
        rows.append(ids + [pad] * (width - len(ids)))
    return mx.array(rows, dtype=mx.int32)
