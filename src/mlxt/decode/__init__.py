"""Decoding: caches, greedy, beam and sampled generation."""

from mlxt.decode.cache import KVCache, LayerCache, StaticKVCache, make_cache

__all__ = ["KVCache", "StaticKVCache", "LayerCache", "make_cache"]
