"""Parity with PyTorch: mlxt's blocks, with their weights copied into the `torch.nn` reference
modules, give the same outputs (fp32, ~1e-5) and the same gradients of a scalar loss w.r.t. the
inputs and every weight.

Masks: mlxt uses boolean "True = may attend"; torch key-padding masks are "True = ignore".
Outputs are compared only at non-padded positions (torch may leave anything at padded queries).
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import torch
from mlx.utils import tree_flatten

from mlxt.model import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    ModelConfig,
    MultiHeadAttention,
    SelfAttention,
    Transformer,
    TransformerLM,
    key_mask,
)

torch.set_num_threads(1)

D, H, FF = 32, 4, 48
B, LS, LT = 3, 7, 5
ATOL = 1e-5
GRAD_ATOL = 1e-4


# -- weight copies: mlxt module -> torch module ------------------------------------------------
def _t(a: mx.array) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32))


@torch.no_grad()
def copy_linear(ours: nn.Linear, theirs: torch.nn.Linear) -> None:
    theirs.weight.copy_(_t(ours.weight))  # both (out, in)
    theirs.bias.copy_(_t(ours.bias))


@torch.no_grad()
def copy_norm(ours: nn.LayerNorm, theirs: torch.nn.LayerNorm) -> None:
    theirs.weight.copy_(_t(ours.weight))
    theirs.bias.copy_(_t(ours.bias))


@torch.no_grad()
def copy_mha(ours: MultiHeadAttention, theirs: torch.nn.MultiheadAttention) -> None:
    q, k, v = ours.query_proj, ours.key_proj, ours.value_proj
    theirs.in_proj_weight.copy_(torch.cat([_t(q.weight), _t(k.weight), _t(v.weight)]))
    theirs.in_proj_bias.copy_(torch.cat([_t(q.bias), _t(k.bias), _t(v.bias)]))
    copy_linear(ours.out_proj, theirs.out_proj)


def copy_ff(ours: FeedForward, theirs) -> None:
    copy_linear(ours.linear1, theirs.linear1)
    copy_linear(ours.linear2, theirs.linear2)


def copy_encoder_layer(ours: EncoderLayer, theirs: torch.nn.TransformerEncoderLayer) -> None:
    copy_mha(ours.self_attn, theirs.self_attn)
    copy_ff(ours.ff, theirs)
    copy_norm(ours.norm1, theirs.norm1)
    copy_norm(ours.norm2, theirs.norm2)


def copy_decoder_layer(ours: DecoderLayer, theirs: torch.nn.TransformerDecoderLayer) -> None:
    copy_mha(ours.self_attn, theirs.self_attn)
    copy_mha(ours.cross_attn, theirs.multihead_attn)
    copy_ff(ours.ff, theirs)
    copy_norm(ours.norm1, theirs.norm1)
    copy_norm(ours.norm2, theirs.norm2)
    copy_norm(ours.norm3, theirs.norm3)


def copy_stacks(encoder: Encoder, decoder: Decoder, theirs: torch.nn.Transformer) -> None:
    for ours_layer, their_layer in zip(encoder.layers, theirs.encoder.layers, strict=True):
        copy_encoder_layer(ours_layer, their_layer)
    for ours_layer, their_layer in zip(decoder.layers, theirs.decoder.layers, strict=True):
        copy_decoder_layer(ours_layer, their_layer)
    copy_norm(encoder.norm, theirs.encoder.norm)
    copy_norm(decoder.norm, theirs.decoder.norm)


# -- comparison helpers ------------------------------------------------------------------------
def assert_close(ours: mx.array, theirs: torch.Tensor, atol: float = ATOL, where=None) -> None:
    a = np.array(ours, dtype=np.float32)
    b = theirs.detach().numpy()
    assert a.shape == b.shape
    if where is not None:
        a, b = a[where], b[where]
    assert np.isfinite(a).all()
    diff = float(np.abs(a - b).max())
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol}"


def as_namespace(tree):
    """A nested dict/list of arrays as attribute access, so the copy functions can read it."""
    if isinstance(tree, dict):
        return SimpleNamespace(**{k: as_namespace(v) for k, v in tree.items()})
    if isinstance(tree, list):
        return [as_namespace(v) for v in tree]
    return tree


def assert_weight_grads_close(ours_module, ours_grads, theirs_module, copy_fn, atol=GRAD_ATOL) -> None:
    """Lay our gradients out like torch's parameters (through ``copy_fn``) and compare them all."""
    grads_as_module = as_namespace(ours_grads)
    holder = copy.deepcopy(theirs_module)
    copy_fn(grads_as_module, holder)
    holder_params = dict(holder.named_parameters())
    compared = 0
    for name, param in theirs_module.named_parameters():
        assert param.grad is not None, f"torch has no gradient for {name}"
        diff = float((holder_params[name].detach() - param.grad).abs().max())
        assert diff <= atol, f"gradient of {name}: max abs diff {diff:.3g} > {atol}"
        compared += param.numel()
    n_ours = sum(v.size for _, v in tree_flatten(ours_module.trainable_parameters()))
    assert compared == n_ours, f"compared {compared} torch weights, mlxt has {n_ours}"


def value_and_grads(module: nn.Module, loss_fn, inputs: list[mx.array]):
    """Loss, gradients w.r.t. every trainable parameter of ``module`` and w.r.t. each input."""

    def f(params, *xs):
        module.update(params)
        return loss_fn(*xs)

    params = module.trainable_parameters()
    argnums = tuple(range(len(inputs) + 1))
    loss, grads = mx.value_and_grad(f, argnums=argnums)(params, *inputs)
    module.update(params)
    return loss, grads[0], grads[1:]


def keep_mask(lengths, length) -> np.ndarray:
    """``(B, length)`` bool, True at the first ``lengths[b]`` positions (right padding)."""
    return np.arange(length)[None, :] < np.asarray(lengths)[:, None]


def torch_inputs(*arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def causal_float_mask(length: int) -> torch.Tensor:
    return torch.nn.Transformer.generate_square_subsequent_mask(length)


# -- attention ----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["self_padding", "self_causal", "cross_padding"])
def test_multi_head_attention_matches_torch(rng, case):
    ours = MultiHeadAttention(D, H)
    theirs = torch.nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True)
    copy_mha(ours, theirs)

    lk = LT if case.startswith("self") else LS
    xq = rng.standard_normal((B, LT, D)).astype(np.float32)
    xkv = xq if case.startswith("self") else rng.standard_normal((B, lk, D)).astype(np.float32)
    keep = keep_mask([lk, lk - 2, 1], lk)
    weight = rng.standard_normal((B, LT, D)).astype(np.float32)

    if case == "self_causal":
        our_mask, their_kwargs = "causal", {"attn_mask": causal_float_mask(LT), "is_causal": True}
    else:
        our_mask, their_kwargs = key_mask(mx.array(keep)), {"key_padding_mask": torch.tensor(~keep)}
    rows = np.ones((B, LT), bool) if case != "self_padding" else keep  # compare non-padded queries
    w = mx.array(weight * rows[..., None])

    if case.startswith("self"):
        loss_ours = lambda x: (ours(x, x, x, our_mask) * w).sum()  # noqa: E731
        loss, wgrads, (gx,) = value_and_grads(ours, loss_ours, [mx.array(xq)])
        (tq,) = torch_inputs(xq)
        out_t = theirs(tq, tq, tq, need_weights=False, **their_kwargs)[0]
        out_o = ours(mx.array(xq), mx.array(xq), mx.array(xq), our_mask)
        inputs_t, grads_o = [tq], [gx]
    else:
        loss_ours = lambda q, kv: (ours(q, kv, kv, our_mask) * w).sum()  # noqa: E731
        loss, wgrads, (gq, gkv) = value_and_grads(ours, loss_ours, [mx.array(xq), mx.array(xkv)])
        tq, tkv = torch_inputs(xq, xkv)
        out_t = theirs(tq, tkv, tkv, need_weights=False, **their_kwargs)[0]
        out_o = ours(mx.array(xq), mx.array(xkv), mx.array(xkv), our_mask)
        inputs_t, grads_o = [tq, tkv], [gq, gkv]

    assert_close(out_o, out_t, where=rows)
    loss_t = (out_t * torch.tensor(weight * rows[..., None])).sum()
    loss_t.backward()
    assert abs(loss.item() - loss_t.item()) <= 1e-3
    for g_o, x_t in zip(grads_o, inputs_t):
        assert_close(g_o, x_t.grad, atol=GRAD_ATOL)
    assert_weight_grads_close(ours, wgrads, theirs, copy_mha)


def test_self_attention_is_multi_head_attention_on_one_sequence(rng):
    attn = SelfAttention(D, H)
    x = mx.array(rng.standard_normal((B, LT, D)).astype(np.float32))
    assert attn(x).shape == (B, LT, D)
    expected = MultiHeadAttention.__call__(attn, x, x, x, "causal")
    assert np.allclose(np.array(attn(x, "causal")), np.array(expected), atol=1e-6)


# -- feed-forward -------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward_matches_torch(rng, activation):
    ours = FeedForward(D, FF, dropout=0.0, activation=activation)
    theirs = torch.nn.Module()
    theirs.linear1, theirs.linear2 = torch.nn.Linear(D, FF), torch.nn.Linear(FF, D)
    copy_ff(ours, theirs)
    act = torch.nn.functional.relu if activation == "relu" else torch.nn.functional.gelu  # exact erf GELU

    x = rng.standard_normal((B, LT, D)).astype(np.float32)
    w = rng.standard_normal((B, LT, D)).astype(np.float32)
    loss, wgrads, (gx,) = value_and_grads(ours, lambda x: (ours(x) * mx.array(w)).sum(), [mx.array(x)])
    (xt,) = torch_inputs(x)
    out_t = theirs.linear2(act(theirs.linear1(xt)))
    (out_t * torch.tensor(w)).sum().backward()
    assert_close(ours(mx.array(x)), out_t)
    assert_close(gx, xt.grad, atol=GRAD_ATOL)
    assert_weight_grads_close(ours, wgrads, theirs, copy_ff)


# -- layers -------------------------------------------------------------------------------------
def layer_config(norm_first: bool, activation: str, **overrides) -> ModelConfig:
    fields = dict(
        kind="seq2seq", vocab_size=11, d_model=D, num_heads=H, d_ff=FF, dropout=0.0,
        activation=activation, norm_first=norm_first, num_encoder_layers=2, num_decoder_layers=2,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


VARIANTS = [(False, "relu"), (True, "relu"), (False, "gelu"), (True, "gelu")]
VARIANT_IDS = ["post-relu", "pre-relu", "post-gelu", "pre-gelu"]


@pytest.mark.parametrize(("norm_first", "activation"), VARIANTS, ids=VARIANT_IDS)
def test_encoder_layer_matches_torch(rng, norm_first, activation):
    ours = EncoderLayer(layer_config(norm_first, activation))
    theirs = torch.nn.TransformerEncoderLayer(
        D, H, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    copy_encoder_layer(ours, theirs)
    theirs.eval()

    x = rng.standard_normal((B, LS, D)).astype(np.float32)
    keep = keep_mask([LS, 4, 2], LS)
    w = rng.standard_normal((B, LS, D)).astype(np.float32) * keep[..., None]
    mask = key_mask(mx.array(keep))

    loss, wgrads, (gx,) = value_and_grads(ours, lambda x: (ours(x, mask) * mx.array(w)).sum(), [mx.array(x)])
    (xt,) = torch_inputs(x)
    out_t = theirs(xt, src_key_padding_mask=torch.tensor(~keep))
    (out_t * torch.tensor(w)).sum().backward()

    assert_close(ours(mx.array(x), mask), out_t, where=keep)
    assert_close(gx, xt.grad, atol=GRAD_ATOL)
    assert_weight_grads_close(ours, wgrads, theirs, copy_encoder_layer)


@pytest.mark.parametrize(("norm_first", "activation"), VARIANTS, ids=VARIANT_IDS)
def test_decoder_layer_matches_torch(rng, norm_first, activation):
    ours = DecoderLayer(layer_config(norm_first, activation))
    theirs = torch.nn.TransformerDecoderLayer(
        D, H, FF, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    )
    copy_decoder_layer(ours, theirs)
    theirs.eval()

    x = rng.standard_normal((B, LT, D)).astype(np.float32)
    memory = rng.standard_normal((B, LS, D)).astype(np.float32)
    src_keep = keep_mask([LS, 3, 1], LS)
    w = rng.standard_normal((B, LT, D)).astype(np.float32)
    memory_mask = key_mask(mx.array(src_keep))

    def loss_ours(x, m):
        return (ours(x, m, "causal", memory_mask) * mx.array(w)).sum()

    loss, wgrads, (gx, gm) = value_and_grads(ours, loss_ours, [mx.array(x), mx.array(memory)])
    xt, mt = torch_inputs(x, memory)
    out_t = theirs(
        xt, mt, tgt_mask=causal_float_mask(LT), tgt_is_causal=True,
        memory_key_padding_mask=torch.tensor(~src_keep),
    )
    (out_t * torch.tensor(w)).sum().backward()

    assert_close(ours(mx.array(x), mx.array(memory), "causal", memory_mask), out_t)
    assert_close(gx, xt.grad, atol=GRAD_ATOL)
    assert_close(gm, mt.grad, atol=GRAD_ATOL)  # zero at padded memory rows on both sides
    assert np.abs(np.array(gm)[~src_keep]).max() == 0.0
    assert_weight_grads_close(ours, wgrads, theirs, copy_decoder_layer)


# -- encoder + decoder stacks vs torch.nn.Transformer --------------------------------------------
class Stacks(nn.Module):
    """mlxt's Encoder and Decoder wired as `torch.nn.Transformer.forward` wires its own."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def __call__(self, src, tgt, src_keep):
        memory = self.encoder(src, key_mask(src_keep))
        return self.decoder(tgt, memory, "causal", key_mask(src_keep))


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize(("norm_first", "activation"), VARIANTS, ids=VARIANT_IDS)
def test_encoder_decoder_stacks_match_torch_transformer(rng, norm_first, activation):
    config = layer_config(norm_first, activation, final_norm=True)  # torch always has final norms
    ours = Stacks(config)
    theirs = torch.nn.Transformer(
        D, H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0,
        activation=activation, batch_first=True, norm_first=norm_first,
    )
    copy_stacks(ours.encoder, ours.decoder, theirs)
    theirs.eval()

    src = rng.standard_normal((B, LS, D)).astype(np.float32)
    tgt = rng.standard_normal((B, LT, D)).astype(np.float32)
    src_keep = keep_mask([LS, 5, 2], LS)
    w = rng.standard_normal((B, LT, D)).astype(np.float32)
    keep_mx = mx.array(src_keep)

    def loss_ours(s, t):
        return (ours(s, t, keep_mx) * mx.array(w)).sum()

    loss, wgrads, (gs, gt) = value_and_grads(ours, loss_ours, [mx.array(src), mx.array(tgt)])
    st, tt = torch_inputs(src, tgt)
    padding = torch.tensor(~src_keep)
    out_t = theirs(
        st, tt, tgt_mask=causal_float_mask(LT), tgt_is_causal=True,
        src_key_padding_mask=padding, memory_key_padding_mask=padding,
    )
    (out_t * torch.tensor(w)).sum().backward()

    assert_close(ours(mx.array(src), mx.array(tgt), keep_mx), out_t)
    assert abs(loss.item() - float(out_t.detach().mul(torch.tensor(w)).sum())) <= 1e-3
    assert_close(gs, st.grad, atol=GRAD_ATOL)
    assert_close(gt, tt.grad, atol=GRAD_ATOL)
    assert_weight_grads_close(ours, wgrads, theirs, lambda o, t: copy_stacks(o.encoder, o.decoder, t))


# -- the full token model: embeddings, positions, stacks, output projection ---------------------
def numpy_sinusoids(length: int, d: int) -> np.ndarray:
    pos = np.arange(length)[:, None].astype(np.float64)
    i = np.arange(d // 2)[None, :]
    angle = pos / np.power(10000.0, 2 * i / d)
    table = np.zeros((length, d))
    table[:, 0::2], table[:, 1::2] = np.sin(angle), np.cos(angle)
    return table.astype(np.float32)


class TorchSeq2Seq(torch.nn.Module):
    """An independent re-implementation of the paper's model around `torch.nn.Transformer`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.d_model
        self.config = config
        self.src_embed = torch.nn.Embedding(config.source_vocab_size, d)
        self.tgt_embed = self.src_embed if config.share_embeddings else torch.nn.Embedding(config.vocab_size, d)
        self.core = torch.nn.Transformer(
            d, config.num_heads, config.num_encoder_layers, config.num_decoder_layers, config.d_ff,
            dropout=0.0, activation=config.activation, batch_first=True, norm_first=config.norm_first,
        )
        self.out_proj = None if config.tie_output else torch.nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, src, tgt):
        d, pad = self.config.d_model, self.config.pad_id
        pe = torch.from_numpy(numpy_sinusoids(max(src.shape[1], tgt.shape[1]), d))
        s = self.src_embed(src) * math.sqrt(d) + pe[: src.shape[1]]
        t = self.tgt_embed(tgt) * math.sqrt(d) + pe[: tgt.shape[1]]
        padding = src == pad
        h = self.core(
            s, t, tgt_mask=causal_float_mask(tgt.shape[1]), tgt_is_causal=True,
            src_key_padding_mask=padding, memory_key_padding_mask=padding,
        )
        weight = self.tgt_embed.weight if self.out_proj is None else self.out_proj.weight
        return h @ weight.T


@torch.no_grad()
def copy_seq2seq(ours: Transformer, theirs: TorchSeq2Seq) -> None:
    theirs.src_embed.weight.copy_(_t(ours.source_embedding.embedding.weight))
    theirs.tgt_embed.weight.copy_(_t(ours.target_embedding.embedding.weight))
    copy_stacks(ours.encoder, ours.decoder, theirs.core)
    if theirs.out_proj is not None:
        theirs.out_proj.weight.copy_(_t(ours.out_proj.weight))


@pytest.mark.parametrize("shared", [False, True], ids=["separate", "shared-tied"])
def test_transformer_logits_match_torch_reimplementation(rng, shared):
    config = layer_config(
        norm_first=False, activation="relu", final_norm=True, vocab_size=13,
        src_vocab_size=13 if shared else 17, share_embeddings=shared, tie_output=shared,
    )
    ours = Transformer(config)
    ours.eval()
    theirs = TorchSeq2Seq(config)
    copy_seq2seq(ours, theirs)
    theirs.eval()

    lengths = [LS, 4, 2]
    src = rng.integers(3, config.source_vocab_size, (B, LS)) * keep_mask(lengths, LS)  # pad = 0
    tgt = rng.integers(3, config.vocab_size, (B, LT))
    w = rng.standard_normal((B, LT, config.vocab_size)).astype(np.float32)

    def loss_ours():
        return (ours(mx.array(src), mx.array(tgt)) * mx.array(w)).sum()

    loss, wgrads = nn.value_and_grad(ours, loss_ours)()
    out_t = theirs(torch.tensor(src), torch.tensor(tgt))
    (out_t * torch.tensor(w)).sum().backward()

    assert_close(ours(mx.array(src), mx.array(tgt)), out_t, atol=5e-5)  # logits scale ~ sqrt(d)
    grads = dict(tree_flatten(wgrads))
    emb = "embed" if shared else "tgt_embed"
    assert_close(grads[f"{emb}.embedding.weight"], theirs.tgt_embed.weight.grad, atol=GRAD_ATOL)
    if not shared:
        assert_close(grads["src_embed.embedding.weight"], theirs.src_embed.weight.grad, atol=GRAD_ATOL)
        assert_close(grads["out_proj.weight"], theirs.out_proj.weight.grad, atol=GRAD_ATOL)
    last = theirs.core.decoder.layers[-1].multihead_attn.in_proj_weight.grad
    ours_last = mx.concatenate(
        [grads[f"decoder.layers.1.cross_attn.{p}_proj.weight"] for p in ("query", "key", "value")]
    )
    assert_close(ours_last, last, atol=GRAD_ATOL)


def test_value_and_grad_helper_restores_parameters(rng):
    """The helper above swaps parameters in and out; make sure it leaves the module unchanged."""
    attn = MultiHeadAttention(D, H)
    before = {k: np.array(v) for k, v in tree_flatten(attn.parameters())}
    x = mx.array(rng.standard_normal((B, LT, D)).astype(np.float32))
    value_and_grads(attn, lambda x: attn(x, x, x).sum(), [x])
    after = {k: np.array(v) for k, v in tree_flatten(attn.parameters())}
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


class TorchLM(torch.nn.Module):
    """A GPT-style LM re-implemented around `torch.nn.TransformerEncoder` with a causal mask."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.d_model
        self.embed = torch.nn.Embedding(config.vocab_size, d)
        self.positions = torch.nn.Embedding(config.max_len, d)
        layer = torch.nn.TransformerEncoderLayer(
            d, config.num_heads, config.d_ff, dropout=0.0, activation=config.activation,
            batch_first=True, norm_first=config.norm_first,
        )
        self.stack = torch.nn.TransformerEncoder(layer, config.num_decoder_layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(d)

    def forward(self, tokens):
        length = tokens.shape[1]
        x = self.embed(tokens) * math.sqrt(self.embed.embedding_dim) + self.positions.weight[:length]
        x = self.stack(x, mask=causal_float_mask(length), is_causal=True)
        return self.norm(x) @ self.embed.weight.T  # tied output


def test_lm_logits_and_gradients_match_torch_reimplementation(rng):
    config = ModelConfig(
        kind="lm", vocab_size=19, d_model=D, num_heads=H, d_ff=FF, num_decoder_layers=2, dropout=0.0,
        norm_first=True, positional="learned", max_len=16, tie_output=True, activation="gelu",
    )
    ours = TransformerLM(config)
    ours.eval()
    theirs = TorchLM(config)
    with torch.no_grad():
        theirs.embed.weight.copy_(_t(ours.embed.embedding.weight))
        theirs.positions.weight.copy_(_t(ours.positions.embedding.weight))
    for ours_layer, their_layer in zip(ours.layers, theirs.stack.layers, strict=True):
        copy_encoder_layer(ours_layer, their_layer)
    copy_norm(ours.norm, theirs.norm)
    theirs.eval()

    seq = rng.integers(0, config.vocab_size, (B, 9))
    targets = rng.integers(0, config.vocab_size, (B, 9))

    def loss_ours():
        return nn.losses.cross_entropy(ours(mx.array(seq)), mx.array(targets)).mean()

    loss, grads = nn.value_and_grad(ours, loss_ours)()
    out_t = theirs(torch.tensor(seq))
    loss_t = torch.nn.functional.cross_entropy(out_t.reshape(-1, config.vocab_size), torch.tensor(targets).reshape(-1))
    loss_t.backward()

    assert_close(ours(mx.array(seq)), out_t, atol=5e-5)
    assert abs(loss.item() - loss_t.item()) <= 1e-5
    grads = dict(tree_flatten(grads))
    assert_close(grads["embed.embedding.weight"], theirs.embed.weight.grad, atol=1e-5)
    assert_close(grads["positions.embedding.weight"], theirs.positions.weight.grad, atol=1e-5)
    assert_close(grads["layers.0.ff.linear1.weight"], theirs.stack.layers[0].linear1.weight.grad, atol=1e-5)
