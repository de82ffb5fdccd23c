"""Greedy (and sampled) decoding for the encoder-decoder `Transformer`, batched over sentences.

The encoder runs once; each step feeds the previous tokens of all sentences through the decoder
with a `KVCache` and picks the next token of each (the argmax, or a sample when a temperature
is given). A sentence stops at end-of-sentence or its length limit; finished rows are padded
until every sentence has stopped.

The host waits for the device only every ``CHECK_EVERY`` steps, to test whether all sentences
have stopped; in between each step is queued with `mx.async_eval`, so Python builds the next
step's graph while the last one runs. Steps past the end only add padding, which the lengths
cut off: the output is the same as checking at every step.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlxt.decode.cache import make_cache
from mlxt.decode.limits import target_limits
from mlxt.decode.pick import KeyStream, pick_tokens
from mlxt.decode.rules import TokenRules, default_banned_ids

CHECK_EVERY = 8


def greedy(model, src: mx.array, max_len: int | None = None, max_len_a: float = 1.5, max_len_b: int = 10,
           min_len: int = 0, banned_ids=None, forced_eos: bool = False, src_mask: mx.array | None = None,
           temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
           return_scores: bool = False):
    """Translate ``src (B, Ls)`` (ids with eos appended, right-padded): one token list per
    sentence, without start and end tokens.

    ``max_len`` (fixed) or ``max_len_a * src_len + max_len_b``: the most generated tokens,
    end-of-sentence included (see `limits.py`). ``banned_ids``: never generated (default: pad
    and the decoder-start token). ``temperature > 0`` samples instead (with ``top_k``,
    ``top_p`` and a reproducible ``seed``). ``return_scores``: also the summed log-probability
    of each output (end-of-sentence included).
    """
    cfg = model.config
    src_mask = model.source_mask(src) if src_mask is None else src_mask
    limits_np = target_limits(src_mask, cfg.max_len, max_len_a, max_len_b, max_len)
    limits = mx.array(limits_np.astype(np.int32))
    steps = int(limits_np.max())
    rules = TokenRules(cfg.vocab_size, cfg.eos_id,
                       default_banned_ids(cfg) if banned_ids is None else tuple(banned_ids), min_len, forced_eos)
    keys = KeyStream(seed)

    B = src.shape[0]
    memory = model.encode(src, src_mask)
    cache = make_cache(model, capacity=steps)
    tokens = mx.full((B, 1), cfg.start_id, dtype=mx.int32)
    finished = mx.zeros((B,), dtype=mx.bool_)
    scores = mx.zeros((B,), dtype=mx.float32)
    lengths = mx.zeros((B,), dtype=mx.int32)
    out = []
    for step in range(1, steps + 1):
        logits = model.decode(tokens, memory, src_mask, cache=cache)[:, -1, :].astype(mx.float32)
        # Masking raw logits picks the same tokens as masking log-probabilities; the
        # normalisation (a full-vocabulary exp) is only paid for when scores are asked for.
        if return_scores:
            logits = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        logits = rules.apply(logits, step, limits)
        nxt = pick_tokens(logits, temperature, top_k, top_p, keys.next()).astype(mx.int32)
        if return_scores:
            picked = mx.take_along_axis(logits, nxt[:, None], axis=-1)[:, 0]
            scores = scores + mx.where(finished, 0.0, picked)
        lengths = lengths + (~finished).astype(mx.int32)
        nxt = mx.where(finished, cfg.pad_id, nxt)
        finished = finished | (nxt == cfg.eos_id) | (limits <= step)
        out.append(nxt)
        if step % CHECK_EVERY == 0:
            if bool(finished.all()):  # the one host sync: every CHECK_EVERY steps
                break
        else:
            mx.async_eval(nxt, finished, scores, lengths)  # the next step's graph is built meanwhile
        tokens = nxt[:, None]
    columns = np.array(mx.stack(out, axis=1))
    results = [strip_eos(row[:n].tolist(), cfg.eos_id) for row, n in zip(columns, np.array(lengths))]
    if return_scores:
        return results, np.array(scores).tolist()
    return results


def strip_eos(tokens: list[int], eos_id: int) -> list[int]:
    """Tokens up to (not including) the first end-of-sentence."""
    return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens
