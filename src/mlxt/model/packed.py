"""Linear layers with their weights packed once, for fast decoding on the CPU.

A decoding step multiplies a few rows (sentences x beams) by the same weights, step after
step. A general matrix product (OpenBLAS) first copies the weight into its own panel layout at
every call, which for a translator's 58k x 512 output projection costs about a quarter of the
product, and at a few rows makes the product wait on memory. `pack_for_inference` copies each
weight once into the panel layout of mlxt's native product (`mlxt.kernels.packed_linear`):

- every `nn.Linear` (float32) becomes a `PackedLinear`;
- a tied output embedding becomes a `PackedEmbedding`, which also looks tokens up in the packed
  copy, so no weight is held twice.

The packed model computes the same function, to float rounding (the products are summed in
another order than BLAS's). It is for inference only, on the CPU: it has no gradient, and it is
not what a checkpoint holds (`mlxt.train.rundir.load_run(..., inference=True)` packs after
loading; training and checkpoint averaging load unpacked).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_map

from mlxt import kernels


class PackedLinear(nn.Module):
    """``x @ weight.T + bias`` with the weight packed (see the module docstring)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.out_features, self.in_features = linear.weight.shape
        self.packed = kernels.pack_weight(linear.weight)
        if "bias" in linear:
            self.bias = linear.bias

    def __call__(self, x: mx.array) -> mx.array:
        return kernels.packed_linear(x, self.packed, self.get("bias"), self.out_features)


class PackedEmbedding(nn.Module):
    """An `nn.Embedding` whose table is packed: lookups and the tied output projection."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.num_embeddings, self.dims = embedding.weight.shape
        self.packed = kernels.pack_weight(embedding.weight)

    def __call__(self, ids: mx.array) -> mx.array:
        # row i of the table is column i % 64 of panel i // 64
        return self.packed[ids // kernels.PANEL, :, ids % kernels.PANEL]

    def as_linear(self, x: mx.array, bias: mx.array | None = None) -> mx.array:
        return kernels.packed_linear(x, self.packed, bias, self.num_embeddings)


def _packable(module) -> bool:
    return type(module) is nn.Linear and module.weight.dtype == mx.float32


def pack_for_inference(model: nn.Module) -> int:
    """Pack ``model``'s linear layers (and its tied output embedding) in place, when the native
    kernels are on (`mlxt.kernels.packs_weights`); returns how many weights were packed (0 when
    nothing was done). Call it on a model loaded for decoding, never on one being trained."""
    if not kernels.packs_weights():
        return 0
    count = 0

    def swap(module):
        nonlocal count
        if _packable(module):
            count += 1
            return PackedLinear(module)
        return module

    model.update_modules(tree_map(swap, model.leaf_modules(), is_leaf=lambda m: isinstance(m, nn.Module)))
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "tie_output", False):
        tied = getattr(model, "target_embedding", None) or getattr(model, "embed", None)
        if tied is not None and type(tied.embedding) is nn.Embedding and tied.embedding.weight.dtype == mx.float32:
            tied.embedding = PackedEmbedding(tied.embedding)
            count += 1
    mx.eval(model.parameters())
    return count
