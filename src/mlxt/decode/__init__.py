"""Decoding: caches, greedy, beam and sampled generation, and text-level translation."""

from mlxt.decode.beam import Hypothesis, beam_search, beam_search_nbest
from mlxt.decode.cache import KVCache, LayerCache, StaticKVCache, make_cache
from mlxt.decode.greedy import greedy
from mlxt.decode.hf_options import hf_beam_options
from mlxt.decode.pick import filter_logits
from mlxt.decode.rules import length_penalty
from mlxt.decode.sampling import generate_tokens, sample

__all__ = [
    "KVCache", "StaticKVCache", "LayerCache", "make_cache", "greedy", "beam_search", "beam_search_nbest",
    "Hypothesis", "hf_beam_options", "length_penalty", "filter_logits", "generate_tokens", "sample",
]
