"""mlxt's native attention over whole sequences (`mlxt.kernels.attention`, training's attention)
against mlxt's pure-MLX attention and PyTorch: outputs and the gradients of q, k and v, with no
mask, causal (also with more queries than keys: fully masked rows), padding masks broadcast
over heads and queries, per-query masks with a fully masked row; odd lengths, one query, head
sizes 16 to 128, non-contiguous inputs; inside mx.compile and nn.value_and_grad, through the
attention layer; bitwise equal across thread counts and between AVX2 and AVX-512. Self-attention
from one stacked projection (`mlxt.kernels.self_attention`, q, k and v read in place from one
(B, L, 3, H, D) array): bitwise the attention of its three parts, gradients included."""

from __future__ import annotations

import os
import subprocess
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from kernel_utils import assert_same_for_thread_counts, native_kernels, np32, torch_tensor  # noqa: F401
from mlxt import kernels
from mlxt.model.attention import MultiHeadAttention, scaled_dot_product_attention

heads_first = lambda x: x.transpose(0, 2, 1, 3)  # noqa: E731  (B, L, H, D) <-> (B, H, L, D)


def pure(q, k, v, scale, mask):
    """mlxt's pure-MLX CPU path, on the (B, H, L, D) layout."""
    with kernels_off():
        return heads_first(scaled_dot_product_attention(heads_first(q), heads_first(k), heads_first(v), scale, mask))


class kernels_off:
    def __enter__(self):
        self.old = os.environ.get("MLXT_KERNELS")
        os.environ["MLXT_KERNELS"] = "0"

    def __exit__(self, *exc):
        if self.old is None:
            del os.environ["MLXT_KERNELS"]
        else:
            os.environ["MLXT_KERNELS"] = self.old


def keep_of(kind, B, H, lq, lk, rng):
    """(mask for mlxt, the full (B, H, Lq, Lk) keep array or None)."""
    if kind == "none":
        return None, None
    if kind == "causal":
        keep = np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)
        return "causal", np.broadcast_to(keep, (B, H, lq, lk))
    if kind == "padding":
        keep = np.ones((B, 1, 1, lk), bool)
        keep[-1, 0, 0, max(lk - 3, 1):] = False
    elif kind == "per query, a row fully masked":
        keep = rng.random((B, 1, lq, lk)) > 0.4
        keep[0, 0, 0, :] = False
    else:  # "per head": every axis its own
        keep = rng.random((B, H, lq, lk)) > 0.3
    return mx.array(keep), np.broadcast_to(keep, (B, H, lq, lk))


def torch_attention(q, k, v, scale, keep, cot):
    import torch

    tq, tk, tv = (torch_tensor(x.transpose(0, 2, 1, 3), grad=True) for x in (q, k, v))
    s = (tq @ tk.transpose(-1, -2)) * scale
    if keep is not None:
        s = s.masked_fill(~torch.tensor(np.ascontiguousarray(keep)), torch.finfo(torch.float32).min)
    out = torch.softmax(s, dim=-1) @ tv
    (out * torch_tensor(cot.transpose(0, 2, 1, 3))).sum().backward()
    back = lambda t: t.detach().numpy().transpose(0, 2, 1, 3)  # noqa: E731
    return back(out), back(tq.grad), back(tk.grad), back(tv.grad)


def inputs(B, lq, lk, H, D, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, lq, H, D)).astype(np.float32)
    k = rng.standard_normal((B, lk, H, D)).astype(np.float32)
    v = rng.standard_normal((B, lk, H, D)).astype(np.float32)
    cot = rng.standard_normal((B, lq, H, D)).astype(np.float32)
    return q, k, v, cot, rng


def grads(fn, q, k, v, cot):
    loss = lambda q, k, v: (fn(q, k, v) * cot).sum()  # noqa: E731
    return mx.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v)[1]


KINDS = ["none", "causal", "padding", "per query, a row fully masked", "per head"]


@pytest.mark.parametrize("lq,lk", [(1, 1), (5, 7), (33, 70), (64, 64), (40, 17), (1, 50)])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_pure_mlx_and_torch(lq, lk, kind):
    B, H, D = 2, 3, 32
    q, k, v, cot, rng = inputs(B, lq, lk, H, D)
    mask, keep = keep_of(kind, B, H, lq, lk, rng)
    scale = D**-0.5
    Q, K, V, C = map(mx.array, (q, k, v, cot))
    out = kernels.attention(Q, K, V, scale, mask)
    ref = pure(Q, K, V, scale, mask)
    np.testing.assert_allclose(np32(out), np32(ref), rtol=1e-5, atol=2e-6)
    mine = grads(lambda q, k, v: kernels.attention(q, k, v, scale, mask), Q, K, V, C)
    with kernels_off():
        theirs = grads(lambda q, k, v: pure(q, k, v, scale, mask), Q, K, V, C)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(np32(a), np32(b), rtol=1e-4, atol=5e-6)
    t_out, *t_grads = torch_attention(q, k, v, scale, keep, cot)
    np.testing.assert_allclose(np32(out), t_out, rtol=1e-5, atol=2e-6)
    for a, b in zip(mine, t_grads):
        np.testing.assert_allclose(np32(a), b, rtol=1e-4, atol=5e-6)


@pytest.mark.parametrize("D", [16, 48, 64, 128])
def test_head_sizes(D):
    q, k, v, cot, rng = inputs(2, 19, 23, 2, D, seed=D)
    Q, K, V, C = map(mx.array, (q, k, v, cot))
    t_out, *t_grads = torch_attention(q, k, v, 0.3, None, cot)
    np.testing.assert_allclose(np32(kernels.attention(Q, K, V, 0.3)), t_out, rtol=1e-5, atol=2e-6)
    for a, b in zip(grads(lambda q, k, v: kernels.attention(q, k, v, 0.3), Q, K, V, C), t_grads):
        np.testing.assert_allclose(np32(a), b, rtol=1e-4, atol=5e-6)


def test_non_contiguous_inputs_and_empty_queries():
    q, k, v, cot, _ = inputs(2, 6, 9, 2, 16)
    # the same values as (B, L, H, D) views of (B, H, L, D) arrays
    Q, K, V = (heads_first(mx.array(np.ascontiguousarray(x.transpose(0, 2, 1, 3)))) for x in (q, k, v))
    t_out, *_ = torch_attention(q, k, v, 0.25, None, cot)
    np.testing.assert_allclose(np32(kernels.attention(Q, K, V, 0.25, "causal")),
                               torch_attention(q, k, v, 0.25, keep_of("causal", 2, 2, 6, 9, None)[1], cot)[0],
                               rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np32(kernels.attention(Q, K, V, 0.25)), t_out, rtol=1e-5, atol=2e-6)
    empty = kernels.attention(mx.zeros((2, 0, 2, 16)), mx.array(k), mx.array(v), 0.25)
    assert empty.shape == (2, 0, 2, 16)


def test_checks_name_what_is_wrong():
    q = mx.zeros((1, 3, 2, 16))
    with pytest.raises(ValueError, match="multiple of 16"):
        kernels.attention(mx.zeros((1, 3, 2, 8)), mx.zeros((1, 3, 2, 8)), mx.zeros((1, 3, 2, 8)), 1.0)
    with pytest.raises(ValueError, match="at least one key"):
        kernels.attention(q, mx.zeros((1, 0, 2, 16)), mx.zeros((1, 0, 2, 16)), 1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        kernels.attention(q, q, q, 1.0, mx.ones((1, 1, 2, 5), mx.bool_))
    with pytest.raises(ValueError, match="k and v"):
        kernels.attention(q, q, mx.zeros((1, 4, 2, 16)), 1.0)


def test_same_for_any_thread_count():
    q, k, v, cot, rng = inputs(3, 37, 41, 4, 32, seed=3)
    Q, K, V, C = map(mx.array, (q, k, v, cot))
    mask = mx.array(rng.random((3, 1, 1, 41)) > 0.2)
    for m in (mask, "causal", None):
        assert_same_for_thread_counts(lambda: [kernels.attention(Q, K, V, 0.2, m),
                                               *grads(lambda q, k, v: kernels.attention(q, k, v, 0.2, m), Q, K, V, C)])


def test_inside_compile_matches_eager():
    q, k, v, cot, _ = inputs(2, 12, 12, 2, 32, seed=4)
    Q, K, V, C = map(mx.array, (q, k, v, cot))
    step = lambda q, k, v: grads(lambda q, k, v: kernels.attention(q, k, v, 0.5, "causal"), q, k, v, C)  # noqa: E731
    for a, b in zip(mx.compile(step)(Q, K, V), step(Q, K, V)):
        assert np32(a).tobytes() == np32(b).tobytes()


def test_attention_layer_uses_it_and_matches_the_pure_path():
    """`MultiHeadAttention` on CPU goes through the kernel (no head transposes) and gives the
    pure path's outputs and parameter gradients, under nn.value_and_grad and mx.compile."""
    mx.random.seed(0)
    layer = MultiHeadAttention(64, 4)
    x = mx.random.normal((3, 11, 64))
    memory = mx.random.normal((3, 7, 64))
    pad = mx.array(np.array([[True] * 7, [True] * 5 + [False] * 2, [True] * 3 + [False] * 4]))[:, None, None, :]

    def loss(x, memory):
        return (layer(x, x, x, mask="causal") ** 2).sum() + (layer(x, memory, memory, mask=pad) ** 2).sum()

    value_and_grad = nn.value_and_grad(layer, loss)
    calls = []
    real = kernels.attention, kernels.self_attention
    kernels.attention = lambda *a, **kw: calls.append("cross") or real[0](*a, **kw)
    kernels.self_attention = lambda *a, **kw: calls.append("self") or real[1](*a, **kw)
    try:
        native_loss, native_grads = mx.compile(value_and_grad, inputs=layer.state, outputs=layer.state)(x, memory)
        mx.eval(native_loss, native_grads)
    finally:
        kernels.attention, kernels.self_attention = real
    assert sorted(calls) == ["cross", "self"]
    with kernels_off():
        pure_loss, pure_grads = value_and_grad(x, memory)
        mx.eval(pure_loss, pure_grads)
    np.testing.assert_allclose(native_loss.item(), pure_loss.item(), rtol=1e-5)
    for name in ("query_proj", "key_proj", "value_proj", "out_proj"):
        np.testing.assert_allclose(np32(native_grads[name]["weight"]), np32(pure_grads[name]["weight"]),
                                   rtol=1e-4, atol=1e-4)


def packed_inputs(B, L, H, D, seed=0):
    rng = np.random.default_rng(seed)
    qkv = mx.array(rng.standard_normal((B, L, 3, H, D)).astype(np.float32))
    cot = mx.array(rng.standard_normal((B, L, H, D)).astype(np.float32))
    return qkv, cot, rng


def self_attention_and_grad(qkv, cot, scale, mask):
    out = kernels.self_attention(qkv, scale, mask)
    grad = mx.grad(lambda x: (kernels.self_attention(x, scale, mask) * cot).sum())(qkv)
    return out, grad


@pytest.mark.parametrize("L", [1, 7, 33, 64])
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "per query, a row fully masked", "per head"])
def test_self_attention_is_bitwise_the_attention_of_its_parts(L, kind):
    B, H, D = 2, 3, 32
    qkv, cot, rng = packed_inputs(B, L, H, D, seed=L)
    mask, _ = keep_of(kind, B, H, L, L, rng)
    out, grad = self_attention_and_grad(qkv, cot, 0.2, mask)
    q, k, v = (mx.array(np.ascontiguousarray(np.array(qkv)[:, :, i])) for i in range(3))
    assert np32(out).tobytes() == np32(kernels.attention(q, k, v, 0.2, mask)).tobytes()
    parts = grads(lambda q, k, v: kernels.attention(q, k, v, 0.2, mask), q, k, v, cot)
    assert grad.shape == qkv.shape
    for i, part in enumerate(parts):
        assert np32(grad)[:, :, i].tobytes() == np32(part).tobytes(), "dq dk dv"[3 * i:3 * i + 2]


def test_self_attention_matches_torch():
    B, L, H, D = 2, 29, 4, 16
    qkv, cot, _ = packed_inputs(B, L, H, D, seed=8)
    out, grad = self_attention_and_grad(qkv, cot, 0.25, "causal")
    q, k, v = (np.ascontiguousarray(np.array(qkv)[:, :, i]) for i in range(3))
    t_out, *t_grads = torch_attention(q, k, v, 0.25, keep_of("causal", B, H, L, L, None)[1], np.array(cot))
    np.testing.assert_allclose(np32(out), t_out, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(np32(grad), np.stack(t_grads, axis=2), rtol=1e-4, atol=5e-6)


def test_self_attention_same_for_any_thread_count_and_non_contiguous():
    qkv, cot, rng = packed_inputs(3, 37, 4, 32, seed=9)
    mask = mx.array(rng.random((3, 1, 1, 37)) > 0.2)
    for m in (mask, "causal", None):
        assert_same_for_thread_counts(lambda: list(self_attention_and_grad(qkv, cot, 0.2, m)))
    # the same values as a view of a differently laid-out array
    view = mx.array(np.ascontiguousarray(np.array(qkv).transpose(2, 0, 1, 3, 4))).transpose(1, 2, 0, 3, 4)
    for a, b in zip(self_attention_and_grad(view, cot, 0.2, "causal"), self_attention_and_grad(qkv, cot, 0.2, "causal")):
        assert np32(a).tobytes() == np32(b).tobytes()


def test_self_attention_checks_its_input():
    with pytest.raises(ValueError, match=r"\(B, L, 3, H, D\)"):
        kernels.self_attention(mx.zeros((1, 4, 2, 2, 16)), 1.0)
    with pytest.raises(ValueError, match="multiple of 16"):
        kernels.self_attention(mx.zeros((1, 4, 3, 2, 8)), 1.0)
    with pytest.raises(ValueError, match="float32"):
        kernels.self_attention(mx.zeros((1, 4, 3, 2, 16), mx.float16), 1.0)


def test_avx2_matches_avx512():
    """The AVX2 build rounds as the AVX-512 one (run in fresh processes: the instruction set is
    chosen once per process)."""
    if kernels.status().get("isa") != "avx512":
        pytest.skip("this CPU has no AVX-512 to compare the AVX2 build with")
    code = (
        "import sys, mlxt, mlx.core as mx, numpy as np; from mlxt import kernels; assert kernels.use_native()\n"
        "r = np.random.default_rng(5); a = [mx.array(r.standard_normal((2, 21, 3, 32)).astype(np.float32)) for _ in range(3)]\n"
        "c = mx.array(r.standard_normal((2, 21, 3, 32)).astype(np.float32))\n"
        "g = mx.grad(lambda q, k, v: (kernels.attention(q, k, v, 0.3, 'causal') * c).sum(), argnums=(0, 1, 2))(*a)\n"
        "out = [kernels.attention(*a, 0.3, 'causal'), *g]; mx.eval(out)\n"
        "sys.stdout.buffer.write(b''.join(np.array(o).tobytes() for o in out))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                           env={**os.environ, "MLXT_KERNELS_ISA": isa}).stdout for isa in ("avx512", "avx2")]
    assert len(runs[0]) == 4 * 4 * 2 * 21 * 3 * 32 and runs[0] == runs[1]
