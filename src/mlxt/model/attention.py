"""Multi-head attention for self-attention and encoder-decoder (cross) attention.

Queries come from one sequence, keys and values from the same one (self-attention) or from the
encoder output (cross-attention). The heads are computed together by
`scaled_dot_product_attention` below; masks are boolean (``True`` = may attend) or the string
``"causal"``, see `masks.py`.

Without a cache, on CPU with the native kernels, the whole attention (scores, masked softmax,
mixing, and the backward pass) is one kernel over the projections' ``(B, L, heads, d_head)``
layout (`mlxt.kernels.attention`), so the heads are never transposed. For self-attention the
three projections are then one product with their weights stacked, read in place by the kernel
(`mlxt.kernels.self_attention`), and their backward pass one product too.

A cache object (see `mlxt.decode.cache`) may be passed for incremental decoding:
- a `KVCache` appends this step's keys/values and returns all of them so far;
- a `StaticKVCache` (cross-attention) keeps the projected encoder keys/values after the first
  call, so they are computed once per source sentence.
With a cache, one query per row (a decoding step) and the native kernels, the attention is one
kernel over the cache as it is stored (`mlxt.kernels.cached_attention`): no copy of the cache,
and beam search's reordering followed through the cache's row table.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlxt import kernels
from mlxt.model.masks import causal_mask


@mx.custom_function
def softmax(x: mx.array) -> mx.array:
    """Softmax over the last axis, written out so `mx.compile` fuses its ``exp`` into a kernel.

    On CPU, MLX's built-in softmax runs a scalar ``exp`` inside libmlx; written as ops, the
    ``exp`` lands in a compiled kernel, which uses the faster FMA build mlxt loads (see
    docs/performance.md). The gradient is the usual ``y * (g - sum(g * y))``.
    """
    e = mx.exp(x - mx.max(x, axis=-1, keepdims=True))
    return e / mx.sum(e, axis=-1, keepdims=True)


@softmax.vjp
def _softmax_vjp(primals, cotangent, output):
    return (output * (cotangent - mx.sum(cotangent * output, axis=-1, keepdims=True)),)


def scaled_dot_product_attention(q, k, v, scale: float, mask=None) -> mx.array:
    """``softmax(q k^T * scale) v`` for ``(B, heads, L, d_head)`` inputs.

    Uses MLX's fused kernel except on CPU, where that kernel is the same computation done by
    separate unfused ops; there mlxt's native softmax kernel (`mlxt.kernels`, masks applied
    inside it) or, without it, the explicit version below is faster. Masked positions get the
    most negative finite value, so a fully masked row stays finite (uniform), as with
    `mx.fast.scaled_dot_product_attention` and a boolean mask; the kernel does the same.
    """
    if mx.default_device() != mx.cpu:
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    scores = (q * scale) @ k.swapaxes(-1, -2)
    if kernels.use_native() and (mask is None or isinstance(mask, str) or mask.dtype == mx.bool_):
        return kernels.softmax(scores.astype(mx.float32), mask).astype(v.dtype) @ v
    if isinstance(mask, str):
        mask = causal_mask(q.shape[-2], k.shape[-2])
    if mask is not None:
        scores = mx.where(mask, scores, mx.array(mx.finfo(scores.dtype).min, scores.dtype))
    weights = softmax(scores.astype(mx.float32)).astype(v.dtype)
    return weights @ v


def single_query_mask(mask, B: int, length: int):
    """``mask`` as the ``(B, length)`` keep-mask `kernels.cached_attention` takes (None: keep
    all), or False when it has no such form (per-head or per-query masks, additive masks)."""
    if mask is None or isinstance(mask, str):  # "causal": one last query sees every key
        return None
    if mask.dtype != mx.bool_ or mask.shape[-1] != length:
        return False
    if mask.ndim == 4 and mask.shape[1] == 1 and mask.shape[2] == 1:
        mask = mask[:, 0, 0, :]
    elif not (mask.ndim == 2 and mask.shape[0] == 1):
        return False
    return mx.broadcast_to(mask, (B, length)) if mask.shape[0] in (1, B) else False


class MultiHeadAttention(nn.Module):
    """``softmax(Q K^T / sqrt(d_head)) V`` over ``num_heads`` heads, then an output projection.

    Shapes: queries ``(B, Lq, d_model)``, keys/values ``(B, Lk, d_model)`` -> ``(B, Lq, d_model)``.
    ``rope``: an `nn.RoPE` applied to queries and keys (self-attention with rotary positions).
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True, rope: nn.Module | None = None):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.scale = (d_model // num_heads) ** -0.5
        self.query_proj = nn.Linear(d_model, d_model, bias=bias)
        self.key_proj = nn.Linear(d_model, d_model, bias=bias)
        self.value_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.rope = rope

    def _split(self, x: mx.array) -> mx.array:
        B, L, _ = x.shape
        return x.reshape(B, L, self.num_heads, -1).transpose(0, 2, 1, 3)

    def __call__(self, queries, keys, values, mask=None, cache=None) -> mx.array:
        B, L, D = queries.shape
        if (cache is None and self.rope is None and mx.default_device() == mx.cpu and keys.shape[1] > 0
                and kernels.attention_supported(D // self.num_heads, queries.dtype, mask)):
            # one kernel on the projections' (B, L, heads, d_head) layout: no head transposes
            if queries is keys and keys is values and self._stackable():
                qkv = self._stacked_projection(queries).reshape(B, L, 3, self.num_heads, -1)
                out = kernels.self_attention(qkv, self.scale, mask)
            else:
                heads = lambda x: x.reshape(*x.shape[:2], self.num_heads, -1)
                out = kernels.attention(heads(self.query_proj(queries)), heads(self.key_proj(keys)),
                                        heads(self.value_proj(values)), self.scale, mask)
            return self.out_proj(out.reshape(B, L, -1))
        q = self._split(self.query_proj(queries))
        if cache is None or not (getattr(cache, "is_static", False) and cache.keys is not None):
            k = self._split(self.key_proj(keys))
            v = self._split(self.value_proj(values))
            if self.rope is not None:
                offset = cache.offset if cache is not None else 0
                q = self.rope(q, offset=offset)
                k = self.rope(k, offset=offset)
            if cache is None:
                return self._merge(scaled_dot_product_attention(q, k, v, self.scale, mask))
            cache.write(k, v)
        # else cross-attention: the encoder's keys and values are already projected
        if L == 1 and kernels.use_native() and q.dtype == mx.float32:
            keep = single_query_mask(mask, B, cache.length)
            if keep is not False:
                return self._merge(kernels.cached_attention(q, cache.keys, cache.values, cache.length, cache.rows,
                                                            keep, self.scale))
        k, v = cache.fetch()
        return self._merge(scaled_dot_product_attention(q, k, v, self.scale, mask))

    def _stackable(self) -> bool:
        """Whether the q, k, v projections are plain linear layers (not packed for inference or
        quantized), so their weights can be stacked."""
        return all(type(p) is nn.Linear for p in (self.query_proj, self.key_proj, self.value_proj))

    def _stacked_projection(self, x: mx.array) -> mx.array:
        """``[query_proj(x), key_proj(x), value_proj(x)]`` on the last axis, as one product."""
        projections = (self.query_proj, self.key_proj, self.value_proj)
        w = mx.concatenate([p.weight for p in projections])
        if "bias" in self.query_proj:
            return mx.addmm(mx.concatenate([p.bias for p in projections]), x, w.T)
        return x @ w.T

    def _merge(self, out: mx.array) -> mx.array:
        """``(B, heads, L, d_head)`` -> the output projection of ``(B, L, d_model)``."""
        B, _, L, _ = out.shape
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(B, L, -1))


class SelfAttention(MultiHeadAttention):
    """Self-attention, named as in the tutorial: ``SelfAttention(d_model, heads)(x, mask)``."""

    def __call__(self, x, mask=None, cache=None) -> mx.array:
        return super().__call__(x, x, x, mask=mask, cache=cache)
