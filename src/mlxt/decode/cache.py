"""Key/value caches for incremental decoding.

Without a cache, generating token ``t`` recomputes attention over all ``t`` previous tokens in
every layer. With one, each step projects only the new token and attends over stored keys and
values. mlxt uses two kinds, one per attention in a decoder layer:

- `KVCache` (self-attention): grows by one token per step. Storage is preallocated (to
  ``capacity`` positions when the caller knows the final length, else in blocks of ``step``)
  and written in place, so a step costs no concatenation of the whole past.
- `StaticKVCache` (cross-attention): the encoder output's keys and values, projected once per
  source sentence on the first step and reused on every later one.

Both can be reordered along the batch axis (`reorder`), which beam search uses to follow the
surviving hypotheses. With mlxt's native kernels a `KVCache` is not copied for that: it keeps
``rows``, a small ``(B, size)`` table naming the batch row that holds each position of a row's
history, reorders the table, and the decoding attention kernel (`mlxt.kernels.cached_attention`)
reads keys and values through it. `update_and_fetch` still returns plain ``(B, H, L, D)`` keys
and values (gathered through the table when there is one) for every other reader.
"""

from __future__ import annotations

import mlx.core as mx

from mlxt import kernels


class KVCache:
    is_static = False
    step = 64

    def __init__(self, capacity: int | None = None):
        self.keys = None
        self.values = None
        self.offset = 0
        self.capacity = capacity
        self.rows = None  # (B, size) int32 after an indirect reorder: the row holding each position

    def _grow(self, keys: mx.array, values: mx.array, needed: int) -> None:
        B, H, _, Dk = keys.shape
        if self.keys is None and self.capacity is not None and needed <= self.capacity:
            size = self.capacity
        else:
            size = ((needed + self.step - 1) // self.step) * self.step
        old = 0 if self.keys is None else self.keys.shape[2]
        new_k = mx.zeros((B, H, size - old, Dk), keys.dtype)
        new_v = mx.zeros((B, H, size - old, values.shape[3]), values.dtype)
        if self.keys is None:
            self.keys, self.values = new_k, new_v
        else:
            self.keys = mx.concatenate([self.keys, new_k], axis=2)
            self.values = mx.concatenate([self.values, new_v], axis=2)
            if self.rows is not None:
                self.rows = mx.concatenate([self.rows, mx.zeros((B, size - old), mx.int32)], axis=1)

    def write(self, keys: mx.array, values: mx.array) -> None:
        """Append ``(B, H, L, D)`` keys/values (stored in place; each row's own)."""
        prev = self.offset
        length = keys.shape[2]
        if self.keys is None or prev + length > self.keys.shape[2]:
            self._grow(keys, values, prev + length)
        self.offset += length
        self.keys[..., prev : self.offset, :] = keys
        self.values[..., prev : self.offset, :] = values
        if self.rows is not None:
            B = keys.shape[0]
            self.rows[:, prev : self.offset] = mx.broadcast_to(mx.arange(B, dtype=mx.int32)[:, None], (B, length))

    def fetch(self):
        """All stored keys and values, ``(B, H, offset, D)`` each, in each row's order."""
        keys, values = self.keys[..., : self.offset, :], self.values[..., : self.offset, :]
        if self.rows is None:
            return keys, values
        B, H, T, _ = keys.shape
        where = (self.rows[:, None, : self.offset], mx.arange(H)[None, :, None], mx.arange(T)[None, None, :])
        return keys[where], values[where]

    def update_and_fetch(self, keys: mx.array, values: mx.array):
        """Append ``(B, H, L, D)`` keys/values; return all stored ``(B, H, offset+L, D)``."""
        self.write(keys, values)
        return self.fetch()

    def reorder(self, index: mx.array) -> None:
        """Keep batch rows ``index`` (beam search: the parents of the surviving beams).

        With the native kernels and the batch size unchanged, only the row table is reordered;
        otherwise the keys and values themselves are gathered."""
        if self.keys is None:
            return
        B, size = self.keys.shape[0], self.keys.shape[2]
        if index.shape[0] == B and kernels.use_native():
            if self.rows is None:
                self.rows = mx.broadcast_to(mx.arange(B, dtype=mx.int32)[:, None], (B, size))
            self.rows = self.rows[index]
            return
        if self.rows is not None:  # materialise the history first
            offset = self.offset
            keys, values = self.fetch()
            self.keys = mx.concatenate([keys, self.keys[..., offset:, :]], axis=2)
            self.values = mx.concatenate([values, self.values[..., offset:, :]], axis=2)
            self.rows = None
        self.keys = self.keys[index]
        self.values = self.values[index]

    @property
    def length(self) -> int:
        """Positions stored."""
        return self.offset

    @property
    def state(self):
        return self.keys, self.values


class StaticKVCache:
    """Cross-attention keys/values: set on the first call, then read-only."""

    is_static = True
    rows = None  # reordered by gathering (its rows are the same sentence's: rarely reordered)

    def __init__(self):
        self.keys = None
        self.values = None
        self.offset = 0

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def write(self, keys: mx.array, values: mx.array) -> None:
        self.keys, self.values = keys, values

    def fetch(self):
        return self.keys, self.values

    def update_and_fetch(self, keys: mx.array, values: mx.array):
        self.write(keys, values)
        return self.fetch()

    def reorder(self, index: mx.array) -> None:
        if self.keys is not None:
            self.keys = self.keys[index]
            self.values = self.values[index]


class LayerCache:
    """The caches of one decoder layer: ``self_attn`` and (seq2seq) ``cross_attn``."""

    def __init__(self, cross: bool, capacity: int | None = None):
        self.self_attn = KVCache(capacity)
        self.cross_attn = StaticKVCache() if cross else None

    @property
    def offset(self) -> int:
        return self.self_attn.offset

    def reorder(self, index: mx.array, static: bool = True) -> None:
        """Keep batch rows ``index``. ``static=False`` leaves the cross-attention keys alone,
        which is right when ``index`` only permutes rows holding the same source sentence
        (beam search: a beam's parent is always a beam of the same sentence)."""
        self.self_attn.reorder(index)
        if static and self.cross_attn is not None:
            self.cross_attn.reorder(index)


def make_cache(model, capacity: int | None = None) -> list[LayerCache]:
    """One `LayerCache` per decoder layer of ``model`` (a `Transformer` or `TransformerLM`).

    ``capacity``: the most positions the self-attention caches will hold, when known, so their
    storage is allocated once.
    """
    cross = model.config.kind == "seq2seq"
    return [LayerCache(cross, capacity) for _ in range(model.config.num_decoder_layers)]
