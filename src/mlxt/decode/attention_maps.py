"""Cross-attention weights of a finished translation, for plotting which source tokens each
target token looked at.

The fast decoding path never materialises attention probabilities (it calls the fused
`mx.fast.scaled_dot_product_attention`), so this module re-runs the decoder once over the final
target sequence, layer by layer with the model's own modules, and recomputes
``softmax(Q K^T / sqrt(d_head))`` of each cross-attention from its projections.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlxt.model.masks import key_mask


def attention_probs(attn, queries: mx.array, keys: mx.array, keep: mx.array | None) -> mx.array:
    """``(B, heads, Lq, Lk)`` attention probabilities of `MultiHeadAttention` ``attn``;
    ``keep``: ``(B, Lk)`` True at keys that may be attended."""
    q = attn._split(attn.query_proj(queries))
    k = attn._split(attn.key_proj(keys))
    scores = (q * attn.scale) @ k.transpose(0, 1, 3, 2)
    if keep is not None:
        scores = mx.where(key_mask(keep), scores, mx.array(-float("inf"), scores.dtype))
    return mx.softmax(scores.astype(mx.float32), axis=-1)


def cross_attention(model, src: mx.array, tokens: list[int]) -> np.ndarray:
    """Weights ``(layers, heads, len(tokens) + 1, Ls)`` of one sentence ``src (1, Ls)`` for the
    decoder input ``[start] + tokens``: row ``i`` is the step that predicted output ``i`` (the
    last row predicted end-of-sentence)."""
    cfg = model.config
    src_mask = model.source_mask(src)
    memory = model.encode(src, src_mask)
    tgt = mx.array([[cfg.start_id] + list(tokens)], dtype=mx.int32)
    x = model.target_embedding(tgt)
    if model.tgt_positions is not None:
        x = x + model.tgt_positions(tgt.shape[1]).astype(x.dtype)
    memory_mask = key_mask(src_mask)
    maps = []
    for layer in model.decoder.layers:
        x = layer.residual(x, layer.norm1, lambda h: layer.self_attn(h, h, h, "causal"))
        queries = layer.norm2(x) if layer.norm_first else x
        maps.append(attention_probs(layer.cross_attn, queries, memory, src_mask)[0])
        x = layer.residual(x, layer.norm2, lambda h: layer.cross_attn(h, memory, memory, memory_mask))
        x = layer.residual(x, layer.norm3, layer.ff)
    return np.array(mx.stack(maps))


def select_map(weights: np.ndarray, layer: int | None = None, head: int | None = None) -> np.ndarray:
    """One ``(Lt, Ls)`` map: a given layer/head, or the mean over the unspecified ones."""
    if layer is not None:
        if not -weights.shape[0] <= layer < weights.shape[0]:
            raise IndexError(f"layer {layer}: the model has {weights.shape[0]} decoder layers")
        weights = weights[[layer]]
    if head is not None:
        if not -weights.shape[1] <= head < weights.shape[1]:
            raise IndexError(f"head {head}: the model has {weights.shape[1]} heads")
        weights = weights[:, [head]]
    return weights.mean(axis=(0, 1))
