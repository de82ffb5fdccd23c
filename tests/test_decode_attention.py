"""Recomputed cross-attention weights: they reproduce the layers' outputs; the plot is written."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from decode_models import tiny_seq2seq
from mlxt.decode.attention_maps import attention_probs, cross_attention, select_map
from mlxt.decode.attention_plot import plot_attention


@pytest.mark.parametrize("norm_first", [False, True])
def test_weights_reproduce_cross_attention_output(rng, norm_first):
    model = tiny_seq2seq(seed=1, norm_first=norm_first)
    attn = model.decoder.layers[0].cross_attn
    q = mx.array(rng.normal(size=(2, 4, 16)).astype(np.float32))
    mem = mx.array(rng.normal(size=(2, 6, 16)).astype(np.float32))
    keep = mx.array([[True] * 6, [True] * 3 + [False] * 3])
    probs = attention_probs(attn, q, mem, keep)
    v = attn._split(attn.value_proj(mem))
    out = attn.out_proj((probs @ v).transpose(0, 2, 1, 3).reshape(2, 4, 16))
    expected = attn(q, mem, mem, keep[:, None, None, :])
    np.testing.assert_allclose(np.array(out), np.array(expected), atol=1e-5)
    p = np.array(probs)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    assert np.all(p[1, :, :, 3:] == 0)  # padding gets no attention


def test_cross_attention_shapes_and_selection():
    model = tiny_seq2seq(seed=2)
    src = mx.array([[5, 6, 7, 2]])
    w = cross_attention(model, src, [8, 9])
    assert w.shape == (2, 2, 3, 4)  # layers, heads, target steps (incl. eos), source
    np.testing.assert_allclose(select_map(w), w.mean(axis=(0, 1)), atol=1e-7)
    np.testing.assert_allclose(select_map(w, layer=1, head=0), w[1, 0])
    np.testing.assert_allclose(select_map(w, layer=-1), w[-1].mean(0))
    with pytest.raises(IndexError):
        select_map(w, layer=5)


def test_plot_writes_png(tmp_path):
    path = plot_attention(np.random.default_rng(0).random((3, 4)), list("abcd"), ["x", "y", "</s>"],
                          tmp_path / "a" / "att.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
