"""Invariances every correct Transformer has, whatever its weights:

- causality: changing a future token never changes earlier decoder outputs;
- padding: changing the content at padded (masked) positions never changes non-padded outputs;
- a fully masked attention row stays finite (no NaN), in the forward and the backward pass.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten

from mlxt.decode.cache import make_cache
from mlxt.model import (
    DecoderLayer,
    Encoder,
    ModelConfig,
    MultiHeadAttention,
    RegressionTransformer,
    Transformer,
    TransformerLM,
    key_mask,
)

V, D, H, FF = 23, 32, 4, 64
B, LS, LT = 2, 9, 8
ATOL = 1e-5
POSITIONALS = ["sinusoidal", "learned", "rope"]


def config(kind: str = "seq2seq", **overrides) -> ModelConfig:
    fields = dict(
        kind=kind, vocab_size=V, d_model=D, num_heads=H, d_ff=FF, dropout=0.0,
        num_encoder_layers=2, num_decoder_layers=2, max_len=32,
    )
    if kind == "regression":
        fields.update(vocab_size=0, input_dim=5, output_dim=3)
    fields.update(overrides)
    return ModelConfig(**fields)


def built(model: nn.Module) -> nn.Module:
    model.eval()
    mx.eval(model.parameters())
    return model


def np_(a: mx.array) -> np.ndarray:
    out = np.array(a.astype(mx.float32))
    assert np.isfinite(out).all(), "non-finite values in the output"
    return out


def tokens(rng, shape, low: int = 3) -> np.ndarray:
    return rng.integers(low, V, shape).astype(np.int32)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= ATOL, f"max abs diff {np.abs(a - b).max():.3g}"


def assert_changed(a: np.ndarray, b: np.ndarray) -> None:
    """The positions that may see the change do change (the test would notice a dead model)."""
    assert np.abs(a - b).max() > 1e-4


# -- causality ----------------------------------------------------------------------------------
@pytest.mark.parametrize("positional", POSITIONALS)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post", "pre"])
def test_transformer_future_target_tokens_do_not_change_the_past(rng, positional, norm_first):
    model = built(Transformer(config(positional=positional, norm_first=norm_first)))
    src = mx.array(tokens(rng, (B, LS)))
    tgt = tokens(rng, (B, LT))
    base = np_(model(src, mx.array(tgt)))
    assert base.shape == (B, LT, V)
    for t in (1, LT // 2, LT - 1):
        changed = tgt.copy()
        changed[:, t:] = tokens(rng, (B, LT - t))
        out = np_(model(src, mx.array(changed)))
        assert_same(out[:, :t], base[:, :t])
        assert_changed(out[:, t:], base[:, t:])


@pytest.mark.parametrize("positional", POSITIONALS)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post", "pre"])
def test_lm_future_tokens_do_not_change_the_past(rng, positional, norm_first):
    model = built(TransformerLM(config("lm", positional=positional, norm_first=norm_first)))
    seq = tokens(rng, (B, LT))
    base = np_(model(mx.array(seq)))
    assert base.shape == (B, LT, V)
    for t in (1, LT // 2, LT - 1):
        changed = seq.copy()
        changed[:, t:] = tokens(rng, (B, LT - t))
        out = np_(model(mx.array(changed)))
        assert_same(out[:, :t], base[:, :t])
        assert_changed(out[:, t:], base[:, t:])


@pytest.mark.parametrize("positional", POSITIONALS)
def test_causal_regression_encoder_does_not_look_ahead(rng, positional):
    model = built(RegressionTransformer(config("regression", positional=positional, num_decoder_layers=0, causal=True)))
    x = rng.standard_normal((B, LT, 5)).astype(np.float32)
    base = np_(model(mx.array(x)))
    assert base.shape == (B, LT, 3)
    t = LT // 2
    changed = x.copy()
    changed[:, t:] = rng.standard_normal((B, LT - t, 5))
    out = np_(model(mx.array(changed)))
    assert_same(out[:, :t], base[:, :t])
    assert_changed(out[:, t:], base[:, t:])


def test_regression_encoder_decoder_decoder_is_causal_and_reads_the_encoder(rng):
    model = built(RegressionTransformer(config("regression")))
    src = rng.standard_normal((B, LS, 5)).astype(np.float32)
    tgt = rng.standard_normal((B, LT, 5)).astype(np.float32)
    base = np_(model(mx.array(src), mx.array(tgt)))
    assert base.shape == (B, LT, 3)
    changed = tgt.copy()
    changed[:, -1] += 1.0
    out = np_(model(mx.array(src), mx.array(changed)))
    assert_same(out[:, :-1], base[:, :-1])
    # cross-attention needs the encoder output: every target position depends on the source
    other_src = np_(model(mx.array(src + 1.0), mx.array(tgt)))
    assert np.abs(other_src - base).max(axis=-1).min() > 1e-5


# -- padding ------------------------------------------------------------------------------------
def right_padding(lengths, length) -> np.ndarray:
    return np.arange(length)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("norm_first", [False, True], ids=["post", "pre"])
def test_encoder_ignores_padded_content(rng, norm_first):
    cfg = config(norm_first=norm_first)
    encoder = built(Encoder(cfg))
    keep = right_padding([LS, 4], LS)
    x = rng.standard_normal((B, LS, D)).astype(np.float32)
    mask = key_mask(mx.array(keep))
    base = np_(encoder(mx.array(x), mask))
    noisy = np.where(keep[..., None], x, rng.standard_normal(x.shape) * 10).astype(np.float32)
    out = np_(encoder(mx.array(noisy), mask))
    assert_same(out[keep], base[keep])
    assert_changed(out[~keep], base[~keep])


def test_cross_attention_ignores_padded_memory(rng):
    attn = built(MultiHeadAttention(D, H))
    keep = right_padding([LS, 3], LS)
    q = mx.array(rng.standard_normal((B, LT, D)).astype(np.float32))
    memory = rng.standard_normal((B, LS, D)).astype(np.float32)
    mask = key_mask(mx.array(keep))
    base = np_(attn(q, mx.array(memory), mx.array(memory), mask))
    noisy = np.where(keep[..., None], memory, 100.0).astype(np.float32)
    out = np_(attn(q, mx.array(noisy), mx.array(noisy), mask))
    assert_same(out, base)
    unmasked = np_(attn(q, mx.array(noisy), mx.array(noisy)))
    assert_changed(unmasked, base)


def test_decoder_layer_ignores_padded_memory(rng):
    layer = built(DecoderLayer(config()))
    keep = right_padding([LS, 2], LS)
    x = mx.array(rng.standard_normal((B, LT, D)).astype(np.float32))
    memory = rng.standard_normal((B, LS, D)).astype(np.float32)
    mask = key_mask(mx.array(keep))
    base = np_(layer(x, mx.array(memory), "causal", mask))
    noisy = np.where(keep[..., None], memory, -7.0).astype(np.float32)
    assert_same(np_(layer(x, mx.array(noisy), "causal", mask)), base)


@pytest.mark.parametrize("positional", POSITIONALS)
def test_transformer_ignores_source_content_under_the_source_mask(rng, positional):
    model = built(Transformer(config(positional=positional)))
    keep = right_padding([LS, 5], LS)
    src = tokens(rng, (B, LS))
    tgt = mx.array(tokens(rng, (B, LT)))
    keep_mx = mx.array(keep)
    base = np_(model(mx.array(src), tgt, src_mask=keep_mx))
    memory_base = np_(model.encode(mx.array(src), keep_mx))
    other = np.where(keep, src, tokens(rng, src.shape))
    assert (other != src).any()
    assert_same(np_(model(mx.array(other), tgt, src_mask=keep_mx)), base)
    assert_same(np_(model.encode(mx.array(other), keep_mx))[keep], memory_base[keep])


def test_transformer_masks_pad_ids_in_the_source_by_default(rng):
    """Without an explicit mask, ``pad_id`` tokens are hidden: trailing pads change nothing."""
    model = built(Transformer(config()))
    src = tokens(rng, (B, 5))
    tgt = mx.array(tokens(rng, (B, LT)))
    padded = np.concatenate([src, np.zeros((B, 4), np.int32)], axis=1)
    assert_same(np_(model(mx.array(padded), tgt)), np_(model(mx.array(src), tgt)))


def test_decode_ignores_left_padded_target_content(rng):
    """A target key-padding mask hides padded target positions from the real ones."""
    model = built(Transformer(config()))
    src = mx.array(tokens(rng, (B, LS)))
    memory = model.encode(src)
    tgt = tokens(rng, (B, LT))
    keep = np.ones((B, LT), bool)
    keep[1, :3] = False  # row 1 is left-padded by 3
    base = np_(model.decode(mx.array(tgt), memory, model.source_mask(src), tgt_mask=mx.array(keep)))
    other = np.where(keep, tgt, tokens(rng, tgt.shape))
    out = np_(model.decode(mx.array(other), memory, model.source_mask(src), tgt_mask=mx.array(keep)))
    assert_same(out[keep], base[keep])


@pytest.mark.parametrize("positional", ["learned", "rope"])
def test_lm_ignores_left_padding_under_its_mask(rng, positional):
    model = built(TransformerLM(config("lm", positional=positional)))
    seq = tokens(rng, (B, LT))
    keep = np.ones((B, LT), bool)
    keep[0, :4] = False
    base = np_(model(mx.array(seq), mask=mx.array(keep)))  # row 0, position 0: a fully masked row
    other = np.where(keep, seq, tokens(rng, seq.shape))
    out = np_(model(mx.array(other), mask=mx.array(keep)))
    assert_same(out[keep], base[keep])


# -- fully masked rows ----------------------------------------------------------------------------
def test_fully_masked_source_row_is_finite_forward_and_backward(rng):
    model = built(Transformer(config()))
    src = tokens(rng, (B, LS))
    src[1] = 0  # the whole second sentence is padding: every attention row over it is masked
    tgt = mx.array(tokens(rng, (B, LT)))
    src_mx = mx.array(src)
    logits = np_(model(src_mx, tgt))
    assert logits.shape == (B, LT, V)

    def loss_fn(m):
        return nn.losses.cross_entropy(m(src_mx, tgt), tgt).mean()

    loss, grads = nn.value_and_grad(model, loss_fn)(model)
    assert np.isfinite(loss.item())
    for name, g in tree_flatten(grads):
        assert np.isfinite(np.array(g)).all(), f"non-finite gradient for {name}"


def test_fully_masked_attention_row_is_finite(rng):
    attn = built(MultiHeadAttention(D, H))
    x = mx.array(rng.standard_normal((B, LT, D)).astype(np.float32))
    nothing = mx.zeros((B, 1, 1, LT), dtype=mx.bool_)
    out = np_(attn(x, x, x, nothing))
    assert out.shape == (B, LT, D)

    grad = mx.grad(lambda x: attn(x, x, x, nothing).sum())(x)
    assert np.isfinite(np.array(grad)).all()


# -- step-by-step (cached) decoding sees the same positions as one full pass ----------------------
@pytest.mark.parametrize("positional", POSITIONALS)
def test_cached_steps_equal_the_full_pass(rng, positional):
    seq2seq = built(Transformer(config(positional=positional)))
    lm = built(TransformerLM(config("lm", positional=positional)))
    src = mx.array(tokens(rng, (B, LS)))
    tgt = mx.array(tokens(rng, (B, LT)))

    memory = seq2seq.encode(src)
    full = np_(seq2seq.decode(tgt, memory, seq2seq.source_mask(src)))
    cache = make_cache(seq2seq)
    steps = [np_(seq2seq.decode(tgt[:, t : t + 1], memory, seq2seq.source_mask(src), cache=cache)) for t in range(LT)]
    assert_same(np.concatenate(steps, axis=1), full)

    full = np_(lm(tgt))
    cache = make_cache(lm)
    prompt = np_(lm(tgt[:, :3], cache=cache))  # a prompt, a chunk of two, then one token at a time
    chunk = np_(lm(tgt[:, 3:5], cache=cache))
    steps = [prompt, chunk] + [np_(lm(tgt[:, t : t + 1], cache=cache)) for t in range(5, LT)]
    assert_same(np.concatenate(steps, axis=1), full)


def test_dropout_only_in_training_mode(rng):
    model = Transformer(config(dropout=0.5))
    src = mx.array(tokens(rng, (B, LS)))
    tgt = mx.array(tokens(rng, (B, LT)))
    model.train()
    assert_changed(np_(model(src, tgt)), np_(model(src, tgt)))
    model.eval()
    assert np.array_equal(np_(model(src, tgt)), np_(model(src, tgt)))
