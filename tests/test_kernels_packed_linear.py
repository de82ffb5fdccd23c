"""The linear layer against a prepacked weight (`mlxt.kernels.packed_linear`) and the packed
model (`mlxt.model.pack_for_inference`): close to PyTorch's and MLX's products on odd shapes,
the same bits for every thread count, the packed layout as documented, clear errors, and a
packed Transformer or language model computing what the unpacked one does."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.model import ModelConfig, PackedEmbedding, PackedLinear, build_model, pack_for_inference

# (rows, k, n): one row, tails of the 6-row tile and of the 64-column panel, k past the 512 block,
# more rows than one 240-row block of the threaded split
SHAPES = [(1, 1, 1), (1, 7, 5), (5, 33, 64), (6, 64, 65), (13, 100, 130), (4, 512, 1000), (37, 1100, 70),
          (250, 96, 200), (481, 64, 129)]


def data(m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((n, k)).astype(np.float32),
            rng.standard_normal(n).astype(np.float32))


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_torch_and_mlx(m, k, n, with_bias):
    import torch

    x, w, b = data(m, k, n)
    packed = kernels.pack_weight(mx.array(w))
    bias = mx.array(b) if with_bias else None
    got = np.array(kernels.packed_linear(mx.array(x), packed, bias, n))
    want = torch.nn.functional.linear(torch_tensor(x), torch_tensor(w), torch_tensor(b) if with_bias else None).numpy()
    mlx_ref = np.array(mx.array(x) @ mx.array(w).T + (bias if with_bias else 0))
    tol = 2e-6 * k ** 0.5 * 4
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(got, mlx_ref, rtol=1e-5, atol=tol)
    assert got.shape == (m, n)


def test_leading_axes_non_contiguous_input_and_empty_rows():
    x, w, b = data(24, 40, 70)
    packed, bias = kernels.pack_weight(mx.array(w)), mx.array(b)
    x3 = mx.array(x).reshape(2, 12, 40)
    got = kernels.packed_linear(x3, packed, bias, 70)
    assert got.shape == (2, 12, 70)
    np.testing.assert_allclose(np.array(got), np.array(x3 @ mx.array(w).T + bias), rtol=1e-5, atol=1e-4)
    xt = mx.array(np.ascontiguousarray(x.T)).T  # a transposed (non-contiguous) view
    np.testing.assert_allclose(np.array(kernels.packed_linear(xt, packed, bias, 70)),
                               np.array(mx.array(x) @ mx.array(w).T + bias), rtol=1e-5, atol=1e-4)
    assert kernels.packed_linear(mx.zeros((0, 40)), packed, bias, 70).shape == (0, 70)


def test_pack_weight_layout():
    _, w, _ = data(1, 9, 130)
    packed = np.array(kernels.pack_weight(mx.array(w)))
    assert packed.shape == (3, 9, kernels.PANEL)
    for row in (0, 63, 64, 129):
        np.testing.assert_array_equal(packed[row // 64, :, row % 64], w[row])
    assert not packed[2, :, 130 - 128:].any()  # zeros past n


@pytest.mark.parametrize("m,k,n", [(128, 512, 700), (7, 1100, 130), (481, 64, 129)])
def test_same_bits_for_every_thread_count(m, k, n):
    x, w, b = data(m, k, n, seed=3)
    packed = kernels.pack_weight(mx.array(w))
    assert_same_for_thread_counts(lambda: kernels.packed_linear(mx.array(x), packed, mx.array(b), n))


def test_fallback_off_the_kernels_computes_the_same(monkeypatch):
    x, w, b = data(9, 70, 130)
    packed = kernels.pack_weight(mx.array(w))
    native = np.array(kernels.packed_linear(mx.array(x), packed, mx.array(b), 130))
    monkeypatch.setenv("MLXT_KERNELS", "0")
    fallback = np.array(kernels.packed_linear(mx.array(x), packed, mx.array(b), 130))
    np.testing.assert_allclose(fallback, native, rtol=1e-5, atol=1e-4)


def test_errors():
    _, w, _ = data(1, 8, 10)
    packed = kernels.pack_weight(mx.array(w))
    with pytest.raises(ValueError, match="x has 9 features, the weight 8"):
        kernels._lib.packed_linear(mx.zeros((2, 9)), packed, None, 10)
    with pytest.raises(ValueError, match="n does not match"):
        kernels._lib.packed_linear(mx.zeros((2, 8)), packed, None, 65)
    with pytest.raises(ValueError, match="bias must have shape"):
        kernels._lib.packed_linear(mx.zeros((2, 8)), packed, mx.zeros((3,)), 10)
    with pytest.raises(ValueError, match="pack_weight: w must have shape"):
        kernels.pack_weight(mx.zeros((4,)))
    with pytest.raises(ValueError, match="no gradient"):
        mx.grad(lambda x: kernels.packed_linear(x, packed, None, 10).sum())(mx.zeros((2, 8)))


def small(kind: str, **kw) -> ModelConfig:
    base = dict(kind=kind, vocab_size=203, d_model=32, num_heads=4, d_ff=48, num_encoder_layers=2,
                num_decoder_layers=2, max_len=32, dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("config", [
    small("seq2seq", share_embeddings=True, tie_output=True),
    small("seq2seq", src_vocab_size=150, tie_output=True, logits_bias=True),
    small("seq2seq"),
    small("lm", positional="rope", tie_output=True),
], ids=["shared-tied", "separate-tied-bias", "untied", "lm"])
def test_packed_model_computes_what_the_model_does(config):
    mx.random.seed(0)
    model = build_model(config)
    model.eval()
    if config.logits_bias:
        model.final_logits_bias = mx.random.normal((config.vocab_size,))
    rng = np.random.default_rng(0)
    src = mx.array(rng.integers(3, 150, (3, 9)).astype(np.int32))
    tgt = mx.array(rng.integers(3, 150, (3, 7)).astype(np.int32))
    run = (lambda m: m(src, tgt)) if config.kind == "seq2seq" else (lambda m: m(tgt))
    want = np.array(run(model))
    count = pack_for_inference(model)
    linears = [m for _, m in model.named_modules() if type(m) is nn.Linear]
    assert not linears and count > 0
    packed = [m for _, m in model.named_modules() if isinstance(m, (PackedLinear, PackedEmbedding))]
    assert len(packed) == count
    assert any(isinstance(m, PackedEmbedding) for m in packed) == config.tie_output
    np.testing.assert_allclose(np.array(run(model)), want, rtol=1e-4, atol=1e-4)


def test_nothing_packed_with_the_kernels_off(monkeypatch):
    model = build_model(small("lm"))
    monkeypatch.setenv("MLXT_KERNELS", "0")
    assert pack_for_inference(model) == 0
    assert any(type(m) is nn.Linear for _, m in model.named_modules())
